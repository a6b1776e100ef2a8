"""``MetaAdsConnector``: the :class:`connectors.common.StreamReader` for one Meta token.

The token sees ad accounts (``me/adaccounts``: a system user of the agency's business sees
the business's own and its clients' accounts). ``ad_accounts`` is the full list each run and
ends with a :class:`Reconcile`; ``campaigns``, ``ad_sets`` and ``ads`` are full listings per
account with every effective status asked for (Meta hides DELETED and ARCHIVED objects
otherwise), each account's listing ending with a reconcile of that account's rows;
``insights_daily`` is incremental per account (``insights.py``), the windowed stream.

``insights_breakdown`` is the same per account for each configured set of breakdowns
(nothing without ``breakdowns`` in the config).

An account that fails (a permission Meta refuses for it, errors that outlast the retries) is
skipped with a warning while the others are read (:class:`PartitionFailures`); a refused
token fails the whole stream. A throttled account (:class:`AccountThrottled`) is put aside
until the time Meta gave and the next accounts are read meanwhile; once only paused accounts
are left, the reader sleeps until the first may call again. A pause that would end after the
stream's ``throttle_budget`` ends that account for this run with a warning: its cursor is
where its last stored page left it, and the next run carries on from there. ``read`` is the
kit's read loop.

A pause is Meta's word about the ad account (per app), not about this reader: it is kept in
``holds`` (``connectors.kit.holds``; the task layer's is the control database), and every
reader asks it before it reads an account. A held account is set aside like a throttled one
without a call: the later streams of the run, later runs and other workers and integrations
reading the same account do not ask Meta again before the time it gave.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.common import ConnectorError, Page, RunStats, Secret, StreamSpec
from connectors.kit import PartitionFailures, ReadLoop
from connectors.kit.holds import Hold, Holds, LocalHolds, hold_note
from connectors.kit.listing import complete_listing
from connectors.kit.reader import Window

from . import settings
from .app import MetaApp
from .config import MetaAdsConfig
from .insights import Account, InsightsReader
from .records import account_record, ad_record, adset_record, campaign_record
from .reports import ReportRunner
from .streams import STREAMS
from .transport import USAGE_PAUSE, AccountThrottled, MetaTransport

__all__ = ["MetaAdsConnector"]

# stream -> (edge, fields, statuses, record function, key field)
_OBJECTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], Callable[..., Any], str]] = {
    "campaigns": (
        "campaigns",
        settings.CAMPAIGN_FIELDS,
        settings.CAMPAIGN_STATUSES,
        campaign_record,
        "campaign_id",
    ),
    "ad_sets": ("adsets", settings.ADSET_FIELDS, settings.ADSET_STATUSES, adset_record, "adset_id"),
    "ads": ("ads", settings.AD_FIELDS, settings.AD_STATUSES, ad_record, "ad_id"),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MetaAdsConnector:
    """Reads ad accounts, campaigns, ad sets, ads and daily ad insights through Graph."""

    def __init__(
        self,
        token: Secret,
        config: MetaAdsConfig,
        base_url: str | None = None,
        now: Callable[[], datetime] = _utc_now,
        *,
        retry_backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        app: MetaApp | None = None,
        holds: Holds | None = None,
    ) -> None:
        self.config = config
        self.stats = RunStats()
        self._holds: Holds = holds if holds is not None else LocalHolds(clock)
        self._app_id = app.app_id if app else None
        self.streams: Mapping[str, StreamSpec] = STREAMS
        self._sleep = sleep
        self._clock = clock
        self._deadline = clock() + config.throttle_budget
        self._transport = MetaTransport(
            token,
            config,
            self.stats,
            base_url=base_url,
            retry_backoff=retry_backoff,
            sleep=sleep,
            clock=clock,
            app=app,
        )
        reports = ReportRunner(self._transport, config, sleep=sleep, clock=clock)
        self._insights = {
            "insights_daily": InsightsReader(self._transport, config, now, reports),
            "insights_breakdown": InsightsReader(
                self._transport,
                config,
                now,
                reports,
                stream="insights_breakdown",
                breakdown_sets=config.breakdowns,
            ),
        }
        self._accounts: list[Account] | None = None
        readers: dict[str, Callable[[Any], Iterator[Page]]] = {"ad_accounts": self._account_pages}
        for stream in _OBJECTS:
            readers[stream] = self._object_reader(stream)
        self._loop = ReadLoop(
            "Meta",
            self.streams,
            self.stats,
            readers,
            windowed={name: self._insight_reader(name) for name in self._insights},
        )

    def read(
        self,
        stream: str,
        state: Mapping[str, Mapping[str, Any]],
        window: Window | None = None,
    ) -> Iterator[Page]:
        """Pages of ``stream`` through the kit's read loop (see the module docstring)."""
        return self._loop.read(stream, state, window)

    # -- ad accounts ---------------------------------------------------------------------
    def _list_accounts(self) -> Iterator[list[dict[str, Any]]]:
        seen: list[Account] = []
        params = {"fields": ",".join(settings.ACCOUNT_FIELDS)}
        for data in self._transport.pages("me.adaccounts", ("me", "adaccounts"), params):
            records = [account_record(a) for a in data]
            seen.extend(
                Account(r["account_id"], r["timezone_name"], r["currency"]) for r in records
            )
            yield data
        self._accounts = seen

    def _account_pages(self, _cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        batches = ([account_record(a) for a in data] for data in self._list_accounts())
        return complete_listing("ad_accounts", batches, ("account_id",))

    def _selected_accounts(self) -> list[Account]:
        if self._accounts is None:
            for _data in self._list_accounts():
                pass
        assert self._accounts is not None
        return [a for a in self._accounts if self.config.selected(a.account_id)]

    # -- campaigns, ad sets, ads ---------------------------------------------------------
    def _object_reader(self, stream: str) -> Callable[[Any], Iterator[Page]]:
        def read(_cursor: Mapping[str, Any] | None) -> Iterator[Page]:
            return self._object_pages(stream)

        return read

    def _object_pages(self, stream: str) -> Iterator[Page]:
        edge, fields, statuses, record, key = _OBJECTS[stream]
        params = {"fields": ",".join(fields), "effective_status": list(statuses)}

        def listing(account: Account) -> Iterator[Page]:
            batches = (
                [record(item) for item in data]
                for data in self._transport.pages(edge, (account.node, edge), params)
            )
            return complete_listing(
                stream, batches, (key,), where={"account_id": account.account_id}
            )

        return self._each_account(stream, listing)

    # -- insights ------------------------------------------------------------------------
    def _insight_reader(
        self, stream: str
    ) -> Callable[[Mapping[str, Mapping[str, Any]], Window | None], Iterator[Page]]:
        reader = self._insights[stream]

        def read(state: Mapping[str, Mapping[str, Any]], window: Window | None) -> Iterator[Page]:
            if not reader.breakdown_sets:
                return iter(())
            return self._each_account(
                stream, lambda account: reader.read(account, state.get(account.account_id), window)
            )

        return read

    # -- one account at a time, throttled ones put aside -----------------------------------
    def _scope(self, account: Account) -> str:
        """What a pause holds: the ad account, per app (Meta throttles each app's calls to
        an ad account on their own)."""
        return f"{account.node}@{self._app_id}" if self._app_id else account.node

    def _each_account(
        self, stream: str, read: Callable[[Account], Iterator[Page]]
    ) -> Iterator[Page]:
        partitions = PartitionFailures(f"Meta {stream}", self.stats)
        queue = deque(self._selected_accounts())
        paused: list[tuple[float, str, Account]] = []  # (may call again at, id, account)
        while queue or paused:
            if paused and (not queue or paused[0][0] <= self._clock()):
                until, _, account = heapq.heappop(paused)
                self._sleep(max(0.0, until - self._clock()))
            else:
                account = queue.popleft()
            held = self._holds.get(self._scope(account))
            if held is not None:  # paused, as this reader or another was told: no call
                self._set_aside(stream, account, held, self._clock() + held.left, paused)
                continue
            try:
                with self._transport.account(account.node):
                    yield from read(account)
            except AccountThrottled as throttled:
                held = self._holds.put(self._scope(account), throttled.wait, throttled.reason)
                until = max(throttled.until, self._clock() + held.left)
                self._set_aside(stream, account, held, until, paused)
            except ConnectorError as exc:
                partitions.failed(account.node, exc)
            else:
                partitions.succeeded()
                self._keep_announced_pause(account)
        partitions.finish()

    def _keep_announced_pause(self, account: Account) -> None:
        """A pause the usage headers of the account's last answer announced (no call of this
        reader met it) holds for the next readers too."""
        left = self._transport.paused_for(account.node)
        if left > 0:
            self._holds.put(self._scope(account), left, USAGE_PAUSE.format(account=account.node))

    def _set_aside(
        self,
        stream: str,
        account: Account,
        held: Hold,
        until: float,
        paused: list[tuple[float, str, Account]],
    ) -> None:
        """Put a paused account aside until ``until`` (this reader's clock), or, when that is
        past the run's ``throttle_budget``, end it for this run with a warning."""
        if until <= self._deadline:
            heapq.heappush(paused, (until, account.account_id, account))
            return
        note = (
            f"Meta {stream}: {account.node} is paused {hold_note(held)}, past this run's "
            f"throttle_budget ({self.config.throttle_budget:.0f} s); it resumes from its "
            "saved cursor in the first run after that"
        )
        self.stats.skipped.append(f"{account.node}: throttled")
        self.stats.warnings.append(note)
