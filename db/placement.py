"""Moving an agency's database to another PostgreSQL server (or back), nothing lost.

``aos-sync agency move AGENCY --database-url URL`` (no URL: back to the control database's
server). While it runs it holds every sync lock of the agency's integrations, so no run writes
to the old database; the rows are streamed table by table (binary COPY, memory flat), each
relation's row count and checksum are compared, and only then does the agency point at the new
database and the old one is dropped. Killed half-way, the agency still points at the old,
complete database; the unfinished copy is dropped by the next move.

Analyst roles belong to a server: moved to another server, an agency's analyst logins are made
there anew, and their passwords must be reset (``aos-sync analyst reset --user EMAIL``); the
result lists them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from db import agencydb, locks, readers
from db.schema import agency as agency_t
from db.schema import agency_metadata, analyst_binding, integration

__all__ = ["Checksum", "MoveRefused", "checksum", "copy_relation", "move_agency"]


class MoveRefused(RuntimeError):
    """The agency cannot be moved now (a sync holds one of its integrations)."""


@dataclass(frozen=True)
class Checksum:
    rows: int
    digest: str


def _columns(table: sa.Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def checksum(
    raw: psycopg.Connection[Any], relation: str, table: sa.Table, where: str = ""
) -> Checksum:
    """Row count and an order-independent checksum of ``relation`` (columns of ``table``)."""
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended(ROW({})::text, 0)::numeric), 0) FROM {} {}"
    ).format(_columns(table), sql.Identifier(*relation.split(".")), sql.SQL(where))
    rows, digest = raw.execute(query).fetchone()  # type: ignore[misc]
    return Checksum(int(rows), str(digest))


def copy_relation(
    src: psycopg.Connection[Any],
    dst: psycopg.Connection[Any],
    source: str,
    target: str,
    table: sa.Table,
    where: str = "",
) -> int:
    """Stream the rows of ``source`` into ``target`` (binary COPY, one buffer at a time)."""
    cols = _columns(table)
    out = sql.SQL("COPY (SELECT {} FROM {} {}) TO STDOUT (FORMAT BINARY)").format(
        cols, sql.Identifier(*source.split(".")), sql.SQL(where)
    )
    into = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(*target.split(".")), cols
    )
    written = 0
    with src.cursor().copy(out) as reader, dst.cursor().copy(into) as writer:
        for chunk in reader:
            writer.write(chunk)
            written += len(chunk)
    return written


def _partitions(raw: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    """(parent, partition, integration id) of every partition in an agency database."""
    rows = raw.execute(
        "SELECT p.relname, c.relname FROM pg_inherits h"
        " JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND p.relkind = 'p'"
        " ORDER BY 1, 2"
    ).fetchall()
    return [(str(p), str(c), int(str(c).rsplit("_i", 1)[1])) for p, c in rows]


def copy_agency(src_url: str, dst_url: str) -> dict[str, Checksum]:
    """Copy every row of one agency database into another (empty, migrated) one and check
    each relation; returns the checksums."""
    sums: dict[str, Checksum] = {}
    libpq = [agencydb._libpq(u) for u in (src_url, dst_url)]
    with psycopg.connect(libpq[0]) as src, psycopg.connect(libpq[1]) as dst:
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        plain = [t for t in agency_metadata.sorted_tables if "synced_at" not in t.c]
        for table in plain:
            copy_relation(src, dst, f"public.{table.name}", f"public.{table.name}", table)
            sums[table.name] = checksum(src, f"public.{table.name}", table)
        for parent, part, integration_id in _partitions(src):
            table = agency_metadata.tables[parent]
            agencydb.ensure_partitions(dst, integration_id, [parent])
            copy_relation(src, dst, f"public.{part}", f"public.{part}", table)
            sums[part] = checksum(src, f"public.{part}", table)
        for name, want in sums.items():
            base = name if name in agency_metadata.tables else name.rsplit("_i", 1)[0]
            got = checksum(dst, f"public.{name}", agency_metadata.tables[base])
            if got != want:
                raise RuntimeError(
                    f"{name}: copied {got.rows} rows of {want.rows}, checksums differ"
                )
        dst.commit()
    return sums


def move_agency(control: sa.Engine, agency_id: int, server_url: str | None) -> dict[str, Any]:
    """Move the agency's database to ``server_url`` (``None``: the control database's server).
    See the module docstring."""
    old = agencydb.placement(control, agency_id)
    with control.connect() as conn:
        ids = conn.scalars(
            sa.select(integration.c.id).where(integration.c.agency_id == agency_id)
        ).all()
        held: list[str] = []
        try:
            for iid in ids:
                if not locks.try_lock(conn, f"integration:{iid}"):
                    raise MoveRefused(
                        f"integration {iid} is being synced; move the agency when it finishes"
                    )
                held.append(f"integration:{iid}")
            locks.lock(conn, f"agency-db:{agency_id}")
            held.append(f"agency-db:{agency_id}")
            conn.commit()
            name = agencydb.NAME_PREFIX + secrets.token_hex(8)
            server = server_url or control.url
            agencydb.create_on(server, name)
            new_url = agencydb.url_on(server, name)
            sums = copy_agency(old.url, new_url)
            conn.execute(
                agency_t.update()
                .where(agency_t.c.id == agency_id)
                .values(database_name=name, database_url=server_url)
            )
            conn.commit()
        finally:
            for name_ in reversed(held):
                locks.unlock(conn, name_)
            conn.commit()
    agencydb.forget_engine(old.url)
    with agencydb.admin_connection(old.server_url or control.url) as pg:
        agencydb._drop(pg, old.database)
        readers.drop_roles_of(pg, old.database)
        moved_server = (old.server_url or None) != (server_url or None)
        with control.connect() as conn:
            logins = conn.scalars(
                sa.select(analyst_binding.c.role_name).where(
                    analyst_binding.c.agency_id == agency_id
                )
            ).all()
        if moved_server:
            for login in logins:
                pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
    readers.refresh(control, agency_id)
    return {
        "agency_id": agency_id,
        "from": old.database,
        "to": name,
        "relations": len(sums),
        "rows": sum(c.rows for c in sums.values()),
        "reset_analyst_logins": list(logins) if moved_server else [],
    }
