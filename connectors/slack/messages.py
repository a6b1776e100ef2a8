"""The ``messages`` stream for one channel: history pages, thread replies and reconcile claims.

One *read* covers ``(oldest, latest)`` of a channel, newest first:

* first sync (no saved cursor): ``oldest`` = ``start_date`` (or the channel's beginning);
* later runs: ``oldest`` = min(cursor, now - lookback) where lookback is the larger of
  ``edit_lookback_days`` and ``thread_lookback_days``. Re-reading that window is how edits,
  deletions and thread activity are found: Slack reports none of them on history, and a
  parent's ``latest_reply`` can only be learnt by reading the parent again. ``start_date``
  is not consulted (it bounds the first sync only), so rows a backfill or a ``since`` run
  stored below it are kept current like any other. A slow tier should use
  small lookbacks;
* a :class:`~connectors.kit.reader.Window` on top of the cursors (a ``since`` run, a full
  refresh) lowers ``oldest`` to its start (``None``: the channel's beginning), never raises
  it, and re-reads every thread with replies in what it reads;
* a window with cursors of its own (a backfill chunk) reads ``[start, end)`` only: its
  first read starts at ``start``, later ones re-read the lookback but never below ``start``,
  and ``latest`` never passes ``end``;
* ``latest`` is always sent explicitly (a day ahead of our clock, to absorb skew): with
  ``oldest`` alone Slack returns the page *closest to oldest*, not the newest one.

Every history page carries a :class:`Reconcile` for top-level messages (``is_reply = false``)
over exactly the ts band the page covers, so deletions are found page by page, memory stays
one page, and a read split across runs still claims only what it saw (a ``since`` run claims
nothing below its date, a backfill chunk nothing outside its window). Threads are re-read
when new to us or when ``latest_reply``/``reply_count`` moved; each replies page carries its
own claim on ``(channel_id, thread_ts, is_reply = true)``, so a thread we did not re-read is
never touched. A page's position commits only after its threads are stored (see
``cursor.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.common import ConnectorError, Page, Reconcile
from connectors.kit import PaginationLoop, TokenPaginator
from connectors.kit.reader import Window

from .config import SlackConfig
from .cursor import ChannelCursor, PendingRead
from .errors import SlackCallError
from .records import (
    TS_MAX,
    TS_MIN,
    date_to_ts,
    datetime_to_ts,
    is_reply,
    message_record,
    ts_add_micros,
    ts_key,
)
from .transport import SlackTransport, next_cursor

STREAM = "messages"
# Extra room above "now" for the explicit `latest` bound (clock skew between us and Slack).
_LATEST_MARGIN = timedelta(days=1)


def _max_ts(*values: str | None) -> str | None:
    present = [v for v in values if v is not None]
    return max(present, key=ts_key) if present else None


class ChannelMessagesReader:
    """Reads one channel's messages and threads into pages with state and reconcile claims."""

    def __init__(
        self, transport: SlackTransport, config: SlackConfig, now: Callable[[], datetime]
    ) -> None:
        self._transport = transport
        self._config = config
        self._now = now

    def read(
        self, channel_id: str, saved: Mapping[str, Any] | None, window: Window | None = None
    ) -> Iterator[Page]:
        """Finish any read a previous run left pending, then (or else) start a fresh one."""
        cursor = ChannelCursor.from_state(saved)
        now = self._now()
        keep_threads_since = datetime_to_ts(now - timedelta(days=self._config.thread_lookback_days))
        reread = window is not None and not window.own_cursors
        resumed = cursor.pending is not None
        if cursor.pending is None:
            cursor.pending = self._new_read(cursor, now, window)
        yield from self._run(channel_id, cursor, keep_threads_since, reread and not resumed)
        if resumed:
            cursor.pending = self._new_read(cursor, now, window)
            yield from self._run(channel_id, cursor, keep_threads_since, reread)

    def _new_read(self, cursor: ChannelCursor, now: datetime, window: Window | None) -> PendingRead:
        config = self._config
        lookback = max(config.edit_lookback_days, config.thread_lookback_days)
        lookback_start = datetime_to_ts(now - timedelta(days=lookback))
        latest = datetime_to_ts(now + _LATEST_MARGIN)
        if window is not None and window.own_cursors:
            lower = date_to_ts(window.start) if window.start else None
            if cursor.cursor is None:
                oldest = lower
            else:
                oldest = min(cursor.cursor, lookback_start, key=ts_key)
                oldest = _max_ts(oldest, lower)
            if window.end is not None:
                latest = min(latest, date_to_ts(window.end), key=ts_key)
            return PendingRead(oldest=oldest, latest=latest)
        if cursor.cursor is None:
            oldest = date_to_ts(config.start_date) if config.start_date else None
        else:
            oldest = min(cursor.cursor, lookback_start, key=ts_key)
        if window is not None:
            # On top of the incremental read: the window only ever lowers the bound.
            since = date_to_ts(window.start) if window.start else None
            oldest = None if oldest is None or since is None else min(oldest, since, key=ts_key)
        return PendingRead(oldest=oldest, latest=latest)

    def _run(
        self, channel_id: str, cursor: ChannelCursor, keep: str, reread: bool
    ) -> Iterator[Page]:
        pending = cursor.pending
        assert pending is not None
        query_latest = upper = pending.latest
        pages = TokenPaginator(f"Slack history of {channel_id}", next_cursor)
        while True:
            params: dict[str, Any] = {
                "channel": channel_id,
                "latest": query_latest,
                "limit": self._config.limit_for("conversations.history"),
            }
            if pending.oldest is not None:
                params["oldest"] = pending.oldest
            if pages.next_token:
                params["cursor"] = pages.next_token
            response = self._transport.call("conversations.history", **params)
            messages: list[dict[str, Any]] = response.get("messages") or []
            has_more = bool(response.get("has_more"))
            try:
                pages.update(response)
            except PaginationLoop:
                if has_more and not messages:
                    raise
                # A page with messages can still be paged past by ts (below), cursor or not.
            if has_more and not messages:
                # Nothing to anchor a position on: follow the cursor or give up loudly.
                if not pages.has_next:
                    raise ConnectorError(f"Slack history of {channel_id} paged without progress")
                continue

            stamps = [m["ts"] for m in messages]
            page_min = min(stamps, key=ts_key) if stamps else None
            page_max = max(stamps, key=ts_key) if stamps else None
            if has_more:
                lo = page_min
            else:
                lo = ts_add_micros(pending.oldest, 1) if pending.oldest is not None else TS_MIN
            claim = Reconcile(
                where={"channel_id": channel_id, "is_reply": False},
                alive_keys=[(channel_id, m["ts"]) for m in messages if not is_reply(m)],
                range_column="ts",
                lo=lo,
                hi=ts_add_micros(upper, -1),
            )
            page = Page(
                stream=STREAM,
                records=[message_record(channel_id, m) for m in messages],
                partition=channel_id,
                reconcile=claim,
            )
            stale = [
                m
                for m in messages
                if not is_reply(m)
                and cursor.thread_is_stale(
                    m["ts"], m.get("latest_reply"), int(m.get("reply_count") or 0), reread=reread
                )
            ]

            if not stale:
                self._advance(cursor, page_min, page_max, has_more)
                page.state = cursor.to_state(keep)
                yield page
            else:
                yield page
                for index, parent in enumerate(stale):
                    last = yield from self._thread_pages(channel_id, parent)
                    cursor.page_threads.add(parent["ts"])
                    cursor.threads[parent["ts"]] = (
                        parent.get("latest_reply") or parent["ts"],
                        int(parent.get("reply_count") or 0),
                    )
                    if index == len(stale) - 1:
                        self._advance(cursor, page_min, page_max, has_more)
                    last.state = cursor.to_state(keep)
                    yield last

            if not has_more:
                return
            upper = page_min or upper
            if not pages.has_next:
                # No usable cursor: Slack's older "has_more + latest" paging is equivalent.
                query_latest = upper

    @staticmethod
    def _advance(
        cursor: ChannelCursor, page_min: str | None, page_max: str | None, has_more: bool
    ) -> None:
        """Move the committed position below this page (or finish the read)."""
        pending = cursor.pending
        assert pending is not None
        pending.newest = _max_ts(pending.newest, page_max)
        cursor.page_threads.clear()
        if has_more and page_min is not None:
            pending.latest = page_min
            return
        cursor.cursor = _max_ts(cursor.cursor, pending.newest)
        cursor.pending = None

    def _thread_pages(self, channel_id: str, parent: dict[str, Any]) -> Generator[Page, None, Page]:
        """Yield all but the last replies page of one thread and return the last, so the
        caller can attach the state that becomes true once the whole thread is stored."""
        thread_ts = parent["ts"]
        where = {"channel_id": channel_id, "thread_ts": thread_ts, "is_reply": True}
        lo = TS_MIN
        pages = TokenPaginator(f"Slack replies of {channel_id}/{thread_ts}", next_cursor)
        held: Page | None = None
        while True:
            params: dict[str, Any] = {
                "channel": channel_id,
                "ts": thread_ts,
                "limit": self._config.limit_for("conversations.replies"),
            }
            if pages.next_token:
                params["cursor"] = pages.next_token
            try:
                response = self._transport.call("conversations.replies", **params)
            except SlackCallError as exc:
                if exc.error != "thread_not_found":
                    raise
                # The parent went away between history and replies; its rows are left to the
                # next read's reconcile.
                return held or Page(stream=STREAM, partition=channel_id)
            messages = response.get("messages") or []
            replies = [m for m in messages if m["ts"] != thread_ts]
            pages.update(response)
            page_max = _max_ts(*(m["ts"] for m in messages)) or lo
            hi = page_max if pages.has_next else TS_MAX
            page = Page(
                stream=STREAM,
                records=[message_record(channel_id, m) for m in replies],
                partition=channel_id,
                reconcile=Reconcile(
                    where=where,
                    alive_keys=[(channel_id, m["ts"]) for m in replies],
                    range_column="ts",
                    lo=lo,
                    hi=hi,
                ),
            )
            if held is not None:
                yield held
            held = page
            if not pages.has_next:
                return held
            lo = ts_add_micros(page_max, 1)
