"""One channel's messages: generated lazily by index, plus an overlay of mutations.

A million-message channel must cost almost nothing until it is read, so a generated message is
a pure function of ``(channel key, index)`` and its ``ts`` is pure arithmetic:

* slot ``i`` spans ``[start + i*step, start + (i+1)*step)``; top-level message ``i`` sits in
  the first half of its slot, so ``ts`` grows strictly with ``i`` and ``oldest``/``latest``
  map to an index range by one division;
* thread replies sit in the *second* half of a later slot ``i + d(class, j)``, at an offset
  that encodes ``(class, j)``. Offset and slot identify the parent, so replies never collide
  with each other or with top-level messages, and a thread can keep growing for days while
  newer top-level messages arrive, as real threads do. Replies whose slot would lie in the
  future (after the workspace was created) do not exist yet;
* some parents are followed by a ``thread_broadcast`` reply, which also occupies the next
  top-level slot and so appears in history too.

Mutations (posts, edits, deletions, tombstones) live in a small overlay keyed by ``ts``.
Deleting a parent that still has replies leaves a ``tombstone`` as Slack does; the tombstone
goes away with the thread's last reply.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any, NamedTuple

from sandbox.ids import mix64
from sandbox.slack.content import MessageFactory, format_ts, parse_ts_us

__all__ = ["ChannelTimeline", "Located"]

MIN_STEP_US = 2_000
MAX_REPLIES_PER_THREAD = 100
# Delay between consecutive replies, per thread class: minutes for a quick chat up to days
# for a thread that is picked up again next week.
_REPLY_GAPS_US = tuple(s * 1_000_000 for s in (120, 900, 3_600, 5 * 3_600, 86_400, 60 * 3_600))
_BROADCAST_SHARE = 51  # of 256: about one thread in five has a reply sent to the channel
_REPLY_SALT = 0x7E57AB1E5EED
_THREAD_SALT = 0x0DDBA11C0FFEE


class Located(NamedTuple):
    """Where a ``ts`` lives: a generated top-level index, a generated reply, or the overlay."""

    kind: str  # "top" | "reply" | "added"
    slot: int = -1
    parent: int = -1
    reply: int = -1


class ChannelTimeline:
    """Messages of one channel, thread-safe for one writer and many reading server threads."""

    def __init__(
        self,
        factory: MessageFactory,
        *,
        key: int,
        count: int,
        end_us: int,
        span_us: int,
        thread_ratio: float,
        replies_per_thread: int,
    ) -> None:
        self.factory = factory
        self.key = key
        self.count = count
        self.step = max(MIN_STEP_US, span_us // max(count, 1))
        self.start = end_us - self.step * count
        self.half = self.step // 2
        self.replies = max(0, min(replies_per_thread, MAX_REPLIES_PER_THREAD))
        self._ratio = int(thread_ratio * 65_536)
        self._deleted: set[int] = set()
        self._tombstones: set[int] = set()
        self._edits: dict[int, tuple[str, str, str]] = {}
        self._added: dict[int, dict[str, Any]] = {}
        self._added_top: list[int] = []
        self._added_replies: dict[int, list[int]] = {}
        self.lock = threading.RLock()

    # -- generated layout --------------------------------------------------------------
    def _h(self, i: int) -> int:
        return mix64(self.key + i)

    def _g(self, i: int) -> int:
        return mix64(self.key ^ _THREAD_SALT ^ i)

    def _flags(self, i: int) -> tuple[bool, bool]:
        """(is a thread parent, is a thread_broadcast reply to ``i - 1``) for slot ``i``.

        Slot ``i`` is a broadcast when ``i - 1`` drew "parent" and "broadcast" and ``i - 2``
        did not draw "parent" -- so a broadcast's parent is never itself a broadcast.
        """
        ratio = self._ratio
        if ratio == 0:
            return False, False
        raw = self._g(i) & 0xFFFF < ratio
        broadcast = False
        if i >= 1:
            g1 = self._g(i - 1)
            if g1 & 0xFFFF < ratio and (g1 >> 16) & 0xFF < _BROADCAST_SHARE:
                broadcast = not (i >= 2 and self._g(i - 2) & 0xFFFF < ratio)
        return raw and not broadcast, broadcast

    def is_broadcast(self, i: int) -> bool:
        return self._flags(i)[1]

    def is_parent(self, i: int) -> bool:
        return self._flags(i)[0]

    def _class(self, i: int) -> int:
        return (self._g(i) >> 24) % len(_REPLY_GAPS_US)

    def _delay(self, cls: int, j: int) -> int:
        return (j + 1) * _REPLY_GAPS_US[cls] // self.step

    def top_ts(self, i: int) -> int:
        return self.start + i * self.step + self._h(i) % self.half

    def _reply_ts(self, p: int, cls: int, j: int) -> int:
        slot = p + self._delay(cls, j)
        return self.start + slot * self.step + self.half + cls * self.replies + j + 1

    def _generated_thread(self, p: int) -> list[tuple[int, str]]:
        """``(ts, user)`` of the generated replies of parent ``p`` (caller checked is_parent)."""
        cls = self._class(p)
        user_for = self.factory.user_for
        out = [
            (self._reply_ts(p, cls, j), user_for(self._reply_hash(p, j)))
            for j in range(self.replies)
            if p + self._delay(cls, j) < self.count
        ]
        if p + 1 < self.count and self.is_broadcast(p + 1):
            insort(out, (self.top_ts(p + 1), user_for(self._h(p + 1))))
        return out

    def _reply_hash(self, p: int, j: int) -> int:
        return mix64((self.key ^ _REPLY_SALT) + (p << 10) + j)

    def _count_below(self, ts: int) -> int:
        """How many generated top-level messages have a ``ts`` strictly below ``ts``."""
        k = (ts - self.start) // self.step
        if k < 0:
            return 0
        if k >= self.count:
            return self.count
        return k + (1 if self.top_ts(k) < ts else 0)

    def locate(self, ts: int) -> Located | None:
        """Identify a message by ``ts`` (deleted ones included), or None if it never existed."""
        if ts in self._added:
            return Located("added")
        k, rest = divmod(ts - self.start, self.step)
        if k < 0 or k >= self.count:
            return None
        if rest < self.half:
            return Located("top", slot=k) if self.top_ts(k) == ts else None
        if self.replies == 0 or rest - self.half < 1:
            return None
        cls, j = divmod(rest - self.half - 1, self.replies)
        if cls >= len(_REPLY_GAPS_US):
            return None
        p = k - self._delay(cls, j)
        if p < 0 or not self.is_parent(p) or self._class(p) != cls:
            return None
        return Located("reply", parent=p, reply=j)

    # -- reading -----------------------------------------------------------------------
    def exists(self, ts: int) -> bool:
        return ts not in self._deleted and self.locate(ts) is not None

    def is_top_level(self, ts: int) -> bool:
        where = self.locate(ts)
        if where is None or ts in self._deleted:
            return False
        if where.kind == "added":
            message = self._added[ts]
            return "thread_ts" not in message or message.get("subtype") == "thread_broadcast"
        return where.kind == "top"

    def thread_root(self, ts: int) -> int | None:
        """The parent ``ts`` of the thread containing ``ts`` (itself for a top-level one)."""
        where = self.locate(ts)
        if where is None or ts in self._deleted:
            return None
        if where.kind == "reply":
            return self.top_ts(where.parent)
        if where.kind == "top":
            return self.top_ts(where.slot - 1) if self.is_broadcast(where.slot) else ts
        thread_ts = self._added[ts].get("thread_ts")
        return parse_ts_us(thread_ts) if thread_ts else ts

    def _thread_entries(
        self, parent: int, where: Located | None, is_parent: bool | None = None
    ) -> list[tuple[int, str]]:
        generated: list[tuple[int, str]] = []
        if where is not None and where.kind == "top":
            if is_parent is None:
                is_parent = self.is_parent(where.slot)
            if is_parent:
                generated = self._generated_thread(where.slot)
        added = self._added_replies.get(parent)
        if added:
            generated = sorted(generated + [(ts, self._added[ts].get("user", "")) for ts in added])
        if self._deleted:
            return [entry for entry in generated if entry[0] not in self._deleted]
        return generated

    def thread(self, parent: int) -> list[int]:
        """The reply ``ts`` values of a parent, oldest first, deleted ones excluded."""
        return [ts for ts, _ in self._thread_entries(parent, self.locate(parent))]

    def user_of(self, ts: int) -> str | None:
        where = self.locate(ts)
        if where is None:
            return None
        if where.kind == "added":
            return self._added[ts].get("user")
        if where.kind == "reply":
            return self.factory.user_for(self._reply_hash(where.parent, where.reply))
        return self.factory.user_for(self._h(where.slot))

    def render(self, ts: int) -> dict[str, Any] | None:
        """The message as the API returns it (thread metadata on parents), or None."""
        where = self.locate(ts)
        if where is None or ts in self._deleted:
            return None
        parent: bool | None = None
        if where.kind == "top":
            i = where.slot
            parent, broadcast = self._flags(i)
            message = self.factory.generated(ts, self._h(i), plain=parent or broadcast)
            if broadcast:
                message["subtype"] = "thread_broadcast"
                message["thread_ts"] = format_ts(self.top_ts(i - 1))
                message["parent_user_id"] = self.factory.user_for(self._h(i - 1))
        elif where.kind == "reply":
            p = where.parent
            message = self.factory.reply(
                ts,
                format_ts(self.top_ts(p)),
                self.factory.user_for(self._h(p)),
                self._reply_hash(p, where.reply),
            )
        else:
            message = dict(self._added[ts])
        if ts in self._edits:
            text, user, edited_ts = self._edits[ts]
            message["text"] = text
            message["edited"] = {"user": user, "ts": edited_ts}
        if "thread_ts" not in message or message["thread_ts"] == message["ts"]:
            self._add_thread_metadata(message, ts, where, parent)
        return message

    def _add_thread_metadata(
        self, message: dict[str, Any], ts: int, where: Located, is_parent: bool | None
    ) -> None:
        if ts in self._tombstones:
            message.clear()
            message.update(
                type="message",
                subtype="tombstone",
                text="This message was deleted.",
                user="USLACKBOT",
                hidden=True,
                ts=format_ts(ts),
            )
        replies = self._thread_entries(ts, where, is_parent)
        if not replies:
            return
        users: list[str] = []
        for _, user in replies:
            if user and user not in users:
                users.append(user)
        message.update(
            thread_ts=format_ts(ts),
            reply_count=len(replies),
            reply_users_count=len(users),
            latest_reply=format_ts(replies[-1][0]),
            reply_users=users[:5],
            is_locked=False,
            subscribed=False,
        )

    def top_level_desc(self, low: int, high: int) -> Iterator[int]:
        """Existing top-level ``ts`` within ``[low, high]``, newest first (lazily)."""
        first = self._count_below(low)
        last = self._count_below(high + 1) - 1
        generated = (self.top_ts(i) for i in range(last, first - 1, -1))
        lo, hi = bisect_left(self._added_top, low), bisect_right(self._added_top, high)
        added = reversed(self._added_top[lo:hi])
        for ts in heapq.merge(generated, added, reverse=True):
            if ts not in self._deleted:
                yield ts

    def iter_messages(self) -> Iterator[dict[str, Any]]:
        """Every existing message once: each top-level one, then its replies (not broadcasts)."""
        channel = self.factory.channel_id
        generated = (self.top_ts(i) for i in range(self.count))
        for ts in heapq.merge(generated, list(self._added_top)):
            with self.lock:
                message = self.render(ts)
                if message is None:
                    continue
                replies = [self.render(r) for r in self.thread(ts) if not self.is_top_level(r)]
            yield {**message, "channel": channel}
            for reply in replies:
                if reply is not None:
                    yield {**reply, "channel": channel}
