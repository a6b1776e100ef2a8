"""Meta Marketing API constants: version, endpoint, error codes, fields and statuses."""

from __future__ import annotations

from typing import Final

API_VERSION: Final = "v26.0"
GRAPH_URL_ENV: Final = "AOS_META_GRAPH_URL"
DEFAULT_GRAPH_URL: Final = "https://graph.facebook.com"

# Error codes (Graph error-handling and rate-limiting references).
AUTH_CODES: Final = frozenset({102, 190})  # 190: expired / invalidated / malformed token
RATE_LIMIT_CODES: Final = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES: Final = frozenset({1, 2})  # "unknown error", "service temporarily unavailable"

# Attribution: insights keep changing for up to 28 days, so each run re-reads that much.
DEFAULT_LOOKBACK_DAYS: Final = 28
RETENTION_DAYS: Final = 37 * 30  # insights are kept 37 months
DEFAULT_INITIAL_DAYS: Final = 90  # what a first sync reads without a start_date
DEFAULT_CHUNK_DAYS: Final = 30  # days per insights request series (one cursor step each)
# Rows per page. Meta refuses heavy pages with code 1 "Please reduce the amount of data you're
# asking for" (typically insights at limit=500); 100 is what Airbyte's connector runs real
# accounts with (its ``page_size`` default). On that answer the page is halved, down to
# MIN_PAGE_LIMIT, before the date range is split (``transport.py``, ``insights.py``).
DEFAULT_PAGE_LIMIT: Final = 100
MIN_PAGE_LIMIT: Final = 10
# Ranges longer than this are read through async report jobs (the default lookback of 28
# days plus today stays synchronous; first syncs, ``since`` runs and backfills go async).
DEFAULT_SYNC_MAX_DAYS: Final = 31
# Async report runs: only "Job Completed" means done (100% may still be "Job Running").
JOB_COMPLETED: Final = "Job Completed"
JOB_FAILED: Final = frozenset({"Job Failed", "Job Skipped"})
REPORT_NOT_READY: Final = (2601, 1815107)  # results read before the job is readable
# Breakdown dimensions the opt-in breakdown table can hold (one column each).
BREAKDOWN_DIMENSIONS: Final = ("age", "gender", "country", "publisher_platform")
# The sets of them Meta reports together (Insights API Breakdowns, "Combining breakdowns":
# "only some permutations of breakdowns are available"); any other set is refused with code
# 100 "Current combination of data breakdown columns (...) is invalid".
BREAKDOWN_COMBINATIONS: Final = (
    ("age",),
    ("gender",),
    ("age", "gender"),
    ("country",),
    ("publisher_platform",),
)
# Days before a token's expiry at which runs warn (debug_token's ``expires_at``).
TOKEN_WARNING_DAYS: Final = (14, 7, 1)
MAX_EMPTY_PAGES: Final = 10  # empty pages in a row that still announce a next page
# The per-window keys asked for in ``actions`` (each action's ``value`` follows the ad set's
# attribution setting, which the ``attribution_setting`` field names).
DEFAULT_ATTRIBUTION_WINDOWS: Final = ("7d_click", "1d_view")
# Action types summed into ``conversions`` / ``conversion_value`` (the common purchase and
# lead events; an integration may configure its own).
DEFAULT_CONVERSION_ACTION_TYPES: Final = (
    "offsite_conversion.fb_pixel_purchase",
    "onsite_conversion.purchase",
    "offsite_conversion.fb_pixel_lead",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_custom",
)

# Every effective_status of each object (the SDK's enums): listed explicitly, because Meta
# leaves DELETED and ARCHIVED objects out of a listing unless the filter names them.
CAMPAIGN_STATUSES: Final = ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES")
ADSET_STATUSES: Final = (*CAMPAIGN_STATUSES, "CAMPAIGN_PAUSED")
AD_STATUSES: Final = (
    *ADSET_STATUSES,
    "ADSET_PAUSED",
    "DISAPPROVED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
)

ACCOUNT_FIELDS: Final = (
    "id",
    "account_id",
    "name",
    "currency",
    "timezone_name",
    "account_status",
    "business",
)
CAMPAIGN_FIELDS: Final = (
    "id",
    "account_id",
    "name",
    "status",
    "effective_status",
    "objective",
    "created_time",
    "updated_time",
)
ADSET_FIELDS: Final = (
    "id",
    "account_id",
    "campaign_id",
    "name",
    "status",
    "effective_status",
    "daily_budget",
    "created_time",
    "updated_time",
)
AD_FIELDS: Final = (
    "id",
    "account_id",
    "campaign_id",
    "adset_id",
    "name",
    "status",
    "effective_status",
    "created_time",
    "updated_time",
)
INSIGHT_FIELDS: Final = (
    "account_id",
    "account_currency",
    "campaign_id",
    "adset_id",
    "ad_id",
    "impressions",
    "clicks",
    "reach",
    "spend",
    "actions",
    "action_values",
    "attribution_setting",
    "date_start",
    "date_stop",
)
