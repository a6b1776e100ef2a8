"""``messages.list``: the ``q`` / ``labelIds`` / ``includeSpamTrash`` filter and the scan.

Supported ``q`` operators: ``after:`` / ``before:`` (epoch seconds, or ``YYYY/MM/DD`` read as
midnight US Pacific time, as Gmail does), ``newer_than:`` / ``older_than:`` (``7d``, ``2m``,
``1y``), ``in:`` / ``label:`` / ``is:`` / ``category:``, ``from:`` / ``to:`` / ``subject:``
and free words (matched in decoded headers and the snippet), each negatable with ``-``.
Time bounds map to an id range (ids sort by time), so a date-bounded page costs only the
messages inside the range.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from sandbox.gmail.generated import MessageSpec
    from sandbox.gmail.mailbox import GmailMailbox

__all__ = ["Query", "QueryError", "parse_query", "search"]

_PACIFIC = ZoneInfo("America/Los_Angeles")
_TOKEN = re.compile(r'(-?)(?:(\w+):)?("[^"]*"|\S+)')
_IN = {
    "inbox": "INBOX",
    "sent": "SENT",
    "spam": "SPAM",
    "trash": "TRASH",
    "draft": "DRAFT",
    "drafts": "DRAFT",
    "starred": "STARRED",
    "important": "IMPORTANT",
    "chats": "CHAT",
}
_IS = {"unread": "UNREAD", "starred": "STARRED", "important": "IMPORTANT"}
_CATEGORY = {
    "primary": "CATEGORY_PERSONAL",
    "personal": "CATEGORY_PERSONAL",
    "social": "CATEGORY_SOCIAL",
    "promotions": "CATEGORY_PROMOTIONS",
    "updates": "CATEGORY_UPDATES",
    "forums": "CATEGORY_FORUMS",
}
_UNITS = {"d": 86_400, "m": 30 * 86_400, "y": 365 * 86_400}
_ALL = 1 << 64


class QueryError(ValueError):
    """A ``q`` Gmail would reject (HTTP 400 invalidArgument)."""


@dataclass
class Query:
    required: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)
    include_spam_trash: bool = False
    low: int = 0  # id bounds: ids sort by internalDate (ms << 20)
    high: int = _ALL
    text: list[tuple[bool, str, str]] = field(default_factory=list)  # (negated, field, term)

    def matches_labels(self, labels: list[str]) -> bool:
        if (
            not self.include_spam_trash
            and not self.required & {"SPAM", "TRASH"}
            and ("SPAM" in labels or "TRASH" in labels)
        ):
            return False
        return self.required.issubset(labels) and not self.excluded.intersection(labels)

    def matches_text(self, spec: MessageSpec) -> bool:
        headers = {n.lower(): _decoded(v) for n, v in spec.part.headers}
        for negated, name, term in self.text:
            if name:
                haystack = headers.get(name, "")
            else:
                haystack = " ".join(
                    (headers.get("subject", ""), headers.get("from", ""), spec.snippet)
                )
            if (term.lower() in haystack.lower()) == negated:
                return False
        return True


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):
        return value


def _epoch_ms(value: str) -> int:
    if value.isdigit():
        return int(value) * 1000
    match = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if not match:
        raise QueryError(f"Invalid date: {value}")
    year, month, day = map(int, match.groups())
    return int(datetime(year, month, day, tzinfo=_PACIFIC).timestamp() * 1000)


def parse_query(q: str, label_names: dict[str, str], *, now: float | None = None) -> Query:
    """``label_names`` maps lower-cased user label names (``/`` and spaces as ``-`` too) to
    label ids."""
    query = Query()
    now_ms = int((now or time.time()) * 1000)
    for negated, op, raw in _TOKEN.findall(q or ""):
        value = raw.strip('"')
        op = op.lower()
        neg = negated == "-"
        if op in ("after", "before", "newer_than", "older_than"):
            if op in ("newer_than", "older_than"):
                unit = _UNITS.get(value[-1:].lower())
                if unit is None or not value[:-1].isdigit():
                    raise QueryError(f"Invalid {op}: {value}")
                ms = now_ms - int(value[:-1]) * unit * 1000
                op = "after" if op == "newer_than" else "before"
            else:
                ms = _epoch_ms(value)
            if op == "after":
                query.low = max(query.low, ms << 20)
            else:
                query.high = min(query.high, ms << 20)
            continue
        label = _label(op, value.lower(), label_names)
        if label == "ANYWHERE":
            query.include_spam_trash = True
        elif label is not None:
            (query.excluded if neg else query.required).add(label)
        elif op == "is" and value.lower() == "read":
            (query.required if neg else query.excluded).add("UNREAD")
        elif op in ("", "from", "to", "cc", "subject"):
            query.text.append((neg, op, value))
        else:
            raise QueryError(f"Unsupported search operator {op}:")
    return query


def _label(op: str, value: str, label_names: dict[str, str]) -> str | None:
    if op == "in" and value == "anywhere":
        return "ANYWHERE"
    if op == "in" and value in _IN:
        return _IN[value]
    if op == "is" and value in _IS:
        return _IS[value]
    if op == "category" and value in _CATEGORY:
        return _CATEGORY[value]
    if op in ("label", "in"):
        if value.upper() in _IN.values() or value.upper() in _IS.values():
            return value.upper()
        found = label_names.get(value) or label_names.get(value.replace("-", "/"))
        if found is None:
            raise QueryError(f"Unknown label: {value}")
        return found
    return None


def search(
    mb: GmailMailbox, query: Query, *, max_results: int, before: int | None
) -> tuple[list[dict[str, str]], int | None, int]:
    """One page, newest first: ``[{id, threadId}]``, the next page's exclusive upper id
    bound (or None), and ``resultSizeEstimate`` (exact when everything fit in one page)."""
    high = query.high if before is None else min(query.high, before)
    out: list[dict[str, Any]] = []
    scanned = matched = 0
    next_bound: int | None = None
    for message_id, item in mb.candidates(query.low, high):
        scanned += 1
        if not query.matches_labels(mb.labels_of(message_id, item)):
            continue
        if query.text:
            spec = mb.spec(message_id)
            if spec is None or not query.matches_text(spec):
                continue
        matched += 1
        if len(out) == max_results:
            next_bound = int(out[-1]["id"], 16)
            break
        out.append({"id": message_id, "threadId": mb.thread_of(item)})
    if next_bound is None:
        return out, None, len(out)
    remaining = mb.candidate_count(query.low, next_bound)
    return out, next_bound, len(out) + round(remaining * matched / max(scanned, 1))
