"""Meta Ads pieces that need no server: settings, usage headers, token warnings, splitting.

Expected values are written out from Meta's documented formats, not computed by the code
under test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.meta_ads import MetaAdsConfig
from connectors.meta_ads.errors import throttle_wait
from connectors.meta_ads.reports import ReportRunner, Slice
from tasks.sync import expiry_warning


def test_breakdown_sets_are_checked_sorted_and_unique() -> None:
    config = MetaAdsConfig.from_dict(
        {"breakdowns": [["gender", "age"], "country", ["age", "gender"]]}
    )
    assert config.breakdowns == (("age", "gender"), ("country",))
    assert MetaAdsConfig().breakdowns == ()
    with pytest.raises(ValueError, match="breakdowns"):
        MetaAdsConfig.from_dict({"breakdowns": [["age", "region"]]})
    with pytest.raises(ValueError, match="sync_max_days"):
        MetaAdsConfig(sync_max_days=0)
    with pytest.raises(ValueError, match="min_page_limit"):
        MetaAdsConfig(min_page_limit=0)


def test_breakdown_sets_are_the_combinations_meta_reports() -> None:
    """Insights API Breakdowns, "Combining breakdowns": of age, gender, country and
    publisher_platform, Meta reports age, gender, age+gender, country and publisher_platform;
    any other set is refused with one line saying what to list instead, by the config and by
    the registry's check (asked when a config is set and before every run)."""
    from connectors import registry

    for allowed in (["age"], ["gender"], ["gender", "age"], ["country"], ["publisher_platform"]):
        assert MetaAdsConfig.from_dict({"breakdowns": [allowed]}).breakdowns
    for refused in (
        ["age", "country"],
        ["gender", "publisher_platform"],
        ["age", "gender", "country"],
    ):
        with pytest.raises(ValueError, match="Meta does not report") as caught:
            MetaAdsConfig.from_dict({"breakdowns": [refused]})
        assert "\n" not in str(caught.value) and "age+gender" in str(caught.value)
    meta = registry.get("meta_ads")
    meta.check_config({"breakdowns": [["age", "gender"]], "page_limit": 50})
    with pytest.raises(
        registry.InvalidConfig, match=r"^Meta Ads config: breakdowns: .*age\+country"
    ):
        meta.check_config({"breakdowns": [["country", "age"]]})
    with pytest.raises(registry.InvalidConfig, match="page_limit"):
        meta.check_config({"page_limit": 0})


def test_throttle_wait_reads_minutes_and_seconds_and_takes_the_longer() -> None:
    buc = {"123": [{"type": "ads_insights", "estimated_time_to_regain_access": 4}]}
    headers = {
        "X-Business-Use-Case-Usage": json.dumps(buc),
        "x-ad-account-usage": json.dumps({"acc_id_util_pct": 100, "reset_time_duration": 30}),
    }
    assert throttle_wait(headers) == 240.0
    account = {"x-ad-account-usage": json.dumps({"reset_time_duration": 300})}
    assert throttle_wait({**headers, **account}) == 300.0
    assert throttle_wait({"x-business-use-case-usage": "not json"}) == 0.0
    assert throttle_wait(None) == 0.0


def test_expiry_warning_at_14_7_and_1_days() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert expiry_warning("Meta Ads", None, now) is None
    assert expiry_warning("Meta Ads", now + timedelta(days=20), now) is None
    fourteen = expiry_warning("Meta Ads", now + timedelta(days=10), now)
    assert fourteen is not None and "in 10 days" in fourteen and "14-day" in fourteen
    seven = expiry_warning("Meta Ads", now + timedelta(days=5), now)
    assert seven is not None and "in 5 days" in seven and "7-day" in seven
    one = expiry_warning("Meta Ads", now + timedelta(hours=20), now)
    assert one is not None and "in 1 day " in one and "1-day" in one
    assert "2026-11-02 08:00 UTC" in one


class _NoCampaigns(ReportRunner):
    def __init__(self, campaigns: tuple[str, ...]) -> None:
        self.listed = campaigns

    def _campaigns(self, node: str) -> tuple[str, ...]:
        return self.listed


def test_splitting_halves_the_range_then_the_campaigns_then_stops() -> None:
    runner = _NoCampaigns(("c1", "c2", "c3"))
    week = Slice("act_1", date(2026, 1, 1), date(2026, 1, 7))
    assert [(p.since.day, p.until.day) for p in runner._split(week)] == [(1, 3), (4, 7)]
    two = Slice("act_1", date(2026, 1, 1), date(2026, 1, 2))
    assert [(p.since.day, p.until.day) for p in runner._split(two)] == [(1, 1), (2, 2)]
    day = Slice("act_1", date(2026, 1, 1), date(2026, 1, 1))
    assert [p.campaigns for p in runner._split(day)] == [("c1",), ("c2", "c3")]
    assert runner._split(Slice("act_1", day.since, day.until, ("c1",))) == []
    assert _NoCampaigns(("c1",))._split(day) == []


def test_usage_headers_pause_only_a_throttled_account_and_space_one_near_its_limit() -> None:
    """Meta's own example of an ordinary answer (Marketing API, "Rate Limiting"):
    ``acc_id_util_pct`` 9.67 with ``reset_time_duration`` 100 -- the window resets in 100 s,
    nobody has to wait."""
    from connectors.meta_ads.usage import read_usage

    ordinary = read_usage(
        {"x-ad-account-usage": json.dumps({"acc_id_util_pct": 9.67, "reset_time_duration": 100})}
    )
    assert (ordinary.percent, ordinary.reset, ordinary.throttled) == (9.67, 100.0, False)
    assert ordinary.pause() == 0 and ordinary.spacing(1) == 0
    # 90% used, 100 s to the reset, 2% a call: 5 calls left must last 100 s.
    near = read_usage(
        {"x-ad-account-usage": json.dumps({"acc_id_util_pct": 90, "reset_time_duration": 100})}
    )
    assert not near.throttled and near.spacing(2) == 20.0
    buc = {"1": [{"type": "ads_management", "call_count": 100, "total_time": 12}]}
    spent = read_usage(
        {
            "x-business-use-case-usage": json.dumps(buc),
            "x-ad-account-usage": json.dumps({"acc_id_util_pct": 40, "reset_time_duration": 300}),
        }
    )
    assert spent.throttled and spent.pause() == 300.0
    regain = {"1": [{"type": "ads_insights", "estimated_time_to_regain_access": 4}]}
    waiting = read_usage({"X-Business-Use-Case-Usage": json.dumps(regain)})
    assert waiting.throttled and waiting.pause() == 240.0
    assert read_usage(None).pause() == 0 and read_usage({"x-app-usage": "not json"}).percent == 0
