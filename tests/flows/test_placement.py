"""Placement: an agency's database on a second PostgreSQL server. The agency is moved there,
syncs there, is read there by its analyst, and is moved back, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from db import agencydb
from db.analyst import create_analyst
from db.embedded import EmbeddedPostgres
from db.placement import checksum, move_agency
from db.schema import agency_metadata
from flows import sync_slack
from tests.flows.conftest import World
from tests.flows.test_sync_slack import START, actual, expected


def _sums(url: str) -> dict[str, Any]:
    raw_url = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(raw_url) as raw:
        return {t.name: checksum(raw, f"public.{t.name}", t) for t in agency_metadata.sorted_tables}


def test_an_agency_on_a_second_server_syncs_is_read_and_comes_back(
    world: World, tmp_path: Path
) -> None:
    second = EmbeddedPostgres(tmp_path / "second", durable=False)
    server = second.ensure_running()
    try:
        iid = world.add_slack(
            "placed",
            client="globex",
            users=4,
            channels=3,
            messages_per_channel=20,
            start=START,
            span_days=5,
            config={"auto_join": True},
        )
        sync_slack(integration_id=iid, requested_by=world.users["owner"])
        home = agencydb.placement(world.engine, world.agency_id)
        at_home = _sums(home.url)
        assert at_home["slack_messages"].rows > 0

        moved = move_agency(world.engine, world.agency_id, server)
        away = agencydb.placement(world.engine, world.agency_id)
        assert away.server_url == server and away.database != home.database
        assert moved["rows"] == sum(c.rows for c in at_home.values())
        assert _sums(away.url) == at_home
        with second._admin() as pg:  # the database is on the second server, not the first
            assert pg.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (away.database,)
            ).fetchone()
        with world.engine.connect() as conn:
            assert not conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": home.database}
            ).first()

        ws = world.workspaces["placed"]
        ws.post_message(ws.channel_ids[0], "written while the agency lives elsewhere")
        sync_slack(integration_id=iid, requested_by=world.users["owner"])
        got = actual(world.data, iid)["messages"]  # read by the application, over there
        assert got == expected(ws)["messages"]
        login = create_analyst(world.engine, world.users["owner"])
        url = sa.make_url(away.url).set(
            drivername="postgresql", username=login.role_name, password=login.password
        )
        with psycopg.connect(url.render_as_string(hide_password=False)) as analyst:
            seen = analyst.execute(
                "SELECT count(*), count(*) FILTER (WHERE text LIKE 'written while%%')"
                " FROM slack_messages WHERE deleted_at IS NULL"
            ).fetchone()
        assert seen == (len(got), 1)
        there = _sums(away.url)

        back = move_agency(world.engine, world.agency_id, None)
        assert back["reset_analyst_logins"] == [login.role_name]
        home_again = agencydb.placement(world.engine, world.agency_id)
        assert home_again.server_url is None
        assert _sums(home_again.url) == there
        with second._admin() as pg:
            assert not pg.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (away.database,)
            ).fetchone()
    finally:
        second.stop()
        shutil.rmtree(tmp_path / "second", ignore_errors=True)
