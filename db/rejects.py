"""Quarantine: records PostgreSQL refused, kept in ``sync_reject`` instead of blocking a sync.

A poison record (a value no column can take) must not stop its partition forever: the loader
sets it aside here, in the same transaction as the rest of its batch and the cursor, and the
sync goes on. Each later load of the same table tries the stored records again first; a record
that loads, or whose key later loads in a newer version, leaves the quarantine. Operators see
what is there (integration, table, key, reason, first and last seen, attempts); analysts cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from db.load_checks import RECORD_CAP_BYTES, decode_record, encode_record

__all__ = ["Reject", "pending", "record_key", "resolve_loaded", "set_aside"]


@dataclass(frozen=True)
class Reject:
    """One refused record of one load, with the reason PostgreSQL (or our check) gave."""

    key: list[Any]
    reason: str
    record: dict[str, Any]
    stream: str


def record_key(record: dict[str, Any], keys: Sequence[str]) -> list[Any]:
    """The record's natural key as a JSON-able list (a missing or odd part becomes its repr)."""
    out: list[Any] = []
    for name in keys:
        value = record.get(name)
        out.append(value if isinstance(value, str | int | float | bool | None) else repr(value))
    return out


def set_aside(
    cur: psycopg.Cursor[Any], agency_id: int, integration_id: int, table: str, reject: Reject
) -> None:
    """Upsert one quarantined record (does not commit: it goes with its batch)."""
    text, size = encode_record(reject.record)
    cur.execute(
        "INSERT INTO sync_reject (agency_id, integration_id, table_name, record_key, stream,"
        " reason, record, record_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s)"
        " ON CONFLICT (agency_id, integration_id, table_name, record_key) DO UPDATE SET"
        " stream = EXCLUDED.stream, reason = EXCLUDED.reason, record = EXCLUDED.record,"
        " record_bytes = EXCLUDED.record_bytes, attempts = sync_reject.attempts + 1,"
        " last_seen = now()",
        [
            agency_id,
            integration_id,
            table,
            Jsonb(reject.key, dumps=lambda v: json.dumps(v, ensure_ascii=True)),
            reject.stream,
            reject.reason[:2000],
            text if size <= RECORD_CAP_BYTES else None,
            size,
        ],
    )


def pending(
    conn: psycopg.Connection[Any], agency_id: int, integration_id: int, table: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stream, record) of every stored record of the table waiting for a retry."""
    rows = conn.execute(
        "SELECT stream, record FROM sync_reject WHERE agency_id = %s AND integration_id = %s"
        " AND table_name = %s AND record IS NOT NULL ORDER BY first_seen",
        [agency_id, integration_id, table],
    ).fetchall()
    for stream, stored in rows:
        yield stream, decode_record(stored)


def resolve_loaded(
    cur: psycopg.Cursor[Any],
    target: sql.Identifier,
    keys: Sequence[str],
    agency_id: int,
    integration_id: int,
    table: str,
    since: datetime,
) -> int:
    """Drop quarantined records whose key this load stored (``synced_at >= since``): a newer
    version of the record loaded, or the record itself did on its retry. (A key set aside by
    this load whose row was not rewritten keeps its entry.)"""
    built = sql.SQL("jsonb_build_array({})").format(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in keys)
    )
    stmt = sql.SQL(
        "DELETE FROM sync_reject AS r WHERE r.agency_id = %s AND r.integration_id = %s"
        " AND r.table_name = %s AND EXISTS (SELECT FROM {} AS t"
        " WHERE t.agency_id = r.agency_id AND t.integration_id = r.integration_id"
        " AND {} = r.record_key AND t.synced_at >= %s)"
    ).format(target, built)
    return cur.execute(stmt, [agency_id, integration_id, table, since]).rowcount
