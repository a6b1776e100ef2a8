"""Which accounts an integration reaches, and through which manager.

``ListAccessibleCustomers`` names the accounts the user reaches *directly*; under each one
``customer_client`` (``level <= 1``: the account and its direct children) is read with
``login-customer-id`` set to that directly accessible account, and every enabled sub-manager
found is walked the same way, breadth first, still through the same login. An account
reached twice keeps its first (shortest) path. Managers are listed but never asked for
metrics; accounts that are not enabled are listed but never queried (Google answers
``CUSTOMER_NOT_ENABLED``).

Discovery costs one operation per manager (plus one), so its result is kept for a few minutes
per access token: the streams of one run share it, while the ``customers`` stream, first of
every run, always walks the tree afresh.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

from connectors.common import ConnectorError, RunStats
from connectors.kit import PartitionFailures

from . import settings
from .config import GoogleAdsConfig
from .records import Customer, enum_name
from .transport import GoogleAdsTransport

__all__ = ["Discovery"]

CACHE_SECONDS: Final = 300.0
_FIELDS = ", ".join(settings.CUSTOMER_CLIENT_FIELDS)
_QUERY = f"SELECT {_FIELDS} FROM customer_client WHERE customer_client.level <= 1"  # noqa: S608
_cache: dict[str, tuple[float, list[Customer]]] = {}
_cache_lock = threading.Lock()


class Discovery:
    def __init__(
        self, transport: GoogleAdsTransport, config: GoogleAdsConfig, stats: RunStats, key: str
    ) -> None:
        self._transport = transport
        self.config = config
        self.stats = stats
        # Only a hash of the access token (and of what changes the answer) is kept.
        self._key = hashlib.sha256(
            f"{key}|{transport.host()}|{','.join(config.customer_ids)}".encode()
        ).hexdigest()
        self._found: list[Customer] | None = None
        self.complete = True  # every manager's listing answered (else no reconcile)

    def customers(self, *, fresh: bool = False) -> list[Customer]:
        """Every account found (managers and closed accounts included), breadth first."""
        if self._found is not None and not fresh:
            return self._found
        now = time.monotonic()
        with _cache_lock:
            cached = _cache.get(self._key)
        if cached is not None and cached[0] > now and not fresh:
            self._found = cached[1]
            return self._found
        self.complete = True
        found = list(self._walk())
        if self.complete:
            with _cache_lock:
                _cache[self._key] = (now + CACHE_SECONDS, found)
        self._found = found
        return found

    def _walk(self) -> Iterator[Customer]:
        seen: dict[int, Customer] = {}
        queried: set[int] = set()
        queue: deque[tuple[int, int, tuple[int, ...]]] = deque(
            (int(cid), int(cid), ()) for cid in self._transport.accessible_customers()
        )
        partitions = PartitionFailures("Google Ads customer_client", self.stats)
        while queue:
            customer_id, login, path = queue.popleft()
            if customer_id in queried:
                continue
            queried.add(customer_id)
            try:
                rows = [
                    row
                    for batch in self._transport.search(
                        "customer_client", str(customer_id), str(login), lambda: _QUERY
                    )
                    for row in batch
                ]
            except ConnectorError as exc:
                partitions.failed(str(customer_id), exc)
                self.complete = False
                continue
            partitions.succeeded()
            for row in rows:
                client = row.customer_client
                own = client.level == 0
                if client.id in seen or (own and client.id != customer_id):
                    continue
                account = _customer(client, path if own else (*path, customer_id), login)
                seen[client.id] = account
                yield account
                if not own and account.manager and account.status == settings.ACTIVE_STATUS:
                    queue.append((client.id, login, (*path, customer_id)))
        partitions.finish()

    def selected(self) -> list[Customer]:
        """The accounts whose campaigns, ads and metrics are read: the configured ids, else
        every enabled client (non-manager) account (test accounts only if asked for)."""
        found = self.customers()
        if self.config.customer_ids:
            wanted = set(self.config.customer_ids)
            by_id = {c.id: c for c in found}
            for missing in sorted(wanted - by_id.keys()):
                self.stats.warnings.append(
                    f"Google Ads customer {missing} is configured but not reachable"
                )
            chosen = [by_id[i] for i in sorted(wanted & by_id.keys())]
            usable = [c for c in chosen if _readable(c)]
            for c in chosen:
                if not _readable(c):
                    self.stats.warnings.append(
                        f"Google Ads customer {c.id} is configured but is "
                        f"{'a manager' if c.manager else c.status}: not read"
                    )
            return usable
        return [
            c
            for c in found
            if _readable(c) and (self.config.include_test_accounts or not c.test_account)
        ]


def _readable(customer: Customer) -> bool:
    return not customer.manager and customer.status == settings.ACTIVE_STATUS


def _customer(client: Any, path: tuple[int, ...], login: int) -> Customer:
    return Customer(
        customer_id=client.id,
        name=client.descriptive_name or None,
        currency=client.currency_code,
        time_zone=client.time_zone,
        status=enum_name(client, "status"),
        manager=client.manager,
        test_account=client.test_account,
        hidden=client.hidden,
        manager_path=path,
        login_customer_id=login,
    )
