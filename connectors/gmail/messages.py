"""The ``messages`` stream of one mailbox: resumable listings, then the History API.

A *listing* (``users.getProfile`` for the historyId to continue from, taken *before*
listing; ``messages.list`` pages of ids over its dates; ``messages.get`` in batches of
``batch_size``) yields one :class:`Page` per batch, each carrying the resumable cursor
(``cursor.py``). Which listing a run makes:

* first sync: from ``start_date`` (or everything); it claims nothing;
* a :class:`~connectors.kit.reader.Window` on top of the cursor (a ``since`` run, a full
  refresh): ``[start, now)`` is listed again and ends with a :class:`Reconcile` of exactly
  that range (``internal_date``), so a message outside it is never claimed gone. With a saved
  historyId the listing keeps it and the History API catches up from it once the listing is
  stored, so the cursor ends no older than it was and no change anywhere is skipped; on a
  first sync the listing starts at the earlier of ``start_date`` and the window's start;
* a window with a cursor of its own (a backfill chunk): ``[start, end)``, claimed the same
  way, and never the History API: a chunk read in full is done;
* an expired historyId (``history.list`` answers 404): a resync from ``start_date`` claiming
  the range it listed, soft-deleting what vanished there while we were out of sync.

Incremental: ``history.list`` from the saved historyId and batched ``messages.get`` only.
Added and relabelled messages are re-fetched whole (simplest correct: labels come back with
the message); deletions become ``deleted_keys``; a message added and deleted within the window
is only deleted. Messages that stop matching the filters (label filter, SPAM/TRASH) are
soft-deleted too. ``start_date`` is no filter here: a change to an older message (one a
backfill stored, say) is stored like any other.

A claim's id list is the one thing held for a whole run (about 20 bytes an id: 100k ids is a
few MB). A listing resumed in a later run did not see the ids listed before it stopped, so it
re-lists ids only (``page_size`` per call, no gets) before making its claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from connectors.common import ConnectorError, Page, Reconcile, RunStats
from connectors.kit import TokenPaginator
from connectors.kit.reader import Window

from . import settings
from .config import GmailConfig
from .cursor import FULL_REFRESH, HISTORY_EXPIRED, INITIAL, SINCE, WINDOW, FullSync, MailboxCursor
from .records import GmailMessage, message_record
from .transport import GmailNotFound, GmailTransport

STREAM = "messages"
_HIDDEN = frozenset({"SPAM", "TRASH"})
# Gmail's after:/before: take whole seconds and Gmail does not say whether a bound is
# included: a claim stays this far inside the listed dates, so a message on a bound is never
# claimed gone by a listing that may have left it out.
_EDGE = timedelta(seconds=1)


class HistoryExpired(Exception):
    """``history.list`` no longer knows the saved historyId."""


def _next_page_token(response: Mapping[str, Any]) -> str | None:
    return response.get("nextPageToken") or None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _midnight(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC)


class MailboxReader:
    """Reads the ``messages`` stream of one mailbox through a :class:`GmailTransport`."""

    def __init__(self, transport: GmailTransport, config: GmailConfig, stats: RunStats) -> None:
        self._transport = transport
        self._config = config
        self._stats = stats
        self._users = transport.service.users()

    def read(self, state: Mapping[str, Any] | None, window: Window | None = None) -> Iterator[Page]:
        cursor = MailboxCursor.from_state(state)
        if cursor.full_sync is not None and not cursor.full_sync.bounds_known:
            self._legacy_bounds(cursor.full_sync, window)
        if window is not None and window.own_cursors:
            yield from self._window(cursor, window)
            return
        owed = window  # the re-read this run still owes
        while True:
            listing = cursor.full_sync
            if listing is not None:
                yield from self._full(cursor)
                if owed is not None and listing.covers(owed.start):
                    owed = None
                if listing.reason != SINCE and owed is None:
                    return  # in sync as of the listing's own historyId
            elif owed is not None:
                cursor.full_sync = self._reread(cursor, owed)
            elif cursor.history_id is None:
                start = _iso(self._config.start_date)
                cursor.full_sync = FullSync(self._profile_history_id(), reason=INITIAL, after=start)
            else:
                try:
                    yield from self._incremental(cursor)
                    return
                except HistoryExpired:
                    self._stats.warnings.append(
                        f"Gmail history id {cursor.history_id} expired; full resync"
                    )
                    cursor.full_sync = FullSync(
                        self._profile_history_id(),
                        reason=HISTORY_EXPIRED,
                        reconcile=True,
                        after=_iso(self._config.start_date),
                    )

    def _reread(self, cursor: MailboxCursor, window: Window) -> FullSync:
        """The listing a window on top of the cursor asks for (a ``since`` run, a full
        refresh): claimed, never narrower than what the cursor's own read would list."""
        if cursor.history_id is not None:
            # Keep the position: history replays every change after it once this is stored.
            return FullSync(
                cursor.history_id, reason=SINCE, reconcile=True, after=_iso(window.start)
            )
        first = self._config.start_date
        after = None if first is None or window.start is None else min(first, window.start)
        return FullSync(
            self._profile_history_id(),
            reason=SINCE if after is not None else FULL_REFRESH,
            reconcile=True,
            after=_iso(after),
        )

    def _window(self, cursor: MailboxCursor, window: Window) -> Iterator[Page]:
        """A backfill chunk: its dates only, with a cursor of its own; once listed in full it
        is done (no History API: that would reach messages outside the window)."""
        if cursor.full_sync is None:
            if cursor.history_id is not None:
                return
            cursor.full_sync = FullSync(
                self._profile_history_id(),
                reason=WINDOW,
                reconcile=True,
                after=_iso(window.start),
                before=_iso(window.end),
            )
        yield from self._full(cursor)

    def _legacy_bounds(self, full: FullSync, window: Window | None) -> None:
        """A listing saved before listings kept their dates: the dates it was listed with."""
        if window is not None and window.own_cursors:
            full.after, full.before = _iso(window.start), _iso(window.end)
        else:
            full.after, full.before = _iso(self._config.start_date), None
        full.bounds_known = True

    # -- helpers -----------------------------------------------------------------------------

    def _profile_history_id(self) -> str:
        profile = self._transport.call(
            "users.getProfile", lambda: self._users.getProfile(userId=settings.USER_ID)
        )
        if not profile.get("historyId"):
            raise ConnectorError("Gmail users.getProfile answered without a historyId")
        return str(profile["historyId"])

    def _selected(self, record: Mapping[str, Any]) -> bool:
        labels = set(record["label_ids"])
        if not self._config.include_spam_trash and labels & _HIDDEN:
            return False
        return set(self._config.label_ids) <= labels

    def _fetch(self, ids: Iterable[str]) -> tuple[list[GmailMessage], list[tuple[str]]]:
        """Batched ``messages.get``: (selected records, keys of messages gone or filtered)."""
        get = self._users.messages().get
        result = self._transport.batch(
            "users.messages.get",
            {
                message_id: partial(
                    get,
                    userId=settings.USER_ID,
                    id=message_id,
                    format="full",
                    fields=settings.MESSAGE_FIELDS,
                )
                for message_id in ids
            },
        )
        # A message we could not read is neither stored nor gone: the stream fails and the
        # cursor stays where it is, so the next attempt reads it again.
        result.raise_failures("users.messages.get")
        records: list[GmailMessage] = []
        gone = [(message_id,) for message_id in result.gone]
        for message_id, message in result.answers.items():
            record = message_record(message)
            if self._selected(record):
                records.append(record)
            else:
                gone.append((message_id,))
        return records, gone

    def _list_page(self, full: FullSync, page_token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "userId": settings.USER_ID,
            "maxResults": self._config.page_size,
            "includeSpamTrash": self._config.include_spam_trash,
        }
        if page_token:
            params["pageToken"] = page_token
        if self._config.label_ids:
            params["labelIds"] = list(self._config.label_ids)
        terms = []
        if full.after is not None:
            terms.append(f"after:{int(_midnight(full.after).timestamp())}")
        if full.before is not None:
            terms.append(f"before:{int(_midnight(full.before).timestamp())}")
        if terms:
            params["q"] = " ".join(terms)
        return self._transport.call(
            "users.messages.list", lambda: self._users.messages().list(**params)
        )

    @staticmethod
    def _claim(full: FullSync, ids: Iterable[str]) -> Reconcile:
        """Every stored message of the listed dates not among ``ids`` is gone."""
        alive = [(i,) for i in ids]
        if full.after is None and full.before is None:
            return Reconcile(where={}, alive_keys=alive)
        return Reconcile(
            where={},
            alive_keys=alive,
            range_column="internal_date",
            lo=_midnight(full.after) + _EDGE if full.after is not None else None,
            hi=_midnight(full.before) - _EDGE if full.before is not None else None,
        )

    @staticmethod
    def _ids(response: Mapping[str, Any]) -> list[str]:
        # The transport only returns complete answers (``resultSizeEstimate`` is always sent;
        # ``messages`` is omitted when the page is empty), so an empty list here is true.
        return [str(m["id"]) for m in response.get("messages") or ()]

    def _all_ids(self, full: FullSync) -> list[str]:
        """Every id the listing holds now (ids only; used to claim after a resumed listing)."""
        ids: list[str] = []
        pages = TokenPaginator("Gmail messages.list", _next_page_token)
        while pages.has_next:
            response = self._list_page(full, pages.next_token)
            pages.update(response)
            ids.extend(self._ids(response))
        return ids

    # -- full sync ---------------------------------------------------------------------------

    def _full(self, cursor: MailboxCursor) -> Iterator[Page]:
        full = cursor.full_sync
        assert full is not None
        listed_here = not full.started  # this run lists from the first page
        alive: list[str] = []
        pages = TokenPaginator("Gmail messages.list", _next_page_token, full.next_page_token)
        while True:
            if not full.pending and not full.listing_done:
                response = self._list_page(full, pages.next_token)
                pages.update(response)
                ids = self._ids(response)
                full.pending, full.next_page_token = ids, pages.next_token
                full.listing_done = not pages.has_next
                if full.reconcile and listed_here:
                    alive.extend(ids)
                if not full.finished and not ids:
                    continue
            chunk = full.pending[: self._config.batch_size]
            records, gone = self._fetch(chunk) if chunk else ([], [])
            full.pending = full.pending[len(chunk) :]
            page = Page(stream=STREAM, records=records, deleted_keys=gone)
            if full.finished:
                if full.reconcile:
                    page.reconcile = self._claim(
                        full, alive if listed_here else self._all_ids(full)
                    )
                cursor.finish_full_sync()
            page.state = cursor.to_state()
            yield page
            if cursor.full_sync is None:
                return

    # -- incremental -------------------------------------------------------------------------

    def _history_page(self, start: str, page_token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "userId": settings.USER_ID,
            "startHistoryId": start,
            "maxResults": self._config.page_size,
            "historyTypes": list(settings.HISTORY_TYPES),
        }
        if page_token:
            params["pageToken"] = page_token
        try:
            return self._transport.call(
                "users.history.list", lambda: self._users.history().list(**params)
            )
        except GmailNotFound:
            raise HistoryExpired from None

    def _incremental(self, cursor: MailboxCursor) -> Iterator[Page]:
        assert cursor.history_id is not None
        start = cursor.history_id
        pages = TokenPaginator("Gmail history.list", _next_page_token)
        while pages.has_next:
            response = self._history_page(start, pages.next_token)
            pages.update(response)
            history = response.get("history") or []
            changed, deleted = changes(history)
            if not pages.has_next:
                position = str(response.get("historyId") or cursor.history_id)
            else:
                position = str(history[-1]["id"]) if history else cursor.history_id
            ids = sorted(changed)
            size = self._config.batch_size
            chunks = [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]
            for number, chunk in enumerate(chunks, start=1):
                records, gone = self._fetch(chunk) if chunk else ([], [])
                page = Page(stream=STREAM, records=records, deleted_keys=gone)
                if number == len(chunks):
                    page.deleted_keys.extend((i,) for i in sorted(deleted))
                    cursor.history_id = position
                    page.state = cursor.to_state()
                yield page


def changes(history: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(ids to (re-)fetch, ids deleted) from ``history.list`` records, applied in order.

    A message deleted later in the window is only deleted; ids are never reused by Gmail, so
    nothing deleted comes back.
    """
    fetch: set[str] = set()
    deleted: set[str] = set()
    for record in history:
        for kind in ("messagesAdded", "labelsAdded", "labelsRemoved"):
            for entry in record.get(kind) or ():
                message_id = str((entry.get("message") or {}).get("id") or "")
                if message_id and message_id not in deleted:
                    fetch.add(message_id)
        for entry in record.get("messagesDeleted") or ():
            message_id = str((entry.get("message") or {}).get("id") or "")
            if message_id:
                deleted.add(message_id)
                fetch.discard(message_id)
    return fetch, deleted
