"""``sync_google_ads`` end to end: the Google Ads v26 emulator over real gRPC with local TLS, the
real google-ads client, the shared Google OAuth token endpoint, real PostgreSQL and real Prefect.

Expected rows are built here from the emulator's own objects (its account tree and the
``AdsAccount.*_day`` metrics) through the mapping below -- never through the connector's
record code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from db import agencydb, schema, tenancy
from db import engine as db_engine
from db.rbac import PermissionDenied
from flows import backfill, sync_google_ads
from sandbox.google_ads import SEARCH_STREAM, AdsAccount, GoogleAdsEmulator, Login
from sandbox.google_ads.data import BIDDING, DayMetrics
from tests.flows.conftest import World, at_once, kill_cli_midway, seeded_world

FIRST_SYNC_DAYS = 90  # the connector's default first-sync depth
WINDOW_DAYS = 30  # the default conversion window
TOKEN = "oauth2.token"
LIST = "CustomerService.ListAccessibleCustomers"
STREAMS = (
    "customers",
    "campaigns",
    "ad_groups",
    "ads",
    "campaign_daily",
    "ad_group_daily",
    "ad_daily",
)


@dataclass
class AdsWorld(World):
    trees: dict[str, AdsAccount] = field(default_factory=dict)
    logins: dict[str, Login] = field(default_factory=dict)

    @property
    def ads(self) -> GoogleAdsEmulator:
        emulator = self.sandbox.emulators["google_ads"]
        assert isinstance(emulator, GoogleAdsEmulator)
        return emulator

    def add_google_ads(
        self,
        key: str,
        *,
        agency_id: int | None = None,
        config: dict[str, Any] | None = None,
        clients: int = 3,
    ) -> int:
        """An agency-wide integration over a manager tree (a sub-manager, ``clients`` enabled
        clients, a hidden, a test and a cancelled one). The first two clients are globex's
        (digits) and initech's (dashes) in ``client.ad_account_ids``."""
        manager = self.ads.add_manager_tree(f"Agency {key}", clients=clients)
        login = self.ads.add_login(f"ads-{key}@agency.test", manager)
        agency = agency_id or self.agency_id
        with self.engine.begin() as conn:
            if agency == self.agency_id:
                first, second = enabled_clients(manager)[:2]
                dashed = f"{str(second.id)[:3]}-{str(second.id)[3:6]}-{str(second.id)[6:]}"
                for name, ids in (("globex", [str(first.id)]), ("initech", [dashed])):
                    conn.execute(
                        schema.client.update()
                        .where(schema.client.c.id == self.clients[name])
                        .values(ad_account_ids=ids)
                    )
            iid = tenancy.add_integration(
                conn,
                agency,
                "google_ads",
                f"google-ads-{key}",
                external_account_id=str(manager.id),
                config=config or {},
            )
            db_engine.default_vault().put(conn, iid, self.ads.credentials(login))
        self.integrations[key] = iid
        self.trees[key] = manager
        self.logins[key] = login
        return iid

    def expire_token(self, key: str) -> None:
        """The access token is dead at Google and the vault knows it is past its expiry."""
        self.ads.oauth.expire_subject(self.logins[key].email)
        with self.engine.begin() as conn:
            vault = db_engine.default_vault()
            bundle = vault.get(conn, self.integrations[key])
            past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
            vault.put(conn, self.integrations[key], {**bundle, "expires_at": past})


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[AdsWorld]:
    # time_scale 10 keeps an access token (3599 s / 10) longer than the vault's 5-minute
    # refresh margin, and the emulator's 24-hour quota window at 2.4 hours.
    with seeded_world(
        AdsWorld, fresh_engine, monkeypatch, providers=("google_ads",), time_scale=10, seed=31
    ) as w:
        yield w


# -- the emulator's truth, mapped to our columns ------------------------------------------------
def enabled_clients(manager: AdsAccount) -> list[AdsAccount]:
    """The accounts a default sync reads: enabled, not managers, not test accounts."""
    return [
        a
        for a, _ in manager.descendants()
        if not a.manager and a.status == "ENABLED" and not a.test_account
    ]


def today_of(account: AdsAccount) -> date:
    return account.today(datetime.now(UTC))


def _path(account: AdsAccount) -> list[int]:
    chain: list[int] = []
    node = account.parent
    while node is not None:
        chain.insert(0, node.id)
        node = node.parent
    return chain


def _num(value: float) -> Decimal:
    return Decimal(f"{round(value, 6):.6f}")


def _metric_values(account: AdsAccount, m: DayMetrics) -> tuple[Any, ...]:
    return (
        account.id,
        account.currency,
        m.impressions,
        m.clicks,
        Decimal(m.cost_micros) / 1_000_000,
        _num(m.conversions),
        _num(m.conversions_value),
        _num(m.all_conversions),
        m.view_through_conversions,
    )


def truth(manager: AdsAccount, since: dict[int, date] | None = None) -> dict[str, dict[Any, Any]]:
    """Every table's rows as the emulator holds them (daily rows from each account's
    first-sync day, or ``since[account id]``, to its today)."""
    out: dict[str, dict[Any, Any]] = {name: {} for name in COLUMNS}
    for account, _ in manager.descendants():
        out["google_ads_customers"][(account.id,)] = (
            account.name,
            account.currency,
            account.time_zone,
            account.status,
            account.manager,
            account.test_account,
            _path(account),
            manager.id,
        )
    for account in enabled_clients(manager):
        today = today_of(account)
        first = (since or {}).get(account.id, today - timedelta(days=FIRST_SYNC_DAYS))
        days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
        for c in account.campaigns:
            out["google_ads_campaigns"][(c.id,)] = (
                account.id,
                c.name,
                c.status,
                c.channel,
                None,
                BIDDING[c.channel],
                c.start,
                c.end,
            )
            for day in days:
                m = account.campaign_day(c, day)
                if not m.empty:
                    out["google_ads_campaign_daily"][(c.id, day)] = _metric_values(account, m)
            for g in c.ad_groups:
                out["google_ads_ad_groups"][(g.id,)] = (
                    account.id,
                    c.id,
                    g.name,
                    g.status,
                    None if g.type == "UNSPECIFIED" else g.type,
                )
                for day in days:
                    m = account.ad_group_day(g, day)
                    if not m.empty:
                        out["google_ads_ad_group_daily"][(g.id, day)] = (
                            c.id,
                            *_metric_values(account, m),
                        )
                for ad in g.ads:
                    out["google_ads_ads"][(g.id, ad.id)] = (
                        account.id,
                        c.id,
                        ad.name,
                        ad.type,
                        ad.status,
                        list(ad.final_urls),
                    )
                    for day in days:
                        m = account.ad_day(ad, day)
                        if not m.empty:
                            out["google_ads_ad_daily"][(g.id, ad.id, day)] = (
                                c.id,
                                *_metric_values(account, m),
                            )
    return out


METRICS = (
    "customer_id",
    "currency",
    "impressions",
    "clicks",
    "cost",
    "conversions",
    "conversions_value",
    "all_conversions",
    "view_through_conversions",
)
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "google_ads_customers": (
        ("customer_id",),
        (
            "name",
            "currency",
            "time_zone",
            "status",
            "manager",
            "test_account",
            "manager_path",
            "login_customer_id",
        ),
    ),
    "google_ads_campaigns": (
        ("campaign_id",),
        (
            "customer_id",
            "name",
            "status",
            "advertising_channel_type",
            "advertising_channel_sub_type",
            "bidding_strategy_type",
            "start_date",
            "end_date",
        ),
    ),
    "google_ads_ad_groups": (
        ("ad_group_id",),
        ("customer_id", "campaign_id", "name", "status", "type"),
    ),
    "google_ads_ads": (
        ("ad_group_id", "ad_id"),
        ("customer_id", "campaign_id", "name", "type", "status", "final_urls"),
    ),
    "google_ads_campaign_daily": (("campaign_id", "date"), METRICS),
    "google_ads_ad_group_daily": (("ad_group_id", "date"), ("campaign_id", *METRICS)),
    "google_ads_ad_daily": (("ad_group_id", "ad_id", "date"), ("campaign_id", *METRICS)),
}


def stored(engine: sa.Engine, iid: int, *, live: bool = True) -> dict[str, dict[Any, Any]]:
    out = {}
    with engine.connect() as conn:
        for name, (key, columns) in COLUMNS.items():
            table = schema.agency_metadata.tables[name]
            query = sa.select(*[table.c[k] for k in key], *[table.c[c] for c in columns]).where(
                table.c.integration_id == iid
            )
            if live:
                query = query.where(table.c.deleted_at.is_(None))
            out[name] = {tuple(r[: len(key)]): tuple(r[len(key) :]) for r in conn.execute(query)}
    return out


def differences(want: dict[str, dict[Any, Any]], got: dict[str, dict[Any, Any]]) -> list[str]:
    found = []
    for table in COLUMNS:
        missing = want[table].keys() - got[table].keys()
        extra = got[table].keys() - want[table].keys()
        wrong = {
            k: (got[table][k], want[table][k])
            for k in want[table].keys() & got[table].keys()
            if got[table][k] != want[table][k]
        }
        if missing or extra or wrong:
            found.append(
                f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
                f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:1]}"
            )
    return found


def assert_stored_is_truth(world: AdsWorld, key: str) -> None:
    iid = world.integrations[key]
    with world.engine.connect() as conn:
        agency = tenancy.get_integration(conn, iid).agency_id
    got = stored(agencydb.engine_for(world.engine, agency), iid)
    problems = differences(truth(world.trees[key]), got)
    assert not problems, problems


def _scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def searches(world: AdsWorld) -> list[dict[str, str]]:
    return [e.params for e in world.sandbox.log.entries(method=SEARCH_STREAM)]


def metric_ranges(world: AdsWorld, resource: str) -> dict[str, list[tuple[str, str]]]:
    """(first, last) day of every metrics query on ``resource``, per customer."""
    found: dict[str, list[tuple[str, str]]] = {}
    pattern = re.compile(rf"FROM {resource} WHERE segments\.date BETWEEN '([\d-]+)' AND '([\d-]+)'")
    for params in searches(world):
        match = pattern.search(params["query"])
        if match:
            found.setdefault(params["customer_id"], []).append((match[1], match[2]))
    return found


# -- the tests --------------------------------------------------------------------------------
def test_full_sync_lands_the_truth_through_the_manager_tree(world: AdsWorld) -> None:
    iid = world.add_google_ads("full")
    manager = world.trees["full"]
    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, "full")

    want = truth(manager)
    # The tree was walked into the sub-manager: its clients carry [root, sub] as their path.
    sub = next(a for a, level in manager.descendants() if a.manager and level == 1)
    under_sub = [a for a in sub.children if not a.manager]
    assert under_sub and all(
        want["google_ads_customers"][(a.id,)][6] == [manager.id, sub.id] for a in under_sub
    )
    assert any(a in enabled_clients(manager) for a in under_sub)
    # Performance Max: metrics at campaign level only, no ad groups or ads.
    pmax = [c for a in enabled_clients(manager) for c in a.campaigns if not c.has_ad_groups]
    assert pmax
    got = stored(world.data, iid)
    assert any(k[0] == pmax[0].id for k in got["google_ads_campaign_daily"])
    assert result["streams"]["ad_daily"]["inserted"] == len(want["google_ads_ad_daily"])

    # The request log: one account listing, every query through the login's manager, no
    # metrics query on a manager, no query on a closed or test account.
    log = world.sandbox.log
    assert len(log.entries(method=LIST)) == 1
    calls = searches(world)
    assert calls and all(c.get("login_customer_id") == str(manager.id) for c in calls)
    managers = {str(a.id) for a, _ in manager.descendants() if a.manager}
    never = {str(a.id) for a, _ in manager.descendants() if a.test_account or a.status != "ENABLED"}
    assert not [c for c in calls if "metrics." in c["query"] and c["customer_id"] in managers]
    assert not [c for c in calls if c["customer_id"] in never]
    assert all(e.status == 200 for e in log)

    # Operations used and left are in the run summary; analysts cannot read the ledger.
    for stream in STREAMS:
        counts = result["streams"][stream]
        assert counts["operations_used"] >= 1 and counts["operations_left"] > 0, counts
    used = sum(result["streams"][s]["operations_used"] for s in STREAMS)
    assert used == len(log.entries(method=SEARCH_STREAM)) + 1
    assert _scalar(world.engine, "SELECT sum(operations) FROM provider_quota_use") == used
    assert not _scalar(
        world.engine, "SELECT has_table_privilege('aos_analyst', 'provider_quota_use', 'SELECT')"
    )

    # Rows are attributed through the clients' account ids (digits or dashes).
    first, second = enabled_clients(manager)[:2]
    expected = {first.id: world.clients["globex"], second.id: world.clients["initech"]}
    with world.data.connect() as conn:
        for name in COLUMNS:
            table = schema.agency_metadata.tables[name]
            pairs = set(conn.execute(sa.select(table.c.customer_id, table.c.client_id).distinct()))
            assert {(c, expected.get(c)) for c, _ in pairs} == pairs, name


def test_incremental_conversion_window_late_conversions_and_a_removed_ad(
    world: AdsWorld,
) -> None:
    iid = world.add_google_ads("inc")
    manager = world.trees["inc"]
    assert sync_google_ads(integration_id=iid, requested_by=world.users["owner"])["status"] == (
        "succeeded"
    )

    # Nothing changed upstream: the window alone is read again and nothing is rewritten.
    world.sandbox.log.clear()
    second = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded"
    for resource in ("campaign", "ad_group", "ad_group_ad"):
        ranges = metric_ranges(world, resource)
        for account in enabled_clients(manager):
            today = today_of(account)
            since = (today - timedelta(days=WINDOW_DAYS)).isoformat()
            assert ranges[str(account.id)] == [(since, today.isoformat())], resource
    for stream in STREAMS:
        counts = second["streams"][stream]
        assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 0, 0), stream
    assert_stored_is_truth(world, "inc")

    # Late conversions: inside the window they reach the stored day at every level, outside
    # it they do not; a REMOVED ad keeps its history and says REMOVED.
    account = enabled_clients(manager)[0]
    today = today_of(account)
    inside, outside = today - timedelta(days=5), today - timedelta(days=40)
    ad = next(
        a
        for c in account.campaigns
        for g in c.ad_groups
        for a in g.ads
        if not account.ad_day(a, inside).empty and not account.ad_day(a, outside).empty
    )
    removed = next(a for c in account.campaigns for g in c.ad_groups for a in g.ads if a is not ad)
    world.ads.add_late_conversions(ad, inside, 3, 90.0)
    world.ads.add_late_conversions(ad, outside, 2, 40.0)
    world.ads.set_status(removed, "REMOVED")
    table = schema.google_ads_ad_daily

    def conversions(day: date) -> tuple[Decimal, Decimal]:
        with world.data.connect() as conn:
            row = conn.execute(
                sa.select(table.c.conversions, table.c.conversions_value).where(
                    table.c.integration_id == iid,
                    table.c.ad_id == ad.id,
                    table.c.date == day,
                )
            ).one()
        return row[0], row[1]

    before_inside, before_outside = conversions(inside), conversions(outside)
    history = _scalar(
        world.data,
        "SELECT count(*) FROM google_ads_ad_daily WHERE ad_id = :a AND date < :d",
        a=removed.id,
        d=today,
    )
    third = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert third["status"] == "succeeded"
    assert conversions(inside) == (before_inside[0] + 3, before_inside[1] + 90)
    assert conversions(outside) == before_outside
    for stream in ("campaign_daily", "ad_group_daily", "ad_daily"):
        assert third["streams"][stream]["updated"] >= 1, stream
    got = stored(world.data, iid)
    assert got["google_ads_ads"][(removed.ad_group.id, removed.id)][4] == "REMOVED"
    assert history > 0
    assert history == _scalar(
        world.data,
        "SELECT count(*) FROM google_ads_ad_daily WHERE ad_id = :a AND date < :d "
        "AND deleted_at IS NULL",
        a=removed.id,
        d=today,
    )
    # The tables are the truth except the days the window no longer reaches.
    want = truth(manager)
    wrong = {
        (t, k) for t in COLUMNS for k in want[t].keys() & got[t].keys() if want[t][k] != got[t][k]
    }
    c, g = ad.ad_group.campaign, ad.ad_group
    assert wrong == {
        ("google_ads_ad_daily", (g.id, ad.id, outside)),
        ("google_ads_ad_group_daily", (g.id, outside)),
        ("google_ads_campaign_daily", (c.id, outside)),
    }
    assert all(want[t].keys() == got[t].keys() for t in COLUMNS)


def test_faults_short_quota_waits_and_broken_streams_end_equal_to_the_truth(
    world: AdsWorld,
) -> None:
    iid = world.add_google_ads("faults", config={"retry_backoff": 0.05})
    world.ads.stream_chunk_size = 40  # several batches per query, so a stream can break
    faults = world.sandbox.faults
    faults.add("google_ads", kind="429", method=SEARCH_STREAM, times=2, retry_after=1)
    faults.add("google_ads", kind="500", method=SEARCH_STREAM, times=2, options={"after_rows": 90})
    faults.add("google_ads", kind="503", method=SEARCH_STREAM, times=1, options={"after_rows": 130})
    result = sync_google_ads(integration_id=iid, requested_by=world.users["admin"])
    assert result["status"] == "succeeded", result
    assert all(f.exhausted for f in faults.rules())
    assert_stored_is_truth(world, "faults")
    assert sum(result["streams"][s]["rate_limited"] for s in STREAMS) == 2
    statuses = [e.status for e in world.sandbox.log.entries(method=SEARCH_STREAM)]
    assert statuses.count(429) == 2 and statuses.count(500) == 2 and statuses.count(503) == 1
    # A broken metrics stream is sent again from the day it broke in, not from the start.
    calls = world.sandbox.log.entries(method=SEARCH_STREAM)
    for n, entry in enumerate(calls):
        if entry.status in (500, 503) and "segments.date" in entry.params["query"]:
            retry = calls[n + 1].params["query"]
            first = re.search(r"BETWEEN '([\d-]+)'", entry.params["query"])
            again = re.search(r"BETWEEN '([\d-]+)'", retry)
            assert first and again and again[1] > first[1]
    # No key was loaded twice into one table (keys are unique by construction; the counts
    # say each row was inserted once).
    want = truth(world.trees["faults"])
    for stream, table in (("ad_daily", "google_ads_ad_daily"), ("ads", "google_ads_ads")):
        assert result["streams"][stream]["inserted"] == len(want[table])


def end_holds(world: AdsWorld) -> None:
    """The provider's time of every hold has come (``provider_hold``, ``db/holds.py``)."""
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE provider_hold SET until = now() WHERE until > now()"))


def test_daily_quota_exhausted_mid_sync_stops_cleanly_and_the_next_run_resumes(
    world: AdsWorld,
) -> None:
    """Issue 19, findings 3 and 8 at flow level. A short-term ``RESOURCE_EXHAUSTED``
    (``retry_delay`` 1 s) is waited out and the run goes on; the daily quota's refusal
    (``retry_delay``: until the project's oldest operation leaves the rolling 24 hours;
    Google Ads API, "Access levels and permissible use" and ``QuotaErrorDetails``) stops the
    stream cleanly, and it holds the OAuth client's project, kept where every worker sees it
    (``provider_hold``): no later stream of the run, no later run and no other integration
    drawing on the project sends a query before that time; each skips its work with a
    warning, ``aos-sync status`` shows the hold, and the first runs after it resume from the
    saved cursors and end equal to the truth."""
    from db.health import integration_health

    iid = world.add_google_ads("quota")
    with world.engine.begin() as conn:
        rival = tenancy.find_user(conn, world.other_agency_user).agency_id
    other = world.add_google_ads("same-project", agency_id=rival, clients=1)
    log = world.sandbox.log
    log.clear()
    world.sandbox.faults.add("google_ads", kind="429", method=SEARCH_STREAM, times=1, retry_after=1)
    world.ads.daily_operations = 30  # the project's quota runs out during the metrics
    first = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded", first
    # One refusal, and it is the run's last query: no later stream asked the project again.
    calls = log.entries(provider="google_ads")
    refused = [e for e in calls if e.status == 429 and e.fault is None]
    assert len(refused) == 1 and calls[-1] is refused[0], [(e.method, e.status) for e in calls]
    assert [e.fault for e in calls if e.status == 429] == ["429", None]
    assert sum(first["streams"][s]["rate_limited"] for s in STREAMS) == 1  # waited, went on
    warnings = [w for s in STREAMS for w in first["streams"][s]["warnings"]]
    assert any("quota is spent" in w and "held until" in w for w in warnings), warnings
    partial = stored(world.data, iid)
    want = truth(world.trees["quota"])
    assert partial["google_ads_customers"] == want["google_ads_customers"]
    assert 0 < len(partial["google_ads_campaign_daily"])
    assert len(partial["google_ads_ad_daily"]) < len(want["google_ads_ad_daily"])
    assert not differences(
        {t: {k: want[t][k] for k in partial[t]} for t in COLUMNS},
        {t: partial[t] for t in COLUMNS},
    )

    # The same day, another agency's integration on the same OAuth client, then the first
    # one again: every stream skipped with a warning, not a query sent.
    log.clear()
    for key, who in (("same-project", world.other_agency_user), ("quota", world.users["owner"])):
        held = sync_google_ads(integration_id=world.integrations[key], requested_by=who)
        assert held["status"] == "succeeded", held
        for stream in STREAMS:
            assert any("held until" in w for w in held["streams"][stream]["warnings"]), stream
    assert log.count(provider="google_ads") == 0
    now = datetime.now(UTC)
    with world.engine.connect() as conn:
        holds = {h.integration_id: h.hold for h in integration_health(conn, now, {})}
    told, met = holds[iid] or "", holds[other] or ""
    assert told.startswith(world.ads.oauth.client_id + " until "), holds
    assert met.startswith(world.ads.oauth.client_id) and "RESOURCE_EXHAUSTED" in met, holds

    world.ads.reset_quota()  # a day later, at Google ...
    end_holds(world)  # ... and for the hold it announced
    world.ads.daily_operations = 10_000
    for key, who in (("quota", world.users["owner"]), ("same-project", world.other_agency_user)):
        again = sync_google_ads(integration_id=world.integrations[key], requested_by=who)
        assert again["status"] == "succeeded", again
        assert not [w for s in STREAMS for w in again["streams"][s]["warnings"]]
        assert_stored_is_truth(world, key)


def test_two_agencies_share_the_project_budget_and_both_progress(
    world: AdsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOS_GOOGLE_ADS_DAILY_OPERATIONS", "60")
    monkeypatch.setenv("AOS_GOOGLE_ADS_MIN_SHARE", "5")
    with world.engine.begin() as conn:
        rival = tenancy.find_user(conn, world.other_agency_user).agency_id
    a = world.add_google_ads("big")
    b = world.add_google_ads("small", agency_id=rival)
    first = sync_google_ads(integration_id=a, requested_by=world.users["owner"])
    second = sync_google_ads(integration_id=b, requested_by=world.other_agency_user)
    assert first["status"] == second["status"] == "succeeded"

    def used(iid: int) -> int:
        return int(
            _scalar(
                world.engine,
                "SELECT coalesce(sum(operations), 0) FROM provider_quota_use "
                "WHERE integration_id = :i",
                i=iid,
            )
        )

    # The first takes at most half (a share is left for a newcomer), the second a third.
    assert used(a) == 30 and used(b) == 20
    for iid, key, agency in ((a, "big", world.agency_id), (b, "small", rival)):
        rows = stored(agencydb.engine_for(world.engine, agency), iid)
        assert rows["google_ads_campaigns"] and rows["google_ads_campaign_daily"], key
    last = first["streams"]["ad_daily"]
    assert last["operations_left"] == 0 and any("share" in w for w in last["warnings"])

    # A day later, with room for both, each run resumes and ends equal to the truth.
    with world.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE provider_quota_use SET used_at = used_at - interval '25 hours'")
        )
    monkeypatch.setenv("AOS_GOOGLE_ADS_DAILY_OPERATIONS", "1000")
    sync_google_ads(integration_id=a, requested_by=world.users["owner"])
    sync_google_ads(integration_id=b, requested_by=world.other_agency_user)
    assert_stored_is_truth(world, "big")
    assert_stored_is_truth(world, "small")


def test_a_new_customers_project_is_held_to_explorer_access_by_default(
    world: AdsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Cloud project newly granted Google Ads API access has Explorer access: 2,880
    operations a day against production accounts (developers.google.com/google-ads/api/docs/
    api-policy/access-levels), which the emulator enforces unless told otherwise. With no
    ``AOS_GOOGLE_ADS_DAILY_OPERATIONS``, the project's ledger holds to the same level: when
    others of the OAuth client's project have spent all but 10 of the day's operations, a run
    spends those 10 and stops cleanly by its own account, without one query Google refuses."""
    monkeypatch.delenv("AOS_GOOGLE_ADS_DAILY_OPERATIONS", raising=False)
    monkeypatch.delenv("AOS_GOOGLE_ADS_MIN_SHARE", raising=False)
    with world.engine.begin() as conn:
        rival = tenancy.find_user(conn, world.other_agency_user).agency_id
    other = world.add_google_ads("other", agency_id=rival, clients=1)
    iid = world.add_google_ads("new", clients=1)
    spent = 2_870
    with world.engine.begin() as conn:
        conn.execute(
            schema.provider_quota_use.insert().values(
                provider="google_ads",
                project=world.ads.oauth.client_id,
                agency_id=rival,
                integration_id=other,
                operations=spent,
            )
        )
    world.ads.spend_operations(spent)
    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    warnings = [w for s in STREAMS for w in result["streams"][s]["warnings"]]
    assert any("daily operations is used up" in w for w in warnings), warnings
    statuses = [e.status for e in world.sandbox.log.entries(provider="google_ads")]
    assert statuses and set(statuses) == {200}  # never a RESOURCE_EXHAUSTED (429)
    assert world.ads.operations_used() == 2_880 == spent + len(statuses)
    booked = "SELECT sum(operations) FROM provider_quota_use WHERE integration_id = :i"
    assert _scalar(world.engine, booked, i=iid) == len(statuses)


def test_sigkill_mid_sync_then_rerun_equals_the_truth(world: AdsWorld) -> None:
    iid = world.add_google_ads("kill")
    # Slow queries: the loader's first commit of daily rows lands while more are to come.
    world.sandbox.faults.add("google_ads", kind="slow", method=SEARCH_STREAM, rate=1.0, seconds=0.4)
    kill_cli_midway(
        world.env(),
        ["sync", "google_ads", "--integration", str(iid), "--as", world.users["owner"]],
        lambda: _scalar(world.data, "SELECT count(*) FROM google_ads_campaign_daily") > 0,
        timeout=180,
    )
    want = truth(world.trees["kill"])
    partial = _scalar(world.data, "SELECT count(*) FROM google_ads_ad_daily")
    assert partial < len(want["google_ads_ad_daily"])
    world.sandbox.faults.clear()

    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, "kill")
    everything = stored(world.data, iid, live=False)
    assert all(len(everything[t]) == len(want[t]) for t in COLUMNS)  # nothing twice, no ghosts
    statuses = _scalar(world.engine, "SELECT string_agg(status, ',' ORDER BY id) FROM sync_run")
    assert statuses == "failed,succeeded"  # the killed run's ledger row is closed as failed


@pytest.mark.parametrize("who", ["reader", "rival"])
def test_denied_before_any_request(world: AdsWorld, who: str) -> None:
    iid = world.add_google_ads("deny")
    with world.engine.begin() as conn:
        conn.execute(
            schema.integration.update()
            .where(schema.integration.c.id == iid)
            .values(client_id=world.clients["globex"])
        )
    principal = world.other_agency_user if who == "rival" else world.users["reader"]
    world.sandbox.log.clear()
    with pytest.raises(PermissionDenied, match=principal):
        sync_google_ads(integration_id=iid, requested_by=principal)
    assert len(world.sandbox.log) == 0
    assert _scalar(world.data, "SELECT count(*) FROM google_ads_customers") == 0
    assert _scalar(world.engine, "SELECT count(*) FROM provider_quota_use") == 0


def test_one_token_refresh_under_two_concurrent_syncs(world: AdsWorld) -> None:
    from db.runs import SyncLocked
    from tasks.sync import refresh_credentials

    iid = world.add_google_ads("tok", clients=1)
    world.expire_token("tok")
    world.sandbox.faults.add("google_oauth", kind="slow", method=TOKEN, times=1, seconds=1.5)
    outcomes = at_once(
        lambda _: sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    )
    assert all(isinstance(o, dict | SyncLocked) for o in outcomes), outcomes
    assert len(world.sandbox.log.entries(method=TOKEN)) == 1
    assert_stored_is_truth(world, "tok")

    # The refresh task itself, twice at the same moment on an expired credential.
    world.expire_token("tok")
    world.sandbox.log.clear()
    world.sandbox.faults.add("google_oauth", kind="slow", method=TOKEN, times=1, seconds=1.5)
    answers = at_once(lambda _: refresh_credentials.fn(iid, "google_ads"), timeout=60)
    assert all(a in ("refreshed", "fresh") for a in answers), answers
    assert len(world.sandbox.log.entries(method=TOKEN)) == 1
    # The refreshed token is the one Google Ads accepts now.
    world.sandbox.log.clear()
    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert len(world.sandbox.log.entries(method=TOKEN)) == 0


def test_readers_refused_the_same_token_at_once_share_one_refresh(world: AdsWorld) -> None:
    """Two readers (two workers, or two streams' readers) refused the same access token at the
    same moment ask the task layer for a fresh one: the refresh runs once, under the
    credential's row lock, while the token endpoint is slow, and both get the token it
    issued, which Google Ads accepts. A reader refused a token that another has since
    replaced gets the replacement without a refresh."""
    from connectors import registry
    from connectors.common import Secret
    from tasks.sync import _token_renewal

    iid = world.add_google_ads("pair", clients=1)
    with world.engine.connect() as conn:
        bundle = db_engine.default_vault().get(conn, iid)
    stale = str(bundle["access_token"])
    world.ads.oauth.expire(stale)
    world.sandbox.faults.add("google_oauth", kind="slow", method=TOKEN, times=1, seconds=1.5)
    made = [_token_renewal(registry.get("google_ads"), iid, bundle) for _ in (0, 1)]
    renewals = [renewal for renewal in made if renewal is not None]
    assert len(renewals) == 2
    got = at_once(lambda slot: renewals[slot](Secret(stale)).reveal(), timeout=60)
    assert got[0] == got[1] and isinstance(got[0], str) and got[0] != stale, got
    assert len(world.sandbox.log.entries(method=TOKEN)) == 1
    assert world.ads.oauth.authenticate(got[0]) == world.logins["pair"].email
    with world.engine.connect() as conn:
        assert db_engine.default_vault().get(conn, iid)["access_token"] == got[0]
    # Late: refused the old token after the refresh happened.
    renewal = _token_renewal(registry.get("google_ads"), iid, bundle)
    assert renewal is not None and renewal(Secret(stale)).reveal() == got[0]
    assert len(world.sandbox.log.entries(method=TOKEN)) == 1


def test_invalid_grant_marks_the_integration_needs_reauth(world: AdsWorld) -> None:
    iid = world.add_google_ads("rev", clients=1)
    with world.engine.connect() as conn:
        bundle = db_engine.default_vault().get(conn, iid)
    secrets = [bundle[k] for k in ("access_token", "refresh_token", "client_secret")]
    world.ads.oauth.revoke_subject(world.logins["rev"].email)
    world.expire_token("rev")
    with pytest.raises(Exception, match="needs re-authorisation") as info:
        sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    message = str(info.value)
    assert "invalid_grant" in message and not any(s in message for s in secrets)
    with world.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
        run = conn.execute(sa.select(schema.sync_run)).one()
    assert integ.status == "needs_reauth" and "invalid_grant" in (integ.status_reason or "")
    assert run.status == "failed" and not any(s in run.error for s in secrets)
    assert [e.status for e in world.sandbox.log.entries(method=TOKEN)] == [400]
    assert len(world.sandbox.log) == 1  # Google Ads itself was never called


def _refresh_audits(world: AdsWorld, iid: int) -> list[dict[str, Any]]:
    with world.engine.connect() as conn:
        return [
            dict(row.detail or {}, outcome=row.outcome)
            for row in conn.execute(
                sa.select(schema.audit_event)
                .where(
                    schema.audit_event.c.action == "credentials.refresh",
                    schema.audit_event.c.integration_id == iid,
                )
                .order_by(schema.audit_event.c.id)
            )
        ]


def _first_query_on_the_client(world: AdsWorld, key: str, kind: str, **fault: Any) -> AdsAccount:
    """A fault on the first query against the integration's client account: the second
    stream, after discovery, well into the run."""
    client = enabled_clients(world.trees[key])[0]
    world.sandbox.faults.add(
        "google_ads",
        kind=kind,
        method=SEARCH_STREAM,
        times=1,
        match={"customer_id": str(client.id)},
        **fault,
    )
    return client


def test_a_run_that_outlives_its_access_token_refreshes_mid_run_and_completes(
    world: AdsWorld,
) -> None:
    """Google access tokens live about an hour and a run may last longer. Here they live 3 s
    (the emulator's short-lived tokens on request) and the first query on the client account
    -- the second stream, well into the run -- answers slowly (3.5 s), so the token in use dies
    in it: Google Ads refuses the call (UNAUTHENTICATED, ``GOOGLE_ACCOUNT_COOKIE_INVALID``,
    whose handling is "Request a new token": developers.google.com/google-ads/api/docs/
    get-started/common-errors). The run refreshes under the credential's lock, sends the call
    again and completes; the integration stays ``connected``. Every refusal costs exactly one
    refresh (plus the run's start, whose stored token is within the refresh margin)."""
    world.ads.oauth.access_token_ttl = 3.0
    iid = world.add_google_ads("long", clients=1)
    client = _first_query_on_the_client(world, "long", "slow", seconds=3.5)
    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, "long")
    with world.engine.connect() as conn:
        assert tenancy.get_integration(conn, iid).status == "connected"
    log = world.sandbox.log.entries()
    refused = [n for n, e in enumerate(log) if e.status == 401]
    assert refused and log[refused[0]].params.get("customer_id") == str(client.id)
    for n in refused:  # refused, refreshed, sent again and answered
        assert (log[n + 1].method, log[n + 1].status) == (TOKEN, 200)
        assert (log[n + 2].method, log[n + 2].status) == (log[n].method, 200)
    assert sum(1 for e in log if e.method == TOKEN) == 1 + len(refused)
    audits = _refresh_audits(world, iid)
    assert [a["refused"] for a in audits] == [False] + [True] * len(refused)
    assert {a["outcome"] for a in audits} == {"ok"}


def test_a_refresh_refused_mid_run_is_what_marks_needs_reauth(world: AdsWorld) -> None:
    """The user removes the app while a run is under way: the next query is refused, the run
    asks for a fresh token, and Google refuses the refresh (``invalid_grant``). That refusal,
    not the refused query, is why the integration needs re-authorisation; what the run stored
    before stays."""
    iid = world.add_google_ads("gone", clients=1)
    _first_query_on_the_client(world, "gone", "revoked")
    with pytest.raises(Exception, match="needs re-authorisation") as info:
        sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert "invalid_grant" in str(info.value)
    with world.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
    assert integ.status == "needs_reauth" and "invalid_grant" in (integ.status_reason or "")
    assert [e.status for e in world.sandbox.log.entries(method=TOKEN)] == [400]
    assert [a["outcome"] for a in _refresh_audits(world, iid)] == ["failed"]
    customers = stored(world.data, iid)["google_ads_customers"]
    assert len(customers) == len(truth(world.trees["gone"])["google_ads_customers"])


def test_backfill_reads_its_window_only(world: AdsWorld) -> None:
    iid = world.add_google_ads("back", clients=1)
    account = enabled_clients(world.trees["back"])[0]
    today = today_of(account)
    lo, hi = today - timedelta(days=200), today - timedelta(days=180)
    result = backfill(
        integration_id=iid, start=lo, end=hi, requested_by=world.users["owner"], chunk_days=10
    )
    assert result["status"] == "succeeded", result
    days = {
        r[0]
        for r in world.data.connect().execute(
            sa.text("SELECT DISTINCT date FROM google_ads_ad_daily")
        )
    }
    assert days and min(days) >= lo and max(days) < hi
    ranges = metric_ranges(world, "ad_group_ad")[str(account.id)]
    assert ranges == [
        (lo.isoformat(), (lo + timedelta(days=9)).isoformat()),
        ((lo + timedelta(days=10)).isoformat(), (hi - timedelta(days=1)).isoformat()),
    ]
    # The incremental cursor is untouched: a sync afterwards reads the first-sync range.
    sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    since = {account.id: today - timedelta(days=FIRST_SYNC_DAYS)}
    want = truth(world.trees["back"], since)
    got = stored(world.data, iid)
    daily = ("google_ads_campaign_daily", "google_ads_ad_group_daily", "google_ads_ad_daily")
    for table in daily:
        recent = {k: v for k, v in got[table].items() if k[-1] >= since[account.id]}
        assert recent == want[table], table


# -- entities through change_status -------------------------------------------------------------
ENTITY_RESOURCES = ("campaign", "ad_group", "ad_group_ad")


def entity_reads(world: AdsWorld) -> dict[str, list[tuple[str, str]]]:
    """``(customer_id, query)`` of every entity query since the log was cleared, by resource
    (``change_status`` included; metrics queries left out)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for params in searches(world):
        query = params["query"]
        match = re.search(r" FROM (\w+)", query)
        if match and "segments.date" not in query and match[1] != "customer_client":
            found.setdefault(match[1], []).append((params["customer_id"], query))
    return found


def ids_read(queries: list[tuple[str, str]], customer: AdsAccount) -> set[int]:
    """The ids asked for by ``... IN (...)`` queries of ``customer``."""
    out: set[int] = set()
    for cid, query in queries:
        match = re.search(r" IN \(([\d, ]+)\)", query)
        if cid == str(customer.id) and match:
            out |= {int(i) for i in match[1].split(",")}
    return out


def snapshots(queries: list[tuple[str, str]]) -> set[str]:
    """The accounts read whole (an entity query without a WHERE clause)."""
    return {cid for cid, query in queries if " WHERE " not in query}


def test_a_second_run_reads_only_the_changed_entities_through_change_status(
    world: AdsWorld,
) -> None:
    iid = world.add_google_ads("chg", clients=2)
    manager = world.trees["chg"]
    accounts = enabled_clients(manager)
    first = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded"
    reads = entity_reads(world)
    assert "change_status" not in reads  # a first sync is a snapshot
    for resource in ENTITY_RESOURCES:
        assert snapshots(reads[resource]) == {str(a.id) for a in accounts}, resource

    # Upstream: a new campaign (with its ad group and ad), a new ad in an old group, an ad
    # removed, a campaign renamed and paused -- all in one account.
    account = accounts[0]
    old = next(c for c in account.campaigns if c.has_ad_groups)
    new = world.ads.add_campaign(
        account.id, name="Launch", ad_groups=1, ads_per_group=1, start=today_of(account)
    )
    added = world.ads.add_ad(old.ad_groups[0])
    removed = old.ad_groups[-1].ads[0]
    world.ads.set_status(removed, "REMOVED")
    renamed = next(c for c in account.campaigns if c is not old and c is not new)
    world.ads.rename(renamed, "Renamed")
    world.ads.set_status(renamed, "PAUSED")

    world.sandbox.log.clear()
    second = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded"
    assert_stored_is_truth(world, "chg")
    reads = entity_reads(world)
    # One change list per account and entity stream, bounded as the API requires ...
    changes = reads["change_status"]
    assert sorted(cid for cid, _ in changes) == sorted(str(a.id) for a in accounts for _ in "abc")
    assert all("BETWEEN" in q and q.endswith("LIMIT 10000") for _, q in changes)
    # ... then only the changed entities, by id; never the whole listing.
    for resource in ENTITY_RESOURCES:
        assert not snapshots(reads[resource]), resource
        assert {cid for cid, _ in reads[resource]} == {str(account.id)}, resource
    group = new.ad_groups[0]
    assert ids_read(reads["campaign"], account) == {new.id, renamed.id}
    assert ids_read(reads["ad_group"], account) == {group.id}
    assert ids_read(reads["ad_group_ad"], account) == {group.ads[0].id, added.id, removed.id}
    counts = {s: second["streams"][s] for s in ("campaigns", "ad_groups", "ads")}
    assert [(c["inserted"], c["updated"], c["deleted"]) for c in counts.values()] == [
        (1, 1, 0),
        (1, 0, 0),
        (2, 1, 0),
    ]
    got = stored(world.data, iid)
    assert got["google_ads_ads"][(removed.ad_group.id, removed.id)][4] == "REMOVED"
    assert got["google_ads_campaigns"][(renamed.id,)][1:3] == ("Renamed", "PAUSED")


def test_entities_fall_back_to_a_snapshot_on_too_many_changes_or_an_old_cursor(
    world: AdsWorld,
) -> None:
    iid = world.add_google_ads("fallback", clients=2, config={"change_status_limit": 2})
    manager = world.trees["fallback"]
    assert sync_google_ads(integration_id=iid, requested_by=world.users["owner"])["status"] == (
        "succeeded"
    )
    busy, quiet = enabled_clients(manager)[:2]
    # Two campaign changes reach the LIMIT of 2 in ``busy``; one ad change stays under it.
    for n, campaign in enumerate(busy.campaigns[:2]):
        world.ads.rename(campaign, f"Busy {n}")
    world.ads.rename(busy.campaigns[0].ad_groups[0].ads[0], "Busy ad")
    # The ad groups' cursors of ``quiet`` are older than change_status reaches.
    world.ads.rename(quiet.campaigns[0].ad_groups[0], "Quiet group")
    old = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    with world.data.begin() as conn:
        conn.execute(
            schema.sync_state.update()
            .where(
                schema.sync_state.c.integration_id == iid,
                schema.sync_state.c.stream == "ad_groups",
                schema.sync_state.c.partition == str(quiet.id),
            )
            .values(cursor={"changes_through": old})
        )

    world.sandbox.log.clear()
    result = sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    assert_stored_is_truth(world, "fallback")
    reads = entity_reads(world)
    asked = {(cid, re.search(r"resource_type = (\w+)", q)[1]) for cid, q in reads["change_status"]}  # type: ignore[index]
    assert (str(busy.id), "CAMPAIGN") in asked and (str(quiet.id), "AD_GROUP") not in asked
    assert snapshots(reads["campaign"]) == {str(busy.id)}  # the list was too long
    assert snapshots(reads["ad_group"]) == {str(quiet.id)}  # the cursor was too old
    assert not snapshots(reads["ad_group_ad"])
    assert ids_read(reads["ad_group_ad"], busy) == {busy.campaigns[0].ad_groups[0].ads[0].id}
    # The snapshot moved the old cursor on: the next run reads the changes again (the
    # renamed group once more, as it is inside the overlap).
    world.sandbox.log.clear()
    sync_google_ads(integration_id=iid, requested_by=world.users["owner"])
    reads = entity_reads(world)
    assert not snapshots(reads["ad_group"])
    assert ids_read(reads["ad_group"], quiet) == {quiet.campaigns[0].ad_groups[0].id}
    assert_stored_is_truth(world, "fallback")
