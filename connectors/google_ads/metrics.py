"""Daily metrics of one account at one level: what a run reads and the cursor it leaves.

A row is one campaign, ad group or ad on one day of the *account's* calendar
(``segments.date`` is evaluated in ``customer.time_zone``), and "today" is the account's
today. The cursor of an account (its partition) is ``{"through": "YYYY-MM-DD"}``, the last
*complete* day read: today is read too, but it is never complete, so the cursor stops at
yesterday. Conversions reach the day of the click late (for as long as the conversion
window), so each run reads from ``min(through + 1, today - conversion_window_days)`` to today
and upserts: changed rows are updated, unchanged ones left alone by the loader. A first sync
starts at ``start_date`` (default ``initial_days`` ago).

Ranges are read in chunks of ``chunk_days`` (one query, one operation each) ordered by
``segments.date``, so the rows of a day come together: once a row of a later day arrives,
every earlier day of the chunk is complete, and the page carrying it moves the cursor there.
The last page of a completed query claims the chunk's days of the account (a
:class:`~connectors.common.Reconcile` on ``date``): a stored row Google no longer reports is
soft-deleted, so a re-read day is exactly what Google says now.
A stream that breaks half-way is sent again from the day it was in (rows of that day already
handed over are not handed over twice); a run stopped in between (quota, max_requests, a
killed worker) resumes from the cursor. A run's :class:`~connectors.kit.reader.Window`
widens the range (a ``since`` run, a full refresh) or, for a backfill chunk
(``own_cursors``), replaces it with ``[start, end)`` and cursors of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from connectors.common import Page, Reconcile
from connectors.kit.reader import Window, day_span

from . import settings
from .config import GoogleAdsConfig
from .records import (
    Customer,
    account_hint,
    ad_daily_record,
    ad_group_daily_record,
    campaign_daily_record,
)
from .transport import GoogleAdsTransport

__all__ = ["MetricsReader"]

RETENTION_DAYS: Final = 3 * 365  # how far back "from the beginning" reaches (full refresh)
_RECORD: dict[str, Callable[[Any, Customer, list[str]], Any]] = {
    "campaign_daily": campaign_daily_record,
    "ad_group_daily": ad_group_daily_record,
    "ad_daily": ad_daily_record,
}
_KEY: dict[str, tuple[str, ...]] = {
    "campaign_daily": ("campaign_id",),
    "ad_group_daily": ("ad_group_id",),
    "ad_daily": ("ad_group_id", "ad_id"),
}


class MetricsReader:
    def __init__(
        self,
        transport: GoogleAdsTransport,
        config: GoogleAdsConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._transport = transport
        self.config = config
        self._now = now

    def today(self, customer: Customer) -> date:
        return self._now().astimezone(ZoneInfo(customer.time_zone)).date()

    def span(
        self, customer: Customer, cursor: Mapping[str, Any] | None, window: Window | None
    ) -> tuple[date, date, date | None]:
        """``(first day, last day, through)`` of this run's read of ``customer``."""
        return day_span(
            self.today(customer),
            cursor,
            window,
            lookback_days=self.config.conversion_window_days,
            initial_days=self.config.initial_days,
            start_date=self.config.start_date,
            retention_days=RETENTION_DAYS,
        )

    def read(
        self,
        stream: str,
        customer: Customer,
        cursor: Mapping[str, Any] | None,
        window: Window | None,
    ) -> Iterator[Page]:
        start, end, through = self.span(customer, cursor, window)
        yesterday = self.today(customer) - timedelta(days=1)
        chunk = timedelta(days=self.config.chunk_days)
        while start <= end:
            until = min(start + chunk - timedelta(days=1), end)
            for page in self._chunk(stream, customer, start, until):
                if page.state is not None:
                    complete = min(date.fromisoformat(page.state["through"]), yesterday)
                    if through is None or complete > through:
                        through = complete
                page.state = {"through": through.isoformat()} if through else None
                yield page
            start = until + timedelta(days=1)

    def _chunk(self, stream: str, customer: Customer, lo: date, hi: date) -> Iterator[Page]:
        """The pages of one query; ``state["through"]`` on a page is the last day of the
        chunk known complete once it is stored (the caller clamps it to yesterday)."""
        resource, ids = settings.METRIC_LEVELS[stream]
        record, key = _RECORD[stream], _KEY[stream]
        hint = account_hint(customer.customer_id)
        select = ", ".join((*ids, "segments.date", *settings.METRIC_FIELDS))
        # Progress survives a broken stream: the retry starts from ``day``.
        day: date | None = None
        day_text = ""
        day_keys: set[tuple[Any, ...]] = set()
        alive: list[tuple[Any, ...]] = []  # every (key..., date) of the chunk, for the claim

        def query() -> str:
            first = day or lo
            return (
                f"SELECT {select} FROM {resource} WHERE segments.date BETWEEN "  # noqa: S608
                f"'{first.isoformat()}' AND '{hi.isoformat()}' ORDER BY segments.date"
            )

        for batch in self._transport.search(stream, customer.id, customer.login, query):
            records = []
            complete: date | None = None
            for row in batch:
                text = row.segments.date
                if text != day_text:
                    if day is not None and text < day_text:  # a retry re-sends this day
                        continue
                    if day is not None:
                        complete = date.fromisoformat(text) - timedelta(days=1)
                    day, day_text, day_keys = date.fromisoformat(text), text, set()
                rec = record(row, customer, hint)
                k = tuple(rec[f] for f in key)
                if k in day_keys:
                    continue  # handed over before the stream broke
                day_keys.add(k)
                alive.append((*k, rec["date"]))
                records.append(rec)
            state = {"through": complete.isoformat()} if complete else None
            yield Page(stream=stream, partition=customer.id, records=records, state=state)
        # The query completed: a stored day of the chunk that Google no longer reports (its
        # numbers went back to nothing) is soft-deleted, within this account and chunk only.
        claim = Reconcile(
            where={"customer_id": customer.customer_id},
            alive_keys=alive,
            range_column="date",
            lo=lo,
            hi=hi,
        )
        yield Page(
            stream=stream,
            partition=customer.id,
            state={"through": hi.isoformat()},
            reconcile=claim,
        )
