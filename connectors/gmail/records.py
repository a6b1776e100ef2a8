"""Typed rows from Gmail wire shapes (``users.labels.get`` and ``users.messages.get``).

Header values may carry RFC 2047 encoded words (``=?utf-8?q?...?=``), often mixed with raw
UTF-8 text that Gmail passes through (``Réunion =?utf-8?q?caf=C3=A9?=``). Address headers are
split *before* decoding: a display name like ``=?utf-8?q?Doe=2C_John?=`` decodes to a comma,
and decoding first would make ``getaddresses`` cut one recipient in two. Every record goes
through :func:`connectors.common.sanitize` (an encoded word may decode to a NUL, which
PostgreSQL cannot store).

Each table's row is declared once, as a ``TypedDict`` (:class:`GmailLabel`,
:class:`GmailMessage`): the record functions return it, the stream declarations name it, and
``tests/connectors/test_record_types.py`` holds it against the table's columns.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from typing import Any, TypedDict

from connectors.common import sanitize

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GmailLabel(TypedDict):
    """A ``gmail_labels`` row (``users.labels.get``; the counts are NULL when Gmail omits them)."""

    label_id: str
    name: str
    type: str
    messages_total: int | None
    messages_unread: int | None
    threads_total: int | None
    threads_unread: int | None


class GmailMessage(TypedDict):
    """A ``gmail_messages`` row (``users.messages.get``, headers and part tree, no bodies).
    ``_domains`` is the client hint (every address's domain), never a column."""

    message_id: str
    thread_id: str
    history_id: int
    internal_date: datetime
    from_address: str | None
    from_name: str | None
    to_addresses: list[str]
    cc_addresses: list[str]
    subject: str | None
    snippet: str | None
    label_ids: list[str]
    size_estimate: int
    has_attachments: bool
    _domains: list[str]


def label_record(label: Mapping[str, Any]) -> GmailLabel:
    """A ``gmail_labels`` row. Counts come from ``labels.get`` (``labels.list`` omits them)."""

    def count(name: str) -> int | None:
        value = label.get(name)
        return int(value) if value is not None else None

    row: GmailLabel = {
        "label_id": label["id"],
        "name": label.get("name") or label["id"],
        "type": str(label.get("type") or "user").lower(),
        "messages_total": count("messagesTotal"),
        "messages_unread": count("messagesUnread"),
        "threads_total": count("threadsTotal"),
        "threads_unread": count("threadsUnread"),
    }
    return sanitize(row)


# One RFC 2047 encoded word: =?charset[*language]?Q|B?text?=
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The bytes an encoded word carries, or ``None`` when its text is not valid Q or B."""
    try:
        if encoding in "Qq":
            return binascii.a2b_qp(text.encode("ascii"), header=True)
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None


def decode_words(value: str | None) -> str | None:
    """Decode RFC 2047 encoded words, leaving the text around them as it is.

    The standard library's ``decode_header`` cannot be used: on a value that mixes raw 8-bit
    text with encoded words (Gmail passes both through) it re-encodes the raw part in a way
    ``make_header`` then fails on. Here, whitespace between two encoded words is dropped (RFC
    2047 section 6.2), consecutive words in one charset are decoded together (mailers split a
    multi-byte character across words), and a word that cannot be decoded (unknown charset,
    bad base64) is kept as sent.
    """
    if value is None:
        return None
    if "\n" in value or "\r" in value:  # unfold
        value = re.sub(r"\r?\n[ \t]*", " ", value)
    out: list[str] = []
    run: list[tuple[str, bytes, str]] = []  # (charset, bytes, source) of adjacent words

    def flush() -> None:
        if not run:
            return
        charset, source = run[0][0], "".join(src for _, _, src in run)
        try:
            out.append(b"".join(raw for _, raw, _ in run).decode(charset))
        except (LookupError, UnicodeDecodeError):  # unknown charset, bytes not in it
            out.append(source)
        run.clear()

    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset, encoding, text = match.groups()
        raw = _word_bytes(encoding, text)
        if raw is None:
            flush()
            out.append(between + match.group(0))
        else:
            if run and between.strip():
                flush()
            # Whitespace between two encoded words is dropped (kept in the source, which is
            # what is written when the run cannot be decoded).
            lead = between if run else ""
            if not run:
                out.append(between)
            elif run[0][0].lower() != charset.lower():
                flush()
            run.append((charset, raw, lead + match.group(0)))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def parse_addresses(values: Iterable[str]) -> list[tuple[str | None, str]]:
    """``(display name or None, lower-cased address)`` for every mailbox in ``values``.

    Groups (``undisclosed-recipients:;``) and unparseable fragments yield nothing.
    """
    parsed: list[tuple[str | None, str]] = []
    for name, address in getaddresses(list(values)):
        address = address.strip().lower()
        if not address or "@" not in address:
            continue
        display = decode_words(name.strip()) if name.strip() else None
        parsed.append((display or None, address))
    return parsed


def internal_date(ms: str | int) -> datetime:
    """``internalDate`` (epoch milliseconds, sent as a string) as an exact UTC datetime."""
    return _EPOCH + timedelta(milliseconds=int(ms))


def headers_by_name(payload: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Top-level headers grouped by lower-cased name (a header may legally repeat)."""
    grouped: dict[str, list[str]] = {}
    for header in (payload or {}).get("headers") or ():
        name = str(header.get("name") or "").lower()
        if name:
            grouped.setdefault(name, []).append(str(header.get("value") or ""))
    return grouped


def _parts(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield part
    for child in part.get("parts") or ():
        yield from _parts(child)


def has_attachments(payload: Mapping[str, Any] | None) -> bool:
    """Any MIME part (the payload itself included) with a file name or an attachment id."""
    return any(
        part.get("filename") or (part.get("body") or {}).get("attachmentId")
        for part in _parts(payload or {})
    )


def domains(addresses: Iterable[str]) -> list[str]:
    """Sorted distinct domains; the loader matches them against ``client.email_domains``."""
    return sorted({a.rsplit("@", 1)[1] for a in addresses if "@" in a})


def message_record(message: Mapping[str, Any]) -> GmailMessage:
    """A ``gmail_messages`` row plus the ``_domains`` client hint."""
    payload = message.get("payload") or {}
    headers = headers_by_name(payload)
    sender = parse_addresses(headers.get("from", ()))
    to = [address for _, address in parse_addresses(headers.get("to", ()))]
    cc = [address for _, address in parse_addresses(headers.get("cc", ()))]
    from_name, from_address = sender[0] if sender else (None, None)
    subjects = headers.get("subject")
    row: GmailMessage = {
        "message_id": message["id"],
        "thread_id": message.get("threadId") or message["id"],
        "history_id": int(message["historyId"]),
        "internal_date": internal_date(message["internalDate"]),
        "from_address": from_address,
        "from_name": from_name,
        "to_addresses": to,
        "cc_addresses": cc,
        "subject": decode_words(subjects[0]) if subjects else None,
        "snippet": message.get("snippet") or None,
        "label_ids": list(message.get("labelIds") or ()),
        "size_estimate": int(message.get("sizeEstimate") or 0),
        "has_attachments": has_attachments(payload),
        "_domains": domains([*([from_address] if from_address else []), *to, *cc]),
    }
    return sanitize(row)
