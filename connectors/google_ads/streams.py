"""The Google Ads streams: rows are attributed to clients through their account id."""

from __future__ import annotations

from connectors.common import ClientHint, StreamSpec
from connectors.kit import declare_streams

from .records import (
    GoogleAdsAd,
    GoogleAdsAdDaily,
    GoogleAdsAdGroup,
    GoogleAdsAdGroupDaily,
    GoogleAdsCampaign,
    GoogleAdsCampaignDaily,
    GoogleAdsCustomer,
)

BY_ACCOUNT = ClientHint("_ad_account_ids", "ad_account_ids")

STREAMS = declare_streams(
    StreamSpec(
        "customers", "google_ads_customers", ("customer_id",), GoogleAdsCustomer, client=BY_ACCOUNT
    ),
    # Entities have a cursor per account: when their changes were last read (``entities.py``).
    StreamSpec(
        "campaigns",
        "google_ads_campaigns",
        ("campaign_id",),
        GoogleAdsCampaign,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
    StreamSpec(
        "ad_groups",
        "google_ads_ad_groups",
        ("ad_group_id",),
        GoogleAdsAdGroup,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
    StreamSpec(
        "ads",
        "google_ads_ads",
        ("ad_group_id", "ad_id"),
        GoogleAdsAd,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
    StreamSpec(
        "campaign_daily",
        "google_ads_campaign_daily",
        ("campaign_id", "date"),
        GoogleAdsCampaignDaily,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
    StreamSpec(
        "ad_group_daily",
        "google_ads_ad_group_daily",
        ("ad_group_id", "date"),
        GoogleAdsAdGroupDaily,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
    StreamSpec(
        "ad_daily",
        "google_ads_ad_daily",
        ("ad_group_id", "ad_id", "date"),
        GoogleAdsAdDaily,
        partition_by="_customer",
        client=BY_ACCOUNT,
    ),
)
