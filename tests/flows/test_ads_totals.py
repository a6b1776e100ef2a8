"""The analytics views add up to the ad accounts' own numbers, and so does the demo's headline.

The demo's own ads world (``cli.demo.seed`` for its first agency, Google Ads and Meta only: a
manager tree whose first client runs Performance Max, the second client's own Google account
with Performance Max too, the agency's Meta business and the client's own, with paused,
archived and deleted ads) is synced through the real flows, as the demo does (``sync_all``).
Then, as the owner's analyst login (schema ``analytics``) and as the member's (its own schema
over its client's integrations), every view that carries spend, impressions and clicks must
give per platform, account and day the totals the emulators report for the whole account:

* Google Ads: the ``customer`` resource's metrics, the account's own totals (Performance Max
  included; https://developers.google.com/google-ads/api/fields/v26/customer, "metrics" of the
  customer resource), as the emulator answers ``SELECT segments.date, metrics.* FROM
  customer``.
* Meta: insights at ``level=account`` (https://developers.facebook.com/docs/marketing-api/
  insights/, "level"), which count every ad, deleted and archived ones included, as the
  emulator computes them.

Neither comes from our tables or our record code. A day the sync could not see yet (midnight
passed in an account's time zone after the run started) is not required, but must be right if
it is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from cli.demo import ANALYST_QUERIES, DEMO_AGENCIES, DemoAgency, seed
from cli.sandbox import SANDBOX_TIME_SCALE
from db import schema, tenancy
from db.agencydb import placement
from db.analyst import create_analyst
from db.analytics import VIEWS
from flows import sync_all
from sandbox.google_ads import AdsAccount, GoogleAdsEmulator
from sandbox.meta import MetaEmulator
from sandbox.meta.data import MetaAccount
from sandbox.meta.insights import InsightsQuery, compute_rows
from tests.flows.conftest import World, seeded_world
from tests.flows.test_sync_google_ads import enabled_clients

ADS = ("google_ads", "meta_ads")
NAME, SLUG, CLIENTS = DEMO_AGENCIES[0]
MEMBER_CLIENT = CLIENTS[1]  # the demo's member has write on the second client
FAST_POLLS = {"poll_interval": 0.02, "max_poll_interval": 0.1}
HISTORY = 400  # days before today: more than any emulator here holds
Key = tuple[str, str, date]  # platform, account id, day
Totals = tuple[int, int, Decimal]  # impressions, clicks, spend


@dataclass
class Account:
    platform: str
    id: str
    currency: str
    client: str | None  # the client whose integration synced it; None: an agency-wide one
    seen_today: date  # the account's local today when the sync started
    truth: dict[date, Totals]  # the emulator's account totals per day, through seen_today + 1


@dataclass
class Synced:
    world: World
    agency: DemoAgency
    accounts: list[Account]
    outcomes: list[dict[str, Any]]

    def url(self, email: str) -> str:
        role = create_analyst(self.world.engine, email)
        return (
            sa.make_url(placement(self.world.engine, self.agency.id).url)
            .set(drivername="postgresql", username=role.role_name, password=role.password)
            .render_as_string(hide_password=False)
        )


# -- the emulators' truth ------------------------------------------------------------------------
def _google_totals(
    emulator: GoogleAdsEmulator, account: AdsAccount, until: date
) -> dict[date, Totals]:
    _, rows = emulator.run_query(
        account,
        "SELECT segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros "  # noqa: S608 - GAQL to the emulator
        f"FROM customer WHERE segments.date BETWEEN '{until - timedelta(days=HISTORY)}' "
        f"AND '{until}'",
    )
    return {
        date.fromisoformat(r["segments.date"]): (
            r["metrics.impressions"],
            r["metrics.clicks"],
            Decimal(r["metrics.cost_micros"]) / 1_000_000,
        )
        for r in rows
    }


def _meta_totals(account: MetaAccount, until: date) -> dict[date, Totals]:
    query = InsightsQuery(
        level="account",
        since=until - timedelta(days=HISTORY),
        until=until,
        increment=1,
        fields=["impressions", "clicks", "spend"],
        breakdowns=[],
        windows=[],
        filtering=[],
    )
    rows = compute_rows(account, list(account.ads.values()), query, datetime.now(UTC))
    return {
        date.fromisoformat(r["date_start"]): (
            int(r["impressions"]),
            int(r["clicks"]),
            Decimal(r["spend"]),
        )
        for r in rows
    }


def _accounts(world: World, synced_at: datetime) -> list[Account]:
    """Every ad account the demo agency's integrations reach, with the client whose own
    integration it is (the demo names them after the client) and its today when the sync
    started (``synced_at``). The emulators' data is a function of the day, so their totals,
    taken after the run, are those the run read; a day that began during the run is in them."""
    google = world.sandbox.emulators["google_ads"]
    meta = world.sandbox.emulators["meta_ads"]
    assert isinstance(google, GoogleAdsEmulator) and isinstance(meta, MetaEmulator)
    now = synced_at
    found: list[Account] = []
    logins = {f"ads@{SLUG}.test": None, f"ads@{MEMBER_CLIENT.lower()}.example": MEMBER_CLIENT}
    for email, client in logins.items():
        for customer in google.logins[email].customers:
            for acc in enabled_clients(google.account(customer)):
                today = acc.today(now)
                truth = _google_totals(google, acc, today + timedelta(days=1))
                found.append(Account("google_ads", str(acc.id), acc.currency, client, today, truth))
    businesses = {f"{NAME} business": None, f"{MEMBER_CLIENT} ads": MEMBER_CLIENT}
    for business in meta.businesses.values():
        if business.name not in businesses:
            continue
        for account in business.accounts:
            today = account.today(now)
            truth = _meta_totals(account, today + timedelta(days=1))
            client = businesses[business.name]
            found.append(
                Account("meta_ads", account.account_id, account.currency, client, today, truth)
            )
    return found


@pytest.fixture(scope="module")
def synced(engine: sa.Engine, prefect_harness: None) -> Iterator[Synced]:
    with (
        pytest.MonkeyPatch.context() as mp,
        seeded_world(
            World, engine, mp, providers=ADS, time_scale=SANDBOX_TIME_SCALE, seed=2026
        ) as world,
    ):
        with engine.begin() as conn:
            (agency,) = seed(conn, world.sandbox, "default", DEMO_AGENCIES[:1], providers=ADS)
            # Meta's report runs are polled as quickly as the sandbox answers them (the
            # demo's 2-second first poll is a quarter of this test's time otherwise).
            for iid in agency.integration_ids:
                found = tenancy.get_integration(conn, iid)
                if found.provider == "meta_ads":
                    conn.execute(
                        schema.integration.update()
                        .where(schema.integration.c.id == iid)
                        .values(config={**found.config, **FAST_POLLS})
                    )
        started = datetime.now(UTC)
        outcomes = sync_all(integration_ids=agency.integration_ids)
        yield Synced(world, agency, _accounts(world, started), outcomes)


# -- what the views say --------------------------------------------------------------------------
def _columns(conn: psycopg.Connection[Any], view: str) -> set[str]:
    cur = conn.execute(f"SELECT * FROM {view} LIMIT 0")  # noqa: S608 - names from db.analytics
    return {c.name for c in cur.description or ()}


def _view_totals(conn: psycopg.Connection[Any], view: str) -> dict[Key, Totals]:
    rows = conn.execute(
        "SELECT platform, account_id, day, sum(impressions)::bigint, sum(clicks)::bigint, "  # noqa: S608
        f"sum(spend) FROM {view} GROUP BY 1, 2, 3"
    ).fetchall()
    return {(p, a, d): (i, c, s) for p, a, d, i, c, s in rows}


def _expected(accounts: list[Account], got: dict[Key, Totals]) -> dict[Key, Totals]:
    """The emulators' totals of ``accounts`` per day: every day through the day each account
    was at when the sync started, and a later one where the view has it."""
    want: dict[Key, Totals] = {}
    for a in accounts:
        for day, totals in a.truth.items():
            if day <= a.seen_today or (a.platform, a.id, day) in got:
                want[(a.platform, a.id, day)] = totals
    return want


def _differences(want: dict[Key, Totals], got: dict[Key, Totals]) -> list[str]:
    keys = sorted(want.keys() | got.keys())
    return [
        f"{k}: view {got.get(k)}, emulator {want.get(k)}" for k in keys if got.get(k) != want.get(k)
    ]


# -- the tests -----------------------------------------------------------------------------------
def test_the_world_has_what_the_views_must_count(synced: Synced) -> None:
    """Every integration synced; Performance Max spends in an agency-wide account and in the
    member's client's own; Meta's accounts have deleted ads."""
    assert [o["outcome"] for o in synced.outcomes] == ["succeeded"] * 4, synced.outcomes
    google = synced.world.sandbox.emulators["google_ads"]
    assert isinstance(google, GoogleAdsEmulator)
    pmax = set()
    for a in synced.accounts:
        if a.platform == "google_ads":
            acc = google.account(a.id)
            for c in acc.campaigns:
                if c.channel == "PERFORMANCE_MAX" and any(
                    acc.campaign_day(c, day).cost_micros for day in a.truth
                ):
                    pmax.add(a.client)
    assert pmax == {None, MEMBER_CLIENT}
    meta = synced.world.sandbox.emulators["meta_ads"]
    assert isinstance(meta, MetaEmulator)
    assert all(
        any(ad.status == "DELETED" for ad in meta.accounts[f"act_{a.id}"].ads.values())
        for a in synced.accounts
        if a.platform == "meta_ads"
    )


@pytest.mark.parametrize("who", ["owner", "member"])
def test_every_view_adds_up_to_the_accounts_totals(synced: Synced, who: str) -> None:
    """Per platform, account and day: impressions, clicks and spend of each view that carries
    them equal the account's totals (the owner: every account; the member: its client's)."""
    email = f"{who}@{SLUG}.test"
    accounts = [a for a in synced.accounts if who == "owner" or a.client == MEMBER_CLIENT]
    assert {a.platform for a in accounts} == set(ADS)
    with psycopg.connect(synced.url(email), autocommit=True) as conn:
        views = [v for v in VIEWS if {"impressions", "clicks", "spend"} <= _columns(conn, v)]
        assert {"ad_performance_daily", "campaign_performance_daily"} <= set(views)
        for view in views:
            got = _view_totals(conn, view)
            problems = _differences(_expected(accounts, got), got)
            assert not problems, f"{view} as the {who}:\n" + "\n".join(problems[:10])
        # Only what no ad carries is at campaign level: Performance Max, no other campaign
        # (the emulator's other campaigns are exactly the sum of their ads).
        levels = conn.execute(
            "SELECT level, campaign_type, count(*) FILTER (WHERE ad_id IS NOT NULL) "
            "FROM ad_performance_daily GROUP BY 1, 2"
        ).fetchall()
    assert {(t, n) for level, t, n in levels if level == "campaign"} == {("PERFORMANCE_MAX", 0)}
    assert "PERFORMANCE_MAX" not in {t for level, t, _ in levels if level == "ad"}


def test_the_demos_headline_is_the_accounts_totals(synced: Synced) -> None:
    """The demo's "paid media per platform and client" query, as the demo's member, shows its
    client's accounts' whole spend, impressions and clicks per platform and currency."""
    title, query = ANALYST_QUERIES[0]
    assert "Paid media" in title
    member = [a for a in synced.accounts if a.client == MEMBER_CLIENT]
    with psycopg.connect(synced.url(f"member@{SLUG}.test"), autocommit=True) as conn:
        per_day = _view_totals(conn, "ad_performance_daily")
        headline = conn.execute(query).fetchall()
    want: dict[tuple[str, str, str], list[Any]] = {}
    for (platform, account_id, _), totals in _expected(member, per_day).items():
        currency = next(a.currency for a in member if (a.platform, a.id) == (platform, account_id))
        into = want.setdefault((platform, MEMBER_CLIENT, currency), [0, 0, Decimal(0)])
        for i, n in enumerate(totals):
            into[i] += n
    got = {(p, c, cur): [i, k, s] for p, c, cur, i, k, s, _ in headline}
    assert got == want
    assert {p for p, _, _ in got} == set(ADS)
