"""The analytics views, per view and per role, over real analyst logins.

Roles: ``owner`` of agency A (whole agency), ``member`` of A with a read grant on client c0
only, ``b_manager`` of agency B (must see nothing of A). Expected rows come from
``tests/analytics/seed.py``, computed from the seeded specs in Python.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.analytics.seed import KEYS, SEARCH_ADDS_UP_DAYS_AGO, World, expected

VIEWS = tuple(KEYS)
ROLES = ("owner", "member", "b_manager")


def _rows(conn: psycopg.Connection[Any], view: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT * FROM {view}").fetchall()  # noqa: S608


def _by_key(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    out = {tuple(r[k] for k in keys): r for r in rows}
    assert len(out) == len(rows), "duplicate keys"
    return out


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("view", VIEWS)
def test_each_role_sees_exactly_its_rows(world: World, login: Any, view: str, who: str) -> None:
    want = expected(world, view, who)
    assert want, "the seed must give every role something to see"
    got = _rows(login(who), view)
    keys = KEYS[view]
    got_by_key, want_by_key = _by_key(got, keys), _by_key(want, keys)
    assert set(got_by_key) == set(want_by_key)
    for key, row in want_by_key.items():
        shown = {column: got_by_key[key][column] for column in row}
        assert shown == row, key


def test_the_roles_differ_as_the_grants_say(world: World, login: Any) -> None:
    """What tells the three apart: owner all of A (NULL client included), member only c0,
    B's analyst only B."""
    owner = {r["client_id"] for r in _rows(login("owner"), "ad_performance_daily")}
    member = {r["client_id"] for r in _rows(login("member"), "ad_performance_daily")}
    other = {r["agency_id"] for r in _rows(login("b_manager"), "ad_performance_daily")}
    assert owner == {*world.a.clients, None}
    assert member == {world.a.clients[0]}
    assert other == {world.b.id}


def test_analysts_only_read_the_views(world: World, login: Any) -> None:
    """Each login may SELECT the views on its ``search_path`` and do nothing else with them;
    the views belong to the application."""
    for who in ROLES:
        conn = login(who)
        rows = conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) = current_user,"
            " has_table_privilege(c.oid, 'SELECT'),"
            " has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')"
            " FROM pg_class c WHERE c.relkind = 'v'"
            " AND c.relnamespace = ANY (current_schemas(false)::regnamespace[])"
            " AND c.relname = ANY(%s)",
            [list(VIEWS)],
        ).fetchall()
        assert {r[0] for r in rows} == set(VIEWS), who
        assert all(r[1:] == (False, True, False) for r in rows), (who, rows)


@pytest.mark.parametrize(("platform", "window"), [("meta_ads", 3), ("google_ads", 5)])
def test_is_final_uses_the_integrations_window_for_a_member_too(
    world: World, login: Any, platform: str, window: int
) -> None:
    """A's ads integrations have windows of 3 (Meta ``lookback_days``) and 5 days (Google
    ``conversion_window_days``); the member's ``is_final`` follows them too, not the
    defaults 28 and 30 that B gets."""
    assert world.a.lookback[platform] == window and world.b.lookback[platform] is None
    rows = _rows(login("member"), "ad_performance_daily")
    ten_days = [r for r in rows if r["platform"] == platform and r["day"] == _ago(10)]
    assert ten_days and all(r["is_final"] for r in ten_days)
    today = [r for r in rows if r["platform"] == platform and r["day"] == _ago(0)]
    assert today and not any(r["is_final"] for r in today)
    b_rows = _rows(login("b_manager"), "ad_performance_daily")
    b_ten = [r for r in b_rows if r["platform"] == platform and r["day"] == _ago(10)]
    assert b_ten and not any(r["is_final"] for r in b_ten)
    b_forty = [r for r in b_rows if r["platform"] == platform and r["day"] == _ago(40)]
    assert b_forty and all(r["is_final"] for r in b_forty)


def _ago(days: int) -> Any:
    from datetime import timedelta

    from tests.analytics.seed import TODAY

    return TODAY - timedelta(days=days)


def _campaign_sums(ads: list[dict[str, Any]]) -> dict[tuple[Any, ...], Decimal]:
    sums: dict[tuple[Any, ...], Decimal] = {}
    for a in ads:
        key = (a["integration_id"], a["campaign_id"], a["day"])
        sums[key] = sums.get(key, Decimal(0)) + a["spend"]
    return sums


def test_meta_campaign_totals_are_all_ads_deleted_ones_included(world: World, login: Any) -> None:
    campaigns = _rows(login("owner"), "campaign_performance_daily")
    ads = [a for a in _rows(login("owner"), "ad_performance_daily") if a["platform"] == "meta_ads"]
    assert any(a["ad_status"] == "DELETED" for a in ads)
    live_only = _campaign_sums([a for a in ads if a["ad_status"] != "DELETED"])
    sums = _campaign_sums(ads)
    meta = [c for c in campaigns if c["platform"] == "meta_ads"]
    assert len(meta) == len(sums)
    for row in meta:
        key = (row["integration_id"], row["campaign_id"], row["day"])
        assert row["spend"] == sums[key] != live_only[key]


def test_google_campaigns_come_from_campaign_level_data(world: World, login: Any) -> None:
    """Performance Max has no ad rows, and a Search campaign's own numbers exceed its ads':
    summing ads would lose both."""
    campaigns = _rows(login("owner"), "campaign_performance_daily")
    ads = [
        a
        for a in _rows(login("owner"), "ad_performance_daily")
        if a["platform"] == "google_ads" and a["level"] == "ad"
    ]
    google = [c for c in campaigns if c["platform"] == "google_ads"]
    pmax = [c for c in google if c["campaign_type"] == "PERFORMANCE_MAX"]
    assert pmax and not {c["campaign_id"] for c in pmax} & {a["campaign_id"] for a in ads}
    sums = _campaign_sums(ads)
    search = [c for c in google if c["campaign_type"] == "SEARCH"]
    assert search
    for row in search:
        key = (row["integration_id"], row["campaign_id"], row["day"])
        extra = Decimal(0) if row["day"] == _ago(SEARCH_ADDS_UP_DAYS_AGO) else Decimal("3.21")
        assert row["spend"] == sums[key] + extra


METRICS = ("impressions", "clicks", "spend", "conversions", "conversion_value")


def _totals(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        into = out.setdefault(tuple(r[k] for k in keys), [0] * len(METRICS))
        for i, m in enumerate(METRICS):
            into[i] += r[m]
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize("who", ROLES)
def test_ad_rows_add_up_to_every_campaign_and_account(world: World, login: Any, who: str) -> None:
    """``ad_performance_daily`` is the view analysts reach for first: per campaign (and so per
    account) and day its rows sum to the campaign-level numbers, Performance Max and the
    clicks no ad row carries included, in the whole agency's views and a member's alike. A
    campaign whose ads carry all of its day gets no campaign-level row (nothing counted
    twice); a campaign-level row has no ad group or ad."""
    conn = login(who)
    ads, campaigns = _rows(conn, "ad_performance_daily"), _rows(conn, "campaign_performance_daily")
    keys = ("platform", "integration_id", "account_id", "campaign_id", "day")
    assert _totals(ads, *keys) == _totals(campaigns, *keys)
    assert _totals(ads, *keys[:3], "day") == _totals(campaigns, *keys[:3], "day")
    rest = [a for a in ads if a["level"] == "campaign"]
    assert {a["level"] for a in ads} == {"ad", "campaign"} and rest
    assert all(a["ad_group_id"] is a["ad_id"] is a["ad_type"] is None for a in rest)
    assert {a["platform"] for a in rest} == {"google_ads"}  # Meta's insights are per ad
    search = {a["campaign_id"] for a in ads if a["campaign_type"] == "SEARCH"}
    rest_days = {(a["campaign_id"], a["day"]) for a in rest if a["campaign_id"] in search}
    assert rest_days and not {d for _, d in rest_days} & {_ago(SEARCH_ADDS_UP_DAYS_AGO)}


# --- attacks ----------------------------------------------------------------------------------
def test_a_member_cannot_reach_another_clients_rows_through_a_view(
    world: World, login: Any
) -> None:
    conn = login("member")
    other = world.a.clients[1]
    for view in VIEWS:
        # Asking for them by id returns nothing.
        assert conn.execute(
            f"SELECT count(*) FROM {view} WHERE client_id = %s",  # noqa: S608
            [other],
        ).fetchone() == (0,)
        # A predicate that fails on the first row of the other client it meets: there is none
        # within the member's reach, so this query cannot raise division by zero.
        assert conn.execute(
            f"SELECT count(*) FROM {view} "  # noqa: S608
            "WHERE 1 / (CASE WHEN client_id = %s THEN 0 ELSE 1 END) = 1",
            [other],
        ).fetchone() == (len(expected(world, view, "member")),)


def test_error_messages_show_no_rows_of_others(world: World, login: Any) -> None:
    """A cast that fails prints the value it failed on: it must be a value the member may see."""
    conn = login("member")
    hidden = [world.a.client_names[world.a.clients[1]], "Account 102", "Account 103"]
    hidden += [world.b.client_names[c] for c in world.b.clients]
    for view, column in (
        ("ad_performance_daily", "account_name"),
        ("ad_performance_daily", "client_name"),
        ("campaign_performance_daily", "campaign_name"),
        ("client_activity_daily", "client_name"),
    ):
        with pytest.raises(psycopg.errors.InvalidTextRepresentation) as caught:
            conn.execute(
                f"SELECT count(*) FROM {view} WHERE {column}::integer = 1"  # noqa: S608
            )
        message = str(caught.value)
        assert not [h for h in hidden if h in message], message


def test_analysts_cannot_change_or_add_views(world: World, login: Any) -> None:
    conn = login("owner")
    for stmt in (
        "CREATE VIEW analytics.mine AS SELECT 1 AS x",
        "CREATE OR REPLACE VIEW analytics.ad_performance_daily AS "
        "SELECT * FROM public.meta_ad_insights_daily",
        "ALTER VIEW analytics.ad_performance_daily SET (security_invoker = false)",
        "ALTER VIEW analytics.ad_performance_daily OWNER TO CURRENT_USER",
        "DROP VIEW analytics.client_activity_daily",
        "CREATE FUNCTION analytics.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)


def test_a_member_sees_only_its_clients_and_their_integrations(world: World, login: Any) -> None:
    """The copies of the agency's clients and integrations in a member's schema hold its
    granted client and that client's integrations, and of their settings only the window."""
    a = world.a
    member = login("member")
    clients = {r[0] for r in member.execute("SELECT id FROM client")}
    assert clients == {a.clients[0]}
    rows = member.execute("SELECT id, client_id, lookback_days FROM integration").fetchall()
    assert rows and {r[1] for r in rows} == {a.clients[0]}
    assert a.integrations["meta_ads"] not in {r[0] for r in rows}  # agency-wide
    assert {(r[2]) for r in rows} >= {3, 5}
    with pytest.raises(psycopg.errors.UndefinedColumn):
        member.execute("SELECT config FROM integration")
    owner_ids = {r[0] for r in login("owner").execute("SELECT id FROM integration")}
    assert a.integrations["meta_ads"] in owner_ids and {r[0] for r in rows} < owner_ids
