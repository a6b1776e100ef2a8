"""The Meta Ads streams: rows are attributed to clients through their ad account."""

from __future__ import annotations

from connectors.common import ClientHint, StreamSpec
from connectors.kit import declare_streams

from .records import (
    MetaAd,
    MetaAdAccount,
    MetaAdInsightBreakdownDaily,
    MetaAdInsightDaily,
    MetaAdSet,
    MetaCampaign,
)

BY_ACCOUNT = ClientHint("_ad_account_ids", "ad_account_ids")

STREAMS = declare_streams(
    StreamSpec(
        "ad_accounts", "meta_ad_accounts", ("account_id",), MetaAdAccount, client=BY_ACCOUNT
    ),
    StreamSpec("campaigns", "meta_campaigns", ("campaign_id",), MetaCampaign, client=BY_ACCOUNT),
    StreamSpec("ad_sets", "meta_ad_sets", ("adset_id",), MetaAdSet, client=BY_ACCOUNT),
    StreamSpec("ads", "meta_ads", ("ad_id",), MetaAd, client=BY_ACCOUNT),
    StreamSpec(
        "insights_daily",
        "meta_ad_insights_daily",
        ("ad_id", "date_start"),
        MetaAdInsightDaily,
        partition_by="account_id",
        client=BY_ACCOUNT,
    ),
    # Opt-in (``breakdowns`` in the integration config): reads nothing otherwise.
    StreamSpec(
        "insights_breakdown",
        "meta_ad_insights_breakdown_daily",
        (
            "ad_id",
            "date_start",
            "breakdown",
            "age",
            "gender",
            "country",
            "publisher_platform",
        ),
        MetaAdInsightBreakdownDaily,
        partition_by="account_id",
        client=BY_ACCOUNT,
    ),
)
