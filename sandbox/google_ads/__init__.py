"""Google Ads API v26 emulator (gRPC + local TLS; see :class:`GoogleAdsEmulator`).

``Sandbox(providers=("google_ads", ...))`` hosts it (its gRPC server and token endpoint start
and stop with the sandbox, sharing its faults, request log and, with Gmail, its Google OAuth
store). Or start it on its own::

    ads = GoogleAdsEmulator(seed=1).start()
    manager = ads.populate("small")          # or add_manager_tree(...) / add_account(...)
    os.environ.update(ads.env())             # endpoint, roots file, token URL
    ...
    ads.stop()

Knobs, all on :class:`GoogleAdsEmulator`:

* data: ``add_manager_tree``, ``add_account``, ``add_login(email, *customers)`` (direct
  access), ``populate(size)`` (``"demo"`` also adds a client's own account with its own login
  ``ads@globex.example``), ``credentials(login)`` (a token bundle for the vault); ``now``
  (a callable returning an aware datetime) fixes "today";
* mutations: ``add_campaign``, ``add_ad_group``, ``add_ad``, ``rename(entity, name)``,
  ``set_status(entity, "REMOVED")`` (each recorded for ``FROM change_status`` at ``now()``:
  ``ADDED``, ``CHANGED`` or ``REMOVED``), ``add_late_conversions(ad_or_pmax_campaign, day,
  conversions, value)``, ``close_account(account, status)``;
* paging: ``page_size`` (Search, default 10,000), ``stream_chunk_size`` (SearchStream);
* quota: ``daily_operations`` per OAuth client project (sliding 24 h / ``time_scale``;
  Explorer access's 2,880 by default, what a new customer's project has), ``operations_used()``,
  ``reset_quota()``, ``spend_operations(n)`` (others' use of the same project);
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

from sandbox.google_ads.data import Ad, AdGroup, AdsAccount, Campaign, Change, DayMetrics
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
    "Change",
    "DayMetrics",
    "GaqlError",
    "GoogleAdsEmulator",
    "Login",
    "local_tls",
    "parse",
]
