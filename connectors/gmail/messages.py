"""The ``messages`` stream of one mailbox: a resumable full sync, then the History API.

Full sync: ``users.getProfile`` (the historyId to continue from, taken *before* listing),
``messages.list`` pages of ids, and ``messages.get`` in batches of ``batch_size``; one
:class:`Page` per batch, each carrying the resumable cursor (``cursor.py``).

Incremental: ``history.list`` from the saved historyId and batched ``messages.get`` only.
Added and relabelled messages are re-fetched whole (simplest correct: labels come back with
the message); deletions become ``deleted_keys``; a message added and deleted within the window
is only deleted. Messages that stop matching the filters (label filter, SPAM/TRASH, start
date) are soft-deleted too, so the table equals what a fresh full sync would list.

An expired historyId (``history.list`` answers 404) falls back to a full resync that ends with
a :class:`Reconcile` of every listed id, soft-deleting what vanished while we were out of sync.
That id list is the one thing held for a whole run (about 20 bytes an id: 100k ids is a few
MB). A resync resumed in a later run did not see the ids listed before it stopped, so it
re-lists ids only (``page_size`` per call, no gets) before making that claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, time
from functools import partial
from typing import Any

from connectors.common import ConnectorError, Page, Reconcile, RunStats
from connectors.kit import TokenPaginator

from . import settings
from .config import GmailConfig
from .cursor import FullSync, MailboxCursor
from .records import GmailMessage, message_record
from .transport import GmailNotFound, GmailTransport

STREAM = "messages"
_HIDDEN = frozenset({"SPAM", "TRASH"})


class HistoryExpired(Exception):
    """``history.list`` no longer knows the saved historyId."""


def _next_page_token(response: Mapping[str, Any]) -> str | None:
    return response.get("nextPageToken") or None


class MailboxReader:
    """Reads the ``messages`` stream of one mailbox through a :class:`GmailTransport`."""

    def __init__(self, transport: GmailTransport, config: GmailConfig, stats: RunStats) -> None:
        self._transport = transport
        self._config = config
        self._stats = stats
        self._users = transport.service.users()
        start = config.start_date
        self._start_at = datetime.combine(start, time(), tzinfo=UTC) if start else None
        end = config.end_date
        self._end_at = datetime.combine(end, time(), tzinfo=UTC) if end else None

    def read(self, state: Mapping[str, Any] | None) -> Iterator[Page]:
        cursor = MailboxCursor.from_state(state)
        if cursor.full_sync is None and cursor.history_id is not None:
            try:
                yield from self._incremental(cursor)
                return
            except HistoryExpired:
                self._stats.warnings.append(
                    f"Gmail history id {cursor.history_id} expired; full resync"
                )
                cursor.full_sync = FullSync(
                    self._profile_history_id(), reason="history_expired", reconcile=True
                )
        elif cursor.full_sync is None:
            cursor.full_sync = FullSync(self._profile_history_id(), reason="initial")
        yield from self._full(cursor)

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
        if not set(self._config.label_ids) <= labels:
            return False
        return self._start_at is None or record["internal_date"] >= self._start_at

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

    def _list_page(self, page_token: str | None) -> dict[str, Any]:
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
        if self._start_at is not None:
            terms.append(f"after:{int(self._start_at.timestamp())}")
        if self._end_at is not None:
            terms.append(f"before:{int(self._end_at.timestamp())}")
        if terms:
            params["q"] = " ".join(terms)
        return self._transport.call(
            "users.messages.list", lambda: self._users.messages().list(**params)
        )

    @staticmethod
    def _ids(response: Mapping[str, Any]) -> list[str]:
        # The transport only returns complete answers (``resultSizeEstimate`` is always sent;
        # ``messages`` is omitted when the page is empty), so an empty list here is true.
        return [str(m["id"]) for m in response.get("messages") or ()]

    def _all_ids(self) -> list[str]:
        """Every id the listing holds now (ids only; used to reconcile a resumed resync)."""
        ids: list[str] = []
        pages = TokenPaginator("Gmail messages.list", _next_page_token)
        while pages.has_next:
            response = self._list_page(pages.next_token)
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
                response = self._list_page(pages.next_token)
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
                    keys = alive if listed_here else self._all_ids()
                    page.reconcile = Reconcile(where={}, alive_keys=[(i,) for i in keys])
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
