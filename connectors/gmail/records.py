"""Typed rows from Gmail wire shapes (``users.labels.get`` and ``users.messages.get``).

Header values may carry RFC 2047 encoded words (``=?utf-8?q?...?=``). Address headers are
split *before* decoding: a display name like ``=?utf-8?q?Doe=2C_John?=`` decodes to a comma,
and decoding first would make ``getaddresses`` cut one recipient in two.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.utils import getaddresses
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def label_record(label: Mapping[str, Any]) -> dict[str, Any]:
    """A ``gmail_labels`` row. Counts come from ``labels.get`` (``labels.list`` omits them)."""

    def count(name: str) -> int | None:
        value = label.get(name)
        return int(value) if value is not None else None

    return {
        "label_id": label["id"],
        "name": label.get("name") or label["id"],
        "type": str(label.get("type") or "user").lower(),
        "messages_total": count("messagesTotal"),
        "messages_unread": count("messagesUnread"),
        "threads_total": count("threadsTotal"),
        "threads_unread": count("threadsUnread"),
    }


def decode_words(value: str | None) -> str | None:
    """Decode RFC 2047 encoded words; a value that cannot be decoded is kept as sent."""
    if value is None:
        return None
    try:
        decoded = str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError):  # unknown charset, bad base64, ...
        decoded = value
    return " ".join(decoded.split()) if "\n" in decoded or "\r" in decoded else decoded


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


def message_record(message: Mapping[str, Any]) -> dict[str, Any]:
    """A ``gmail_messages`` row plus the ``_domains`` client hint."""
    payload = message.get("payload") or {}
    headers = headers_by_name(payload)
    sender = parse_addresses(headers.get("from", ()))
    to = [address for _, address in parse_addresses(headers.get("to", ()))]
    cc = [address for _, address in parse_addresses(headers.get("cc", ()))]
    from_name, from_address = sender[0] if sender else (None, None)
    subjects = headers.get("subject")
    return {
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
