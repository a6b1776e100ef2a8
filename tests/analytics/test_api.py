"""``aos_sync.analytics``: DataFrames as the caller's analyst login, with exact dtypes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from aos_sync.analytics import NotAnAnalyst, UnknownView, connect, frame
from db import agencydb
from db.analytics import select_range
from tests.analytics.seed import TODAY, World, expected


def test_a_member_frame_has_their_rows_and_proper_dtypes(world: World) -> None:
    df = frame("ad_performance_daily", url=world.url("member"))
    want = expected(world, "ad_performance_daily", "member")
    assert len(df) == len(want)
    assert set(df["client_id"]) == {world.a.clients[0]}
    dtypes = df.dtypes.astype(str).to_dict()
    assert {k: dtypes[k] for k in ("agency_id", "client_id", "impressions", "clicks")} == {
        "agency_id": "Int64",
        "client_id": "Int64",
        "impressions": "Int64",
        "clicks": "Int64",
    }
    assert dtypes["day"] == "object" and all(type(d) is date for d in df["day"])
    assert dtypes["synced_at"] == "datetime64[ns, UTC]"
    assert dtypes["is_final"] == "boolean"
    assert dtypes["account_name"] == dtypes["platform"] == "string"
    for column in ("spend", "conversions", "conversion_value"):
        assert dtypes[column] == "object"
        assert all(isinstance(v, Decimal) for v in df[column])
    # Exact money: the frame's sum is the seed's sum to the cent, no float drift.
    assert df["spend"].sum() == sum(r["spend"] for r in want)
    # Meta has no ad type, nor has a campaign-level row: a real NA, not the text "None".
    no_type = (df["platform"] == "meta_ads") | (df["level"] == "campaign")
    assert no_type.any() and df.loc[no_type, "ad_type"].isna().all()
    assert df.loc[~no_type, "ad_type"].notna().all() and (~no_type).any()
    assert df.loc[df["level"] == "campaign", "ad_id"].isna().all()


def test_the_date_range_includes_both_ends(world: World) -> None:
    since, until = TODAY - timedelta(days=10), TODAY - timedelta(days=2)
    df = frame("ad_performance_daily", since.isoformat(), until, url=world.url("owner"))
    days = set(df["day"])
    assert days == {TODAY - timedelta(days=k) for k in (2, 4, 10)}
    assert list(df["day"]) == sorted(df["day"])  # the view's stable order


def test_activity_frame_with_a_client_filter_and_an_open_range(world: World) -> None:
    c0 = world.a.clients[0]
    df = frame(
        "client_activity_daily", client_ids=[c0, world.a.clients[1]], url=world.url("member")
    )
    want = expected(world, "client_activity_daily", "member")
    assert sorted(zip(df["day"], df["slack_messages"], strict=True)) == sorted(
        (r["day"], r["slack_messages"]) for r in want
    )
    assert str(df["last_activity_at"].dtype) == "datetime64[ns, UTC]"
    assert df["last_activity_at"].max() == max(pd.Timestamp(r["last_activity_at"]) for r in want)


def test_an_empty_range_gives_typed_empty_columns(world: World) -> None:
    df = frame(
        "campaign_performance_daily", date(1990, 1, 1), date(1990, 1, 2), url=world.url("owner")
    )
    assert df.empty
    assert str(df["impressions"].dtype) == "Int64" and str(df["day"].dtype) == "object"


def test_connect_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOS_ANALYST_URL", world.url("b_manager"))
    df = frame("client_activity_daily")
    assert set(df["agency_id"]) == {world.b.id}
    monkeypatch.delenv("AOS_ANALYST_URL")
    login = world.logins["member"]
    monkeypatch.setenv("AOS_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ANALYST_ROLE", login["role"])
    monkeypatch.setenv("AOS_ANALYST_PASSWORD", login["password"])
    with connect() as conn:
        assert set(frame("client_activity_daily", conn=conn)["client_id"]) == {world.a.clients[0]}
    monkeypatch.delenv("AOS_ANALYST_ROLE")
    with pytest.raises(NotAnAnalyst, match="no analyst login given"):
        connect()


def test_the_application_login_is_refused(world: World) -> None:
    """The tables' owner bypasses row-level security: a frame must never be read that way."""
    app = world.engine.url.render_as_string(hide_password=False)
    with pytest.raises(NotAnAnalyst, match="not an analyst login"):
        frame("ad_performance_daily", url=app)
    # Handing in an owner's connection does not get around the check either.
    with psycopg.connect(app.replace("+psycopg", ""), autocommit=True) as conn:
        with pytest.raises(NotAnAnalyst):
            frame("ad_performance_daily", conn=conn)


def test_a_login_with_no_reach_is_refused(world: World) -> None:
    """A role that may connect to the agency's database but is none of its readers."""
    data = agencydb.engine_for(world.engine, world.a.id)
    database = data.url.database
    with data.begin() as conn:
        conn.execute(sa.text("DROP ROLE IF EXISTS aos_test_unbound"))
        conn.execute(sa.text("CREATE ROLE aos_test_unbound LOGIN PASSWORD 'x-unbound-1'"))
        conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO aos_test_unbound'))
    try:
        url = data.url.set(username="aos_test_unbound", password="x-unbound-1")
        with pytest.raises(NotAnAnalyst, match="not an analyst login"):
            frame("ad_performance_daily", url=url.render_as_string(hide_password=False))
    finally:
        with data.begin() as conn:
            conn.execute(sa.text(f'REVOKE CONNECT ON DATABASE "{database}" FROM aos_test_unbound'))
            conn.execute(sa.text("DROP ROLE aos_test_unbound"))


@pytest.mark.parametrize(
    "name",
    [
        "ad_performance_daily; DROP TABLE public.client",
        "ad_performance_daily WHERE true --",
        'analytics."ad_performance_daily"',
        "integration_lookback",
        "public.client",
        "../client",
        "AD_PERFORMANCE_DAILY",
    ],
)
def test_view_names_outside_the_allow_list_never_reach_the_database(
    world: World, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_database(*_: Any, **__: Any) -> None:
        raise AssertionError("connected for a refused view name")

    monkeypatch.setattr(psycopg, "connect", no_database)
    with pytest.raises(UnknownView, match="expected one of: ad_performance_daily"):
        frame(name, url=world.url("owner"))


def test_injection_through_other_arguments_is_refused_or_inert(world: World) -> None:
    with pytest.raises(ValueError, match="not a column name"):
        frame("ad_performance_daily", columns=["spend; DROP TABLE client"], url=world.url("owner"))
    with pytest.raises(ValueError, match="since: expected a date as YYYY-MM-DD"):
        frame("ad_performance_daily", since="2026-01-01' OR '1'='1", url=world.url("owner"))
    # Values are parameters, never text of the query.
    query, params = select_range("ad_performance_daily", date(2026, 1, 1), None, client_ids=[1])
    assert "2026" not in query.as_string(None) and params == [date(2026, 1, 1), [1]]
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM client")).scalar_one() == 4


def test_the_qualified_name_is_accepted(world: World) -> None:
    df = frame(
        "analytics.client_activity_daily", url=world.url("owner"), columns=["client_id", "day"]
    )
    assert list(df.columns) == ["client_id", "day"] and len(df) > 0
