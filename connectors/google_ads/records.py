"""Typed rows of the Google Ads tables, built from raw v26 protobuf rows.

Ids are integers (``bigint``); enums are stored by name (``ENABLED``, ``REMOVED``), with
``UNSPECIFIED`` stored as NULL in the nullable columns; money is ``cost_micros / 10**6`` as an
exact :class:`~decimal.Decimal` in the account currency; conversions (doubles in the API) as
the decimal of their shortest text form; days are the account's local days, as sent.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from connectors.common import sanitize

__all__ = [
    "Customer",
    "GoogleAdsAd",
    "GoogleAdsAdDaily",
    "GoogleAdsAdGroup",
    "GoogleAdsAdGroupDaily",
    "GoogleAdsCampaign",
    "GoogleAdsCampaignDaily",
    "GoogleAdsCustomer",
    "account_hint",
    "ad_daily_record",
    "ad_group_daily_record",
    "ad_group_record",
    "ad_record",
    "campaign_daily_record",
    "campaign_record",
    "customer_record",
]


@dataclass(frozen=True)
class Customer:
    """One account found by discovery: what the readers and ``google_ads_customers`` need."""

    customer_id: int
    name: str | None
    currency: str
    time_zone: str
    status: str
    manager: bool
    test_account: bool
    hidden: bool
    manager_path: tuple[int, ...]  # root manager .. direct parent
    login_customer_id: int  # the account the user reaches it through

    @property
    def id(self) -> str:
        return str(self.customer_id)

    @property
    def login(self) -> str:
        return str(self.login_customer_id)


class GoogleAdsCustomer(TypedDict):
    """A ``google_ads_customers`` row: an account of the manager tree (managers included)."""

    customer_id: int
    name: str | None
    currency: str
    time_zone: str
    status: str
    manager: bool
    test_account: bool | None
    manager_path: list[int] | None
    login_customer_id: int | None
    _ad_account_ids: list[str]


class GoogleAdsCampaign(TypedDict):
    campaign_id: int
    customer_id: int
    name: str
    status: str
    advertising_channel_type: str | None
    advertising_channel_sub_type: str | None
    bidding_strategy_type: str | None
    start_date: date | None
    end_date: date | None
    _customer: str  # the account: the partition of the stream's cursors
    _ad_account_ids: list[str]


class GoogleAdsAdGroup(TypedDict):
    ad_group_id: int
    customer_id: int
    campaign_id: int
    name: str
    status: str
    type: str | None
    _customer: str  # the account: the partition of the stream's cursors
    _ad_account_ids: list[str]


class GoogleAdsAd(TypedDict):
    ad_group_id: int
    ad_id: int
    customer_id: int
    campaign_id: int
    name: str | None
    type: str
    status: str
    final_urls: list[str] | None
    _customer: str  # the account: the partition of the stream's cursors
    _ad_account_ids: list[str]


class _DayMetrics(TypedDict):
    """What every daily table holds besides its entity's ids (the same metrics at each level)."""

    date: date
    customer_id: int
    currency: str
    impressions: int
    clicks: int
    cost: Decimal
    conversions: Decimal
    conversions_value: Decimal
    all_conversions: Decimal
    view_through_conversions: int
    _customer: str
    _ad_account_ids: list[str]


class GoogleAdsCampaignDaily(_DayMetrics):
    campaign_id: int


class GoogleAdsAdGroupDaily(_DayMetrics):
    ad_group_id: int
    campaign_id: int


class GoogleAdsAdDaily(_DayMetrics):
    ad_group_id: int
    ad_id: int
    campaign_id: int


def account_hint(customer_id: int | str) -> list[str]:
    """The client hint of an account: its id as digits and as Google shows it (dashes)."""
    digits = str(customer_id)
    return [digits, f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"]


@functools.cache
def _enum_field(descriptor: Any, field: str) -> tuple[str, dict[int, str]]:
    """The message's own name of ``field`` (proto-plus types spell ``type`` as ``type_``)
    and its enum's value names."""
    name = field if field in descriptor.fields_by_name else f"{field}_"
    enum = descriptor.fields_by_name[name].enum_type
    return name, {v.number: v.name for v in enum.values}


def enum_name(message: Any, field: str) -> str:
    """The name of an enum field of a protobuf message (``UNKNOWN`` for a value newer than
    the pinned API version)."""
    name, names = _enum_field(message.DESCRIPTOR, field)
    return names.get(getattr(message, name), "UNKNOWN")


def _optional_enum(message: Any, field: str) -> str | None:
    name = enum_name(message, field)
    return None if name == "UNSPECIFIED" else name


def _day(value: str) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def customer_record(customer: Customer) -> GoogleAdsCustomer:
    row: GoogleAdsCustomer = {
        "customer_id": customer.customer_id,
        "name": customer.name or None,
        "currency": customer.currency,
        "time_zone": customer.time_zone,
        "status": customer.status,
        "manager": customer.manager,
        "test_account": customer.test_account,
        "manager_path": list(customer.manager_path),
        "login_customer_id": customer.login_customer_id,
        "_ad_account_ids": account_hint(customer.customer_id),
    }
    return sanitize(row)


def campaign_record(row: Any) -> GoogleAdsCampaign:
    campaign = row.campaign
    record: GoogleAdsCampaign = {
        "campaign_id": campaign.id,
        "customer_id": row.customer.id,
        "name": campaign.name,
        "status": enum_name(campaign, "status"),
        "advertising_channel_type": _optional_enum(campaign, "advertising_channel_type"),
        "advertising_channel_sub_type": _optional_enum(campaign, "advertising_channel_sub_type"),
        "bidding_strategy_type": _optional_enum(campaign, "bidding_strategy_type"),
        "start_date": _day(campaign.start_date_time),
        "end_date": _day(campaign.end_date_time),
        "_customer": str(row.customer.id),
        "_ad_account_ids": account_hint(row.customer.id),
    }
    return sanitize(record)


def ad_group_record(row: Any) -> GoogleAdsAdGroup:
    group = row.ad_group
    record: GoogleAdsAdGroup = {
        "ad_group_id": group.id,
        "customer_id": row.customer.id,
        "campaign_id": row.campaign.id,
        "name": group.name,
        "status": enum_name(group, "status"),
        "type": _optional_enum(group, "type"),
        "_customer": str(row.customer.id),
        "_ad_account_ids": account_hint(row.customer.id),
    }
    return sanitize(record)


def ad_record(row: Any) -> GoogleAdsAd:
    ad = row.ad_group_ad.ad
    record: GoogleAdsAd = {
        "ad_group_id": row.ad_group.id,
        "ad_id": ad.id,
        "customer_id": row.customer.id,
        "campaign_id": row.campaign.id,
        "name": ad.name or None,
        "type": enum_name(ad, "type"),
        "status": enum_name(row.ad_group_ad, "status"),
        "final_urls": list(ad.final_urls),
        "_customer": str(row.customer.id),
        "_ad_account_ids": account_hint(row.customer.id),
    }
    return sanitize(record)


def _number(value: float) -> Decimal:
    return Decimal(repr(value)) if value else Decimal(0)


def _metrics(row: Any, customer: Customer, hint: list[str]) -> dict[str, Any]:
    m = row.metrics
    return {
        "date": date.fromisoformat(row.segments.date),
        "customer_id": customer.customer_id,
        "currency": customer.currency,
        "impressions": m.impressions,
        "clicks": m.clicks,
        "cost": Decimal(m.cost_micros).scaleb(-6),
        "conversions": _number(m.conversions),
        "conversions_value": _number(m.conversions_value),
        "all_conversions": _number(m.all_conversions),
        "view_through_conversions": m.view_through_conversions,
        "_customer": customer.id,
        "_ad_account_ids": hint,
    }


def campaign_daily_record(row: Any, customer: Customer, hint: list[str]) -> GoogleAdsCampaignDaily:
    record: GoogleAdsCampaignDaily = {
        "campaign_id": row.campaign.id,
        **_metrics(row, customer, hint),  # type: ignore[typeddict-item]
    }
    return record


def ad_group_daily_record(row: Any, customer: Customer, hint: list[str]) -> GoogleAdsAdGroupDaily:
    record: GoogleAdsAdGroupDaily = {
        "ad_group_id": row.ad_group.id,
        "campaign_id": row.campaign.id,
        **_metrics(row, customer, hint),  # type: ignore[typeddict-item]
    }
    return record


def ad_daily_record(row: Any, customer: Customer, hint: list[str]) -> GoogleAdsAdDaily:
    record: GoogleAdsAdDaily = {
        "ad_group_id": row.ad_group.id,
        "ad_id": row.ad_group_ad.ad.id,
        "campaign_id": row.campaign.id,
        **_metrics(row, customer, hint),  # type: ignore[typeddict-item]
    }
    return record


def record_keys(records: Sequence[Any], key: Sequence[str]) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in key) for r in records]
