"""Google Ads API v26 emulator (gRPC + local TLS; see :class:`GoogleAdsEmulator`).

Not registered in ``connectors.registry`` yet: start it on its own::

    ads = GoogleAdsEmulator(seed=1).start()
    manager = ads.populate("small")          # or add_manager_tree(...) / add_account(...)
    os.environ.update(ads.env())             # endpoint, roots file, token URL
    ...
    ads.stop()

Knobs, all on :class:`GoogleAdsEmulator`:

* data: ``add_manager_tree``, ``add_account``, ``add_login(email, *customers)`` (direct
  access), ``populate(size)``; ``now`` (a callable returning an aware datetime) fixes "today";
* mutations: ``add_campaign``, ``add_ad``, ``set_status(entity, "REMOVED")``,
  ``add_late_conversions(ad_or_pmax_campaign, day, conversions, value)``,
  ``close_account(account, status)``;
* paging: ``page_size`` (Search, default 10,000), ``stream_chunk_size`` (SearchStream);
* quota: ``daily_operations`` per OAuth client project (sliding 24 h / ``time_scale``),
  ``operations_used()``;
* faults (``emulator.faults.add("google_ads", kind=..., method="GoogleAdsService.SearchStream")``):
  ``"429"`` = RESOURCE_EXHAUSTED with ``QuotaErrorDetails.retry_delay`` = ``retry_after``
  (``options={"daily": True}`` for the daily-quota shape, ``{"retry_delay": s}``); ``"500"`` =
  INTERNAL, ``"503"`` = UNAVAILABLE, ``options={"after_rows": n}`` to fail mid-stream after n
  rows; ``"slow"``; ``"revoked"`` (the caller's grant dies first). ``match`` takes
  ``customer_id`` / ``login_customer_id``;
* the request log (``emulator.log``): method, customer_id, login_customer_id, query,
  page_token, request_id per call.
"""

from __future__ import annotations

from sandbox.google_ads.data import Ad, AdGroup, AdsAccount, Campaign, DayMetrics
from sandbox.google_ads.emulator import (
    ENDPOINT_ENV,
    LIST_ACCESSIBLE,
    ROOTS_ENV,
    SEARCH,
    SEARCH_STREAM,
    SIZES,
    GoogleAdsEmulator,
    Login,
    local_tls,
)
from sandbox.google_ads.errors import AdsError
from sandbox.google_ads.gaql import GaqlError, parse

__all__ = [
    "ENDPOINT_ENV",
    "LIST_ACCESSIBLE",
    "ROOTS_ENV",
    "SEARCH",
    "SEARCH_STREAM",
    "SIZES",
    "Ad",
    "AdGroup",
    "AdsAccount",
    "AdsError",
    "Campaign",
    "DayMetrics",
    "GaqlError",
    "GoogleAdsEmulator",
    "Login",
    "local_tls",
    "parse",
]
