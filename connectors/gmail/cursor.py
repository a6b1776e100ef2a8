"""The saved position of one mailbox (the ``messages`` stream has one partition, ``""``).

State JSON, stored by the loader in the same transaction as the rows it describes::

    {
      "v": 1,
      "history_id": "12345",          # mailbox historyId up to which every change is stored;
                                      # incremental runs call history.list(startHistoryId=<it>).
                                      # null until the first full sync has finished
      "full_sync": {                  # a listing (full sync or re-read) in progress; null when none
        "history_id": "12000",        #   where history resumes once the listing is stored: the
                                      #   users.getProfile historyId taken BEFORE the first
                                      #   messages.list call (or, for "since", the saved
                                      #   history_id), so history replays whatever changed
                                      #   while listing
        "reason": "initial",          #   "initial" | "history_expired" | "full_refresh" |
                                      #   "since" | "window" (a backfill chunk)
        "reconcile": false,           #   end with a Reconcile of every listed id (not "initial")
        "after": "2026-09-01",        #   the listing's first day (q=after:); null: no bound
        "before": null,               #   the day after its last (q=before:); null: up to now
        "next_page_token": "0923..",  #   messages.list pageToken still to read (null: none)
        "listing_done": false,        #   the list has no page after the current one
        "pending": ["18c..", ".."]    #   ids of the current list page not stored yet
      }                               #   (at most page_size ids: the state stays small)
    }

A full sync that starts with ``next_page_token == null`` and ``listing_done == false`` and no
``pending`` ids has not listed anything yet. Resuming after a killed worker re-fetches at most
the batch in flight (upserts make that harmless). The listing's dates are kept with it, so a
listing resumed by a later run (of another mode) asks Gmail the same query its page token
belongs to and claims the same range; a listing saved before they were kept (no ``"after"``
key) takes them from what listed it then (``bounds_known`` is false until the reader sets
them).

During an incremental read, each processed ``history.list`` page commits ``history_id`` = the
id of its last history record (re-reading from it replays at most that record); the last page
commits the ``historyId`` the response reports for the whole mailbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

STATE_VERSION = 1

INITIAL = "initial"  # the first sync of a mailbox: lists from start_date, claims nothing
HISTORY_EXPIRED = "history_expired"  # a resync from start_date, claiming what it listed
FULL_REFRESH = "full_refresh"  # the whole mailbox, claiming it all
SINCE = "since"  # a re-read from a date on top of the cursor; history catches up after it
WINDOW = "window"  # a backfill chunk: its dates only, with a cursor of its own


@dataclass
class FullSync:
    history_id: str
    reason: str = INITIAL
    reconcile: bool = False
    after: str | None = None
    before: str | None = None
    bounds_known: bool = True
    next_page_token: str | None = None
    listing_done: bool = False
    pending: list[str] = field(default_factory=list)

    @property
    def started(self) -> bool:
        """Whether any list page was read (a resumed sync did not see the earlier ids)."""
        return self.next_page_token is not None or self.listing_done or bool(self.pending)

    @property
    def finished(self) -> bool:
        return self.listing_done and not self.pending

    def covers(self, since: date | None) -> bool:
        """Whether this listing, once stored, re-read everything from ``since`` (``None``: the
        whole mailbox) up to now and claimed what it did not see, as a ``since`` run or a full
        refresh must."""
        if not self.reconcile or self.before is not None:
            return False
        return self.after is None or (since is not None and self.after <= since.isoformat())


@dataclass
class MailboxCursor:
    history_id: str | None = None
    full_sync: FullSync | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> MailboxCursor:
        if not state:
            return cls()
        version = state.get("v", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"unsupported Gmail state version {version!r}")
        full = state.get("full_sync")
        history_id = state.get("history_id")
        return cls(
            history_id=str(history_id) if history_id is not None else None,
            full_sync=FullSync(
                history_id=str(full["history_id"]),
                reason=str(full.get("reason") or INITIAL),
                reconcile=bool(full.get("reconcile")),
                after=full.get("after"),
                before=full.get("before"),
                bounds_known="after" in full,
                next_page_token=full.get("next_page_token"),
                listing_done=bool(full.get("listing_done")),
                pending=[str(i) for i in full.get("pending") or ()],
            )
            if full
            else None,
        )

    def to_state(self) -> dict[str, Any]:
        full = self.full_sync
        return {
            "v": STATE_VERSION,
            "history_id": self.history_id,
            "full_sync": {
                "history_id": full.history_id,
                "reason": full.reason,
                "reconcile": full.reconcile,
                "after": full.after,
                "before": full.before,
                "next_page_token": full.next_page_token,
                "listing_done": full.listing_done,
                "pending": list(full.pending),
            }
            if full
            else None,
        }

    def finish_full_sync(self) -> None:
        """The listing is stored: the mailbox is in sync as of the profile's historyId."""
        assert self.full_sync is not None
        self.history_id = self.full_sync.history_id
        self.full_sync = None
