"""``sync_meta_ads`` end to end: the Meta Graph emulator over real sockets, the real
facebook-business SDK, real PostgreSQL and real Prefect.

Expected rows are built from the emulator's own objects (its ads tree and
``MetaAccount.ad_day``) through the mapping below, never through the connector's records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from db import engine as db_engine
from db import schema, tenancy
from db.rbac import PermissionDenied
from flows import backfill, sync_meta_ads
from sandbox.meta import MetaAdSet, MetaBusiness, MetaEmulator, ReportRun
from sandbox.meta.data import MetaAccount
from sandbox.meta.insights import _broken_down
from tasks.sync import ReauthRequired
from tests.flows.conftest import World, kill_cli_midway, seeded_world

CONVERSION_TYPES = {
    "offsite_conversion.fb_pixel_purchase",
    "onsite_conversion.purchase",
    "offsite_conversion.fb_pixel_lead",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_custom",
}
FIRST_SYNC_DAYS = 90  # the connector's default first-sync depth
LOOKBACK_DAYS = 28


@dataclass
class MetaWorld(World):
    business: MetaBusiness | None = None
    seeded_on: dict[str, date] | None = None  # each account's day when it was seeded

    @property
    def meta(self) -> MetaEmulator:
        emulator = self.sandbox.emulators["meta_ads"]
        assert isinstance(emulator, MetaEmulator)
        return emulator

    def add_meta(
        self, key: str, *, config: dict[str, Any] | None = None, **business_kwargs: Any
    ) -> int:
        """An agency-wide integration over a business with one owned and two client ad
        accounts: globex's listed as ``act_<id>``, initech's as the bare id. The sandbox
        runs provider minutes in seconds: the connector follows (``rate_scale``) and polls
        report runs quickly."""
        config = {
            "rate_scale": self.sandbox.time_scale,
            "poll_interval": 0.02,
            "max_poll_interval": 0.1,
            **(config or {}),
        }
        business = self.meta.add_business("Acme Agency", owned=1, clients=2, **business_kwargs)
        first, second = business.clients
        with self.engine.begin() as conn:
            for name, ids in (("globex", [first.id]), ("initech", [second.account_id])):
                conn.execute(
                    schema.client.update()
                    .where(schema.client.c.id == self.clients[name])
                    .values(ad_account_ids=ids)
                )
            iid = tenancy.add_integration(
                conn,
                self.agency_id,
                "meta_ads",
                f"meta-{key}",
                external_account_id=business.id,
                config=config,
            )
            db_engine.default_vault().put(conn, iid, dict(business.credentials))
        self.integrations[key] = iid
        self.business = business
        self.seeded_on = {a.account_id: _today(a) for a in business.accounts}
        return iid


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[MetaWorld]:
    with seeded_world(
        MetaWorld, fresh_engine, monkeypatch, providers=("meta_ads",), time_scale=60, seed=23
    ) as w:
        yield w


# -- the emulator's truth, mapped to our columns ------------------------------------------------
_EVENTS = {"CLICK_THROUGH": "click", "VIEW_THROUGH": "view", "ENGAGED_VIDEO_VIEW": "ev"}


def attribution_windows(adset: MetaAdSet) -> list[str]:
    """The ad set's ``attribution_spec`` as Meta names windows (``7d_click``, ``1d_view``).
    Ads Manager -- and, since June 10, 2025, the Insights API -- counts an action's ``value``
    over exactly these (Insights API, "Discrepancy with Ads Manager")."""
    return [f"{days}d_{_EVENTS[event]}" for event, days in adset.attribution_spec]


def _time(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)  # Graph sends whole seconds


def _today(account: MetaAccount) -> date:
    return account.today(datetime.now(UTC))


def insight_truth(account: MetaAccount, since: date) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    today = _today(account)
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for ad in account.ads.values():  # DELETED and ARCHIVED ones too
        day = since
        while day <= today:
            late = any(a == ad.id and d == day for a, d, _ in account.late)
            numbers = account.ad_day(ad, day)
            if (ad.delivers_on(day, today) or late) and numbers is not None:
                windows = attribution_windows(ad.adset)
                conversions = sum(
                    sum(w.get(n, 0) for n in windows)
                    for t, w in numbers.actions.items()
                    if t in CONVERSION_TYPES
                )
                value = sum(
                    (
                        Decimal(account.money(sum(w.get(n, 0) for n in windows)))
                        for t, w in numbers.action_values.items()
                        if t in CONVERSION_TYPES
                    ),
                    Decimal(0),
                )
                rows[(ad.id, day)] = (
                    account.account_id,
                    ad.campaign.id,
                    ad.adset.id,
                    numbers.impressions,
                    numbers.clicks,
                    numbers.reach,
                    Decimal(account.money(numbers.spend)),
                    account.currency,
                    Decimal(conversions),
                    value,
                    "_".join(windows),
                )
            day += timedelta(days=1)
    return rows


def truth(
    business: MetaBusiness, days: int = FIRST_SYNC_DAYS
) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    accounts = business.accounts
    out: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {
        "meta_ad_accounts": {
            (a.account_id,): (a.name, a.currency, a.timezone_name, a.account_status, business.id)
            for a in accounts
        },
        "meta_campaigns": {},
        "meta_ad_sets": {},
        "meta_ads": {},
        "meta_ad_insights_daily": {},
    }
    for a in accounts:
        for c in a.campaigns.values():
            out["meta_campaigns"][(c.id,)] = (
                a.account_id,
                c.name,
                c.status,
                c.effective_status,
                c.objective,
            )
        for s in a.adsets.values():
            out["meta_ad_sets"][(s.id,)] = (
                a.account_id,
                s.campaign.id,
                s.name,
                s.status,
                s.effective_status,
                s.daily_budget,
            )
        for ad in a.ads.values():
            out["meta_ads"][(ad.id,)] = (
                a.account_id,
                ad.campaign.id,
                ad.adset.id,
                ad.name,
                ad.status,
                ad.effective_status,
                _time(ad.created_time),
                _time(ad.updated_time),
            )
        since = _today(a) - timedelta(days=days)
        out["meta_ad_insights_daily"].update(insight_truth(a, since))
    return out


COLUMNS = {
    "meta_ad_accounts": (
        ("account_id",),
        ("name", "currency", "timezone_name", "account_status", "business_id"),
    ),
    "meta_campaigns": (
        ("campaign_id",),
        ("account_id", "name", "status", "effective_status", "objective"),
    ),
    "meta_ad_sets": (
        ("adset_id",),
        ("account_id", "campaign_id", "name", "status", "effective_status", "daily_budget"),
    ),
    "meta_ads": (
        ("ad_id",),
        (
            "account_id",
            "campaign_id",
            "adset_id",
            "name",
            "status",
            "effective_status",
            "created_time",
            "updated_time",
        ),
    ),
    "meta_ad_insights_daily": (
        ("ad_id", "date_start"),
        (
            "account_id",
            "campaign_id",
            "adset_id",
            "impressions",
            "clicks",
            "reach",
            "spend",
            "currency",
            "conversions",
            "conversion_value",
            "attribution_setting",
        ),
    ),
}


def stored(
    engine: sa.Engine, iid: int, columns_of: dict[str, Any] = COLUMNS
) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for name, (key, columns) in columns_of.items():
            table = schema.agency_metadata.tables[name]
            query = sa.select(*[table.c[k] for k in key], *[table.c[c] for c in columns]).where(
                table.c.integration_id == iid, table.c.deleted_at.is_(None)
            )
            out[name] = {tuple(r[: len(key)]): tuple(r[len(key) :]) for r in conn.execute(query)}
    return out


def assert_stored_is_truth(world: MetaWorld, iid: int, days: int = FIRST_SYNC_DAYS) -> None:
    assert world.business is not None
    want, got = truth(world.business, days), stored(world.data, iid)
    insights = got["meta_ad_insights_daily"]
    for account in world.business.accounts:
        seeded, today = (world.seeded_on or {}).get(account.account_id), _today(account)
        if seeded is not None and today > seeded:
            # Midnight passed in the account's time zone during the test: the days that left
            # the window since are never read again and stay as synced; compare the rest.
            gone = (seeded - timedelta(days=days), today - timedelta(days=days))
            for key in [k for k, v in insights.items() if v[0] == account.account_id]:
                if gone[0] <= key[1] < gone[1]:
                    del insights[key]
    assert_same(want, got)


def assert_same(
    want: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]],
    got: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]],
) -> None:
    for table in want:
        missing = want[table].keys() - got[table].keys()
        extra = got[table].keys() - want[table].keys()
        wrong = {
            k: (got[table][k], want[table][k])
            for k in want[table].keys() & got[table].keys()
            if got[table][k] != want[table][k]
        }
        assert not (missing or extra or wrong), (
            f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
            f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:2]}"
        )


def insight_ranges(world: MetaWorld) -> dict[str, list[tuple[str, str]]]:
    """(since, until) of every insights request, per ad account node."""
    ranges: dict[str, list[tuple[str, str]]] = {}
    for entry in world.sandbox.log.entries(method="insights"):
        if entry.params.get("after"):
            continue
        node = entry.path.strip("/").split("/")[1]
        span = json.loads(entry.params["time_range"])
        ranges.setdefault(node, []).append((span["since"], span["until"]))
    return ranges


# -- the tests --------------------------------------------------------------------------------
def test_full_sync_lands_the_truth_deleted_archived_and_past_empty_pages(
    world: MetaWorld,
) -> None:
    iid = world.add_meta("full", config={"page_limit": 3})
    world.meta.set_empty_pages("ads", 1)  # the second page of each ads listing: empty, "next"
    world.meta.set_empty_pages("insights", 1)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid)

    assert world.business is not None
    want = truth(world.business)
    statuses = {row[4] for row in want["meta_ads"].values()}
    assert {"ACTIVE", "PAUSED", "ARCHIVED", "DELETED"} <= statuses
    deleted = [k for k, row in want["meta_ads"].items() if row[4] == "DELETED"]
    assert any(k[0] == d[0] for k in want["meta_ad_insights_daily"] for d in deleted)
    # An ads listing of 8 objects at 3 a page, its second page empty: 4 requests per account.
    ads_pages = world.sandbox.log.entries(method="ads")
    assert len(ads_pages) == 4 * len(world.business.accounts)
    assert result["streams"]["insights_daily"]["inserted"] == len(want["meta_ad_insights_daily"])

    # Rows are attributed through the clients' ad accounts (act_ prefix or not).
    owned, first, second = world.business.accounts
    expected_client = {
        owned.account_id: None,
        first.account_id: world.clients["globex"],
        second.account_id: world.clients["initech"],
    }
    with world.data.connect() as conn:
        for name in COLUMNS:
            table = schema.agency_metadata.tables[name]
            pairs = set(conn.execute(sa.select(table.c.account_id, table.c.client_id).distinct()))
            assert pairs == set(expected_client.items()), name


def test_incremental_rereads_the_lookback_and_late_conversions(world: MetaWorld) -> None:
    iid = world.add_meta("inc")
    first = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded"
    assert world.business is not None
    accounts = world.business.accounts

    # Nothing changed upstream: only the lookback is read again, and nothing is rewritten.
    world.sandbox.log.clear()
    second = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded"
    ranges = insight_ranges(world)
    for account in accounts:
        today = _today(account)
        since = (today - timedelta(days=LOOKBACK_DAYS)).isoformat()
        assert ranges[account.id] == [(since, today.isoformat())]
    for stream in ("ad_accounts", "campaigns", "ad_sets", "ads", "insights_daily"):
        counts = second["streams"][stream]
        assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 0, 0), stream
    assert_stored_is_truth(world, iid)

    # Late conversions: inside the lookback they reach the stored day, outside they do not.
    account = accounts[0]
    today = _today(account)
    ad = next(
        a
        for a in account.ads.values()
        if a.status == "ACTIVE"
        and "7d_click" in attribution_windows(a.adset)  # late clicks count in its conversions
        and all(
            account.ad_day(a, today - timedelta(days=n)) is not None
            and a.delivers_on(today - timedelta(days=n), today)
            for n in (5, 40)
        )
    )
    inside, outside = today - timedelta(days=5), today - timedelta(days=40)
    table = schema.meta_ad_insights_daily

    def conversions(day: date) -> tuple[Decimal, Decimal]:
        with world.data.connect() as conn:
            row = conn.execute(
                sa.select(table.c.conversions, table.c.conversion_value).where(
                    table.c.integration_id == iid,
                    table.c.ad_id == ad.id,
                    table.c.date_start == day,
                )
            ).one()
        return row[0], row[1]

    before_inside, before_outside = conversions(inside), conversions(outside)
    world.meta.add_late_conversions(ad.id, inside, count=3, value="90.00")
    world.meta.add_late_conversions(ad.id, outside, count=2, value="40.00")
    third = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert third["status"] == "succeeded"
    assert conversions(inside) == (before_inside[0] + 3, before_inside[1] + Decimal("90.00"))
    assert conversions(outside) == before_outside
    insights = third["streams"]["insights_daily"]
    assert (insights["inserted"], insights["updated"]) == (0, 1)
    # The stored table is the truth except for the day the lookback no longer reaches.
    want = truth(world.business)["meta_ad_insights_daily"]
    got = stored(world.data, iid)["meta_ad_insights_daily"]
    differ = {k for k in want.keys() & got.keys() if want[k] != got[k]}
    assert differ == {(ad.id, outside)} and want.keys() == got.keys()


# -- async report runs ------------------------------------------------------------------------
def jobs(world: MetaWorld) -> list[ReportRun]:
    """The report runs the emulator started, oldest first."""
    return list(world.meta.report_runs.values())


def job_range(job: ReportRun) -> tuple[int, str | None]:
    """(days, campaign filter) of a job."""
    rules = json.loads(job.params["filtering"]) if job.params.get("filtering") else []
    campaigns = [r["value"] for r in rules if r["field"] == "campaign.id"]
    return (job.until - job.since).days + 1, json.dumps(campaigns[0]) if campaigns else None


def run_log(world: MetaWorld, run_id: str) -> list[tuple[str, int]]:
    """(method, status) of every request about one report run, in order."""
    return [
        (e.method, e.status)
        for e in world.sandbox.log.entries()
        if e.method.startswith("report_run") and e.path.strip("/").split("/")[1] == run_id
    ]


def test_async_jobs_wait_for_completed_and_reread_2601_without_a_new_job(
    world: MetaWorld,
) -> None:
    # 11 days > sync_max_days: the first sync goes through one report run per account.
    iid = world.add_meta("async", config={"initial_days": 10, "sync_max_days": 5})
    world.meta.script_next_report(
        ("Job Running", 100), ("Job Running", 100), ("Job Completed", 100), unready_reads=1
    )
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=10)
    assert world.business is not None
    started = jobs(world)
    assert [j.account.id for j in started] == [a.id for a in world.business.accounts]
    assert world.sandbox.log.count(method="insights.async") == 3
    assert world.sandbox.log.count(method="insights") == 0  # nothing read synchronously
    # 100% while running is waited out; the results are read only after "Job Completed",
    # and the 2601 answer then is read again from the same job.
    first = started[0].id
    assert run_log(world, first) == [
        ("report_run", 200),
        ("report_run", 200),
        ("report_run", 200),
        ("report_run.insights", 400),
        ("report_run.insights", 200),
    ]


def test_failed_and_skipped_jobs_are_retried_then_split_down_to_campaigns(
    world: MetaWorld,
) -> None:
    iid = world.add_meta("split", config={"initial_days": 1, "sync_max_days": 1})
    failed, skipped = ("Job Failed", 30), ("Job Skipped", 0)
    for script in (failed, skipped, failed, failed):  # the 2-day job, then its first day
        world.meta.script_next_report(script)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=1)
    assert world.business is not None
    account = world.business.accounts[0]
    campaigns = list(account.campaigns)
    mine = [job_range(j) for j in jobs(world) if j.account is account]
    assert (
        mine
        == [
            (2, None),  # failed
            (2, None),  # retried once: skipped
            (1, None),  # split: the first day failed ...
            (1, None),  # ... twice
            (1, json.dumps(campaigns[:1])),  # so it is split by campaigns
            (1, json.dumps(campaigns[1:])),
            (1, None),  # the second day
        ]
    )
    warnings = result["streams"]["insights_daily"]["warnings"]
    assert any("split into 2" in w for w in warnings)


def test_a_stuck_job_is_split(world: MetaWorld) -> None:
    iid = world.add_meta(
        "stuck", config={"initial_days": 3, "sync_max_days": 1, "job_timeout": 0.5}
    )
    world.meta.script_next_report(("Job Running", 40))  # never completes
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=3)
    assert world.business is not None
    account = world.business.accounts[0]
    mine = [j for j in jobs(world) if j.account is account]
    assert [job_range(j)[0] for j in mine] == [4, 2, 2]
    assert mine[0].polls >= 3 and mine[0].shown == "Job Running"
    assert not any(m == "report_run.insights" for m, _ in run_log(world, mine[0].id))


# -- answers too heavy for Meta -----------------------------------------------------------------
def _page_requests(world: MetaWorld, account: MetaAccount) -> list[tuple[str, int, int]]:
    """(method, limit, status) of every insights page requested for ``account``: synchronous
    pages and report-run result pages alike."""
    out = []
    for e in world.sandbox.log.entries(provider="meta"):
        node = e.path.strip("/").split("/")[1]
        run = world.meta.report_runs.get(node)
        mine = node == account.id if e.method == "insights" else run and run.account is account
        if e.method in ("insights", "report_run.insights") and mine:
            out.append((e.method, int(e.params["limit"]), e.status))
    return out


@pytest.mark.parametrize("path", ["sync", "report_runs"])
def test_pages_too_heavy_for_meta_are_read_smaller_and_the_run_equals_the_truth(
    world: MetaWorld, path: str
) -> None:
    """Meta answers a page it finds too heavy with HTTP 500, code 1 "Please reduce the amount
    of data you're asking for, then retry your request" (facebook-python-business-sdk#470 for
    act_X/insights; singer-io/tap-facebook#65 for a report run's result pages), and the same
    request again gets the same answer. The run asks for that account's pages at half the
    size until Meta answers, and ends equal to the truth with every account read."""
    from connectors.meta_ads.settings import INSIGHT_FIELDS

    days = 20 if path == "sync" else 40  # 41 days > sync_max_days: report runs
    iid = world.add_meta(f"heavy-{path}", config={"initial_days": days, "chunk_days": 20})
    assert world.business is not None
    heavy = world.business.accounts[1]
    # Pages of more than 60 rows are too heavy for this account: 100-row pages are refused.
    since = _today(heavy) - timedelta(days=days)
    first_chunk = [d for _, d in insight_truth(heavy, since) if d < since + timedelta(days=20)]
    assert len(first_chunk) > 60  # the first page of the first 20 days is too heavy
    world.meta.set_data_limit(heavy.id, page_cells=60 * len(INSIGHT_FIELDS))
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=days)
    insights = result["streams"]["insights_daily"]
    assert not insights["skipped"], insights
    method = "insights" if path == "sync" else "report_run.insights"
    asked = _page_requests(world, heavy)
    assert asked[0] == (method, 100, 500)  # the default page size, refused ...
    assert (method, 50, 200) in asked  # ... then half of it, answered
    assert all(limit <= 50 for _, limit, _ in asked[1:])  # and no 100-row page again
    assert sum(status == 500 for _, _, status in asked) == 1
    for other in world.business.accounts:
        if other is not heavy:
            assert {(limit, status) for _, limit, status in _page_requests(world, other)} == {
                (100, 200)
            }
    assert any(heavy.id in w and "too much data" in w for w in insights["warnings"])


def test_a_range_too_heavy_for_one_query_is_read_in_halves(world: MetaWorld) -> None:
    """When even the smallest page is refused, what is too heavy is the range the query
    computes: it is read as two halves of its days (Meta's Insights best practices: "break
    down the query into smaller queries by putting in filters like date range")."""
    iid = world.add_meta("range", config={"initial_days": 20, "min_page_limit": 25})
    assert world.business is not None
    heavy = world.business.accounts[2]
    today = _today(heavy)
    since = today - timedelta(days=20)
    middle = since + timedelta(days=9)  # 21 days: the first 10 and the last 11
    rows = insight_truth(heavy, since)
    halves = [
        sum(since <= d <= middle for _, d in rows),
        sum(middle < d for _, d in rows),
    ]
    world.meta.set_data_limit(heavy.id, query_rows=max(halves))
    assert max(halves) < len(rows)  # the whole range is refused, each half is not
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=20)
    asked = [
        (json.loads(e.params["time_range"]), int(e.params["limit"]), e.status)
        for e in world.sandbox.log.entries(method="insights")
        if e.path.strip("/").split("/")[1] == heavy.id and not e.params.get("after")
    ]
    whole = {"since": since.isoformat(), "until": today.isoformat()}
    assert [(r, n, s) for r, n, s in asked if r == whole] == [
        (whole, 100, 500),
        (whole, 50, 500),
        (whole, 25, 500),
    ]
    ranges = [(r["since"], r["until"]) for r, _, s in asked if s == 200]
    assert ranges == [
        (since.isoformat(), middle.isoformat()),
        ((middle + timedelta(days=1)).isoformat(), today.isoformat()),
    ]
    assert not result["streams"]["insights_daily"]["skipped"]


def test_a_report_run_whose_pages_stay_too_heavy_is_split(world: MetaWorld) -> None:
    """A report run's result pages refused even at the smallest page size: the run's slice
    is split as a failed job's is (shorter ranges, then fewer campaigns), until its pages are
    light enough, and the run ends equal to the truth."""
    from connectors.meta_ads.settings import INSIGHT_FIELDS

    iid = world.add_meta(
        "heavy-job",
        config={"initial_days": 3, "sync_max_days": 1, "page_limit": 10, "min_page_limit": 10},
    )
    assert world.business is not None
    heavy = world.business.accounts[0]
    world.meta.set_data_limit(heavy.id, page_cells=5 * len(INSIGHT_FIELDS))
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=3)
    mine = [job_range(j) for j in jobs(world) if j.account is heavy]
    assert mine[0] == (4, None) and len(mine) > 2
    assert all(days < 4 for days, _ in mine[1:])
    assert any(status == 500 for _, _, status in _page_requests(world, heavy))
    warnings = result["streams"]["insights_daily"]["warnings"]
    assert any(heavy.id in w and "split into 2" in w for w in warnings), warnings


# -- numbers as Ads Manager shows them -----------------------------------------------------------
def test_conversions_follow_each_ad_sets_attribution_setting(world: MetaWorld) -> None:
    """Ads Manager counts each ad's conversions over its ad set's attribution setting (7-day
    click or 1-day view, 1-day click, ...), and so does the Insights API when asked with
    ``use_unified_attribution_setting=true`` -- and, since June 10, 2025, whatever it is asked
    (Insights API, "Discrepancy with Ads Manager"). The stored conversions and the stored
    ``attribution_setting`` are each row's ad set's (mapped from the emulator's ad sets)."""
    iid = world.add_meta("attribution", config={"initial_days": 5})
    assert world.business is not None
    settings_used = {
        "_".join(attribution_windows(s)) for a in world.business.accounts for s in a.adsets.values()
    }
    assert len(settings_used) > 1 and "7d_click_1d_view" in settings_used
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=5)
    stored_settings = {v[-1] for v in stored(world.data, iid)["meta_ad_insights_daily"].values()}
    assert stored_settings == {
        v[-1] for v in truth(world.business, 5)["meta_ad_insights_daily"].values()
    }
    asked = world.sandbox.log.entries(method="insights")
    assert asked and all(e.params["use_unified_attribution_setting"] == "true" for e in asked)


def test_a_breakdown_set_meta_does_not_combine_fails_the_run_before_any_request(
    world: MetaWorld,
) -> None:
    """Meta reports breakdowns only in the combinations of its table (Insights API
    Breakdowns, "Combining breakdowns"): age and country together are refused with code 100
    for every account. Such a config fails the run once, with one line saying what to change,
    before a single request."""
    from tasks.run import SyncFailed

    iid = world.add_meta("combos", config={"breakdowns": [["age", "country"]]})
    world.sandbox.log.clear()
    with pytest.raises(SyncFailed) as failed:
        sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    message = str(failed.value)
    assert "\n" not in message and "age+country" in message and '[["age"], ["country"]]' in message
    assert list(failed.value.errors) == ["run"]
    assert len(world.sandbox.log) == 0


# -- throttling -------------------------------------------------------------------------------
def account_requests(world: MetaWorld, node: str) -> list[tuple[datetime, int, str]]:
    """(time, status, method) of every request naming ad account ``node``."""
    return [
        (e.at, e.status, e.method)
        for e in world.sandbox.log.entries(provider="meta")
        if e.path.strip("/").split("/")[1:2] == [node]
    ]


def test_a_throttled_account_pauses_for_the_headers_time_while_others_go_on(
    world: MetaWorld,
) -> None:
    iid = world.add_meta("throttle", config={"initial_days": 5})
    assert world.business is not None
    throttled, *others = world.business.accounts
    world.meta.provider_time_headers = True  # headers in Meta's minutes; rate_scale follows
    # 8 s here: long enough to still hold when a loaded machine reaches the campaigns.
    world.meta.throttle(throttled.id, code=17, subcode=2446079, minutes=8)
    blocked_until = datetime.now(UTC) + timedelta(seconds=8)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=5)
    assert result["streams"]["campaigns"]["rate_limited"] == 1

    calls = account_requests(world, throttled.id)
    refused = [c for c in calls if c[1] == 400]
    assert len(refused) == 1 and refused[0][2] == "campaigns"
    retry = calls[calls.index(refused[0]) + 1]
    # The headers said how long the block still lasted (whole Meta minutes, a second each
    # here): the account called again once it was over -- not before (a second refusal),
    # and not much after (the rounding up to a minute, plus up to 10% jitter, plus 1.5 s for a
    # loaded 2-core machine to get round to it).
    assert blocked_until <= retry[0] < blocked_until + timedelta(seconds=1.1 + 1.5)
    # Meanwhile the other accounts were read: their campaigns, at least, in the pause.
    for account in others:
        during = [c for c in account_requests(world, account.id) if refused[0][0] < c[0] < retry[0]]
        assert any(c[2] == "campaigns" and c[1] == 200 for c in during), account.id


def test_a_pause_longer_than_the_budget_ends_the_account_and_the_next_run_resumes(
    world: MetaWorld,
) -> None:
    iid = world.add_meta(
        "budget", config={"throttle_budget": 5, "initial_days": 60, "chunk_days": 20}
    )
    assert world.business is not None
    throttled = world.business.accounts[1]
    world.meta.provider_time_headers = True
    # Enough calls for the three listings and about one report run, then code 17 / 2446079
    # until the end of the emulator's hour (a minute here): far past the run's budget.
    world.meta.set_call_budget(throttled.id, 9)
    first = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded"
    warnings = first["streams"]["insights_daily"]["warnings"]
    assert any(throttled.id in w and "resumes" in w for w in warnings), warnings
    with world.data.connect() as conn:
        saved = conn.execute(
            sa.select(schema.sync_state.c.cursor).where(
                schema.sync_state.c.integration_id == iid,
                schema.sync_state.c.stream == "insights_daily",
                schema.sync_state.c.partition == throttled.account_id,
            )
        ).scalar_one()
    stopped_at = date.fromisoformat(saved["through"])
    assert stopped_at < _today(throttled)  # it got part of the way
    others = [a for a in world.business.accounts if a is not throttled]
    want, got = truth(world.business, 60), stored(world.data, iid)
    for table in ("meta_ad_insights_daily",):
        for account in others:
            mine = {k: v for k, v in want[table].items() if v[0] == account.account_id}
            assert {k: got[table][k] for k in mine if k in got[table]} == mine

    world.meta.set_call_budget(throttled.id, 10_000)
    world.meta.throttle(throttled.id, minutes=0)  # the hour is over at Meta ...
    end_holds(world)  # ... and so for the pause it announced
    world.meta.report_runs.clear()
    second = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=60)
    # It carried on from its cursor (with the lookback), not from its first day again.
    resumed = [j.since for j in jobs(world) if j.account is throttled]
    lookback = _today(throttled) - timedelta(days=LOOKBACK_DAYS)
    assert min(resumed) == min(stopped_at + timedelta(days=1), lookback)


def end_holds(world: MetaWorld) -> None:
    """The provider's time of every pause has come (``provider_hold``, ``db/holds.py``)."""
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE provider_hold SET until = now() WHERE until > now()"))


def calls_about(world: MetaWorld, account: MetaAccount) -> list[tuple[datetime, int, str]]:
    """(time, status, method) of every request about ``account``: on its node, or on one of
    its report runs."""
    nodes = {account.id, *(r.id for r in jobs(world) if r.account is account)}
    return [
        (e.at, e.status, e.method)
        for e in world.sandbox.log.entries(provider="meta")
        if e.path.strip("/").split("/")[1:2] and e.path.strip("/").split("/")[1] in nodes
    ]


def test_a_paused_account_is_held_for_every_stream_and_run_until_metas_time(
    world: MetaWorld,
) -> None:
    """Issue 19, findings 2 and 3 at flow level. Meta throttles per ad account and app and
    says for how long (Marketing API, "Rate Limiting": business use case codes 80000-80014,
    ``estimated_time_to_regain_access`` in minutes, usage at 100% until the usage window
    resets); ordinary answers carry usage headers with a non-zero ``reset_time_duration``,
    which is no wait. One account is refused (80004 / 2446079) for 10 Meta minutes; another
    spends its whole budget on its first answer, whose headers say 100% until its 10-minute
    window resets. Both pauses outlast the run's ``throttle_budget``. The run reads every
    stream of the third account without a pause. Each pause is kept where every worker sees
    it (``provider_hold``): no later stream of the run and not the next run calls a paused
    account before Meta's time; they skip it with a warning, and ``aos-sync status`` shows
    the hold. The first run after that reads both from their cursors and ends equal to the
    truth."""
    from db.health import integration_health

    # A first sync as deep as the lookback: every later run re-reads exactly those days.
    config = {"initial_days": 3, "lookback_days": 3, "throttle_budget": 1}
    iid = world.add_meta("held", config=config)
    assert world.business is not None
    free, held, spent = world.business.accounts
    world.meta.provider_time_headers = True
    world.meta.budget_window = 600.0  # Meta seconds: 10 s here, a Meta minute being a second
    world.meta.throttle(held.id, code=80004, subcode=2446079, minutes=10)
    world.meta.set_call_budget(spent.id, 1)
    blocked_until = datetime.now(UTC) + timedelta(seconds=10)

    first = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded", first
    # Each called once; no later stream asked Meta about them again.
    assert [c[1:] for c in calls_about(world, held)] == [(400, "campaigns")]
    assert [c[1:] for c in calls_about(world, spent)] == [(200, "campaigns")]
    for name in ("campaigns", "ad_sets", "ads", "insights_daily"):
        stream = first["streams"][name]
        paused = [held] if name == "campaigns" else [held, spent]
        assert stream["skipped"] == [f"{a.id}: throttled" for a in paused], (name, stream)
        for account in paused:
            assert any(account.id in w and "paused until" in w for w in stream["warnings"])
    assert sum(s["rate_limited"] for s in first["streams"].values()) == 1
    # Every stream of the free account is complete.
    want, got = truth(world.business, 3), stored(world.data, iid)
    del want["meta_ad_accounts"], got["meta_ad_accounts"]
    mine = {
        t: {k: v for k, v in rows.items() if v[0] == free.account_id} for t, rows in want.items()
    }
    mine["meta_campaigns"].update(
        {k: v for k, v in want["meta_campaigns"].items() if v[0] == spent.account_id}
    )
    assert_same(mine, got)
    assert all(e.status == 200 for e in world.sandbox.log.entries() if e.method != "campaigns")

    # The next run, before Meta's time: both are skipped again without a call.
    second = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded", second
    assert datetime.now(UTC) < blocked_until, "the machine was too slow for this test"
    assert second["streams"]["ads"]["skipped"] == [
        f"{held.id}: throttled",
        f"{spent.id}: throttled",
    ]
    assert len(calls_about(world, held)) == len(calls_about(world, spent)) == 1
    with world.engine.connect() as conn:
        [health] = [
            h
            for h in integration_health(conn, datetime.now(UTC), {}, agency_id=world.agency_id)
            if h.integration_id == iid
        ]
        rows = conn.execute(sa.text("SELECT scope, until FROM provider_hold")).all()
    until: dict[str, datetime] = {r.scope: r.until for r in rows}
    assert health.hold is not None and "(+1 more)" in health.hold, health.hold
    assert {scope.split("@")[0] for scope in until} == {held.id, spent.id}
    assert min(until.values()) >= blocked_until - timedelta(seconds=2)  # whole Meta minutes

    time.sleep(max(0.0, (max(until.values()) - datetime.now(UTC)).total_seconds()) + 0.2)
    world.meta.set_call_budget(spent.id, 10_000)  # its next window is not spent at once
    third = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert third["status"] == "succeeded", third
    assert not any(s["skipped"] or s["warnings"] for s in third["streams"].values()), third
    assert_stored_is_truth(world, iid, days=3)
    for account in (held, spent):
        resumed = [c for c in calls_about(world, account)][1:]
        ended = next(u for scope, u in until.items() if scope.startswith(account.id + "@"))
        assert resumed and resumed[0][0] >= ended and all(c[1] == 200 for c in resumed)


def test_ordinary_usage_headers_pause_no_account(world: MetaWorld) -> None:
    """Meta sends ``reset_time_duration`` non-zero at low usage (Marketing API, "Rate
    Limiting": ``acc_id_util_pct`` 9.67 with ``reset_time_duration`` 100): it is when the
    usage window resets, not a wait. A run whose accounts are far from their limits reads
    every stream of every account without pausing any."""
    iid = world.add_meta("usage", config={"initial_days": 5, "throttle_budget": 2, "page_limit": 2})
    assert world.business is not None
    world.meta.provider_time_headers = True
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=5)
    for name, stream in result["streams"].items():
        assert not stream["skipped"] and not stream["warnings"], (name, stream)
        assert stream["rate_limited"] == 0, name
    # Several pages per account and stream, every one answered.
    for account in world.business.accounts:
        calls = account_requests(world, account.id)
        assert sum(c[2] == "ads" for c in calls) > 1 and all(c[1] == 200 for c in calls)


def test_an_account_near_its_limit_slows_down_instead_of_being_throttled(
    world: MetaWorld,
) -> None:
    """From 75% of its limit an account's calls are spaced so that what is left lasts until
    its usage window resets: the run never reaches Meta's throttle (code 17) although it
    makes more calls than one window allows."""
    iid = world.add_meta("near", config={"initial_days": 3, "page_limit": 2})
    assert world.business is not None
    busy = world.business.accounts[0]
    world.meta.provider_time_headers = True
    world.meta.budget_window = 240.0  # provider seconds: 4 s here
    world.meta.set_call_budget(busy.id, 12)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=3)
    calls = account_requests(world, busy.id)
    assert len(calls) > 12  # more than one window's budget
    assert all(status == 200 for _, status, _ in calls), calls
    assert sum(s["rate_limited"] for s in result["streams"].values()) == 0
    # The calls were spaced near the limit: more than one window went by.
    assert calls[-1][0] - calls[0][0] > timedelta(seconds=4)


# -- tokens -------------------------------------------------------------------------------------
def test_a_token_expiring_in_5_days_warns_and_the_run_succeeds(world: MetaWorld) -> None:
    iid = world.add_meta("expiring", config={"initial_days": 2})
    assert world.business is not None
    token = world.meta.issue_token(world.business, kind="USER", lifetime=timedelta(days=5))
    with world.engine.begin() as conn:
        db_engine.default_vault().put(conn, iid, {"access_token": token.token})
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid, days=2)
    [warning] = result["warnings"]
    assert "Meta Ads access token expires in 5 days" in warning and "7-day" in warning
    assert token.token not in warning
    with world.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
    assert integ.status == "connected" and integ.status_reason == warning
    assert world.sandbox.log.entries()[0].method == "debug_token"
    # The expiry is kept with the credential: `aos-sync status` shows it.
    from db.health import integration_health

    with world.engine.connect() as conn:
        rows = integration_health(conn, datetime.now(UTC), {}, agency_id=world.agency_id)
    [health] = [h for h in rows if h.integration_id == iid]
    assert health.token_expires_at is not None
    left = health.token_expires_at - datetime.now(UTC)
    assert timedelta(days=4) < left <= timedelta(days=5)


def test_the_token_check_is_the_apps_and_one_that_cannot_run_only_warns(
    world: MetaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meta answers ``debug_token`` only to the app's token or an app developer's (Graph API
    reference, "Debug Token"): a customer's own user token is refused with code 100. The run
    asks with the app token from the connect settings; without them it cannot ask, and that
    is a warning, never a failed run."""
    iid = world.add_meta("check", config={"initial_days": 2})
    assert world.business is not None
    token = world.meta.issue_token(world.business, kind="USER", lifetime=timedelta(days=50))
    with world.engine.begin() as conn:
        db_engine.default_vault().put(conn, iid, {"access_token": token.token})
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded" and not result.get("warnings"), result
    [check] = world.sandbox.log.entries(method="debug_token")
    assert check.status == 200

    monkeypatch.delenv("AOS_META_CLIENT_ID")
    monkeypatch.delenv("AOS_META_CLIENT_SECRET")
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    [warning] = result["warnings"]
    assert "not checked" in warning and "AOS_META_CLIENT_ID" in warning
    assert token.token not in warning
    assert len(world.sandbox.log.entries(method="debug_token")) == 1  # not asked this time
    assert_stored_is_truth(world, iid, days=LOOKBACK_DAYS)  # the second run's lookback
    with world.engine.connect() as conn:
        assert tenancy.get_integration(conn, iid).status == "connected"


def test_require_app_secret_every_graph_call_carries_appsecret_proof(world: MetaWorld) -> None:
    """An app with "Require App Secret" refuses calls without ``appsecret_proof`` (code 100,
    "API calls from the server require an appsecret_proof argument"); with the app secret
    configured every call carries it."""
    iid = world.add_meta("proof", config={"initial_days": 2})
    world.meta.require_appsecret_proof = True
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=2)
    calls = [e for e in world.sandbox.log.entries(provider="meta") if e.method != "debug_token"]
    assert calls and all(e.status == 200 for e in calls)
    assert all("appsecret_proof" in e.params for e in calls)


@pytest.mark.parametrize("when", ["before", "during"])
def test_code_190_marks_needs_reauth_with_a_clear_message(world: MetaWorld, when: str) -> None:
    iid = world.add_meta(f"revoked-{when}", config={"initial_days": 2})
    assert world.business is not None
    token = world.business.credentials["access_token"]
    if when == "before":
        world.meta.expire_token(token)  # 190 / 463
    else:  # invalidated while the run lists campaigns: 190 / 460
        world.sandbox.faults.add("meta", kind="revoked", method="campaigns", times=1)
    with pytest.raises(ReauthRequired, match="needs re-authorisation") as caught:
        sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    message = str(caught.value)
    assert "Meta" in message and "access token" in message and "reconnect" in message
    assert token not in message
    with world.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
    assert integ.status == "needs_reauth"
    assert "190" in (integ.status_reason or "") and token not in (integ.status_reason or "")
    if when == "during":  # Meta's words for the person (error_user_title / error_user_msg)
        assert "Session invalidated" in (integ.status_reason or "")
        assert "password changed" in (integ.status_reason or "")
    calls = world.sandbox.log.entries(method="campaigns")
    assert len(calls) == (0 if when == "before" else 1)


# -- breakdowns -------------------------------------------------------------------------------
BREAKDOWN_COLUMNS = {
    "meta_ad_insights_breakdown_daily": (
        ("ad_id", "date_start", "breakdown", "age", "gender", "country", "publisher_platform"),
        ("account_id", "impressions", "clicks", "reach", "spend", "conversions", "currency"),
    )
}


def breakdown_truth(
    business: MetaBusiness, sets: list[tuple[str, ...]], days: int
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for account in business.accounts:
        today = _today(account)
        for ad in account.ads.values():
            day = today - timedelta(days=days)
            while day <= today:
                numbers = account.ad_day(ad, day)
                if ad.delivers_on(day, today) and numbers is not None:
                    for dims in sets:
                        for bucket, part in _broken_down(numbers, dims):
                            if part.impressions == 0 and not part.actions:
                                continue
                            named = dict(zip(dims, bucket, strict=True))
                            key = (
                                ad.id,
                                day,
                                ",".join(dims),
                                *(
                                    named.get(d, "")
                                    for d in ("age", "gender", "country", "publisher_platform")
                                ),
                            )
                            conversions = sum(
                                (
                                    w.get("value", 0)
                                    for t, w in part.actions.items()
                                    if t in CONVERSION_TYPES
                                ),
                                0,
                            )
                            rows[key] = (
                                account.account_id,
                                part.impressions,
                                part.clicks,
                                part.reach,
                                Decimal(account.money(part.spend)),
                                Decimal(conversions),
                                account.currency,
                            )
                day += timedelta(days=1)
    return rows


def test_opt_in_breakdowns_land_their_own_rows_never_in_the_daily_table(
    world: MetaWorld,
) -> None:
    sets = [("age", "gender"), ("country",)]
    iid = world.add_meta(
        "breakdowns",
        config={"initial_days": 3, "breakdowns": [["gender", "age"], ["country"]]},
        campaigns=1,
    )
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert world.business is not None
    want = {"meta_ad_insights_breakdown_daily": breakdown_truth(world.business, sets, 3)}
    assert len(want["meta_ad_insights_breakdown_daily"]) > 100
    assert_same(want, stored(world.data, iid, BREAKDOWN_COLUMNS))
    assert_stored_is_truth(world, iid, days=3)  # the daily table is untouched by them
    asked = {e.params.get("breakdowns") for e in world.sandbox.log.entries(method="insights")}
    assert asked == {None, "age,gender", "country"}
    # An integration without breakdowns reads none.
    plain = world.add_meta("plain", config={"initial_days": 3})
    world.sandbox.log.clear()
    assert (
        sync_meta_ads(integration_id=plain, requested_by=world.users["owner"])["streams"][
            "insights_breakdown"
        ]["fetched"]
        == 0
    )
    assert {e.params.get("breakdowns") for e in world.sandbox.log.entries()} == {None}


# -- crashes, permissions, backfills ----------------------------------------------------------
def _count(engine: sa.Engine, table: str, iid: int) -> int:
    rows = schema.agency_metadata.tables[table]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(rows).where(rows.c.integration_id == iid)
        return int(conn.execute(query).scalar_one())


def test_sigkill_mid_sync_then_rerun_equals_truth(world: MetaWorld) -> None:
    # The loader commits every 10 s of a slow API: report pages at 0.3 s each, 20 rows a
    # page, make the first commit land while most of the insights are still to come.
    iid = world.add_meta("kill", config={"page_limit": 20})
    world.sandbox.faults.add(
        "meta", kind="slow", method="report_run.insights", rate=1.0, seconds=0.3
    )
    kill_cli_midway(
        world.env(),
        ["sync", "meta_ads", "--integration", str(iid), "--as", world.users["owner"]],
        lambda: _count(world.data, "meta_ad_insights_daily", iid) > 0,
        timeout=180,
    )
    assert world.business is not None
    total = len(truth(world.business)["meta_ad_insights_daily"])
    partial = _count(world.data, "meta_ad_insights_daily", iid)
    assert 0 < partial < total
    world.sandbox.faults.clear()

    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, iid)
    assert _count(world.data, "meta_ad_insights_daily", iid) == total  # no duplicates
    with world.engine.connect() as conn:
        statuses = conn.execute(
            sa.text(
                "SELECT string_agg(status, ',' ORDER BY id) FROM sync_run WHERE integration_id = :i"
            ),
            {"i": iid},
        ).scalar_one()
    assert statuses in ("running,succeeded", "failed,succeeded")


@pytest.mark.parametrize("who", ["reader", "rival"])
def test_denied_before_any_request(world: MetaWorld, who: str) -> None:
    iid = world.add_meta("deny")
    principal = world.other_agency_user if who == "rival" else world.users["reader"]
    world.sandbox.log.clear()
    with pytest.raises(PermissionDenied, match=principal):
        sync_meta_ads(integration_id=iid, requested_by=principal)
    assert len(world.sandbox.log) == 0
    assert _count(world.data, "meta_ad_insights_daily", iid) == 0


def test_backfill_reads_daily_insights_through_report_runs(world: MetaWorld) -> None:
    iid = world.add_meta("backfill", config={"initial_days": 3})
    assert sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])["status"] == (
        "succeeded"
    )
    assert world.business is not None
    account = world.business.accounts[0]
    today = _today(account)
    start, end = today - timedelta(days=40), today - timedelta(days=26)
    world.sandbox.log.clear()
    world.meta.report_runs.clear()
    result = backfill(
        integration_id=iid, start=start, end=end, requested_by=world.users["owner"], chunk_days=7
    )
    assert result["status"] == "succeeded"
    # Two chunks of 7 days, each one report run per account; nothing read synchronously.
    assert world.sandbox.log.count(method="insights") == 0
    ranges = sorted({(j.since, j.until) for j in jobs(world)})
    assert len(jobs(world)) == 2 * len(world.business.accounts)
    assert {r[1] - r[0] for r in ranges} == {timedelta(days=6)}
    # The window now holds the truth (and the first sync's days are as they were).
    want = truth(world.business, 45)["meta_ad_insights_daily"]
    got = stored(world.data, iid)["meta_ad_insights_daily"]
    window = {
        k: v
        for k, v in want.items()
        if start <= k[1] < end or k[1] >= _today(world.meta.account(v[0])) - timedelta(days=3)
    }
    assert got == window


# -- damaged answers ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["truncated_body", "truncated", "reset", "500"])
def test_damaged_answers_are_never_read_as_empty_and_the_next_run_heals(
    world: MetaWorld, kind: str
) -> None:
    """A listing page cut in half (still framed as complete), a connection cut mid-body or
    reset, a 500: first now and then (retried, the run ends equal to the truth), then on every
    call (the run fails and says so). Either way no stored ad is soft-deleted as if the
    damaged page had been an empty listing, and the next clean run is equal to the truth."""
    from tasks.run import SyncFailed

    # A first sync as deep as the lookback: every later run re-reads exactly those days.
    iid = world.add_meta(f"damaged-{kind}", config={"initial_days": LOOKBACK_DAYS})
    assert (
        sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])["status"]
        == "succeeded"
    )
    assert_stored_is_truth(world, iid, days=LOOKBACK_DAYS)

    world.sandbox.faults.add("meta", kind=kind, method="ads", times=2)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid, days=LOOKBACK_DAYS)
    assert len([e for e in world.sandbox.log.entries(method="ads") if e.fault == kind]) == 2

    world.sandbox.faults.clear()
    world.sandbox.faults.add("meta", kind=kind, method="ads", rate=1.0)
    with pytest.raises(SyncFailed, match="ads"):
        sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert_stored_is_truth(
        world, iid, days=LOOKBACK_DAYS
    )  # nothing soft-deleted, nothing half-written

    world.sandbox.faults.clear()
    assert (
        sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])["status"]
        == "succeeded"
    )
    assert_stored_is_truth(world, iid, days=LOOKBACK_DAYS)
