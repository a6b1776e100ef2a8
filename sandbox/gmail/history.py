"""A mailbox's change history, as ``users.history.list`` serves it.

Every mutation appends one record under a new history id (ids grow with small random gaps,
as on Gmail). Records are retained by count or by age (``retention``); asking for history
from before the oldest retained record is HTTP 404, the signal for a full resync.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sandbox.ids import mix64

__all__ = ["HISTORY_TYPES", "History", "HistoryExpired", "Record"]

HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
_FIELDS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}


class HistoryExpired(Exception):
    """``startHistoryId`` is older than the oldest retained record."""


@dataclass(frozen=True)
class Change:
    type: str  # one of HISTORY_TYPES
    message: dict[str, Any]  # {id, threadId, labelIds} after the change
    label_ids: tuple[str, ...] = ()

    def render(self) -> dict[str, Any]:
        if self.type in ("labelAdded", "labelRemoved"):
            return {"message": self.message, "labelIds": list(self.label_ids)}
        return {"message": self.message}

    def touches(self, label: str) -> bool:
        return label in self.message.get("labelIds", ()) or label in self.label_ids


@dataclass(frozen=True)
class Record:
    id: int
    at: float  # real epoch seconds
    changes: tuple[Change, ...]

    def render(self, types: Collection[str]) -> dict[str, Any] | None:
        """The API shape, keeping only changes of ``types``; None when none is left."""
        wanted = [c for c in self.changes if c.type in types]
        if not wanted:
            return None
        out: dict[str, Any] = {
            "id": str(self.id),
            "messages": [
                {"id": c.message["id"], "threadId": c.message["threadId"]} for c in self.changes
            ],
        }
        for change in wanted:
            out.setdefault(_FIELDS[change.type], []).append(change.render())
        return out


class History:
    """Records after ``floor`` (the newest expired id); not thread-safe, the mailbox locks."""

    def __init__(
        self, *, start_id: int, key: int, retention: int | timedelta | None, time_scale: float
    ) -> None:
        self.current = start_id
        self.floor = start_id
        self.records: list[Record] = []
        self.retention = retention
        self._key, self._scale = key, time_scale

    def next_id(self) -> int:
        self.current += 1 + mix64(self._key + self.current) % 5
        return self.current

    def append(self, *changes: Change) -> Record:
        record = Record(self.current, time.time(), tuple(changes))
        self.records.append(record)
        self._trim()
        return record

    def expire(self) -> None:
        """Forget every record: any older ``startHistoryId`` now gets 404."""
        self.floor = self.current
        self.records.clear()

    def _trim(self) -> None:
        keep = self.records
        if isinstance(self.retention, int):
            if len(keep) > self.retention:
                dropped = keep[: len(keep) - self.retention]
                keep = keep[len(dropped) :]
                self.floor = dropped[-1].id
        elif isinstance(self.retention, timedelta):
            oldest = time.time() - self.retention.total_seconds() / self._scale
            cut = next((k for k, r in enumerate(keep) if r.at >= oldest), len(keep))
            if cut:
                self.floor = keep[cut - 1].id
                keep = keep[cut:]
        self.records = keep

    def page(
        self,
        start: int,
        *,
        types: Collection[str],
        label: str | None,
        max_results: int,
        after: int | None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Rendered records with ``id > start`` (and ``> after``, the page token), at most
        ``max_results``, plus the id to continue after when there are more."""
        self._trim()
        if start < self.floor:
            raise HistoryExpired
        low = max(start, after or 0)
        out: list[dict[str, Any]] = []
        for record in self.records:
            if record.id <= low:
                continue
            if label is not None and not any(c.touches(label) for c in record.changes):
                continue
            rendered = record.render(types)
            if rendered is None:
                continue
            if len(out) == max_results:
                return out, int(out[-1]["id"])
            out.append(rendered)
        return out, None
