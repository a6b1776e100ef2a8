"""Synthetic Meta ads data: businesses, ad accounts, campaigns, ad sets, ads, daily numbers.

Everything is a pure function of the seed and of the objects' ids, so two emulators with the
same seed agree byte for byte. Objects are few (an agency has dozens of ad accounts, not
millions of ads), so they are built eagerly; the daily insights of an ad are computed on
demand from ``(seed, ad id, day)`` plus whatever mutations the test applied (status changes,
late conversions).

Days are the ad account's own calendar days (``timezone_name``), as Meta reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sandbox.ids import derive_key, unit

__all__ = [
    "ACCOUNT_STATUSES",
    "AD_STATUSES",
    "ATTRIBUTION_SPECS",
    "CONVERSION_TYPES",
    "DEFAULT_ATTRIBUTION",
    "WINDOWS",
    "AdDay",
    "MetaAccount",
    "MetaAd",
    "MetaAdSet",
    "MetaBusiness",
    "MetaCampaign",
    "graph_time",
]

# ``account_status`` codes of the AdAccount reference.
ACCOUNT_STATUSES = {
    1: "ACTIVE",
    2: "DISABLED",
    3: "UNSETTLED",
    7: "PENDING_RISK_REVIEW",
    101: "CLOSED",
}
AD_STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
# Attribution windows still returned after January 2026 (7d_view and 28d_view are gone).
WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")
# An ad set's attribution setting, as its ``attribution_spec`` (AdSet reference: a list of
# ``{"event_type": CLICK_THROUGH | VIEW_THROUGH | ENGAGED_VIDEO_VIEW, "window_days": N}``) and
# as Ads Manager offers it: 7-day click or 1-day view (the default), 1-day click, 7-day click,
# 1-day click or 1-day view.
DEFAULT_ATTRIBUTION: tuple[tuple[str, int], ...] = (("CLICK_THROUGH", 7), ("VIEW_THROUGH", 1))
ATTRIBUTION_SPECS: tuple[tuple[tuple[str, int], ...], ...] = (
    DEFAULT_ATTRIBUTION,
    (("CLICK_THROUGH", 1),),
    (("CLICK_THROUGH", 7),),
    (("CLICK_THROUGH", 1), ("VIEW_THROUGH", 1)),
)
_EVENT_SUFFIX = {"CLICK_THROUGH": "click", "VIEW_THROUGH": "view", "ENGAGED_VIDEO_VIEW": "ev"}
# Action types whose counts depend on attribution (the others are on-platform events).
CONVERSION_TYPES = ("offsite_conversion.fb_pixel_purchase", "offsite_conversion.fb_pixel_lead")
_PURCHASE = "offsite_conversion.fb_pixel_purchase"
_ACCOUNT_PRESETS = (
    ("USD", "America/Los_Angeles"),
    ("EUR", "Europe/Berlin"),
    ("JPY", "Asia/Tokyo"),
    ("GBP", "Europe/London"),
    ("BRL", "America/Sao_Paulo"),
    ("AUD", "Australia/Sydney"),
)
# Currencies Meta reports without a decimal part.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "CLP", "COP", "HUF", "ISK", "TWD", "VND", "IDR"})


def graph_time(moment: datetime, tz: ZoneInfo) -> str:
    """Graph's timestamp format, in the account's offset: ``2025-03-01T09:00:00-0800``."""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S%z")


def _numeric_id(*parts: object, digits: int = 15) -> str:
    """An all-digit id of ``digits`` digits (ads objects are 18 digits starting 1202...)."""
    low = 10 ** (digits - 1)
    return str(low + derive_key(*parts) % (9 * low))


@dataclass
class MetaAd:
    id: str
    name: str
    account: MetaAccount
    adset: MetaAdSet
    status: str
    first_day: date
    # The last account-local day the ad delivers (``None``: still delivering today).
    last_day: date | None
    created_time: datetime
    updated_time: datetime

    @property
    def campaign(self) -> MetaCampaign:
        return self.adset.campaign

    @property
    def effective_status(self) -> str:
        if self.status in ("DELETED", "ARCHIVED"):
            return self.status
        for parent, label in ((self.campaign, "CAMPAIGN"), (self.adset, "ADSET")):
            if parent.status in ("DELETED", "ARCHIVED"):
                return parent.status
            if parent.status == "PAUSED":
                return f"{label}_PAUSED"
        return self.status

    def delivers_on(self, day: date, today: date) -> bool:
        last = today if self.last_day is None else min(self.last_day, today)
        return self.first_day <= day <= last


@dataclass
class MetaAdSet:
    id: str
    name: str
    account: MetaAccount
    campaign: MetaCampaign
    status: str
    daily_budget: int  # minor units, sent as a string
    created_time: datetime
    updated_time: datetime
    attribution_spec: tuple[tuple[str, int], ...] = DEFAULT_ATTRIBUTION

    @property
    def attribution_windows(self) -> tuple[str, ...]:
        """The windows of the setting, ``("7d_click", "1d_view")``: an action's ``value``
        counts the conversions of these windows."""
        return tuple(f"{days}d_{_EVENT_SUFFIX[event]}" for event, days in self.attribution_spec)

    @property
    def attribution_setting(self) -> str:
        """Insights' ``attribution_setting`` for this ad set: ``7d_click_1d_view``."""
        return "_".join(self.attribution_windows)

    @property
    def effective_status(self) -> str:
        if self.status != "ACTIVE":
            return self.status
        if self.campaign.status in ("DELETED", "ARCHIVED"):
            return self.campaign.status
        return "CAMPAIGN_PAUSED" if self.campaign.status == "PAUSED" else "ACTIVE"


@dataclass
class MetaCampaign:
    id: str
    name: str
    account: MetaAccount
    status: str
    objective: str
    created_time: datetime
    updated_time: datetime

    @property
    def effective_status(self) -> str:
        return self.status


@dataclass(frozen=True)
class AdDay:
    """One ad's numbers for one account-local day (before any breakdown).

    ``actions`` / ``action_values`` map an action type to its count (or value in minor
    units) per attribution window; the key ``"value"`` counts the windows of the ad set's
    attribution setting (:attr:`MetaAdSet.attribution_windows`)."""

    ad: MetaAd
    day: date
    impressions: int
    reach: int
    clicks: int
    spend: int  # minor units of the account currency
    actions: dict[str, dict[str, int]]
    action_values: dict[str, dict[str, int]]


@dataclass
class MetaAccount:
    """One ad account (``act_<account_id>``) and its ads tree."""

    seed: int
    account_id: str
    name: str
    currency: str
    timezone_name: str
    account_status: int
    business: MetaBusiness
    created_time: datetime
    campaigns: dict[str, MetaCampaign] = field(default_factory=dict)
    adsets: dict[str, MetaAdSet] = field(default_factory=dict)
    ads: dict[str, MetaAd] = field(default_factory=dict)
    # (ad id, day, action type) -> (extra count, extra value in minor units)
    late: dict[tuple[str, date, str], tuple[int, int]] = field(default_factory=dict)
    # (ad id, day) -> the action types of ``late`` on that day (kept by ``add_late``)
    late_days: dict[tuple[str, date], set[str]] = field(default_factory=dict)
    call_budget: int = 200  # calls per rolling provider hour before code 17 / 2446079
    # "Please reduce the amount of data" (``sandbox/meta/limits.py``): the most cells (rows x
    # fields) one insights page may carry, the most rows one synchronous query may compute.
    max_page_cells: int | None = None
    max_query_rows: int | None = None

    @property
    def id(self) -> str:
        return f"act_{self.account_id}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def decimals(self) -> int:
        return 0 if self.currency in _ZERO_DECIMAL else 2

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def local_time(self, day: date, hour: int = 9) -> datetime:
        return datetime.combine(day, time(hour), self.tz).astimezone(UTC)

    def money(self, minor: int) -> str:
        """Minor units as Meta's decimal string (``"12.30"``, or ``"1230"`` for yen)."""
        if self.decimals == 0:
            return str(minor)
        sign = "-" if minor < 0 else ""
        whole, cents = divmod(abs(minor), 100)
        return f"{sign}{whole}.{cents:02d}"

    # -- the tree ------------------------------------------------------------------------
    def add_campaign(self, name: str, status: str, created: date) -> MetaCampaign:
        index = len(self.campaigns)
        moment = self.local_time(created, 8)
        campaign = MetaCampaign(
            id=_numeric_id(self.seed, self.account_id, "campaign", index, digits=18),
            name=name,
            account=self,
            status=status,
            objective=("OUTCOME_SALES", "OUTCOME_LEADS", "OUTCOME_TRAFFIC")[index % 3],
            created_time=moment,
            updated_time=moment,
        )
        self.campaigns[campaign.id] = campaign
        return campaign

    def add_adset(self, campaign: MetaCampaign, name: str, created: date) -> MetaAdSet:
        """A new ad set; the first of an account has Meta's default attribution setting, the
        others one drawn from :data:`ATTRIBUTION_SPECS` (most of them the default too)."""
        index = len(self.adsets)
        key = derive_key(self.seed, self.account_id, "adset", index)
        moment = self.local_time(created, 8)
        roll = unit(key, 48)
        spec = ATTRIBUTION_SPECS[0 if index == 0 or roll < 0.55 else 1 + int(roll * 10) % 3]
        adset = MetaAdSet(
            id=_numeric_id(self.seed, self.account_id, "adset", index, digits=18),
            name=name,
            account=self,
            campaign=campaign,
            status="ACTIVE",
            daily_budget=(1000 + key % 9000) * (100 if self.decimals == 0 else 1),
            created_time=moment,
            updated_time=moment,
            attribution_spec=spec,
        )
        self.adsets[adset.id] = adset
        return adset

    def add_ad(
        self,
        adset: MetaAdSet,
        *,
        name: str | None = None,
        status: str = "ACTIVE",
        first_day: date,
        last_day: date | None = None,
        created_time: datetime | None = None,
    ) -> MetaAd:
        index = len(self.ads)
        created = created_time or self.local_time(first_day, 9)
        ad = MetaAd(
            id=_numeric_id(self.seed, self.account_id, "ad", index, digits=18),
            name=name or f"{adset.name} / Ad {index + 1}",
            account=self,
            adset=adset,
            status=status,
            first_day=first_day,
            last_day=last_day,
            created_time=created,
            updated_time=created,
        )
        self.ads[ad.id] = ad
        return ad

    def add_late(self, key: tuple[str, date, str], value: tuple[int, int]) -> None:
        """Set late conversions (``late[key] = value``), indexed by ad and day."""
        self.late[key] = value
        self.late_days.setdefault((key[0], key[1]), set()).add(key[2])

    def late_on(self, ad_id: str, day: date) -> dict[str, tuple[int, int]]:
        """The late conversions of one ad on one day, by action type."""
        types = self.late_days.get((ad_id, day), ())
        return {t: self.late[(ad_id, day, t)] for t in types}

    # -- numbers -------------------------------------------------------------------------
    def ad_day(self, ad: MetaAd, day: date) -> AdDay | None:
        """The ad's numbers on ``day`` (``None``: no delivery and no late conversion)."""
        key = derive_key(self.seed, "insights", ad.id, day.isoformat())
        late = self.late_on(ad.id, day)
        if unit(key, 0) < 0.08 and not late:  # some days an ad simply does not deliver
            return None
        impressions = 150 + int(unit(key, 8) * 4800)
        reach = max(1, int(impressions * (0.55 + 0.4 * unit(key, 24))))
        clicks = int(impressions * (0.004 + 0.04 * unit(key, 40)))
        cpm = 300 + int(unit(key, 48) * 1200)  # cents per thousand impressions
        spend = impressions * cpm // 1000
        if self.decimals == 0:
            spend = spend * 150 // 100  # roughly yen for the same cents
        actions: dict[str, dict[str, int]] = {}
        values: dict[str, dict[str, int]] = {}
        if clicks:
            on_platform = {"link_click": clicks, "landing_page_view": clicks * 7 // 10}
            for action_type, count in on_platform.items():
                if count:
                    actions[action_type] = {w: count for w in ("1d_click", "7d_click", "28d_click")}
        order_value = 2000 + derive_key(self.seed, "aov", ad.id) % 10000
        for n, action_type in enumerate(CONVERSION_TYPES):
            sub = derive_key(key, action_type)
            one = int(clicks * (0.02 + 0.08 * unit(sub, 0)))
            seven = one + int(one * unit(sub, 16) * 0.5)
            twenty_eight = seven + int(seven * unit(sub, 32) * 0.3)
            view = int(impressions * 0.0005 * unit(sub, 48)) + n
            windows = {
                "1d_click": one,
                "7d_click": seven,
                "28d_click": twenty_eight,
                "1d_view": view,
                "1d_ev": 0,
            }
            extra, extra_value = late.get(action_type, (0, 0))
            windows["7d_click"] += extra
            windows["28d_click"] += extra
            if sum(windows.values()) == 0:
                continue
            actions[action_type] = windows
            if action_type == _PURCHASE:
                money = {w: c * order_value for w, c in windows.items()}
                money["7d_click"] += extra_value - extra * order_value
                money["28d_click"] += extra_value - extra * order_value
                values[action_type] = money
        # An action's ``value`` follows the ad set's attribution setting: Meta disregards
        # ``use_unified_attribution_setting`` since June 10, 2025 and attributes as Ads Manager
        # does (Insights API, "Discrepancy with Ads Manager"). On-Meta actions (link clicks)
        # count once whatever the setting.
        counted = ad.adset.attribution_windows
        for bag in (actions, values):
            for action_type, windows in bag.items():
                if action_type in CONVERSION_TYPES:
                    windows["value"] = sum(windows.get(w, 0) for w in counted)
                else:
                    windows["value"] = windows.get("1d_click", 0)
        return AdDay(ad, day, impressions, reach, clicks, spend, actions, values)


@dataclass
class MetaBusiness:
    """A Business Manager: the agency, owning some ad accounts and managing clients' ones."""

    id: str
    name: str
    owned: list[MetaAccount] = field(default_factory=list)
    clients: list[MetaAccount] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def accounts(self) -> list[MetaAccount]:
        return [*self.owned, *self.clients]


def build_business(
    seed: int,
    ordinal: int,
    name: str,
    *,
    owned: int,
    clients: int,
    campaigns: int,
    adsets_per_campaign: int,
    ads_per_adset: int,
    start: date,
    today: date,
    presets: Sequence[tuple[str, str]] | None = None,
) -> MetaBusiness:
    """A business and its ad accounts; ads start on or after ``start`` (account days)."""
    business = MetaBusiness(id=_numeric_id(seed, "business", ordinal), name=name)
    presets = presets or _ACCOUNT_PRESETS
    for n in range(owned + clients):
        currency, tz = presets[(ordinal + n) % len(presets)]
        client = n >= owned
        label = f"{name} Client {n - owned + 1}" if client else f"{name} {n + 1}"
        account = MetaAccount(
            seed=seed,
            account_id=_numeric_id(seed, "account", ordinal, n),
            name=label,
            currency=currency,
            timezone_name=tz,
            account_status=1,
            business=business,
            created_time=datetime.combine(start, time(8), UTC) - timedelta(days=30),
        )
        (business.clients if client else business.owned).append(account)
        _fill_account(account, campaigns, adsets_per_campaign, ads_per_adset, start, today)
    return business


def _fill_account(
    account: MetaAccount,
    campaigns: int,
    adsets_per_campaign: int,
    ads_per_adset: int,
    start: date,
    today: date,
) -> None:
    span = max(1, (today - start).days)
    ad_index = 0
    for c in range(campaigns):
        campaign = account.add_campaign(f"{account.name} / Campaign {c + 1}", "ACTIVE", start)
        for s in range(adsets_per_campaign):
            adset = account.add_adset(campaign, f"{campaign.name} / Ad set {s + 1}", start)
            for _ in range(ads_per_adset):
                key = derive_key(account.seed, account.account_id, "ad-life", ad_index)
                # The first four ads of an account cover every status, the rest are drawn.
                if ad_index < 4:
                    status = AD_STATUSES[ad_index]
                else:
                    roll = unit(key, 0)
                    status = (
                        "ACTIVE"
                        if roll < 0.7
                        else "PAUSED"
                        if roll < 0.82
                        else "ARCHIVED"
                        if roll < 0.91
                        else "DELETED"
                    )
                first = start + timedelta(days=int(unit(key, 16) * span / 3))
                last = None
                if status != "ACTIVE":
                    stopped = first + timedelta(days=1 + int(unit(key, 32) * (today - first).days))
                    last = min(stopped, today - timedelta(days=1))
                ad = account.add_ad(adset, status=status, first_day=first, last_day=last)
                if last is not None:
                    ad.updated_time = account.local_time(last, 18)
                ad_index += 1
