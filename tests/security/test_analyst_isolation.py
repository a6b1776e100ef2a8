"""A hostile analyst against row-level security: each test performs an attack that once worked.

Analysts are created the way an operator creates them, with ``aos-sync analyst create`` (the
real CLI in a subprocess), and every attack runs over a real login to PostgreSQL.

Agency A (Acme) is the attacker's; agency B (Beta) is the victim. Both have rows in every table
an analyst can read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from db import rls, schema, tenancy

AOS_SYNC = Path(sys.executable).parent / "aos-sync"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def analyst_tables() -> list[str]:
    provider = [
        t.name
        for t in schema.metadata.sorted_tables
        if set(schema.TENANT_COLUMNS) <= set(t.c.keys())
    ]
    return sorted(set(rls.TENANT_TABLES) | set(provider))


def cli(engine: sa.Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AOS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }
    return subprocess.run(
        [str(AOS_SYNC), "--json", *args], capture_output=True, text=True, env=env, timeout=60
    )


def cli_analyst(engine: sa.Engine, email: str, *extra: str) -> dict[str, Any]:
    done = cli(engine, "analyst", "create", "--user", email, *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _value(column: sa.Column[Any], tag: str, i: int) -> Any:
    """A plausible value of the column's type, distinct per agency (tag) and row."""
    kind = column.type
    if isinstance(kind, ARRAY):
        return [i] if isinstance(kind.item_type, sa.Integer | sa.BigInteger) else [f"{tag}{i}"]
    if isinstance(kind, JSONB):
        return {"tag": tag}
    if isinstance(kind, sa.Boolean):
        return i % 2 == 0
    if isinstance(kind, sa.Integer | sa.BigInteger):
        return i
    if isinstance(kind, sa.DateTime):
        return T0 + timedelta(days=len(tag), minutes=i)
    if isinstance(kind, sa.Date):
        return (T0 + timedelta(days=100 * len(tag) + i)).date()
    if isinstance(kind, sa.Numeric):
        return Decimal(i) + Decimal(len(tag)) / 100
    return f"{tag}-{column.name}-{i}"


@dataclass
class Agency:
    id: int
    tag: str
    clients: list[int]
    integrations: list[int]
    users: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _seed(conn: sa.Connection, name: str, tag: str, n: int) -> Agency:
    agency_id = tenancy.create_agency(conn, name)
    clients = [tenancy.add_client(conn, agency_id, f"{tag}-client-{k}") for k in range(2)]
    integrations = [
        tenancy.add_integration(conn, agency_id, provider, f"{tag}-{provider}", client_id=c)
        for provider, c in (("slack", clients[0]), ("gmail", clients[1]))
    ]
    agency = Agency(agency_id, tag, clients, integrations)
    for role in ("owner", "manager", "member"):
        email = f"{role}@{tag}.test"
        tenancy.add_user(conn, agency_id, email, role)
        agency.users[role] = email
    member = tenancy.find_user(conn, agency.users["member"])
    tenancy.grant_access(conn, member.id, clients[0], "read")
    for table in analyst_tables():
        if table in rls.TENANT_TABLES:
            continue
        t = schema.metadata.tables[table]
        integration = integrations[0] if table.startswith("slack") else integrations[1]
        client = clients[0] if table.startswith("slack") else clients[1]
        rows = []
        for i in range(n):
            row = {
                c.name: _value(c, tag, i) for c in t.columns if c.name not in schema.TENANT_COLUMNS
            }
            rows.append(
                {**row, "agency_id": agency_id, "integration_id": integration, "client_id": client}
            )
        conn.execute(t.insert(), rows)
        agency.rows[table] = n
    for integration in integrations:
        for _ in range(n // 10):
            conn.execute(
                schema.sync_run.insert().values(
                    agency_id=agency_id,
                    integration_id=integration,
                    provider="slack",
                    trigger="schedule",
                    principal=f"scheduler:{agency_id}",
                    started_at=T0 + timedelta(days=len(tag), minutes=integration),
                )
            )
    return agency


@dataclass
class World:
    engine: sa.Engine
    a: Agency
    b: Agency
    logins: dict[str, dict[str, Any]]
    opened: list[psycopg.Connection[Any]] = field(default_factory=list)

    def connect(self, who: str) -> psycopg.Connection[Any]:
        login = self.logins[who]
        url = self.engine.url
        conn = psycopg.connect(
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=login["role"],
            password=login["password"],
            autocommit=True,
        )
        self.opened.append(conn)
        return conn


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> Iterator[World]:
    with engine.begin() as conn:
        a = _seed(conn, "Acme", "acme", 20)
    with engine.begin() as conn:
        b = _seed(conn, "Beta", "betaco", 60)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    logins = {
        "owner": cli_analyst(engine, a.users["owner"]),
        "member": cli_analyst(engine, a.users["member"]),
        "b_manager": cli_analyst(engine, b.users["manager"]),
    }
    w = World(engine, a, b, logins)
    yield w
    for conn in w.opened:
        conn.close()


def _visible(conn: psycopg.Connection[Any]) -> dict[str, set[int]]:
    """Agency ids each analyst-readable table shows."""
    return {
        table: {r[0] for r in conn.execute(f"SELECT DISTINCT agency_id FROM {table}")}  # noqa: S608
        for table in analyst_tables()
    }


def test_baseline_each_analyst_sees_only_its_agency(world: World) -> None:
    owner = _visible(world.connect("owner"))
    assert owner == {t: {world.a.id} for t in analyst_tables()}
    member = world.connect("member")
    assert {r[0] for r in member.execute("SELECT DISTINCT client_id FROM slack_messages")} == {
        world.a.clients[0]
    }
    assert _visible(world.connect("b_manager"))["slack_messages"] == {world.b.id}


# --- finding 1: temp objects shadowing the helpers' tables --------------------------------------
def test_analysts_cannot_create_anything(world: World) -> None:
    conn = world.connect("member")
    role = world.logins["member"]["role"]
    for stmt in (
        "CREATE TEMP TABLE analyst_binding (role_name text, agency_id bigint, user_id bigint)",
        "CREATE TABLE public.analyst_binding2 (x int)",
        "CREATE TABLE aos_rls.analyst_binding (x int)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA evil",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)
    db = world.engine.url.database
    creatable = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(%s, oid, 'CREATE')", [role]
    ).fetchall()
    assert creatable == []
    assert conn.execute(
        "SELECT has_database_privilege(%s, %s, 'TEMPORARY')", [role, db]
    ).fetchone() == (False,)


@pytest.fixture
def temp_allowed(world: World) -> Iterator[str]:
    """Defence in depth: even if an administrator granted TEMP to an analyst, the helpers must
    not be fooled. Grants it to the attacking login for one test."""
    role, db = world.logins["owner"]["role"], world.engine.url.database
    with world.engine.begin() as conn:
        conn.execute(sa.text(f'GRANT TEMPORARY ON DATABASE "{db}" TO "{role}"'))
    yield role
    with world.engine.begin() as conn:
        conn.execute(sa.text(f'REVOKE TEMPORARY ON DATABASE "{db}" FROM "{role}"'))


def test_temp_tables_named_like_the_binding_tables_change_nothing(
    world: World, temp_allowed: str
) -> None:
    conn = world.connect("owner")
    b_manager = tenancy_user_id(world, world.b.users["manager"])
    conn.execute(
        "CREATE TEMP TABLE analyst_binding (role_name text, agency_id bigint, user_id bigint)"
    )
    conn.execute(
        "INSERT INTO analyst_binding VALUES (session_user, %s, %s)", [world.b.id, b_manager]
    )
    conn.execute("CREATE TEMP TABLE user_role (user_id bigint, role_name text)")
    conn.execute("CREATE TEMP TABLE role (name text, level int)")
    conn.execute("CREATE TEMP TABLE member_client_access (user_id bigint, client_id bigint)")
    assert conn.execute("SELECT agency_id FROM pg_temp.analyst_binding").fetchone() == (
        world.b.id,
    )  # the shadow is there, and visible to unqualified names in the attacker's own queries
    assert _visible(conn) == {t: {world.a.id} for t in analyst_tables()}


def test_a_temp_view_over_a_temp_function_never_runs_as_anyone_else(
    world: World, temp_allowed: str
) -> None:
    conn = world.connect("owner")
    conn.execute(
        f"""
        CREATE FUNCTION pg_temp.evil() RETURNS TABLE (role_name text, agency_id bigint,
                                                      user_id bigint)
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM set_config('aos.pwned_by', current_user, false);
          RETURN QUERY SELECT session_user::text, {int(world.b.id)}::bigint, 1::bigint;
        END $$
        """
    )
    conn.execute("CREATE TEMP VIEW analyst_binding AS SELECT * FROM pg_temp.evil()")
    assert _visible(conn) == {t: {world.a.id} for t in analyst_tables()}
    assert conn.execute("SELECT current_setting('aos.pwned_by', true)").fetchone() in [
        (None,),
        ("",),
    ]


# --- finding 2: the helpers' owner and shape ----------------------------------------------------
def test_helpers_are_owned_by_a_powerless_role_and_pin_their_search_path(world: World) -> None:
    with world.engine.connect() as conn:
        helpers = conn.execute(
            sa.text(
                "SELECT p.proname, r.rolname, r.rolsuper, r.rolcanlogin, p.prosecdef, "
                "p.proconfig FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                "WHERE p.prosecdef AND p.pronamespace NOT IN "
                "('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
            )
        ).all()
        privileged = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
                "AND c.relnamespace = 'public'::regnamespace "
                "AND has_table_privilege('aos_rls', c.oid, 'SELECT')"
            )
        ).scalars()
        rls_role = conn.execute(
            sa.text(
                "SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls "
                "FROM pg_roles WHERE rolname = 'aos_rls'"
            )
        ).one()
    assert {h.proname for h in helpers} == {
        "analyst_agency",
        "analyst_sees_all_clients",
        "analyst_clients",
    }
    for h in helpers:
        assert (h.rolname, h.rolsuper, h.rolcanlogin) == ("aos_rls", False, False)
        assert h.proconfig == ["search_path=pg_catalog, pg_temp"]
    assert set(privileged) == {"analyst_binding", "user_role", "role", "member_client_access"}
    assert tuple(rls_role) == (False, False, False, False, False)


def test_analysts_reach_no_server_side_power(world: World) -> None:
    conn = world.connect("owner")
    for stmt in (
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "SELECT pg_read_file('pg_hba.conf')",
        "SELECT rolpassword FROM pg_authid",
        "SELECT * FROM integration_credential",
        "SELECT * FROM analyst_binding",
        "SELECT * FROM audit_event",
        "SELECT * FROM sync_state",
        "SELECT * FROM member_client_access",
        "SELECT * FROM run_grant_use",
        "SELECT * FROM sync_reject",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)


def test_statistics_of_other_agencies_are_hidden(world: World) -> None:
    conn = world.connect("owner")
    assert conn.execute(
        "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = ANY(%s)",
        [analyst_tables()],
    ).fetchone() == (0,)


# --- finding 3: EXPLAIN ANALYZE must not count another agency's rows ----------------------------
SCAN_MODES = {
    "seq": {"enable_indexscan": "off", "enable_indexonlyscan": "off", "enable_bitmapscan": "off"},
    "index": {"enable_seqscan": "off", "enable_bitmapscan": "off"},
    "bitmap": {"enable_seqscan": "off", "enable_indexscan": "off", "enable_indexonlyscan": "off"},
    "default": {},
}
#: The policy's tenant predicate, as the planner prints it in an index condition.
AGENCY_COND = re.compile(r"\bagency_id = \$\d+\b")
#: What a scan node says about the rows it touched.
VISITED = ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
COUNTERS = (*VISITED, "Actual Loops", "Heap Fetches", "Exact Heap Blocks", "Lossy Heap Blocks")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _explain(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> list[dict[str, Any]]:
    row = conn.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF, SUMMARY OFF) " + query, params
    ).fetchone()
    assert row is not None
    return _nodes(row[0][0]["Plan"])


def _counters(nodes: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(n["Node Type"], k, n[k]) for n in nodes for k in COUNTERS if k in n]


def _seq_visits(nodes: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Per node: rows visited in all (returned plus filtered out) and loops."""
    return [
        (n["Node Type"], n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0))
        for n in nodes
    ] + [(n["Node Type"], n.get("Actual Loops", 0)) for n in nodes]


def _absent(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 10**12
    if isinstance(value, date):  # datetimes too
        return value - timedelta(days=3650)
    if isinstance(value, Decimal):
        return value + 10**12
    return f"no such value {value!r}"


def test_every_index_of_every_tenant_table_leads_with_agency_id(world: World) -> None:
    with world.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.relname, i.relname, a.attname FROM pg_index x "
                "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
                "WHERE t.relname = ANY(:tables) AND t.relnamespace = 'public'::regnamespace"
            ),
            {"tables": analyst_tables()},
        ).all()
    assert {r[0] for r in rows} == set(analyst_tables())
    assert [(t, i) for t, i, first in rows if first != "agency_id"] == []


def _index_predicates(world: World, table: str) -> list[tuple[str, list[Any], list[Any]]]:
    """For every index of ``table``: a predicate on its columns after ``agency_id``, with the
    values of one of B's rows and with values no row has."""
    with world.engine.connect() as conn:
        indexes = conn.execute(
            sa.text(
                "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index x "
                "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                "WHERE x.indrelid = CAST(:t AS regclass) GROUP BY x.indexrelid"
            ),
            {"t": table},
        ).scalars()
        victim = (
            conn.execute(
                sa.text(f"SELECT * FROM {table} WHERE agency_id = :b LIMIT 1"),  # noqa: S608
                {"b": world.b.id},
            )
            .mappings()
            .one()
        )
    out = []
    for columns in indexes:
        rest = [c for c in columns if c != "agency_id"]
        for k in range(1, len(rest) + 1):
            cols = rest[:k]
            if victim[cols[-1]] is None:  # "= NULL" probes nothing; the planner drops the scan
                break
            where = " AND ".join(f"{c} = %s" for c in cols)
            out.append(
                (
                    f"SELECT * FROM {table} WHERE {where}",  # noqa: S608
                    [victim[c] for c in cols],
                    [_absent(victim[c]) for c in cols],
                )
            )
    return out


@pytest.mark.parametrize("table", analyst_tables())
def test_explain_analyze_counts_nothing_of_another_agency(world: World, table: str) -> None:
    """Probe every index of the table with the key values of one of B's rows.

    * Any plan that probes an index has the policy's ``agency_id = (SELECT ...)`` in the index
      condition, and a scan node touches (returns, filters out or rechecks) at most A's rows. B has three times as many rows as A, all matching the probe,
      so one index scan that visited them would exceed that bound.
    * Sequential scans visit every row of the table by nature; their counters are the
      table-wide total (a residual channel listed in docs/rbac.md), so they must not depend on
      the probe: B's values and values nobody has give the same counters.
    """
    conn = world.connect("owner")
    own = world.a.rows.get(table) or _own_rows(world, table)
    predicates = _index_predicates(world, table)
    assert predicates
    for mode, switches in SCAN_MODES.items():
        conn.execute("RESET ALL")
        for name, value in switches.items():
            conn.execute(f"SET {name} = {value}")
        for query, theirs, nobodys in predicates:
            nodes = _explain(conn, query, theirs)
            for node in nodes:
                if "Index Cond" in node:  # an index probe: the tenant must bound it
                    assert AGENCY_COND.search(node["Index Cond"]), (mode, query, node)
                if node.get("Relation Name") == table and node["Node Type"] != "Seq Scan":
                    visited = sum(node.get(k, 0) for k in VISITED) * node["Actual Loops"]
                    assert visited <= own, (mode, query, node)
                if node["Node Type"] == "Bitmap Index Scan":
                    assert node["Actual Rows"] <= own, (mode, query, node)
            if mode == "seq":
                # The probe may match rows of the caller's own (a provider name both agencies
                # use): those it may count. Beyond them, nothing differs from a probe for
                # values nobody has: rows visited in all, and rows returned.
                # (The policy's sub-plans may then run once more: they read only the caller's
                # own binding.)
                mine = len(conn.execute(query, theirs).fetchall())
                scans = [n for n in nodes if n.get("Relation Name") == table]
                blank = [
                    n for n in _explain(conn, query, nobodys) if n.get("Relation Name") == table
                ]
                assert scans and _seq_visits(scans) == _seq_visits(blank), query
                assert [n["Actual Rows"] for n in scans] == [
                    n["Actual Rows"] + mine for n in blank
                ], query
    conn.execute("RESET ALL")


def _own_rows(world: World, table: str) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE agency_id = :a"),  # noqa: S608
                {"a": world.a.id},
            ).scalar_one()
        )


# --- finding 4: analyst role names ---------------------------------------------------------------
def tenancy_user_id(world: World, email: str) -> int:
    with world.engine.connect() as conn:
        return tenancy.find_user(conn, email).id


def test_look_alike_emails_get_their_own_logins_and_nothing_is_rebound(world: World) -> None:
    with world.engine.begin() as conn:
        north = tenancy.create_agency(conn, "Northwind")
        north_test = tenancy.create_agency(conn, "Northwind Test")
        tenancy.add_user(conn, north, "owner@northwind.test", "owner")
        tenancy.add_user(conn, north_test, "owner@northwind-test", "owner")
        for agency, tag in ((north, "n"), (north_test, "nt")):
            integ = tenancy.add_integration(conn, agency, "slack", f"{tag}-slack")
            conn.execute(
                schema.slack_channels.insert().values(
                    agency_id=agency,
                    integration_id=integ,
                    channel_id=f"C-{tag}",
                    name=tag,
                    is_private=False,
                    is_archived=False,
                    is_member=True,
                    created_at=T0,
                )
            )
    first = cli_analyst(world.engine, "owner@northwind.test")
    world.logins["north"] = first
    session = world.connect("north")
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]

    second = cli_analyst(world.engine, "owner@northwind-test")
    assert second["role"] != first["role"]
    # The first user's open session and a new login both still see only their own agency.
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]
    world.logins["north_test"] = second
    assert world.connect("north_test").execute(
        "SELECT channel_id FROM slack_channels"
    ).fetchall() == [("C-nt",)]

    # Taking over another user's login, or any other existing role, is refused.
    with world.engine.connect() as conn:
        app_role = conn.execute(sa.text("SELECT current_user")).scalar_one()
    for name in (first["role"], app_role, "aos_analyst", "aos_rls"):
        done = cli(
            world.engine, "analyst", "create", "--user", "owner@northwind-test", "--role-name", name
        )
        assert done.returncode == 1, (name, done.stdout)
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert session.execute("SELECT channel_id FROM slack_channels").fetchall() == [("C-n",)]
    with world.engine.connect() as conn:
        bound = conn.execute(
            sa.select(schema.analyst_binding.c.agency_id).where(
                schema.analyst_binding.c.role_name == first["role"]
            )
        ).scalar_one()
    assert bound == north

    # Asking again for the same user resets the password of the same login, nothing else.
    again = cli_analyst(world.engine, "owner@northwind.test")
    assert again["role"] == first["role"] and again["password"] != first["password"]


def test_role_names_do_not_tell_who_the_other_agencies_users_are(world: World) -> None:
    """Every login can list every role; an analyst login's name must not carry its user."""
    names = [r for (r,) in world.connect("owner").execute("SELECT rolname FROM pg_roles")]
    assert world.logins["b_manager"]["role"] in names  # the victim's login is listed ...
    slug = world.b.users["manager"].split("@")[1].split(".")[0]
    assert not [n for n in names if slug in n or "manager" in n]  # ... but says nothing
