"""Each agency's own database: where its synced rows live, and all an analyst can reach.

Row-level security over tables every agency shares is no boundary against someone who writes
SQL (PostgreSQL may run the analyst's own predicates before the policy's, and whether the
policy's sub-plans ran, or how long the query took, tells what matched). So an agency's provider
tables, their sync state and quarantine, and its analytics views live in a database of its own,
made when the agency is first used (:func:`placement`), and its analysts can connect to nothing
else. The control database (``AOS_DATABASE_URL``) keeps what spans agencies.

* The database's name is random (``aos_a_<16 hex>``) and says nothing about the agency; PUBLIC
  has neither CONNECT nor TEMPORARY on it.
* It may live on another PostgreSQL server (``agency.database_url``): an installation outgrows
  one server with ordinary PostgreSQL. NULL means the control database's own server.
* Every provider table is partitioned by integration: an integration's rows are relations of
  their own (``<table>_i<integration id>``, made by :func:`ensure_partitions`), so a member's
  views can name exactly the partitions of its clients (``db/readers.py``). Disconnecting with
  ``--purge`` drops them.
* Everything that could be contended is locked in the control database (``db/locks.py``), never
  here, where an analyst could hold the same key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from db import locks
from db.engine import make_engine
from db.migrate import upgrade_agency
from db.schema import agency as agency_t
from db.schema import agency_metadata

__all__ = [
    "NAME_PREFIX",
    "Placement",
    "admin_connection",
    "create_on",
    "drop_database",
    "engine_for",
    "ensure_partitions",
    "forget_all",
    "ddl_lock",
    "forget_engine",
    "server_connection",
    "partition_name",
    "placement",
    "provision",
    "url_on",
]

NAME_PREFIX = "aos_a_"
_engines: dict[str, sa.Engine] = {}
_ready: set[str] = set()  # databases this process has seen at the agency chain's head
_guard = threading.Lock()


@dataclass(frozen=True)
class Placement:
    """Where an agency's database is. ``url`` carries a password: never print it."""

    agency_id: int
    database: str
    url: str
    server_url: str | None  # the stored server, or None for the control database's own

    def __repr__(self) -> str:
        where = "elsewhere" if self.server_url else "control server"
        return f"Placement(agency_id={self.agency_id}, database={self.database!r}, {where})"


def url_on(server: str | sa.URL, database: str) -> str:
    url = sa.make_url(server)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=database).render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _stored(conn: sa.Connection, agency_id: int) -> Any:
    """The agency's ``(database_name, database_url)``; LookupError for no such agency."""
    row = conn.execute(
        sa.select(agency_t.c.database_name, agency_t.c.database_url).where(
            agency_t.c.id == agency_id
        )
    ).first()
    if row is None:
        raise LookupError(f"no agency with id {agency_id}")
    return row


def placement(control: sa.Engine, agency_id: int) -> Placement:
    """The agency's database, made (and migrated) first if the agency has none yet."""
    with control.connect() as conn:
        row = _stored(conn, agency_id)
    if row.database_name is None:
        return provision(control, agency_id)
    server = row.database_url or control.url
    found = Placement(
        agency_id, row.database_name, url_on(server, row.database_name), row.database_url
    )
    if found.url not in _ready:
        return provision(control, agency_id)
    return found


def engine_for(control: sa.Engine, agency_id: int) -> sa.Engine:
    """An engine on the agency's database. A process keeps the engines of the
    ``AOS_AGENCY_ENGINES`` (default 16) agencies it used last, so a worker serving many
    agencies holds a bounded number of connections."""
    where = placement(control, agency_id)
    evicted: list[sa.Engine] = []
    with _guard:
        engine = _engines.pop(where.url, None)
        if engine is None:
            engine = make_engine(where.url, pool_size=2, max_overflow=8)
        _engines[where.url] = engine  # the most recently used last
        keep = max(1, int(os.environ.get("AOS_AGENCY_ENGINES", "16")))
        while len(_engines) > keep:
            evicted.append(_engines.pop(next(iter(_engines))))
    for old in evicted:
        old.dispose()
    return engine


def forget_all() -> None:
    """Dispose of every agency engine of this process (tests, between databases)."""
    with _guard:
        engines = list(_engines.values())
        _engines.clear()
        _ready.clear()
    for engine in engines:
        engine.dispose()


def provision(control: sa.Engine, agency_id: int, server_url: str | None = None) -> Placement:
    """Make sure the agency has its database, on ``server_url`` for a new one (default: the
    control database's server), at the agency chain's head. Idempotent and safe to run from
    several processes at once: it holds the agency's lock in the control database. A run
    killed half-way is finished by the next call (the name is recorded first)."""
    with ddl_lock(control, agency_id) as conn:
        row = _stored(conn, agency_id)
        name, stored = row.database_name, row.database_url
        if name is None:
            name, stored = NAME_PREFIX + secrets.token_hex(8), server_url
            conn.execute(
                agency_t.update()
                .where(agency_t.c.id == agency_id)
                .values(database_name=name, database_url=stored)
            )
            conn.commit()
        server = stored or control.url
        where = Placement(agency_id, name, url_on(server, name), stored)
        if where.url not in _ready:  # another thread may have finished it while we waited
            create_on(server, name)
    return where


@contextlib.contextmanager
def ddl_lock(control: sa.Engine, agency_id: int) -> Iterator[sa.Connection]:
    """Hold the agency's DDL lock (in the control database, out of every analyst's reach):
    making or migrating its database, attaching partitions and bringing the analyst logins in
    line take it, one at a time. Concurrent ATTACH PARTITIONs and GRANTs on one parent table
    race on its catalog rows ("tuple concurrently updated") when runs of several of the
    agency's integrations start together. Yields the connection holding it."""
    with control.connect() as conn:
        locks.lock(conn, f"agency-db:{agency_id}")
        try:
            conn.commit()
            yield conn
        finally:
            conn.rollback()
            locks.unlock(conn, f"agency-db:{agency_id}")
            conn.commit()


def admin_connection(server: str | sa.URL) -> psycopg.Connection[Any]:
    """An autocommit connection to ``server`` (a URL; its own database), for CREATE and DROP
    DATABASE and roles."""
    target = url_on(server, sa.make_url(server).database or "postgres")
    return psycopg.connect(_libpq(target), autocommit=True)


def create_on(server: str | sa.URL, name: str) -> None:
    """Database ``name`` on ``server``, made if missing, at the agency chain's head."""
    _create_database(server, name)
    _migrate(url_on(server, name))


def _create_database(server: str | sa.URL, name: str) -> None:
    with admin_connection(server) as pg:
        exists = pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            pg.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        db = sql.Identifier(name)
        pg.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))
        pg.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO CURRENT_USER").format(db))


def _migrate(url: str) -> None:
    from db.readers import ensure_shared_objects  # readers import this module

    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            upgrade_agency(conn)
            ensure_shared_objects(conn)
    finally:
        engine.dispose()
    _ready.add(url)


@contextlib.contextmanager
def server_connection(control: sa.Engine, agency_id: int) -> Iterator[psycopg.Connection[Any]]:
    """:func:`admin_connection` to the server of the agency's database."""
    with control.connect() as conn:
        row = conn.execute(
            sa.select(agency_t.c.database_url).where(agency_t.c.id == agency_id)
        ).first()
    with admin_connection((row.database_url if row is not None else None) or control.url) as pg:
        yield pg


def forget_engine(url: str) -> None:
    with _guard:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    _ready.discard(url)


def drop_database(control: sa.Engine, agency_id: int) -> str | None:
    """Drop the agency's database (ending every session on it) and its reader group; returns
    the database's name. Its analysts' logins are dropped by ``db.analyst``."""
    from db.readers import drop_roles_of

    with control.connect() as conn:
        row = _stored(conn, agency_id)
    if row.database_name is None:
        return None
    forget_engine(url_on(row.database_url or control.url, row.database_name))
    with server_connection(control, agency_id) as pg:
        _drop(pg, row.database_name)
        drop_roles_of(pg, row.database_name)
    return str(row.database_name)


def _drop(pg: psycopg.Connection[Any], name: str) -> None:
    db = sql.Identifier(name)
    if pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        pg.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(db))
    pg.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(db))


def partition_name(table: str, integration_id: int) -> str:
    return f"{table}_i{int(integration_id)}"


def _driver(conn: sa.Connection | psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    if isinstance(conn, psycopg.Connection):
        return conn
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]


def ensure_partitions(
    conn: sa.Connection | psycopg.Connection[Any], integration_id: int, tables: Iterable[str]
) -> list[str]:
    """Give the integration its own partition of each of ``tables`` (in the caller's
    transaction); returns the partitions made. The partition is made apart and then attached,
    which needs no lock that a reader's query holds on the parent."""
    made: list[str] = []
    raw = _driver(conn)
    for table in tables:
        if table not in agency_metadata.tables:
            raise LookupError(f"no provider table {table!r}")
        part = partition_name(table, integration_id)
        if raw.execute("SELECT to_regclass(%s)", (f"public.{part}",)).fetchone()[0]:  # type: ignore[index]
            continue
        parent, child = sql.Identifier(table), sql.Identifier(part)
        raw.execute(
            sql.SQL(
                "CREATE TABLE public.{} (LIKE public.{} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            ).format(child, parent)
        )
        raw.execute(sql.SQL("REVOKE ALL ON public.{} FROM PUBLIC").format(child))
        raw.execute(
            sql.SQL("ALTER TABLE public.{} ATTACH PARTITION public.{} FOR VALUES IN ({})").format(
                parent, child, sql.Literal(int(integration_id))
            )
        )
        made.append(part)
    return made


def drop_partitions(conn: sa.Connection, integration_id: int) -> dict[str, int]:
    """Drop every partition of the integration (``integration disconnect --purge``); returns
    the rows each held. Its cursors and quarantined records go too."""
    raw = conn.connection.driver_connection
    assert raw is not None
    counts: dict[str, int] = {}
    for table in agency_metadata.tables:
        part = partition_name(table, integration_id)
        if not conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": f"public.{part}"}).scalar():
            continue
        n = raw.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(part)))
        rows = int(n.fetchone()[0])  # type: ignore[index]
        raw.execute(
            sql.SQL("ALTER TABLE public.{} DETACH PARTITION public.{}").format(
                sql.Identifier(table), sql.Identifier(part)
            )
        )
        raw.execute(sql.SQL("DROP TABLE public.{}").format(sql.Identifier(part)))
        if rows:
            counts[table] = rows
    for table in ("sync_state", "sync_reject"):
        result = conn.execute(
            sa.text(f"DELETE FROM public.{table} WHERE integration_id = :i"),  # noqa: S608
            {"i": integration_id},
        )
        if result.rowcount:
            counts[table] = int(result.rowcount)
    return counts
