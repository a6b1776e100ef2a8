"""One ``TypedDict`` per Meta table and the functions that build rows from Graph answers.

Graph sends numbers as strings (``"impressions": "1234"``, ``"spend": "12.30"``) and times as
``2026-03-01T09:00:00-0800``; rows hold ``int``, ``Decimal``, ``date`` and tz-aware
``datetime``. Ad account ids are stored without the ``act_`` prefix. Every row carries the
client hint ``_ad_account_ids`` (the id with and without ``act_``), matched against
``client.ad_account_ids`` whichever way a client's ids are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

from connectors.common import sanitize

from .config import normalize_account_id

__all__ = [
    "MetaAd",
    "MetaAdAccount",
    "MetaAdInsightBreakdownDaily",
    "MetaAdInsightDaily",
    "MetaAdSet",
    "MetaCampaign",
    "account_hint",
    "account_record",
    "ad_record",
    "adset_record",
    "breakdown_record",
    "campaign_record",
    "insight_record",
]


class MetaAdAccount(TypedDict):
    """A ``meta_ad_accounts`` row (``me/adaccounts``)."""

    account_id: str
    name: str
    currency: str
    timezone_name: str
    account_status: int
    business_id: str | None
    _ad_account_ids: list[str]


class MetaCampaign(TypedDict):
    """A ``meta_campaigns`` row (``act_X/campaigns``, every effective status)."""

    campaign_id: str
    account_id: str
    name: str
    status: str
    effective_status: str
    objective: str | None
    created_time: datetime | None
    updated_time: datetime | None
    _ad_account_ids: list[str]


class MetaAdSet(TypedDict):
    """A ``meta_ad_sets`` row (``act_X/adsets``, every effective status)."""

    adset_id: str
    account_id: str
    campaign_id: str
    name: str
    status: str
    effective_status: str
    daily_budget: int | None
    created_time: datetime | None
    updated_time: datetime | None
    _ad_account_ids: list[str]


class MetaAd(TypedDict):
    """A ``meta_ads`` row (``act_X/ads``, DELETED and ARCHIVED included)."""

    ad_id: str
    account_id: str
    campaign_id: str
    adset_id: str
    name: str
    status: str
    effective_status: str
    created_time: datetime | None
    updated_time: datetime | None
    _ad_account_ids: list[str]


class MetaAdInsightDaily(TypedDict):
    """A ``meta_ad_insights_daily`` row: one ad on one account-local day (``level=ad``,
    ``time_increment=1``)."""

    ad_id: str
    date_start: date
    account_id: str
    campaign_id: str
    adset_id: str
    impressions: int
    clicks: int
    reach: int | None
    spend: Decimal
    currency: str
    conversions: Decimal
    conversion_value: Decimal
    actions: list[dict[str, Any]] | None
    action_values: list[dict[str, Any]] | None
    attribution_setting: str
    _ad_account_ids: list[str]


class MetaAdInsightBreakdownDaily(MetaAdInsightDaily):
    """A ``meta_ad_insights_breakdown_daily`` row: one ad on one day in one bucket of one set
    of breakdowns (the daily row's fields and these). ``breakdown`` names the set
    (``"age,gender"``); the dimension columns outside the set hold ``""`` so that every one can
    be part of the key."""

    breakdown: str
    age: str
    gender: str
    country: str
    publisher_platform: str


def account_hint(account_id: str) -> list[str]:
    """The client hint of an ad account: its id with and without ``act_``."""
    bare = normalize_account_id(account_id)
    return [bare, f"act_{bare}"]


def graph_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def account_record(account: Mapping[str, Any]) -> MetaAdAccount:
    account_id = normalize_account_id(account.get("account_id") or account["id"])
    business = account.get("business")
    row: MetaAdAccount = {
        "account_id": account_id,
        "name": account.get("name") or account_id,
        "currency": account["currency"],
        "timezone_name": account["timezone_name"],
        "account_status": int(account["account_status"]),
        "business_id": str(business["id"]) if isinstance(business, dict) else None,
        "_ad_account_ids": account_hint(account_id),
    }
    return sanitize(row)


def campaign_record(campaign: Mapping[str, Any]) -> MetaCampaign:
    account_id = normalize_account_id(campaign["account_id"])
    row: MetaCampaign = {
        "campaign_id": str(campaign["id"]),
        "account_id": account_id,
        "name": campaign.get("name") or "",
        "status": campaign["status"],
        "effective_status": campaign["effective_status"],
        "objective": campaign.get("objective"),
        "created_time": graph_time(campaign.get("created_time")),
        "updated_time": graph_time(campaign.get("updated_time")),
        "_ad_account_ids": account_hint(account_id),
    }
    return sanitize(row)


def adset_record(adset: Mapping[str, Any]) -> MetaAdSet:
    account_id = normalize_account_id(adset["account_id"])
    row: MetaAdSet = {
        "adset_id": str(adset["id"]),
        "account_id": account_id,
        "campaign_id": str(adset["campaign_id"]),
        "name": adset.get("name") or "",
        "status": adset["status"],
        "effective_status": adset["effective_status"],
        "daily_budget": _int(adset.get("daily_budget")),
        "created_time": graph_time(adset.get("created_time")),
        "updated_time": graph_time(adset.get("updated_time")),
        "_ad_account_ids": account_hint(account_id),
    }
    return sanitize(row)


def ad_record(ad: Mapping[str, Any]) -> MetaAd:
    account_id = normalize_account_id(ad["account_id"])
    row: MetaAd = {
        "ad_id": str(ad["id"]),
        "account_id": account_id,
        "campaign_id": str(ad["campaign_id"]),
        "adset_id": str(ad["adset_id"]),
        "name": ad.get("name") or "",
        "status": ad["status"],
        "effective_status": ad["effective_status"],
        "created_time": graph_time(ad.get("created_time")),
        "updated_time": graph_time(ad.get("updated_time")),
        "_ad_account_ids": account_hint(account_id),
    }
    return sanitize(row)


def _total(items: Any, action_types: Iterable[str]) -> Decimal:
    """The sum of ``value`` (the ad set's attribution setting) over the chosen action types."""
    wanted = set(action_types)
    return sum(
        (
            _decimal(item.get("value"))
            for item in items or []
            if isinstance(item, dict) and item.get("action_type") in wanted
        ),
        Decimal(0),
    )


def insight_record(
    row: Mapping[str, Any],
    *,
    currency: str,
    conversion_action_types: Iterable[str],
) -> MetaAdInsightDaily:
    """A daily ad row; ``currency`` is the account's (used when the row does not say).
    ``attribution_setting`` is the row's own (its ad set's, ``7d_click_1d_view``): the one its
    ``conversions`` follow."""
    types = tuple(conversion_action_types)
    account_id = normalize_account_id(row["account_id"])
    record: MetaAdInsightDaily = {
        "ad_id": str(row["ad_id"]),
        "date_start": date.fromisoformat(row["date_start"]),
        "account_id": account_id,
        "campaign_id": str(row["campaign_id"]),
        "adset_id": str(row["adset_id"]),
        "impressions": _int(row.get("impressions")) or 0,
        "clicks": _int(row.get("clicks")) or 0,
        "reach": _int(row.get("reach")),
        "spend": _decimal(row.get("spend")),
        "currency": row.get("account_currency") or currency,
        "conversions": _total(row.get("actions"), types),
        "conversion_value": _total(row.get("action_values"), types),
        "actions": row.get("actions"),
        "action_values": row.get("action_values"),
        "attribution_setting": str(row.get("attribution_setting") or ""),
        "_ad_account_ids": account_hint(account_id),
    }
    return sanitize(record)


def breakdown_record(
    daily: MetaAdInsightDaily, row: Mapping[str, Any], breakdowns: Iterable[str]
) -> MetaAdInsightBreakdownDaily:
    """The breakdown row of ``row``, whose numbers ``daily`` already holds (built by
    :func:`insight_record` from the same row): the set's name and its dimension values."""
    wanted = tuple(breakdowns)

    def value(name: str) -> str:
        return sanitize(str(row.get(name) or "")) if name in wanted else ""

    record: MetaAdInsightBreakdownDaily = {
        "ad_id": daily["ad_id"],
        "date_start": daily["date_start"],
        "breakdown": ",".join(wanted),
        "age": value("age"),
        "gender": value("gender"),
        "country": value("country"),
        "publisher_platform": value("publisher_platform"),
        "account_id": daily["account_id"],
        "campaign_id": daily["campaign_id"],
        "adset_id": daily["adset_id"],
        "impressions": daily["impressions"],
        "clicks": daily["clicks"],
        "reach": daily["reach"],
        "spend": daily["spend"],
        "currency": daily["currency"],
        "conversions": daily["conversions"],
        "conversion_value": daily["conversion_value"],
        "actions": daily["actions"],
        "action_values": daily["action_values"],
        "attribution_setting": daily["attribution_setting"],
        "_ad_account_ids": daily["_ad_account_ids"],
    }
    return record
