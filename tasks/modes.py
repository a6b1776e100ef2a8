"""Run modes: what a run asks of a stream, defined once for every provider.

A mode decides two things for each stream, and nothing else does: which saved cursors the
reader is given, and which :class:`~connectors.kit.reader.Window` it is told. The connectors
act on the window through the kit's read loop; no provider's settings are rewritten here, so
``since`` or a backfill means the same for Slack, Gmail and any provider added later.

* **incremental**: the saved cursors, no window; each stream adds its own lookback.
* **since DATE**: the saved cursors and, for the provider's windowed streams, a window from
  DATE up to now *on top of* them: it widens what is read, never narrows it, claims deletions
  only inside what it re-read, and leaves the cursors no older than they were.
* **full refresh**: no saved cursors and, for the windowed streams, a window from the
  beginning: everything is read again and what is gone upstream is soft-deleted. The saved
  cursors are not deleted first: each page replaces them as it is stored, so a refresh that
  fails before its first page leaves the integration where it was.
* **backfill** ``[start, end)``: the windowed streams only, with cursors of their own (stream
  ``<stream>@<start>..<end>``) and a window that is the range alone; the incremental cursor is
  neither read nor moved, and nothing outside the range is claimed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from connectors.kit.reader import Window

__all__ = ["INCREMENTAL", "Mode", "RunMode", "window_stream"]


class Mode(StrEnum):
    INCREMENTAL = "incremental"
    SINCE = "since"
    FULL_REFRESH = "full_refresh"
    BACKFILL = "backfill"


def window_stream(stream: str, window: tuple[date, date]) -> str:
    """The state namespace of a backfill window, apart from the stream's incremental cursor."""
    return f"{stream}@{window[0].isoformat()}..{window[1].isoformat()}"


@dataclass(frozen=True)
class RunMode:
    """One run's mode (build it with the class methods); handed to every ``sync-stream``."""

    mode: Mode = Mode.INCREMENTAL
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        needs_start = self.mode in (Mode.SINCE, Mode.BACKFILL)
        needs_end = self.mode is Mode.BACKFILL
        if (self.start is not None) != needs_start or (self.end is not None) != needs_end:
            raise ValueError(f"a {self.mode.value} run takes exactly its own dates: {self!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(
                f"empty backfill window: {self.start} .. {self.end} (end is exclusive)"
            )

    @classmethod
    def incremental(cls) -> RunMode:
        return cls()

    @classmethod
    def since(cls, day: date) -> RunMode:
        return cls(Mode.SINCE, start=day)

    @classmethod
    def full_refresh(cls) -> RunMode:
        return cls(Mode.FULL_REFRESH)

    @classmethod
    def backfill(cls, start: date, end: date) -> RunMode:
        return cls(Mode.BACKFILL, start=start, end=end)

    @classmethod
    def requested(cls, *, full_refresh: bool, since: date | None) -> RunMode:
        """The mode a sync flow's parameters ask for. Both at once is refused rather than
        guessed: a full refresh already re-reads everything a ``since`` would."""
        if full_refresh and since is not None:
            raise ValueError("full_refresh and since exclude each other; choose one")
        if full_refresh:
            return cls.full_refresh()
        return cls.since(since) if since is not None else cls.incremental()

    @property
    def rereads(self) -> bool:
        """Whether the run reads more than the incremental sync would (the backfill
        permission, docs/rbac.md)."""
        return self.mode is not Mode.INCREMENTAL

    def state_stream(self, stream: str) -> str:
        """Where the stream's cursors live for this run."""
        if self.mode is Mode.BACKFILL:
            assert self.start is not None and self.end is not None
            return window_stream(stream, (self.start, self.end))
        return stream

    def cursors(self, saved: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """The saved cursors the reader is given (a full refresh starts from none)."""
        return {} if self.mode is Mode.FULL_REFRESH else dict(saved)

    def window(self, stream: str, windowed: Collection[str]) -> Window | None:
        """What the reader of ``stream`` is told to read besides (or, for a backfill, instead
        of) its incremental read; ``windowed`` are the provider's windowed streams."""
        if self.mode is Mode.INCREMENTAL or stream not in windowed:
            return None
        if self.mode is Mode.BACKFILL:
            return Window(self.start, self.end, own_cursors=True)
        return Window(self.start)  # since DATE, or a full refresh from the beginning


INCREMENTAL = RunMode.incremental()
