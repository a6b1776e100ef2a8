"""``aos-sync db upgrade``: bring an installation to the newest layout, in place.

Installations made before agency databases kept every agency's synced rows in tables all
agencies shared. Upgrading moves them, agency by agency and table by table, into each agency's
own database (``db/agencydb.py``): each (agency, table, integration) is copied in one
transaction of the target, and its row count and checksum are compared with the source's before
the next one starts; a piece already equal is skipped, so an upgrade killed at any point resumes
where it stopped. Only when every agency's rows are in place are the shared tables emptied (one
transaction) and dropped (revision 0021).
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from db import agencydb, readers
from db.migrate import upgrade
from db.placement import Checksum, checksum, copy_relation
from db.schema import agency as agency_t
from db.schema import agency_metadata

__all__ = ["upgrade_installation"]

_MOVED = [t for t in agency_metadata.sorted_tables if t.name not in ("client", "integration")]


def _exists(conn: sa.Connection, relation: str) -> bool:
    return bool(conn.execute(sa.text("SELECT to_regclass(:r)"), {"r": relation}).scalar())


def upgrade_installation(control: sa.Engine, *, progress: Any = None) -> dict[str, Any]:
    """Migrate the control database, move shared rows (if any) into agency databases, then
    bring every agency database to its newest revision. Returns what was moved, per agency and
    relation: ``{"rows": n, "checksum": ...}`` of source and target alike."""
    say = progress or (lambda message: None)
    with control.connect() as conn:
        shared = _exists(conn, "public.sync_state")
    if shared:
        upgrade(control, "0020")
    moved: dict[str, Any] = {}
    if shared:
        moved = _move_shared_rows(control, say)
    upgrade(control, "head")
    with control.connect() as conn:
        agencies = conn.scalars(sa.select(agency_t.c.id).order_by(agency_t.c.id)).all()
    for agency_id in agencies:
        readers.refresh(control, agency_id)  # makes (or migrates) its database first
    return {"agencies": len(agencies), "moved": moved}


def _move_shared_rows(control: sa.Engine, say: Any) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with control.connect() as conn:
        agencies = conn.scalars(sa.select(agency_t.c.id).order_by(agency_t.c.id)).all()
        present = [t for t in _MOVED if _exists(conn, f"public.{t.name}")]
    src_url = control.url.render_as_string(hide_password=False)
    for agency_id in agencies:
        readers.refresh(control, agency_id)  # its database, and its clients and integrations
        where = agencydb.placement(control, agency_id)
        with (
            psycopg.connect(agencydb._libpq(src_url), autocommit=True) as src,
            psycopg.connect(agencydb._libpq(where.url), autocommit=True) as dst,
        ):
            for table in present:
                report.update(_move_table(src, dst, agency_id, table, say))
    with control.begin() as conn:  # every agency's rows are in place: empty the shared tables
        conn.execute(sa.text("TRUNCATE " + ", ".join(f"public.{t.name}" for t in present)))
    return report


def _move_table(
    src: psycopg.Connection[Any],
    dst: psycopg.Connection[Any],
    agency_id: int,
    table: sa.Table,
    say: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    partitioned = "synced_at" in table.c
    ids = [
        int(r[0])
        for r in src.execute(
            sql.SQL("SELECT DISTINCT integration_id FROM public.{} WHERE agency_id = %s").format(
                sql.Identifier(table.name)
            ),
            (agency_id,),
        )
    ]
    for iid in ids:
        where = f"WHERE agency_id = {int(agency_id)} AND integration_id = {int(iid)}"
        if partitioned:
            with dst.transaction():
                agencydb.ensure_partitions(dst, iid, [table.name])
            target, target_where = f"public.{agencydb.partition_name(table.name, iid)}", ""
        else:
            target, target_where = f"public.{table.name}", where
        want = checksum(src, f"public.{table.name}", table, where)
        if checksum(dst, target, table, target_where) != want:
            with dst.transaction():
                dst.execute(
                    sql.SQL("DELETE FROM {} {}").format(
                        sql.Identifier(*target.split(".")), sql.SQL(target_where)
                    )
                )
                copy_relation(src, dst, f"public.{table.name}", target, table, where)
                got = checksum(dst, target, table, target_where)
                if got != want:
                    raise RuntimeError(
                        f"agency {agency_id}, {table.name}, integration {iid}: copied "
                        f"{got.rows} rows of {want.rows}, checksums differ"
                    )
            say(f"agency {agency_id}: {table.name} of integration {iid}: {want.rows:,} rows moved")
        out[f"{agency_id}:{table.name}:{iid}"] = _as_dict(want)
    return out


def _as_dict(c: Checksum) -> dict[str, Any]:
    return {"rows": c.rows, "checksum": c.digest}
