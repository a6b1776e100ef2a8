"""Attacks by hostile analysts, each of which worked against the shared-table layout, on an
installation of two agencies (``tests/isolation/world.py``). Each performs the attack over a
real analyst login and shows it fails."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from db import readers, tenancy
from db.agencydb import placement
from db.runs import SyncLocked, integration_lock
from tests.isolation.world import Seeded

PLANS = {
    "seq": ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"),
    "index": ("enable_seqscan", "enable_bitmapscan"),
    "bitmap": ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan"),
}


def _nameable(conn: psycopg.Connection[Any]) -> list[tuple[str, list[str]]]:
    """Every relation the login can name and read, with its text columns (the first two: the
    planted secret is in every text column, so two per relation probe each one's rows)."""
    rows = conn.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               array_agg(quote_ident(a.attname) ORDER BY a.attnum)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p', 'v', 'm')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND has_table_privilege(c.oid, 'SELECT')
           AND a.atttypid IN ('text'::regtype, 'text[]'::regtype, 'jsonb'::regtype)
         GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    return [(str(r), list(c)[:2]) for r, c in rows]


def _probe(relation: str, column: str, value: str) -> sql.Composed:
    """``does any row have column in [value, value+)``: the analyst's own leakproof range
    predicate, which PostgreSQL may run before anything else in a scan."""
    upper = value[:-1] + chr(ord(value[-1]) + 1)
    return sql.SQL("SELECT 1 FROM {} WHERE {}::text >= {} AND {}::text < {}").format(
        sql.SQL(relation), sql.SQL(column), sql.Literal(value), sql.SQL(column), sql.Literal(upper)
    )


def _explain(conn: psycopg.Connection[Any], relation: str, column: str, value: str) -> str:
    """The plan of :func:`_probe` with its actual row counts, the probed value blanked out."""
    rows = conn.execute(
        sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ")
        + _probe(relation, column, value)
    ).fetchall()
    text = "\n".join(r[0] for r in rows)
    return text.replace(value[:-1], "<probe>")


@pytest.mark.parametrize("who", ["member", "nobody", "owner"])
def test_the_initplan_oracle_reads_nothing(
    login: Any, agencies: dict[str, Seeded], who: str
) -> None:
    """The attack of the review: the analyst's own predicate, under every plan shape, over every
    text column of every relation it can name, asking whether a secret planted in the other
    agency (and, for members, in an ungranted client and an agency-wide integration) exists.
    The answer must say nothing: every plan, node by node with its actual row counts, is the
    same as for a decoy that exists nowhere (so no query returns a row either)."""
    conn = login("A", who)
    targets = [agencies["B"].secret("c0")]
    if who != "owner":
        targets += [agencies["A"].secret("c1"), agencies["A"].secret(None)]
    relations = _nameable(conn)
    if who != "nobody":
        assert relations
    probes = 0
    for plan, off in PLANS.items():
        conn.execute("SET max_parallel_workers_per_gather = 0")  # plans the same every time
        for setting in off:
            conn.execute(sql.SQL("SET {} = off").format(sql.Identifier(setting)))
        for relation, columns in relations:
            for column in columns:
                for secret in targets:
                    decoy = "SECRET-Z" + secret[len("SECRET-Z") :]
                    # EXPLAIN ANALYZE runs the attack itself: a row it found would show in
                    # the top node's actual rows, which the decoy's (none) must equal.
                    assert _explain(conn, relation, column, secret) == _explain(
                        conn, relation, column, decoy
                    ), f"{plan}: {relation}.{column} tells whether {secret} exists"
                    probes += 1
        conn.execute("RESET ALL")
    assert who == "nobody" or probes > 100


def test_the_oracle_check_sees_a_leak(engine: sa.Engine, agencies: dict[str, Seeded]) -> None:
    """The comparison above tells a leak when there is one: over a table holding the other
    client's rows (the parent, read as the owner), the plan for a planted secret differs from
    the decoy's."""
    url = sa.make_url(placement(engine, agencies["A"].agency_id).url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as owner:
        secret = agencies["A"].secret("c1")
        decoy = "SECRET-Z" + secret[len("SECRET-Z") :]
        leaks = _explain(owner, "public.slack_messages", "text", secret)
        assert leaks != _explain(owner, "public.slack_messages", "text", decoy)


def test_no_other_database_accepts_an_analyst(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    url = sa.make_url(agencies["A"].logins["owner"]["url"])
    others = [
        str(engine.url.database),  # the control database
        placement(engine, agencies["B"].agency_id).database,
        "postgres",
        "template1",
    ]
    for database in others:
        with pytest.raises(
            psycopg.OperationalError, match="permission denied|not currently accepting"
        ):
            psycopg.connect(url.set(database=database).render_as_string(hide_password=False))


def test_analysts_create_nothing_not_even_large_objects(login: Any) -> None:
    conn = login("A", "owner")
    for statement in (
        "SELECT lo_create(0)",
        "SELECT lo_from_bytea(0, 'x'::bytea)",
        "SELECT lo_creat(-1)",
        "CREATE TEMP TABLE t (x int)",
        "CREATE TABLE public.t (x int)",
        "CREATE TABLE analytics.t (x int)",
        "CREATE SCHEMA mine",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_analyst_advisory_locks_block_nobody(
    engine: sa.Engine, agencies: dict[str, Seeded], login: Any
) -> None:
    """Keys an analyst could compute (the old sync key, the migration key) hold nothing back:
    every lock of the application is taken in the control database, with a salted key."""
    agency = agencies["A"]
    iid = agency.integrations["c0"][0]
    conn = login("A", "owner")
    conn.execute(
        "SELECT pg_advisory_lock(hashtextextended('aos-sync:integration:' || %s, 0))", (str(iid),)
    )
    conn.execute(f"SELECT pg_advisory_lock(hashtextextended('integration:{iid}', 0))")
    conn.execute("SELECT pg_advisory_lock(727272)")
    with integration_lock(engine, iid):  # not SyncLocked
        held = conn.execute(
            "SELECT objid::bigint, classid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    guessable = {
        conn.execute(f"SELECT hashtextextended('{name}', 0)").fetchone()[0]  # type: ignore[index]
        for name in (f"aos-sync:integration:{iid}", f"integration:{iid}", f":integration:{iid}")
    }
    # pg_locks splits a bigint key into classid (high) and objid (low) halves.
    seen = {(c << 32) | o for o, c in held}
    assert not (seen & guessable)
    start = time.monotonic()
    from db.migrate import upgrade

    upgrade(engine)  # the migration lock is the control database's own
    assert time.monotonic() - start < 30


def test_the_sync_lock_still_excludes_a_second_run(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    iid = agencies["A"].integrations["c1"][0]
    with integration_lock(engine, iid), pytest.raises(SyncLocked):
        with integration_lock(engine, iid):
            pass


def test_a_connection_flood_leaves_the_application_room(
    engine: sa.Engine, agencies: dict[str, Seeded]
) -> None:
    """Every analyst login of both agencies opens connections until refused: each stops at its
    limit, and the application still connects to every database it needs."""
    opened: list[psycopg.Connection[Any]] = []
    limit = readers.limits().connections
    try:
        for agency in agencies.values():
            for login in agency.logins.values():
                mine, refused = 0, 0
                for _ in range(limit + 3):
                    try:
                        opened.append(psycopg.connect(login["url"]))
                        mine += 1
                    except psycopg.OperationalError as exc:
                        assert "too many connections for role" in str(exc)
                        refused += 1
                assert 0 < mine <= limit and refused >= 3, (login["role"], mine, refused)
        assert len(opened) >= 8
        for _ in range(5):
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        for agency in agencies.values():
            url = placement(engine, agency.agency_id).url
            with sa.create_engine(url, poolclass=sa.NullPool).connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        for conn in opened:
            conn.close()


def test_analyst_sessions_carry_timeouts(login: Any) -> None:
    conn = login("B", "member")
    assert conn.execute("SHOW statement_timeout").fetchone()[0] == "5min"  # type: ignore[index]
    idle = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert idle is not None and idle[0] == "1min"


def test_a_revoked_grant_stops_the_open_session(
    engine: sa.Engine, agencies: dict[str, Seeded], login: Any
) -> None:
    agency = agencies["B"]
    conn = login("B", "member")
    secret = agency.secret("c0")
    assert conn.execute(
        "SELECT count(*) FROM slack_messages WHERE text LIKE %s", (secret + "%",)
    ).fetchone()[0]  # type: ignore[index]
    with engine.begin() as control:
        member = tenancy.find_user(control, "member@b.test")
        tenancy.revoke_access(control, member.id, agency.clients["c0"])
    try:
        readers.refresh(engine, agency.agency_id)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT count(*) FROM slack_messages")
        again = login("B", "member")
        assert again.execute("SELECT count(*) FROM slack_messages").fetchone()[0] == 0  # type: ignore[index]
    finally:
        with engine.begin() as control:
            tenancy.grant_access(control, member.id, agency.clients["c0"], "read")
        readers.refresh(engine, agency.agency_id)
    third = login("B", "member")
    assert third.execute(
        "SELECT count(*) FROM slack_messages WHERE text LIKE %s", (secret + "%",)
    ).fetchone()[0]  # type: ignore[index]


def test_a_grant_needs_no_sync(engine: sa.Engine, agencies: dict[str, Seeded], login: Any) -> None:
    agency = agencies["A"]
    nobody = login("A", "nobody")
    assert nobody.execute("SELECT count(*) FROM gmail_messages").fetchone()[0] == 0  # type: ignore[index]
    with engine.begin() as control:
        user = tenancy.find_user(control, "nobody@a.test")
        tenancy.grant_access(control, user.id, agency.clients["c1"], "read")
    try:
        readers.refresh(engine, agency.agency_id)
        fresh = login("A", "nobody")
        rows = fresh.execute("SELECT DISTINCT integration_id FROM gmail_messages").fetchall()
        assert {r[0] for r in rows} == {agency.integrations["c1"][0]}
    finally:
        with engine.begin() as control:
            tenancy.revoke_access(control, user.id, agency.clients["c1"])
        readers.refresh(engine, agency.agency_id)
