"""Queries and mutations on top of a :class:`ChannelTimeline`.

Pages are cut here (not in the HTTP layer) so the bisect/arithmetic range stays next to the
data it indexes, and so tests can read a channel without going through a socket.
"""

from __future__ import annotations

import time
from bisect import insort
from itertools import islice
from typing import Any

from sandbox.slack.content import format_ts
from sandbox.slack.timeline import ChannelTimeline

__all__ = ["ChannelMessages", "MessageNotFound"]


class MessageNotFound(LookupError):
    """No message with that ``ts`` exists (or it was deleted)."""


def now_us() -> int:
    return time.time_ns() // 1_000


class ChannelMessages(ChannelTimeline):
    """A channel's timeline plus the Slack-shaped pages and the mutation API."""

    # -- pages -------------------------------------------------------------------------
    def history_page(
        self, low: int, high: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Top-level messages in ``[low, high]``, newest first; returns the next ``high``."""
        with self.lock:
            found = list(islice(self.top_level_desc(low, high), limit + 1))
            page = [m for m in (self.render(ts) for ts in found[:limit]) if m is not None]
        return page, (found[limit] if len(found) > limit else None)

    def replies_page(
        self, root: int, low: int, high: int, limit: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
        """The parent plus up to ``limit - 1`` replies in ``[low, high]`` (at least one)."""
        with self.lock:
            parent = self.render(root)
            if parent is None:
                raise MessageNotFound(format_ts(root))
            replies = [ts for ts in self.thread(root) if low <= ts <= high]
            room = max(1, limit - 1)
            page = [m for m in (self.render(ts) for ts in replies[:room]) if m is not None]
        return parent, page, (replies[room] if len(replies) > room else None)

    # -- mutations ---------------------------------------------------------------------
    def post(
        self,
        *,
        text: str,
        user: str,
        thread_ts: int | None = None,
        ts: int | None = None,
        broadcast: bool = False,
    ) -> dict[str, Any]:
        """Add a message (a reply when ``thread_ts`` is given); returns it as rendered."""
        with self.lock:
            if ts is None:
                ts = max(now_us(), (self._added_top[-1] + 1) if self._added_top else 0)
                while self.locate(ts) is not None:
                    ts += 1
            elif self.locate(ts) is not None:
                raise ValueError(f"a message with ts {format_ts(ts)} already exists")
            message = self.factory.user_message(format_ts(ts), user, text)
            if thread_ts is None:
                self._added[ts] = message
                insort(self._added_top, ts)
                return self.render(ts) or message
            root = self.thread_root(thread_ts)
            if root is None:
                raise MessageNotFound(format_ts(thread_ts))
            message["thread_ts"] = format_ts(root)
            message["parent_user_id"] = self.user_of(root) or user
            if broadcast:
                message["subtype"] = "thread_broadcast"
                insort(self._added_top, ts)
            self._added[ts] = message
            insort(self._added_replies.setdefault(root, []), ts)
            return self.render(ts) or message

    def edit(self, ts: int, text: str) -> dict[str, Any]:
        """Change a message's text; sets ``edited`` like Slack's chat.update."""
        with self.lock:
            user = self.user_of(ts)
            if not self.exists(ts) or ts in self._tombstones:
                raise MessageNotFound(format_ts(ts))
            self._edits[ts] = (text, user or "USLACKBOT", format_ts(now_us()))
            return self.render(ts) or {}

    def delete(self, ts: int) -> None:
        """Delete a message. A parent that still has replies becomes a ``tombstone``."""
        with self.lock:
            if not self.exists(ts) or ts in self._tombstones:
                raise MessageNotFound(format_ts(ts))
            root = self.thread_root(ts)
            if root == ts and self.thread(ts):
                self._tombstones.add(ts)
                return
            self._deleted.add(ts)
            if (
                root is not None
                and root != ts
                and root in self._tombstones
                and not self.thread(root)
            ):
                self._tombstones.discard(root)
                self._deleted.add(root)
