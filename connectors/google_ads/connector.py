"""``GoogleAdsConnector``: the :class:`connectors.common.StreamReader` for one Google login.

Discovery (``discovery.py``) finds the accounts and the manager each is reached through.
``customers`` lists every account found and ends with a :class:`Reconcile`; ``campaigns``,
``ad_groups`` and ``ads`` are incremental per synced account through ``change_status``, or a
snapshot ending with a reconcile of that account's rows when ``change_status`` cannot be
trusted (``entities.py``; REMOVED entities included: Google never deletes, it sets
``REMOVED``); ``campaign_daily``, ``ad_group_daily`` and ``ad_daily`` are incremental per
account (``metrics.py``), the windowed streams.

An account that fails (a permission refused for it, errors that outlast the retries) is
skipped with a warning while the others are read (:class:`PartitionFailures`); a refused
token is renewed once through ``renew`` (the transport's), and fails the whole stream only
when the renewal is refused or its token is refused too. When the operations quota is spent -- the project's daily
quota, or this integration's share of it -- the stream ends cleanly with a warning, and so
does every later stream of this reader: what was stored stays, the cursors resume next run.

Google's word that the project's daily quota is spent holds the whole OAuth client project
for as long as its retry delay says: it is kept in ``holds`` (``connectors.kit.holds``, scope
``PROJECT``; the task layer's is the control database), which every reader asks at its
stream's start and before each account. A held project is not asked again, by this run's
later streams, later runs or any other integration drawing on it, before that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.common import ConnectorError, Page, RunStats, Secret, StreamSpec, TokenRenewal
from connectors.kit import PartitionFailures, ReadLoop
from connectors.kit.holds import PROJECT, Holds, LocalHolds, hold_note
from connectors.kit.listing import complete_listing
from connectors.kit.reader import Window

from . import settings
from .budget import OperationBudget
from .config import GoogleAdsConfig
from .discovery import Discovery
from .entities import ENTITIES, EntityReader
from .errors import QuotaExhausted
from .metrics import MetricsReader
from .records import customer_record
from .streams import STREAMS
from .transport import GoogleAdsTransport

__all__ = ["GoogleAdsConnector"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


_AFTER = "the first run after that resumes from the saved cursors"


class _ProjectHeld(QuotaExhausted):
    """The project is held (``holds``): its quota stop was already known, nothing was asked."""


class GoogleAdsConnector:
    """Reads accounts, campaigns, ad groups, ads and their daily metrics over gRPC."""

    def __init__(
        self,
        token: Secret,
        config: GoogleAdsConfig,
        *,
        budget: OperationBudget | None = None,
        holds: Holds | None = None,
        endpoint: str | None = None,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        renew: TokenRenewal | None = None,
    ) -> None:
        self.config = config
        self.stats = RunStats()
        self.streams: Mapping[str, StreamSpec] = STREAMS
        self._transport = GoogleAdsTransport(
            token,
            config,
            self.stats,
            budget=budget,
            endpoint=endpoint,
            sleep=sleep,
            renew=renew,
        )
        self._discovery = Discovery(self._transport, config, self.stats, token.reveal())
        self._metrics = MetricsReader(self._transport, config, now)
        self._entities = EntityReader(self._transport, config, now)
        self._holds: Holds = holds if holds is not None else LocalHolds()
        self._quota_stop: str | None = None
        readers: dict[str, Callable[[Any], Iterator[Page]]] = {
            "customers": self._guarded("customers", self._customer_pages)
        }
        for stream in ENTITIES:
            readers[stream] = self._guarded(stream, self._entity_reader(stream))
        windowed = {
            stream: self._guarded(stream, self._metric_reader(stream))
            for stream in settings.METRIC_LEVELS
        }
        self._loop = ReadLoop("Google Ads", self.streams, self.stats, readers, windowed=windowed)

    def read(
        self,
        stream: str,
        state: Mapping[str, Mapping[str, Any]],
        window: Window | None = None,
    ) -> Iterator[Page]:
        """Pages of ``stream`` through the kit's read loop (see the module docstring)."""
        return self._loop.read(stream, state, window)

    def quota_status(self) -> Mapping[str, int]:
        """Operations this reader used and, with a metered budget, what is left."""
        return self._transport.budget.status()

    # -- the quota stop ------------------------------------------------------------------
    def _guarded(self, stream: str, read: Callable[..., Iterator[Page]]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Iterator[Page]:
            if self._quota_stop is not None:
                self.stats.warnings.append(f"Google Ads {stream} not read: {self._quota_stop}")
                return
            try:
                self._stop_if_held()
                yield from read(*args)
            except QuotaExhausted as stop:
                self._quota_stop = str(stop)
                resumes = "the next run resumes from the saved cursors"
                if stop.hold_for is not None:  # Google's word: every reader holds off
                    held = self._holds.put(PROJECT, stop.hold_for, str(stop))
                    resumes = f"the project is held {hold_note(held, reason=False)}; {_AFTER}"
                elif isinstance(stop, _ProjectHeld):
                    resumes = _AFTER
                self.stats.warnings.append(f"Google Ads {stream} stopped: {stop}; {resumes}")

        return guarded

    def _stop_if_held(self) -> None:
        """Raise while the project is held: not a query is spent on it."""
        held = self._holds.get(PROJECT)
        if held is not None:
            raise _ProjectHeld(f"the OAuth client's project is held {hold_note(held)}")

    # -- accounts ------------------------------------------------------------------------
    def _customer_pages(self, _cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        found = self._discovery.customers(fresh=True)
        records = [customer_record(c) for c in found]
        if not self._discovery.complete:  # a manager did not answer: claim nothing gone
            return iter([Page(stream="customers", records=records)])
        return complete_listing("customers", [records], ("customer_id",))

    # -- campaigns, ad groups, ads -------------------------------------------------------
    def _entity_reader(self, stream: str) -> Callable[[Any], Iterator[Page]]:
        def read(state: Mapping[str, Mapping[str, Any]]) -> Iterator[Page]:
            partitions = PartitionFailures(f"Google Ads {stream}", self.stats)
            for customer in self._discovery.selected():
                self._stop_if_held()
                try:
                    yield from self._entities.read(stream, customer, state.get(customer.id))
                except ConnectorError as exc:
                    partitions.failed(customer.id, exc)
                else:
                    partitions.succeeded()
            partitions.finish()

        return read

    # -- daily metrics -------------------------------------------------------------------
    def _metric_reader(self, stream: str) -> Callable[..., Iterator[Page]]:
        def read(state: Mapping[str, Mapping[str, Any]], window: Window | None) -> Iterator[Page]:
            partitions = PartitionFailures(f"Google Ads {stream}", self.stats)
            for customer in self._discovery.selected():
                self._stop_if_held()
                try:
                    yield from self._metrics.read(stream, customer, state.get(customer.id), window)
                except ConnectorError as exc:
                    partitions.failed(customer.id, exc)
                else:
                    partitions.succeeded()
            partitions.finish()

        return read
