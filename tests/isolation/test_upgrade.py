"""An installation of the shared layout (every agency's rows in tables they all shared, as up to
revision 0011) upgraded in place by ``aos-sync db upgrade``: every row lands in its agency's own
database, per table and agency the row count and checksum are those of before, and an upgrade
killed half-way resumes to the same end."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from db import agencydb, tenancy
from db.migrate import upgrade
from db.placement import Checksum, checksum
from db.schema import agency_metadata
from tests.conftest import Cluster
from tests.flows.conftest import kill_cli_midway
from tests.isolation.world import PROVIDER_TABLES, rows_for

MOVED = [
    *PROVIDER_TABLES,
    agency_metadata.tables["sync_state"],
    agency_metadata.tables["sync_reject"],
]


@pytest.fixture
def old_layout(cluster: Cluster) -> Iterator[sa.Engine]:
    """A control database at revision 0011 with two agencies' rows in every shared table."""
    name = f"aos_t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(cluster.create(name))
    upgrade(engine, "0011")
    try:
        yield engine
    finally:
        engine.dispose()
        cluster.drop(name)


def _seed(engine: sa.Engine, bulk: int) -> list[int]:
    agencies = []
    with engine.begin() as conn:
        for n in (1, 2):
            agency = tenancy.create_agency(conn, f"Old {n}")
            client = tenancy.add_client(conn, agency, f"old-client-{n}")
            agencies.append(agency)
            for client_id in (client, None):
                iid = tenancy.add_integration(
                    conn, agency, "slack", f"old-{n}-{client_id}", client_id=client_id
                )
                tag = f"SECRET-old{n}-{client_id}"
                for table in PROVIDER_TABLES:
                    old = sa.Table(table.name, sa.MetaData(), autoload_with=conn)
                    conn.execute(old.insert(), rows_for(table, iid, agency, client_id, tag))
                conn.execute(
                    sa.text(
                        "INSERT INTO sync_state (integration_id, agency_id, stream, partition,"
                        " cursor) VALUES (:i, :a, 'messages', 'C1', '{\"ts\": \"1.0\"}')"
                    ),
                    {"i": iid, "a": agency},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO sync_reject (agency_id, integration_id, table_name,"
                        " record_key, stream, reason, record_bytes)"
                        " VALUES (:a, :i, 'slack_messages', '[\"C1\", \"2.0\"]', 'messages',"
                        " 'too long', 10)"
                    ),
                    {"i": iid, "a": agency},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO slack_messages (integration_id, channel_id, ts, agency_id,"
                        " client_id, posted_at, text, is_reply, reply_count)"
                        " SELECT :i, 'CBULK', g::text || '.000100', :a, :c, now(),"
                        " 'bulk ' || g, false, 0 FROM generate_series(1, :n) AS g"
                    ),
                    {"i": iid, "a": agency, "c": client_id, "n": bulk},
                )
    return agencies


def _before(engine: sa.Engine, agencies: list[int]) -> dict[tuple[int, str], Checksum]:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as raw:
        return {
            (a, t.name): checksum(raw, f"public.{t.name}", t, f"WHERE agency_id = {a}")
            for a in agencies
            for t in MOVED
        }


def _after(engine: sa.Engine, agencies: list[int]) -> dict[tuple[int, str], Checksum]:
    out = {}
    for a in agencies:
        url = sa.make_url(agencydb.placement(engine, a).url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as raw:
            for t in MOVED:
                out[(a, t.name)] = checksum(raw, f"public.{t.name}", t)
    return out


def _env(engine: sa.Engine) -> dict[str, str]:
    return {
        **os.environ,
        "AOS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "AOS_ENCRYPTION_KEY": "test:" + "a" * 43 + "=",
    }


def _upgrade_cli(engine: sa.Engine) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--json", "db", "upgrade"],
        env=_env(engine),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_upgrade_moves_every_row_into_its_agencys_database(old_layout: sa.Engine) -> None:
    agencies = _seed(old_layout, bulk=50)
    before = _before(old_layout, agencies)
    assert all(c.rows for c in before.values())
    done = _upgrade_cli(old_layout)
    assert done.returncode == 0, done.stderr
    assert _after(old_layout, agencies) == before
    with old_layout.connect() as conn:
        left = set(sa.inspect(conn).get_table_names())
    assert not {t.name for t in MOVED} & left  # the shared tables are gone
    again = _upgrade_cli(old_layout)  # a second upgrade changes nothing
    assert again.returncode == 0, again.stderr
    assert _after(old_layout, agencies) == before


def test_a_killed_upgrade_resumes_to_the_same_end(old_layout: sa.Engine) -> None:
    agencies = _seed(old_layout, bulk=40_000)
    before = _before(old_layout, agencies)

    def midway() -> bool:
        try:
            with old_layout.connect() as conn:
                name = conn.execute(
                    sa.text("SELECT database_name FROM agency WHERE id = :a"), {"a": agencies[0]}
                ).scalar()
        except sa.exc.ProgrammingError:  # not at revision 0020 yet
            return False
        if name is None:
            return False
        url = old_layout.url.set(database=name)
        try:
            with sa.create_engine(url, poolclass=sa.NullPool).connect() as conn:
                return bool(
                    conn.execute(sa.text("SELECT EXISTS (SELECT FROM slack_messages)")).scalar()
                )
        except sa.exc.DBAPIError:
            return False

    kill_cli_midway(_env(old_layout), ["db", "upgrade"], midway)
    with old_layout.connect() as conn:  # nothing was emptied yet: the shared rows are whole
        assert conn.execute(sa.text("SELECT count(*) FROM slack_messages")).scalar() == sum(
            before[(a, "slack_messages")].rows for a in agencies
        )
    done = _upgrade_cli(old_layout)
    assert done.returncode == 0, done.stderr
    assert _after(old_layout, agencies) == before
