"""Google Ads API constants in one home: version, endpoint, quota, fields and queries.

The API version is pinned (``v26``): a version lives about a year and a bump renames fields
(``campaign.start_date`` became ``start_date_time``), so moving to the next one is a
deliberate edit here, never the library's default changing under us.
"""

from __future__ import annotations

from typing import Final

API_VERSION: Final = "v26"
ENDPOINT_ENV: Final = "AOS_GOOGLE_ADS_API_ENDPOINT"
DEFAULT_ENDPOINT: Final = "googleads.googleapis.com"
ROOTS_ENV: Final = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"  # gRPC's own setting (trusted roots)

# The daily operations quota of the OAuth client's Cloud project (one query, paged or
# streamed, is one operation) is shared by every integration connected through that client:
# its settings (``AOS_GOOGLE_ADS_DAILY_OPERATIONS``, Explorer access's 2,880 by default, and
# ``AOS_GOOGLE_ADS_MIN_SHARE``) are the registry entry's ``quota`` (``connectors/registry.py``).

# Conversions reach the day of the click for as long as the conversion action's window
# (Google's default: 30 days; at most 90), so each run re-reads that many past days.
DEFAULT_CONVERSION_WINDOW_DAYS: Final = 30
MAX_CONVERSION_WINDOW_DAYS: Final = 90
DEFAULT_INITIAL_DAYS: Final = 90  # what a first sync reads without a start_date
DEFAULT_CHUNK_DAYS: Final = 31  # days per metrics query (one operation each)
# A quota answer asking to wait longer than this is the daily quota: the run stops cleanly
# and the next one resumes (sleeping a worker for hours helps nobody).
DEFAULT_MAX_QUOTA_WAIT: Final = 120.0
# Seconds the project is held when Google says its daily quota is spent without a retry
# delay: the next scheduled run (every two hours) asks again, with one query.
UNTIMED_QUOTA_HOLD: Final = 3600.0

ACTIVE_STATUS: Final = "ENABLED"

# Entities incrementally: ``change_status`` lists the campaigns, ad groups and ads changed in a
# range that must start at most 90 days ago and carry a LIMIT of at most 10,000. A cursor
# older than ``CHANGE_STATUS_USABLE_DAYS`` (the 90 days less a margin for clocks and the
# overlap) is too old for it; a change list that reaches the LIMIT may be cut short. Either
# way the account's entities are read whole (a snapshot) instead. Changes can take up to three
# minutes to show, so each run re-asks from ``CHANGE_STATUS_OVERLAP_MINUTES`` before the
# cursor. The changed entities are then read by id, ``ENTITY_IDS_PER_QUERY`` per query.
CHANGE_STATUS_MAX_LIMIT: Final = 10_000
CHANGE_STATUS_USABLE_DAYS: Final = 88
CHANGE_STATUS_OVERLAP_MINUTES: Final = 5
CHANGE_STATUS_TYPES: Final = ("CAMPAIGN", "AD_GROUP", "AD_GROUP_AD")
ENTITY_IDS_PER_QUERY: Final = 1_000
CHANGE_STATUS_FIELDS: Final = (
    "change_status.resource_name",
    "change_status.last_change_date_time",
    "change_status.resource_type",
    "change_status.resource_status",
    "change_status.campaign",
    "change_status.ad_group",
    "change_status.ad_group_ad",
)

CUSTOMER_CLIENT_FIELDS: Final = (
    "customer_client.id",
    "customer_client.descriptive_name",
    "customer_client.level",
    "customer_client.manager",
    "customer_client.status",
    "customer_client.currency_code",
    "customer_client.time_zone",
    "customer_client.test_account",
    "customer_client.hidden",
)
CAMPAIGN_FIELDS: Final = (
    "customer.id",
    "campaign.id",
    "campaign.name",
    "campaign.status",
    "campaign.advertising_channel_type",
    "campaign.advertising_channel_sub_type",
    "campaign.bidding_strategy_type",
    "campaign.start_date_time",
    "campaign.end_date_time",
)
AD_GROUP_FIELDS: Final = (
    "customer.id",
    "campaign.id",
    "ad_group.id",
    "ad_group.name",
    "ad_group.status",
    "ad_group.type",
)
AD_FIELDS: Final = (
    "customer.id",
    "campaign.id",
    "ad_group.id",
    "ad_group_ad.ad.id",
    "ad_group_ad.ad.name",
    "ad_group_ad.ad.type",
    "ad_group_ad.status",
    "ad_group_ad.ad.final_urls",
)
METRIC_FIELDS: Final = (
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.conversions",
    "metrics.conversions_value",
    "metrics.all_conversions",
    "metrics.view_through_conversions",
)
# metrics stream -> (resource, its id fields)
METRIC_LEVELS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "campaign_daily": ("campaign", ("campaign.id",)),
    "ad_group_daily": ("ad_group", ("campaign.id", "ad_group.id")),
    "ad_daily": ("ad_group_ad", ("campaign.id", "ad_group.id", "ad_group_ad.ad.id")),
}
