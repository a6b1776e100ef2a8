"""Isolation by construction: nothing of another tenant within an analyst's reach.

The invariant, checked on an installation with two agencies, every provider table, clients with
and without grants, and every kind of reader (owner, manager, member with one client, member with
none) of both agencies:

1. a login can connect to its own agency's database and to no other database of the cluster;
2. every relation it can read there, and every relation any plan of its queries can touch
   (views resolved through the catalog down to base tables, partitioned tables to their
   partitions), holds only rows that login may see; checked as the owning role.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from db.agencydb import placement
from tests.isolation.world import Seeded

READERS = ("owner", "manager", "member", "nobody")


def allowed(agency: Seeded, who: str) -> tuple[set[int], set[int], set[str]]:
    """(integration ids, client ids, secrets) ``who`` of ``agency`` may see."""
    if who in ("owner", "manager"):
        keys = {"c0", "c1", "all"}
    elif who == "member":
        keys = {"c0"}
    else:
        keys = set()
    integrations = {agency.integrations[k][0] for k in keys}
    clients = {agency.clients[k] for k in keys if k != "all"}
    secrets = {agency.secret(None if k == "all" else k) for k in keys}
    return integrations, clients, secrets


def all_secrets(agencies: dict[str, Seeded]) -> set[str]:
    return {a.secret(c) for a in agencies.values() for c in ("c0", "c1", None)}


def _owner_conn(engine: sa.Engine, agency: Seeded) -> psycopg.Connection[Any]:
    url = sa.make_url(placement(engine, agency.agency_id).url).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def readable(owner: psycopg.Connection[Any], role: str) -> list[tuple[int, str]]:
    """Every relation ``role`` may SELECT (a whole table, or any column of it)."""
    rows = owner.execute(
        """
        SELECT c.oid::int, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%%'
           AND (has_table_privilege(%(r)s, c.oid, 'SELECT')
                OR has_any_column_privilege(%(r)s, c.oid, 'SELECT'))
         ORDER BY 2
        """,
        {"r": role},
    ).fetchall()
    return [(int(oid), str(name)) for oid, name in rows]


def base_relations(owner: psycopg.Connection[Any], oid: int) -> set[int]:
    """The relations any plan over ``oid`` can touch: views resolved through their rewrite
    rules, partitioned tables expanded to every partition, recursively."""
    seen: set[int] = set()
    todo = [oid]
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        kind = owner.execute("SELECT relkind::text FROM pg_class WHERE oid = %s", (rel,)).fetchone()
        assert kind is not None
        if kind[0] in ("v", "m"):
            todo += [
                int(r[0])
                for r in owner.execute(
                    """
                    SELECT DISTINCT d.refobjid::int FROM pg_rewrite w
                      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                     WHERE w.ev_class = %s AND d.refclassid = 'pg_class'::regclass
                       AND d.refobjid <> %s
                    """,
                    (rel, rel),
                )
            ]
        if kind[0] == "p":
            todo += [
                int(r[0])
                for r in owner.execute(
                    "SELECT inhrelid::int FROM pg_inherits WHERE inhparent = %s", (rel,)
                )
            ]
    return seen


def _check_relation(
    owner: psycopg.Connection[Any],
    oid: int,
    ok_integrations: set[int],
    ok_clients: set[int],
    forbidden: set[str],
) -> list[str]:
    name, kind = owner.execute(
        "SELECT oid::regclass::text, relkind::text FROM pg_class WHERE oid = %s", (oid,)
    ).fetchone()  # type: ignore[misc]
    if kind in ("v", "p"):
        return []  # holds no rows of its own; what it reads is checked relation by relation
    columns = {
        r[0]
        for r in owner.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            (oid,),
        )
    }
    problems = []
    if "integration_id" in columns:
        ids = {r[0] for r in owner.execute(f"SELECT DISTINCT integration_id FROM {name}")}  # noqa: S608
        if ids - ok_integrations:
            problems.append(f"{name}: rows of integrations {sorted(ids - ok_integrations)}")
    elif {"id", "provider"} <= columns:
        ids = {r[0] for r in owner.execute(f"SELECT id FROM {name}")}  # noqa: S608
        if ids - ok_integrations:
            problems.append(f"{name}: integrations {sorted(ids - ok_integrations)}")
    elif {"id", "name", "email_domains"} <= columns:
        ids = {r[0] for r in owner.execute(f"SELECT id FROM {name}")}  # noqa: S608
        if ids - ok_clients:
            problems.append(f"{name}: clients {sorted(ids - ok_clients)}")
    leaked = owner.execute(
        f"SELECT count(*) FROM {name} AS t WHERE t::text LIKE ANY(%s)",  # noqa: S608
        ([f"%{s}-%" for s in forbidden],),
    ).fetchone()
    if leaked and leaked[0]:
        problems.append(f"{name}: {leaked[0]} rows hold another tenant's text")
    return problems


@pytest.mark.parametrize("who", READERS)
@pytest.mark.parametrize("agency_name", ["A", "B"])
def test_a_login_reaches_only_what_it_may_see(
    engine: sa.Engine, agencies: dict[str, Seeded], agency_name: str, who: str
) -> None:
    agency = agencies[agency_name]
    role = agency.logins[who]["role"]
    own_db = placement(engine, agency.agency_id).database
    ok_integrations, ok_clients, ok_secrets = allowed(agency, who)
    forbidden = all_secrets(agencies) - ok_secrets
    with engine.connect() as conn:
        connectable = set(
            conn.scalars(
                sa.text(
                    "SELECT datname FROM pg_database"
                    " WHERE datallowconn AND has_database_privilege(:r, datname, 'CONNECT')"
                ),
                {"r": role},
            )
        )
    assert connectable == {own_db}
    problems: list[str] = []
    with _owner_conn(engine, agency) as owner:
        relations = readable(owner, role)
        if who != "nobody":
            assert relations, f"{who} can read nothing at all"
        for oid, _name in relations:
            for base in base_relations(owner, oid):
                problems += _check_relation(owner, base, ok_integrations, ok_clients, forbidden)
    assert problems == []


def test_the_check_sees_a_leak(engine: sa.Engine, agencies: dict[str, Seeded]) -> None:
    """The invariant check itself fails when a member can read a shared table (so a pass
    above means something): granted by hand, the parent table holds other clients' rows."""
    agency = agencies["A"]
    role = agency.logins["member"]["role"]
    ok_integrations, ok_clients, ok_secrets = allowed(agency, "member")
    with _owner_conn(engine, agency) as owner:
        owner.execute(
            sql.SQL("GRANT SELECT ON public.slack_messages TO {}").format(sql.Identifier(role))
        )
        try:
            found = []
            for oid, _name in readable(owner, role):
                for base in base_relations(owner, oid):
                    found += _check_relation(
                        owner, base, ok_integrations, ok_clients, all_secrets(agencies) - ok_secrets
                    )
        finally:
            owner.execute(
                sql.SQL("REVOKE SELECT ON public.slack_messages FROM {}").format(
                    sql.Identifier(role)
                )
            )
    assert any("slack_messages_i" in p for p in found)
