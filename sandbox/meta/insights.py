"""The Insights edge: ``/act_X/insights`` (and the same on a campaign, ad set or ad).

Rows are computed from :meth:`MetaAccount.ad_day` per ad and account-local day, then broken
down, aggregated to ``level`` and bucketed by ``time_increment``. Numbers are strings, as Graph
sends them; ``actions`` / ``action_values`` are lists of ``{"action_type", "value"}`` with one
key per requested ``action_attribution_windows`` entry. Days without delivery have no row.
By default ``level=ad`` leaves out DELETED ads (the reference: ``act_X/insights?level=ad``
"does not return stats for the deleted object"); an ``ad.effective_status`` filter brings
them back.

Attribution (Insights API, "Discrepancy with Ads Manager"): since June 10, 2025 Meta
disregards ``use_unified_attribution_setting`` and ``action_report_time`` and answers as Ads
Manager does -- each action's ``value`` follows the ad set's attribution setting
(:attr:`~sandbox.meta.data.MetaAdSet.attribution_windows`), actions are reported with
``action_report_time=mixed``. Both parameters are still checked (a boolean; one of
``impression``, ``conversion``, ``mixed``, ``lifetime``); the numbers ignore them. The
``attribution_setting`` field is the ad set's setting (``7d_click_1d_view``), answered only
with ``use_unified_attribution_setting=true``: without it Meta sends it as null, i.e. leaves
it out (airbytehq/airbyte#29894, "attribution_setting seems to be coming back as null
consistently ... use_unified_attribution_setting must be set"). A row over ad sets of
different settings (``level=campaign`` or ``account``) says ``mixed``. The emulator
credits a conversion to the day its numbers name (``add_late_conversions``); it does not model
report times.

Breakdowns combine only as Meta's table allows (Insights API Breakdowns, "Combining
breakdowns": "Due to storage constraints, only some permutations of breakdowns are
available"); any other set is refused with code 100 "Current combination of data breakdown
columns (...) is invalid", the columns including ``action_type`` when action fields are asked
for (``action_breakdowns`` defaults to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from itertools import product
from typing import Any

from sandbox.ids import derive_key, unit
from sandbox.meta.data import WINDOWS, AdDay, MetaAccount, MetaAd
from sandbox.meta.graph import (
    apply_filtering,
    invalid_param,
    json_param,
    list_param,
    parse_filtering,
)

__all__ = ["BREAKDOWNS", "FIELDS", "InsightsQuery", "compute_rows", "parse_query"]

BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "age": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("female", "male", "unknown"),
    "country": ("US", "GB", "DE", "BR", "JP", "AU"),
    "publisher_platform": ("facebook", "instagram", "audience_network", "messenger"),
}
# Meta's permutations of (non-action) breakdowns, "Combining breakdowns", and whether each
# may be joined with action_type (the asterisk of the table).
COMBINATIONS: dict[frozenset[str], bool] = {
    frozenset(names.split(",")): starred
    for names, starred in (
        ("age", True),
        ("gender", True),
        ("age,gender", True),
        ("country", True),
        ("region", True),
        ("publisher_platform", True),
        ("publisher_platform,impression_device", True),
        ("publisher_platform,platform_position", True),
        ("publisher_platform,platform_position,impression_device", True),
        ("product_id", True),
        ("hourly_stats_aggregated_by_advertiser_time_zone", True),
        ("hourly_stats_aggregated_by_audience_time_zone", True),
        ("app_id,skan_conversion_id", False),
    )
}
_ACTION_FIELDS = frozenset({"actions", "action_values", "conversions"})
REPORT_TIMES = ("impression", "conversion", "mixed", "lifetime")
FIELDS = frozenset(
    {
        "account_id",
        "account_name",
        "account_currency",
        "campaign_id",
        "campaign_name",
        "adset_id",
        "adset_name",
        "ad_id",
        "ad_name",
        "objective",
        "impressions",
        "clicks",
        "reach",
        "spend",
        "frequency",
        "ctr",
        "cpc",
        "cpm",
        "actions",
        "action_values",
        "conversions",
        "attribution_setting",
        "date_start",
        "date_stop",
    }
)
MONTHLY = -1  # time_increment=monthly: calendar months, clipped to the range
LEVELS = ("account", "campaign", "adset", "ad")
_PRESETS = {"today": 0, "yesterday": 1, "last_3d": 3, "last_7d": 7, "last_14d": 14}
_PRESETS.update({"last_28d": 28, "last_30d": 30, "last_90d": 90})
_RETENTION_DAYS = 37 * 30  # 37 months
_FIELD_ERROR = (
    "{} is not valid for fields param. please check "
    "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
    "for all valid values"
)


class InsightsQuery:
    """The parsed parameters of one insights request."""

    def __init__(
        self,
        *,
        level: str,
        since: date,
        until: date,
        increment: int | None,
        fields: list[str],
        breakdowns: list[str],
        windows: list[str],
        filtering: list[tuple[str, str, Any]],
        unified: bool = False,
    ) -> None:
        self.level = level
        self.since = since
        self.until = until
        self.increment = increment  # None: all_days
        self.fields = fields
        self.breakdowns = breakdowns
        self.windows = windows
        self.filtering = filtering
        self.unified = unified  # use_unified_attribution_setting=true


def _day(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid_param(f"param time_range[{name}] must be a date (YYYY-MM-DD)") from exc


def parse_query(params: Mapping[str, Any], today: date, default_level: str) -> InsightsQuery:
    level = str(params.get("level") or default_level)
    if level not in LEVELS:
        raise invalid_param(f"param level must be one of {{{', '.join(LEVELS)}}}")
    time_range = json_param(params, "time_range")
    if time_range is not None:
        if not isinstance(time_range, dict) or not {"since", "until"} <= set(time_range):
            raise invalid_param("param time_range must be an object with since and until")
        since, until = _day(time_range["since"], "since"), _day(time_range["until"], "until")
        if since > until:
            raise invalid_param("param time_range: since must be on or before until")
    else:
        preset = str(params.get("date_preset") or "last_30d")
        if preset == "maximum":
            since, until = today - timedelta(days=_RETENTION_DAYS), today
        elif preset in _PRESETS:
            days = _PRESETS[preset]
            until = today if preset == "today" else today - timedelta(days=1)
            since = today - timedelta(days=days) if days else today
        else:
            raise invalid_param(f"param date_preset must be one of {sorted(_PRESETS)}")
    since = max(since, today - timedelta(days=_RETENTION_DAYS))
    raw_increment = str(params.get("time_increment") or "all_days")
    if raw_increment == "all_days":
        increment: int | None = None
    elif raw_increment == "monthly":
        increment = MONTHLY
    else:
        try:
            increment = int(raw_increment)
        except ValueError as exc:
            raise invalid_param("param time_increment must be 1-90, monthly or all_days") from exc
        if not 1 <= increment <= 90:
            raise invalid_param("param time_increment must be 1-90, monthly or all_days")
    fields = list_param(params, "fields") or ["impressions", "spend"]
    for name in fields:
        if name not in FIELDS:
            raise invalid_param(_FIELD_ERROR.format(name))
    breakdowns = list_param(params, "breakdowns")
    for name in breakdowns:
        if name not in BREAKDOWNS:
            raise invalid_param(f"param breakdowns must be one of {sorted(BREAKDOWNS)}")
    _check_combination(breakdowns, with_actions=bool(_ACTION_FIELDS & set(fields)))
    _check_attribution_params(params)
    windows = list_param(params, "action_attribution_windows")
    for name in windows:
        if name not in (*WINDOWS, "default"):
            raise invalid_param(
                f"param action_attribution_windows: {name} is not a supported window"
            )
    return InsightsQuery(
        level=level,
        since=since,
        until=until,
        increment=increment,
        fields=fields,
        breakdowns=breakdowns,
        windows=windows,
        filtering=parse_filtering(params),
        unified=str(params.get("use_unified_attribution_setting", "")).lower() in ("true", "1"),
    )


def _check_combination(breakdowns: Sequence[str], *, with_actions: bool) -> None:
    if not breakdowns:
        return
    starred = COMBINATIONS.get(frozenset(breakdowns))
    if starred is None or (with_actions and not starred):
        columns = sorted({*breakdowns, *(("action_type",) if with_actions else ())})
        raise invalid_param(
            f"Current combination of data breakdown columns ({', '.join(columns)}) is invalid "
        )


def _check_attribution_params(params: Mapping[str, Any]) -> None:
    """The attribution parameters Meta disregards since June 2025 must still be well formed."""
    for name in ("use_unified_attribution_setting", "use_account_attribution_setting"):
        value = params.get(name)
        if value is not None and str(value).lower() not in ("true", "false", "1", "0"):
            raise invalid_param(f"param {name} must be a boolean")
    report_time = params.get("action_report_time")
    if report_time is not None and str(report_time) not in REPORT_TIMES:
        raise invalid_param(
            f"param action_report_time must be one of {{{', '.join(REPORT_TIMES)}}}"
        )


# -- computing rows -------------------------------------------------------------------------
def _filter_value(ad: MetaAd, name: str) -> Any:
    entity, _, attribute = name.rpartition(".")
    obj: Any = {"": ad, "ad": ad, "adset": ad.adset, "campaign": ad.campaign}.get(entity)
    if obj is None or attribute not in ("id", "name", "effective_status", "status"):
        raise KeyError(name)
    return getattr(obj, attribute)


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split by ``weights`` in integers that add up exactly (largest remainder)."""
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    parts = [int(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: parts[i] - shares[i])
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _broken_down(
    ad_day: AdDay, breakdowns: Sequence[str]
) -> Iterable[tuple[tuple[str, ...], AdDay]]:
    if not breakdowns:
        yield (), ad_day
        return
    buckets = list(product(*(BREAKDOWNS[b] for b in breakdowns)))
    seed = ad_day.ad.account.seed
    weights = []
    for bucket in buckets:
        weight = 1.0
        for name, value in zip(breakdowns, bucket, strict=True):
            weight *= 0.2 + unit(derive_key(seed, "mix", ad_day.ad.id, name, value))
        weights.append(weight)

    def spread(total: int) -> list[int]:
        return _split(total, weights)

    columns = {
        "impressions": spread(ad_day.impressions),
        "reach": spread(ad_day.reach),
        "clicks": spread(ad_day.clicks),
        "spend": spread(ad_day.spend),
    }
    per_action = {
        (bag, t, w): spread(n)
        for bag, source in (("a", ad_day.actions), ("v", ad_day.action_values))
        for t, windows in source.items()
        for w, n in windows.items()
    }
    for i, bucket in enumerate(buckets):
        actions: dict[str, dict[str, int]] = {}
        values: dict[str, dict[str, int]] = {}
        for (bag, t, w), split in per_action.items():
            (actions if bag == "a" else values).setdefault(t, {})[w] = split[i]
        yield (
            bucket,
            AdDay(
                ad_day.ad,
                ad_day.day,
                columns["impressions"][i],
                min(columns["reach"][i], columns["impressions"][i]),
                columns["clicks"][i],
                columns["spend"][i],
                actions,
                values,
            ),
        )


def compute_rows(
    account: MetaAccount,
    ads: Sequence[MetaAd],
    query: InsightsQuery,
    now: datetime,
) -> list[dict[str, Any]]:
    """The insights rows of ``ads`` (already limited to the node asked about)."""
    today = account.today(now)
    rules = list(query.filtering)
    if query.level == "ad" and not any(f.endswith("effective_status") for f, _, _ in rules):
        ads = [ad for ad in ads if ad.effective_status != "DELETED"]
    ads = apply_filtering(ads, rules, _filter_value)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    day = query.since
    while day <= query.until and day <= today:
        if query.increment is None:
            bucket_start, bucket_stop = query.since, query.until
        elif query.increment == MONTHLY:
            bucket_start = max(query.since, day.replace(day=1))
            next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            bucket_stop = min(next_month - timedelta(days=1), query.until)
        else:
            offset = (day - query.since).days // query.increment * query.increment
            bucket_start = query.since + timedelta(days=offset)
            bucket_stop = min(bucket_start + timedelta(days=query.increment - 1), query.until)
        for ad in ads:
            if not ad.delivers_on(day, today) and not _has_late(account, ad, day):
                continue
            ad_day = account.ad_day(ad, day)
            if ad_day is None:
                continue
            owner = {
                "account": account,
                "campaign": ad.campaign,
                "adset": ad.adset,
                "ad": ad,
            }[query.level]
            for bucket, part in _broken_down(ad_day, query.breakdowns):
                if part.impressions == 0 and not part.actions:
                    continue
                key = (owner.id, bucket_start, bucket)
                group = groups.setdefault(
                    key,
                    {
                        "ad": ad,
                        "start": bucket_start,
                        "stop": bucket_stop,
                        "bucket": bucket,
                        "sums": [0, 0, 0, 0],
                        "actions": {},
                        "values": {},
                        "settings": set(),
                    },
                )
                group["settings"].add(ad.adset.attribution_setting)
                sums = group["sums"]
                for i, n in enumerate((part.impressions, part.reach, part.clicks, part.spend)):
                    sums[i] += n
                for target, source in (
                    (group["actions"], part.actions),
                    (group["values"], part.action_values),
                ):
                    for t, windows in source.items():
                        into = target.setdefault(t, {})
                        for w, n in windows.items():
                            into[w] = into.get(w, 0) + n
        day += timedelta(days=1)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))
    return [_render(account, query, group) for _, group in ordered]


def _has_late(account: MetaAccount, ad: MetaAd, day: date) -> bool:
    return bool(account.late_on(ad.id, day))


def _ratio(numerator: float, denominator: float, digits: int = 6) -> str:
    return (
        "0" if not denominator else f"{numerator / denominator:.{digits}f}".rstrip("0").rstrip(".")
    )


def _action_list(
    account: MetaAccount, bag: dict[str, dict[str, int]], windows: Sequence[str], money: bool
) -> list[dict[str, str]]:
    def text(n: int) -> str:
        return account.money(n) if money else str(n)

    items = []
    for action_type in sorted(bag):
        counts = bag[action_type]
        if not counts.get("value") and not any(counts.get(w) for w in windows):
            continue
        item = {"action_type": action_type, "value": text(counts.get("value", 0))}
        for window in windows:
            if window == "default":
                continue
            if counts.get(window):
                item[window] = text(counts[window])
        items.append(item)
    return items


def _render(account: MetaAccount, query: InsightsQuery, group: dict[str, Any]) -> dict[str, Any]:
    ad: MetaAd = group["ad"]
    impressions, reach, clicks, spend = group["sums"]
    settings: set[str] = group["settings"]
    money = spend / (10**account.decimals)
    values: dict[str, Any] = {
        "account_id": account.account_id,
        "account_name": account.name,
        "account_currency": account.currency,
        "campaign_id": ad.campaign.id,
        "campaign_name": ad.campaign.name,
        "adset_id": ad.adset.id,
        "adset_name": ad.adset.name,
        "ad_id": ad.id,
        "ad_name": ad.name,
        "objective": ad.campaign.objective,
        "impressions": str(impressions),
        "clicks": str(clicks),
        "reach": str(reach),
        "spend": account.money(spend),
        "frequency": _ratio(impressions, reach),
        "ctr": _ratio(clicks * 100, impressions),
        "cpc": _ratio(money, clicks),
        "cpm": _ratio(money * 1000, impressions),
        "attribution_setting": next(iter(settings)) if len(settings) == 1 else "mixed",
    }
    actions = _action_list(account, group["actions"], query.windows, money=False)
    values["actions"] = actions
    values["action_values"] = _action_list(account, group["values"], query.windows, money=True)
    values["conversions"] = [
        a for a in actions if a["action_type"].startswith("offsite_conversion")
    ]
    level_hidden = {
        "account": {"campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name"},
        "campaign": {"adset_id", "adset_name", "ad_id", "ad_name"},
        "adset": {"ad_id", "ad_name"},
        "ad": set(),
    }[query.level]
    row: dict[str, Any] = {}
    for name in query.fields:
        if name in ("date_start", "date_stop") or name in level_hidden:
            continue
        value = values[name]
        if isinstance(value, list) and not value:
            continue  # Graph leaves out empty action lists
        if name == "attribution_setting" and not query.unified:
            continue  # null without use_unified_attribution_setting (module docstring)
        row[name] = value
    row["date_start"] = group["start"].isoformat()
    row["date_stop"] = group["stop"].isoformat()
    for name, value in zip(query.breakdowns, group["bucket"], strict=True):
        row[name] = value
    return row
