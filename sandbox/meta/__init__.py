"""Meta Graph API (Marketing API v26.0) emulator (see :class:`MetaEmulator`).

Knobs, all on :class:`MetaEmulator`:

* data: ``add_business(...)``, ``populate(size)``; mutations ``add_ad``, ``pause_ad``,
  ``archive_ad``, ``delete_ad(accrue_days=)``, ``set_ad_status``, ``add_late_conversions``;
* tokens: ``issue_token``, ``expire_token`` (190/463), ``invalidate_token`` (190/460); the
  "revoked" fault invalidates the request's token;
* throttling: ``set_call_budget(account, calls)`` (17/2446079 once spent),
  ``throttle(account, code=, subcode=, minutes=)``, ``app_call_budget`` (code 4),
  ``budget_window`` (provider seconds); the "429" fault answers a throttling error
  (``options={"code": 80004, "subcode": 2446079}``, default code 4);
* paging: ``set_empty_pages(edge, *page_numbers)``;
* heavy answers: ``set_data_limit(account, page_cells=, query_rows=)`` (code 1, "Please reduce
  the amount of data you're asking for", ``sandbox/meta/limits.py``);
* async reports: ``script_next_report(("Job Running", 100), ("Job Completed", 100))``.
"""

from __future__ import annotations

from sandbox.meta.data import MetaAccount, MetaAd, MetaAdSet, MetaBusiness, MetaCampaign
from sandbox.meta.emulator import API_VERSION, SIZES, MetaEmulator, ReportRun, TokenRecord
from sandbox.meta.graph import GraphError

__all__ = [
    "API_VERSION",
    "SIZES",
    "GraphError",
    "MetaAccount",
    "MetaAd",
    "MetaAdSet",
    "MetaBusiness",
    "MetaCampaign",
    "MetaEmulator",
    "ReportRun",
    "TokenRecord",
]
