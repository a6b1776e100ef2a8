"""``MetaAdsConnector``: the :class:`connectors.common.StreamReader` for one Meta token.

The token sees ad accounts (``me/adaccounts``: a system user of the agency's business sees
the business's own and its clients' accounts). ``ad_accounts`` is the full list each run and
ends with a :class:`Reconcile`; ``campaigns``, ``ad_sets`` and ``ads`` are full listings per
account with every effective status asked for (Meta hides DELETED and ARCHIVED objects
otherwise), each account's listing ending with a reconcile of that account's rows;
``insights_daily`` is incremental per account (``insights.py``), the windowed stream.

An account that fails (a permission Meta refuses for it, errors that outlast the retries) is
skipped with a warning while the others are read (:class:`PartitionFailures`); a refused
token fails the whole stream. ``read`` is the kit's read loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.common import ConnectorError, Page, RunStats, Secret, StreamSpec
from connectors.kit import PartitionFailures, ReadLoop
from connectors.kit.listing import complete_listing
from connectors.kit.reader import Window

from . import settings
from .config import MetaAdsConfig
from .insights import Account, InsightsReader
from .records import account_record, ad_record, adset_record, campaign_record
from .streams import STREAMS
from .transport import MetaTransport

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
    ) -> None:
        self.config = config
        self.stats = RunStats()
        self.streams: Mapping[str, StreamSpec] = STREAMS
        self._transport = MetaTransport(
            token, config, self.stats, base_url=base_url, retry_backoff=retry_backoff, sleep=sleep
        )
        self._insights = InsightsReader(self._transport, config, now)
        self._accounts: list[Account] | None = None
        readers: dict[str, Callable[[Any], Iterator[Page]]] = {"ad_accounts": self._account_pages}
        for stream in _OBJECTS:
            readers[stream] = self._object_reader(stream)
        self._loop = ReadLoop(
            "Meta",
            self.streams,
            self.stats,
            readers,
            windowed={"insights_daily": self._insight_pages},
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
        partitions = PartitionFailures(f"Meta {stream}", self.stats)
        for account in self._selected_accounts():
            try:
                batches = (
                    [record(item) for item in data]
                    for data in self._transport.pages(edge, (account.node, edge), params)
                )
                yield from complete_listing(
                    stream, batches, (key,), where={"account_id": account.account_id}
                )
            except ConnectorError as exc:
                partitions.failed(account.node, exc)
            else:
                partitions.succeeded()
        partitions.finish()

    # -- insights ------------------------------------------------------------------------
    def _insight_pages(
        self, state: Mapping[str, Mapping[str, Any]], window: Window | None
    ) -> Iterator[Page]:
        partitions = PartitionFailures("Meta insights_daily", self.stats)
        for account in self._selected_accounts():
            try:
                yield from self._insights.read(account, state.get(account.account_id), window)
            except ConnectorError as exc:
                partitions.failed(account.node, exc)
            else:
                partitions.succeeded()
        partitions.finish()
