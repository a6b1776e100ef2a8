"""Analyst logins as an operator makes them (``aos-sync analyst create``, the real CLI in a
subprocess), attacked over real connections. Isolation itself (no relation within reach holds
another tenant's rows; the query-plan oracle; locks, connections, large objects) is tested in
``tests/isolation/``; here: the logins, their names and their powers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from db import agencydb, readers, schema, tenancy
from tests.isolation.world import Seeded, seed_agency

AOS_SYNC = Path(sys.executable).parent / "aos-sync"


def cli(engine: sa.Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AOS_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.run(
        [str(AOS_SYNC), "--json", *args], capture_output=True, text=True, env=env, timeout=120
    )


def cli_analyst(engine: sa.Engine, email: str, *extra: str) -> dict[str, Any]:
    done = cli(engine, "analyst", "create", "--user", email, *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def connect(engine: sa.Engine, agency_id: int, login: dict[str, Any]) -> psycopg.Connection[Any]:
    url = sa.make_url(agencydb.placement(engine, agency_id).url).set(
        drivername="postgresql", username=login["role"], password=login["password"]
    )
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


@pytest.fixture(scope="module")
def agencies(engine: sa.Engine) -> dict[str, Seeded]:
    return {name: seed_agency(engine, name) for name in ("A", "B")}


def test_the_cli_prints_a_psql_line_to_the_agency_database(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    login = cli_analyst(engine, "manager@a.test")
    database = agencydb.placement(engine, agencies["A"].agency_id).database
    assert login["database"] == database and login["psql"].endswith(f"/{database}'")
    with connect(engine, agencies["A"].agency_id, login) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (database,)


def test_analysts_reach_no_server_side_power(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    login = cli_analyst(engine, "owner@a.test")
    with connect(engine, agencies["A"].agency_id, login) as conn:
        for stmt in (
            "COPY (SELECT 1) TO PROGRAM 'true'",
            "SELECT pg_read_file('pg_hba.conf')",
            "SELECT rolpassword FROM pg_authid",
            "SELECT * FROM public.sync_state",
            "SELECT * FROM public.sync_reject",
            "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
        role = login["role"]
        assert (
            conn.execute(
                "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(%s, oid, 'CREATE')",
                [role],
            ).fetchall()
            == []
        )


def test_a_member_sees_statistics_of_nothing_but_its_own_schema(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    agency = agencies["B"]
    data = agencydb.engine_for(engine, agency.agency_id)
    with data.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    login = cli_analyst(engine, "member@b.test")
    with connect(engine, agency.agency_id, login) as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT schemaname FROM pg_stats"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        }
    # Only the member's own copies of its clients and integrations: no partition at all.
    assert schemas == {readers.member_schema(login["role"])}


def test_look_alike_emails_get_their_own_logins_and_nothing_is_rebound(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        north = tenancy.create_agency(conn, "Northwind")
        north_test = tenancy.create_agency(conn, "Northwind Test")
        tenancy.add_user(conn, north, "owner@northwind.test", "owner")
        tenancy.add_user(conn, north_test, "owner@northwind-test", "owner")
        made = {
            agency: tenancy.add_integration(conn, agency, "slack", f"{tag}-slack")
            for agency, tag in ((north, "n"), (north_test, "nt"))
        }
    for (agency, integration), tag in zip(made.items(), ("n", "nt"), strict=True):
        data = readers.attach(engine, agency, integration, ["slack_channels"])
        with data.begin() as conn:
            conn.execute(
                schema.slack_channels.insert().values(
                    agency_id=agency,
                    integration_id=integration,
                    channel_id=f"C-{tag}",
                    name=tag,
                    is_private=False,
                    is_archived=False,
                    is_member=True,
                    created_at=sa.func.now(),
                )
            )
    first = cli_analyst(engine, "owner@northwind.test")
    session = connect(engine, north, first)
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]
    second = cli_analyst(engine, "owner@northwind-test")
    assert second["role"] != first["role"]
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]
    with connect(engine, north_test, second) as other:
        assert other.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-nt",)]

    # Taking over another user's login, or any other existing role, is refused.
    with engine.connect() as conn:
        app_role = conn.execute(sa.text("SELECT current_user")).scalar_one()
    for name in (first["role"], app_role, agencydb.placement(engine, north).database + "_all"):
        done = cli(
            engine, "analyst", "create", "--user", "owner@northwind-test", "--role-name", name
        )
        assert done.returncode == 1, (name, done.stdout)
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]
    with engine.connect() as conn:
        bound = conn.execute(
            sa.select(schema.analyst_binding.c.agency_id).where(
                schema.analyst_binding.c.role_name == first["role"]
            )
        ).scalar_one()
    assert bound == north
    session.close()

    # Asking again for the same user resets the password of the same login, nothing else.
    again = cli_analyst(engine, "owner@northwind.test")
    assert again["role"] == first["role"] and again["password"] != first["password"]


def test_role_and_database_names_do_not_tell_who_the_other_agencies_are(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    """Every login can list every role and database; neither name carries a user or agency."""
    login = cli_analyst(engine, "owner@a.test")
    with connect(engine, agencies["A"].agency_id, login) as conn:
        roles = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles")]
        databases = [r for (r,) in conn.execute("SELECT datname FROM pg_database")]
    assert agencies["B"].logins["manager"]["role"] in roles  # the victim's login is listed ...
    names = roles + databases
    assert not [n for n in names if "isolation" in n.lower() or "manager" in n or "b.test" in n]
