"""The saved position of one channel (the ``messages`` stream is partitioned by channel id).

State JSON, stored by the loader in the same transaction as the rows it describes::

    {
      "v": 1,
      "cursor": "1700000000.000100",        # newest top-level ts of the last COMPLETE read;
                                             # everything from the start boundary up to it is stored
      "pending": {                           # a read still in progress (null when none)
        "oldest": "1699000000.000000",       #   its lower bound (exclusive; null = channel start)
        "latest": "1699500000.000200",       #   everything in [latest, top of the read) is stored,
                                             #   so it resumes with Slack's latest=<this> (exclusive)
        "newest": "1700000000.000100"        #   newest top-level ts seen by this read so far
      },
      "threads": {"1699990000.000100": ["1699999000.000300", 4]},
                                             # parent ts -> [latest_reply, reply_count] stored;
                                             # only parents inside thread_lookback_days are kept
      "page_threads": ["1699400000.000100"]  # threads already stored for the history page
                                             # in flight (cleared when its position commits)
    }

Slack pages history newest -> oldest, so a read that stops early (``max_requests``, a killed
worker) has stored a contiguous band at the top; ``pending.latest`` is its lower edge and the
next run continues below it without re-reading what was committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import ts_key

STATE_VERSION = 1


@dataclass
class PendingRead:
    oldest: str | None
    latest: str
    newest: str | None = None


@dataclass
class ChannelCursor:
    cursor: str | None = None
    pending: PendingRead | None = None
    threads: dict[str, tuple[str, int]] = field(default_factory=dict)
    page_threads: set[str] = field(default_factory=set)

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> ChannelCursor:
        if not state:
            return cls()
        pending = state.get("pending")
        return cls(
            cursor=state.get("cursor"),
            pending=PendingRead(
                oldest=pending.get("oldest"),
                latest=pending["latest"],
                newest=pending.get("newest"),
            )
            if pending
            else None,
            threads={k: (v[0], int(v[1])) for k, v in (state.get("threads") or {}).items()},
            page_threads=set(state.get("page_threads") or ()),
        )

    def to_state(self, keep_threads_since: str | None = None) -> dict[str, Any]:
        """JSON-ready state; threads older than ``keep_threads_since`` are dropped so the state
        stays bounded by the thread lookback."""
        threads = {
            parent: [latest, count]
            for parent, (latest, count) in sorted(self.threads.items(), key=lambda i: ts_key(i[0]))
            if keep_threads_since is None or ts_key(parent) >= ts_key(keep_threads_since)
        }
        pending = self.pending
        return {
            "v": STATE_VERSION,
            "cursor": self.cursor,
            "pending": {
                "oldest": pending.oldest,
                "latest": pending.latest,
                "newest": pending.newest,
            }
            if pending
            else None,
            "threads": threads,
            "page_threads": sorted(self.page_threads, key=ts_key),
        }

    def thread_is_stale(
        self,
        parent_ts: str,
        latest_reply: str | None,
        reply_count: int,
        *,
        reread: bool = False,
    ) -> bool:
        """A thread needs (re-)reading when it is new to us or its activity moved, or, in a
        read that re-reads a window (``reread``), whenever it has replies: an edited or
        deleted reply moves neither ``latest_reply`` nor, for an edit, ``reply_count``."""
        if parent_ts in self.page_threads:
            return False
        known = self.threads.get(parent_ts)
        if known is None or reread:
            return reply_count > 0 or known is not None and known[1] > 0
        known_latest, known_count = known
        if reply_count != known_count:
            return True
        return latest_reply is not None and ts_key(latest_reply) > ts_key(known_latest)
