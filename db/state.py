"""Sync state: one cursor (a JSON object) per (integration, stream, partition).

It lives in the agency's own database (``db/agencydb.py``), beside the rows. Why a module of
its own: the cursor must commit in the same transaction as the rows it
describes, so :func:`save_state` takes the caller's connection and never commits;
the loader calls it inside each batch's transaction. Partitions are e.g. Slack channel ids or ad
account ids; streams without partitions use ``""``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db.schema import agency_integration as integration
from db.schema import sync_state

__all__ = ["clear_state", "load_state", "save_state"]


def load_state(conn: sa.Connection, integration_id: int, stream: str) -> dict[str, dict[str, Any]]:
    """Every saved cursor of ``stream``: partition -> cursor."""
    rows = conn.execute(
        sa.select(sync_state.c.partition, sync_state.c.cursor).where(
            sync_state.c.integration_id == integration_id, sync_state.c.stream == stream
        )
    )
    return {partition: dict(cursor) for partition, cursor in rows}


def _agency_of(integration_id: int) -> sa.ScalarSelect[Any]:
    return (
        sa.select(integration.c.agency_id)
        .where(integration.c.id == integration_id)
        .scalar_subquery()
    )


def save_state(
    conn: sa.Connection,
    integration_id: int,
    stream: str,
    partition: str,
    cursor: Mapping[str, Any],
) -> None:
    """Upsert one cursor. Does not commit: it belongs to the caller's transaction.

    The row's ``agency_id`` (part of its reference to the integration) is read from the
    integration in the same statement, so callers only name the integration."""
    stmt = insert(sync_state).values(
        integration_id=integration_id,
        agency_id=_agency_of(integration_id),
        stream=stream,
        partition=partition,
        cursor=dict(cursor),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                sync_state.c.integration_id,
                sync_state.c.stream,
                sync_state.c.partition,
            ],
            set_={"cursor": stmt.excluded.cursor, "updated_at": sa.func.now()},
        )
    )


def clear_state(conn: sa.Connection, integration_id: int, stream: str | None = None) -> int:
    """Forget the cursors of one stream (or of every stream) for a full refresh.

    Returns how many cursors were removed. Does not commit.
    """
    stmt = sa.delete(sync_state).where(sync_state.c.integration_id == integration_id)
    if stream is not None:
        stmt = stmt.where(sync_state.c.stream == stream)
    return conn.execute(stmt).rowcount
