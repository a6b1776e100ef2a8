"""The daily insights of one ad account: what a run reads and the cursor it leaves.

Insights are read at ``level=ad`` with ``time_increment=1``, so a row is one ad on one day of
the *account's* calendar (``timezone_name``), and ``today`` is the account's today. DELETED
and ARCHIVED ads are asked for explicitly (``ad.effective_status`` filter): Meta leaves
deleted ads out of ``level=ad`` otherwise, although they keep accruing for a while.

The cursor of an account (its partition) is ``{"through": "YYYY-MM-DD"}``: every day up to
it has been read at least once. Conversions keep being attributed to past days for up to 28
days, so each run reads from ``min(through + 1, today - lookback_days)`` up to today and
upserts: unchanged rows are left alone by the loader, changed ones updated. A first sync
starts at ``start_date`` (default ``initial_days`` ago), never before the 37 months Meta
keeps. Ranges are read in chunks of ``chunk_days``; the cursor moves on the last page of a
chunk, so a run stopped half-way (``max_requests``, an error) resumes there.

A run's :class:`~connectors.kit.reader.Window` widens the range (a ``since`` run, a full
refresh: from ``window.start``, or from the retention limit) or, for a backfill chunk
(``own_cursors``), replaces it with ``[start, end)`` and cursors of its own.

A range longer than ``sync_max_days``, and every backfill, is read through async report
runs (``reports.py``), one per chunk; shorter ones with the synchronous edge.

The same reader serves the opt-in breakdown stream: each chunk is read once per configured
set of breakdowns (``breakdowns=age,gender``), and the cursor moves after the last set.

Within one run, an account paused by a throttle resumes at the first chunk it had not
finished (``_resume``), not at the start of its range.

A synchronous read Meta finds too heavy even at the smallest page (``PageTooLarge``, see
``transport.py``) is read again as two halves of its range, down to single days.

Numbers as Ads Manager shows them: insights are asked for with
``use_unified_attribution_setting=true``, so each action's ``value`` -- what ``conversions``
sums -- follows the attribution setting of the ad's ad set (7-day click or 1-day view, 1-day
click, ...), and each row's ``attribution_setting`` field, stored with it, says which. Since
June 10, 2025 Meta answers so whatever the parameter says, and reports every action with
``action_report_time=mixed``: on-Meta actions (link clicks) on the day of the impression,
off-Meta ones (web purchases) on the day of the conversion (Insights API, "Discrepancy with
Ads Manager"); the parameter is sent all the same, as Meta still asks of clients that want
Ads Manager's numbers, and without it ``attribution_setting`` comes back null
(airbytehq/airbyte#29894). ``action_report_time`` is not sent: Meta disregards it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.common import Page, TransientError
from connectors.kit.reader import Window, day_span

from . import settings
from .config import MetaAdsConfig
from .records import breakdown_record, insight_record
from .reports import ReportRunner
from .transport import MetaTransport, PageTooLarge

__all__ = ["Account", "InsightsReader"]


@dataclass(frozen=True)
class Account:
    """What the readers need to know about an ad account (listed once per run)."""

    account_id: str  # without act_
    timezone_name: str
    currency: str

    @property
    def node(self) -> str:
        return f"act_{self.account_id}"


class InsightsReader:
    """One insights stream: ``insights_daily`` (no breakdowns) or ``insights_breakdown``
    (each of ``breakdown_sets``)."""

    def __init__(
        self,
        transport: MetaTransport,
        config: MetaAdsConfig,
        now: Callable[[], datetime],
        reports: ReportRunner,
        *,
        stream: str = "insights_daily",
        breakdown_sets: tuple[tuple[str, ...], ...] = ((),),
    ) -> None:
        self._transport = transport
        self.config = config
        self._now = now
        self._reports = reports
        self.stream = stream
        self.breakdown_sets = breakdown_sets
        self._resume: dict[str, date] = {}  # account -> first day not read yet in this run

    def today(self, account: Account) -> date:
        return self._now().astimezone(ZoneInfo(account.timezone_name)).date()

    def span(
        self, account: Account, cursor: Mapping[str, Any] | None, window: Window | None
    ) -> tuple[date, date, date | None]:
        """``(first day, last day, through)`` of this run's read for ``account``;
        ``through`` is the saved cursor's day (``None``: none)."""
        return day_span(
            self.today(account),
            cursor,
            window,
            lookback_days=self.config.lookback_days,
            initial_days=self.config.initial_days,
            start_date=self.config.start_date,
            retention_days=settings.RETENTION_DAYS,
        )

    def read(
        self, account: Account, cursor: Mapping[str, Any] | None, window: Window | None
    ) -> Iterator[Page]:
        start, end, through = self.span(account, cursor, window)
        is_async = (window is not None and window.own_cursors) or (
            (end - start).days + 1 > self.config.sync_max_days
        )
        start = max(start, self._resume.get(account.account_id, start))
        chunk = timedelta(days=self.config.chunk_days)
        while start <= end:
            until = min(start + chunk - timedelta(days=1), end)
            held: Page | None = None
            for breakdowns in self.breakdown_sets:
                for data in self._rows(account, start, until, breakdowns, is_async):
                    if held is not None:
                        yield held
                    held = Page(
                        stream=self.stream,
                        partition=account.account_id,
                        records=[self._record(account, row, breakdowns) for row in data],
                    )
            held = held or Page(stream=self.stream, partition=account.account_id)
            through = until if through is None else max(through, until)
            held.state = {"through": through.isoformat()}
            self._resume[account.account_id] = until + timedelta(days=1)
            yield held
            start = until + timedelta(days=1)

    def _rows(
        self,
        account: Account,
        since: date,
        until: date,
        breakdowns: tuple[str, ...],
        is_async: bool,
    ) -> Iterator[list[dict[str, Any]]]:
        params = self._params(breakdowns)
        if is_async:
            return self._reports.pages(account.node, params, since, until)
        return self._sync_rows(account, params, since, until)

    def _sync_rows(
        self, account: Account, params: dict[str, Any], since: date, until: date
    ) -> Iterator[list[dict[str, Any]]]:
        """The synchronous edge over ``[since, until]``; a range Meta finds too heavy even at
        the smallest page is read as two halves (rows of the whole range already handed over
        come again: the loader keeps one of each)."""
        query = {**params, "time_range": {"since": since.isoformat(), "until": until.isoformat()}}
        try:
            yield from self._transport.pages("insights", (account.node, "insights"), query)
        except PageTooLarge as exc:
            if since == until:
                raise TransientError(
                    f"{exc}, even for the single day {since}; lower min_page_limit or read it "
                    "with a backfill (report runs)",
                    provider="meta_ads",
                    method="insights",
                ) from None
            middle = since + timedelta(days=((until - since).days + 1) // 2 - 1)
            self._transport.stats.warnings.append(
                f"{exc} for {since}..{until}; reading {since}..{middle} and "
                f"{middle + timedelta(days=1)}..{until} apart"
            )
            yield from self._sync_rows(account, params, since, middle)
            yield from self._sync_rows(account, params, middle + timedelta(days=1), until)

    def _params(self, breakdowns: tuple[str, ...]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "level": "ad",
            "time_increment": 1,
            "fields": ",".join(settings.INSIGHT_FIELDS),
            "action_attribution_windows": list(self.config.attribution_windows),
            "use_unified_attribution_setting": True,  # Ads Manager's numbers (module docstring)
            "filtering": [
                {
                    "field": "ad.effective_status",
                    "operator": "IN",
                    "value": list(settings.AD_STATUSES),
                }
            ],
        }
        if breakdowns:
            params["breakdowns"] = ",".join(breakdowns)
        return params

    def _record(self, account: Account, row: Mapping[str, Any], breakdowns: tuple[str, ...]) -> Any:
        record = insight_record(
            row,
            currency=account.currency,
            conversion_action_types=self.config.conversion_action_types,
        )
        return breakdown_record(record, row, breakdowns) if breakdowns else record
