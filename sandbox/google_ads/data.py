"""Google Ads accounts, their tree and their entities, and the daily metrics they accrue.

Everything is a pure function of the seed (ids, names, metrics), so two emulators built with
the same seed agree; mutations (new campaigns and ads, ``REMOVED``, late conversions) are
recorded on the objects themselves.

Metrics are generated per ad and per day (and per day for a Performance Max campaign, which has
no ad groups); an ad group's metrics are the sum of its ads', a campaign's the sum of its ad
groups' (plus its own for Performance Max). Days are days in the account's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.ids import derive_key, mix64, unit

__all__ = [
    "BIDDING",
    "METRIC_FIELDS",
    "Ad",
    "AdGroup",
    "AdsAccount",
    "Campaign",
    "Change",
    "DayMetrics",
    "account_id",
]

METRIC_FIELDS = (
    "impressions",
    "clicks",
    "cost_micros",
    "conversions",
    "conversions_value",
    "all_conversions",
    "view_through_conversions",
)
# (currency, time zone) of generated accounts, in turn.
LOCALES = (
    ("USD", "America/New_York"),
    ("GBP", "Europe/London"),
    ("AUD", "Australia/Sydney"),
    ("USD", "America/Los_Angeles"),
    ("EUR", "Europe/Berlin"),
)
AD_TYPES = (
    "RESPONSIVE_SEARCH_AD",
    "RESPONSIVE_DISPLAY_AD",
    "EXPANDED_TEXT_AD",
    "VIDEO_RESPONSIVE_AD",
    "DEMAND_GEN_MULTI_ASSET_AD",
)
CHANNELS = ("SEARCH", "DISPLAY", "VIDEO", "DEMAND_GEN")
BIDDING = {
    "SEARCH": "MAXIMIZE_CONVERSIONS",
    "DISPLAY": "TARGET_CPA",
    "VIDEO": "TARGET_CPM",
    "DEMAND_GEN": "MAXIMIZE_CONVERSIONS",
    "PERFORMANCE_MAX": "MAXIMIZE_CONVERSION_VALUE",
}
AD_GROUP_TYPES = {
    "SEARCH": "SEARCH_STANDARD",
    "DISPLAY": "DISPLAY_STANDARD",
    "VIDEO": "VIDEO_RESPONSIVE",
    "DEMAND_GEN": "UNSPECIFIED",
}


def account_id(seed: int, *parts: object) -> int:
    """A 10-digit customer id (no leading zero)."""
    return 1_000_000_000 + derive_key(seed, "gads-customer", *parts) % 9_000_000_000


def _entity_id(seed: int, *parts: object) -> int:
    return 10_000_000_000 + derive_key(seed, "gads-entity", *parts) % 90_000_000_000


@dataclass
class DayMetrics:
    impressions: int = 0
    clicks: int = 0
    cost_micros: int = 0
    conversions: float = 0.0
    conversions_value: float = 0.0
    all_conversions: float = 0.0
    view_through_conversions: int = 0

    def add(self, other: DayMetrics) -> None:
        for name in METRIC_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            name: round(v, 6) if isinstance(v := getattr(self, name), float) else v
            for name in METRIC_FIELDS
        }

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in METRIC_FIELDS)


def generate_day(seed: int, entity: int, day: date, scale: float = 1.0) -> DayMetrics:
    """One entity's organic metrics on one day (before late conversions)."""
    k = mix64(derive_key(seed, "gads-day", entity, day.isoformat()))
    if unit(k, 0, 8) < 0.08:  # some days without delivery
        return DayMetrics()
    impressions = int((200 + unit(k, 8) * 4800) * scale)
    clicks = int(impressions * (0.01 + unit(k, 24) * 0.07))
    cpc_micros = 200_000 + int(unit(k, 40) * 2_800_000)
    conversions = round(clicks * unit(k, 56, 8) * 0.15, 2)
    value = round(conversions * (20 + unit(k ^ 0x5A5A, 0) * 180), 2)
    extra = round(conversions * unit(k ^ 0xA5A5, 16, 8) * 0.5, 2)
    return DayMetrics(
        impressions=impressions,
        clicks=clicks,
        cost_micros=clicks * cpc_micros // 10_000 * 10_000,
        conversions=conversions,
        conversions_value=value,
        all_conversions=round(conversions + extra, 2),
        view_through_conversions=int(unit(k, 48, 8) * 4),
    )


@dataclass
class Ad:
    id: int
    ad_group: AdGroup
    type: str
    name: str
    final_urls: list[str]
    status: str = "ENABLED"
    created: date | None = None
    removed: date | None = None
    late: dict[date, DayMetrics] = field(default_factory=dict)

    @property
    def resource_name(self) -> str:
        return (
            f"customers/{self.ad_group.campaign.account.id}/adGroupAds/{self.ad_group.id}~{self.id}"
        )


@dataclass
class AdGroup:
    id: int
    campaign: Campaign
    name: str
    type: str
    status: str = "ENABLED"
    ads: list[Ad] = field(default_factory=list)

    @property
    def resource_name(self) -> str:
        return f"customers/{self.campaign.account.id}/adGroups/{self.id}"


@dataclass
class Campaign:
    id: int
    account: AdsAccount
    name: str
    channel: str
    start: date
    status: str = "ENABLED"
    budget_micros: int = 50_000_000
    budget_id: int = 0
    end: date | None = None
    ad_groups: list[AdGroup] = field(default_factory=list)
    late: dict[date, DayMetrics] = field(default_factory=dict)  # Performance Max only

    @property
    def resource_name(self) -> str:
        return f"customers/{self.account.id}/campaigns/{self.id}"

    @property
    def has_ad_groups(self) -> bool:
        return self.channel != "PERFORMANCE_MAX"


@dataclass
class Change:
    """The latest change of one campaign, ad group or ad, as ``change_status`` reports it:
    one row per resource (not one per edit), carrying the time of its last change.

    ``status`` is ``ADDED`` while the resource is new (later edits keep it ``ADDED``),
    ``REMOVED`` once removed, ``CHANGED`` otherwise; ``at`` is an aware datetime."""

    resource_type: str  # CAMPAIGN, AD_GROUP, AD_GROUP_AD
    status: str  # ADDED, CHANGED, REMOVED
    at: datetime
    entity: Campaign | AdGroup | Ad

    def merged(self, status: str, at: datetime) -> Change:
        if status != "REMOVED" and self.status == "ADDED":
            status = "ADDED"
        return Change(self.resource_type, status, at, self.entity)


@dataclass
class AdsAccount:
    """One Google Ads customer: a manager (MCC) or a client account."""

    seed: int
    id: int
    name: str
    currency: str
    time_zone: str
    manager: bool = False
    status: str = "ENABLED"  # ENABLED, CANCELED, SUSPENDED, CLOSED
    test_account: bool = False
    hidden: bool = False
    parent: AdsAccount | None = None
    children: list[AdsAccount] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    history_start: date = date(2026, 1, 1)
    # resource name -> its latest change (only mutations through the emulator record one)
    changes: dict[str, Change] = field(default_factory=dict)

    @property
    def resource_name(self) -> str:
        return f"customers/{self.id}"

    def today(self, now: datetime | None = None) -> date:
        """Today in the account's time zone."""
        zone = ZoneInfo(self.time_zone)
        return (now.astimezone(zone) if now else datetime.now(zone)).date()

    def descendants(self) -> list[tuple[AdsAccount, int]]:
        """This account (level 0) and everything below it, breadth first, with levels."""
        out: list[tuple[AdsAccount, int]] = []
        queue: list[tuple[AdsAccount, int]] = [(self, 0)]
        while queue:
            account, level = queue.pop(0)
            out.append((account, level))
            queue.extend((child, level + 1) for child in account.children)
        return out

    def is_under(self, manager: AdsAccount) -> bool:
        node: AdsAccount | None = self
        while node is not None:
            if node is manager:
                return True
            node = node.parent
        return False

    # -- entities ----------------------------------------------------------------------
    def add_campaign(
        self,
        name: str | None = None,
        *,
        channel: str = "SEARCH",
        ad_groups: int = 2,
        ads_per_group: int = 2,
        start: date | None = None,
        status: str = "ENABLED",
    ) -> Campaign:
        if self.manager:
            raise ValueError("manager accounts have no campaigns")
        n = len(self.campaigns)
        campaign = Campaign(
            id=_entity_id(self.seed, self.id, "campaign", n),
            account=self,
            name=name or f"{self.name} {channel.title().replace('_', ' ')} #{n + 1}",
            channel=channel,
            start=start or self.history_start,
            status=status,
            budget_micros=(20 + derive_key(self.seed, self.id, n) % 180) * 1_000_000,
            budget_id=_entity_id(self.seed, self.id, "budget", n),
        )
        self.campaigns.append(campaign)
        if campaign.has_ad_groups:
            for _ in range(ad_groups):
                group = self.add_ad_group(campaign)
                for _ in range(ads_per_group):
                    self.add_ad(group)
        return campaign

    def add_ad_group(self, campaign: Campaign, name: str | None = None) -> AdGroup:
        if not campaign.has_ad_groups:
            raise ValueError("a Performance Max campaign has no ad groups")
        n = len(campaign.ad_groups)
        group = AdGroup(
            id=_entity_id(self.seed, campaign.id, "ad_group", n),
            campaign=campaign,
            name=name or f"{campaign.name} / group {n + 1}",
            type=AD_GROUP_TYPES.get(campaign.channel, "UNSPECIFIED"),
        )
        campaign.ad_groups.append(group)
        return group

    def add_ad(
        self,
        group: AdGroup,
        *,
        type: str | None = None,
        final_urls: list[str] | None = None,
        created: date | None = None,
    ) -> Ad:
        n = len(group.ads)
        ad_id = _entity_id(self.seed, group.id, "ad", n)
        slug = self.name.lower().replace(" ", "-")
        ad = Ad(
            id=ad_id,
            ad_group=group,
            type=type or AD_TYPES[derive_key(self.seed, ad_id) % len(AD_TYPES)],
            name=f"{group.name} / ad {n + 1}",
            final_urls=final_urls or [f"https://www.{slug}.example/landing/{n + 1}"],
            created=created,
        )
        group.ads.append(ad)
        return ad

    def record_change(self, entity: Campaign | AdGroup | Ad, status: str, at: datetime) -> None:
        """Note that ``entity`` was ``ADDED``, ``CHANGED`` or ``REMOVED`` at ``at``."""
        kind = (
            "CAMPAIGN"
            if isinstance(entity, Campaign)
            else "AD_GROUP"
            if isinstance(entity, AdGroup)
            else "AD_GROUP_AD"
        )
        before = self.changes.pop(entity.resource_name, None)
        change = Change(kind, status, at, entity) if before is None else before.merged(status, at)
        self.changes[entity.resource_name] = change  # re-inserted: the dict is in time order

    # -- metrics -----------------------------------------------------------------------
    def days(self, lo: date | None, hi: date | None, now: datetime | None = None) -> list[date]:
        """Days with possible data: [history_start, today] narrowed to [lo, hi]."""
        first = max(lo or self.history_start, self.history_start)
        last = min(hi or self.today(now), self.today(now))
        return [first + timedelta(n) for n in range((last - first).days + 1)]

    def ad_day(self, ad: Ad, day: date) -> DayMetrics:
        group, campaign = ad.ad_group, ad.ad_group.campaign
        out = DayMetrics()
        live = campaign.end is None or day < campaign.end
        if live and day >= campaign.start and (ad.created is None or day >= ad.created):
            if ad.removed is None or day < ad.removed:
                # The group's delivery is shared by the ads it had that day, so an ad added
                # later does not rewrite its siblings' history.
                running = sum(1 for a in group.ads if a.created is None or a.created <= day)
                out = generate_day(self.seed, ad.id, day, 1.0 / max(1, running))
        extra = ad.late.get(day)
        if extra is not None:
            out.add(extra)
        return out

    def ad_group_day(self, group: AdGroup, day: date) -> DayMetrics:
        out = DayMetrics()
        for ad in group.ads:
            out.add(self.ad_day(ad, day))
        return out

    def campaign_day(self, campaign: Campaign, day: date) -> DayMetrics:
        out = DayMetrics()
        if campaign.has_ad_groups:
            for group in campaign.ad_groups:
                out.add(self.ad_group_day(group, day))
        elif day >= campaign.start and (campaign.end is None or day < campaign.end):
            out = generate_day(self.seed, campaign.id, day, 3.0)
        extra = campaign.late.get(day)
        if extra is not None:
            out.add(extra)
        return out
