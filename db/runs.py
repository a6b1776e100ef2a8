"""The run ledger (``sync_run``) and the one-sync-per-integration lock.

The lock is a session-level PostgreSQL advisory lock held on a dedicated connection for the whole
run. If the worker dies (even with SIGKILL) its connection drops and PostgreSQL releases the lock,
so there is nothing to clean up by hand; the next run that takes the lock marks the dead run's
ledger row as abandoned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from db import locks
from db.schema import integration, sync_run

__all__ = ["SyncLocked", "finish_run", "integration_lock", "list_runs", "start_run"]


class SyncLocked(RuntimeError):
    """Another sync of the same integration holds the lock."""

    def __init__(self, integration_id: int) -> None:
        super().__init__(
            f"integration {integration_id} is already being synced by another run; "
            "this run exits without doing anything (try again when that one finishes)"
        )
        self.integration_id = integration_id


@contextlib.contextmanager
def integration_lock(engine: sa.Engine, integration_id: int) -> Iterator[None]:
    """Hold the integration's advisory lock for the ``with`` block, or raise ``SyncLocked``."""
    name = f"integration:{integration_id}"
    with engine.connect() as conn:
        got = locks.try_lock(conn, name)
        conn.commit()
        if not got:
            raise SyncLocked(integration_id)
        try:
            yield
        finally:
            locks.unlock(conn, name)
            conn.commit()


@dataclass(frozen=True)
class RunRow:
    id: int
    integration_id: int
    provider: str
    trigger: str
    principal: str
    principal_verified: bool
    status: str
    started_at: Any
    finished_at: Any
    streams: dict[str, Any]
    error: str | None
    flow_run_id: str | None


def start_run(
    engine: sa.Engine,
    integration_id: int,
    *,
    trigger: str,
    principal: str,
    principal_verified: bool,
    flow_run_id: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Open a ledger row. Call it while holding the lock: older 'running' rows are abandoned."""
    with engine.begin() as conn:
        integ = conn.execute(
            sa.select(
                integration.c.agency_id, integration.c.client_id, integration.c.provider
            ).where(integration.c.id == integration_id)
        ).one()
        conn.execute(
            sync_run.update()
            .where(
                sync_run.c.agency_id == integ.agency_id,
                sync_run.c.integration_id == integration_id,
                sync_run.c.status == "running",
            )
            .values(
                status="failed",
                finished_at=sa.func.now(),
                error="abandoned: the worker stopped before finishing (killed or crashed)",
            )
        )
        return int(
            conn.execute(
                sync_run.insert()
                .values(
                    agency_id=integ.agency_id,
                    client_id=integ.client_id,
                    provider=integ.provider,
                    integration_id=integration_id,
                    trigger=trigger,
                    principal=principal,
                    principal_verified=principal_verified,
                    flow_run_id=flow_run_id,
                    params=dict(params or {}),
                )
                .returning(sync_run.c.id)
            ).scalar_one()
        )


def finish_run(
    engine: sa.Engine,
    run_id: int,
    *,
    integration_id: int,
    status: str,
    streams: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close a ledger row. The integration names the agency, which leads the ledger's key."""
    agency = (
        sa.select(integration.c.agency_id)
        .where(integration.c.id == integration_id)
        .scalar_subquery()
    )
    with engine.begin() as conn:
        conn.execute(
            sync_run.update()
            .where(sync_run.c.agency_id == agency, sync_run.c.id == run_id)
            .values(
                status=status,
                finished_at=sa.func.now(),
                streams=dict(streams or {}),
                error=error,
            )
        )


def list_runs(
    conn: sa.Connection,
    *,
    agency_id: int | None = None,
    integration_id: int | None = None,
    limit: int = 50,
) -> list[RunRow]:
    query = (
        sa.select(
            sync_run.c.id,
            sync_run.c.integration_id,
            sync_run.c.provider,
            sync_run.c.trigger,
            sync_run.c.principal,
            sync_run.c.principal_verified,
            sync_run.c.status,
            sync_run.c.started_at,
            sync_run.c.finished_at,
            sync_run.c.streams,
            sync_run.c.error,
            sync_run.c.flow_run_id,
        )
        .order_by(sync_run.c.id.desc())
        .limit(limit)
    )
    if agency_id is not None:
        query = query.where(sync_run.c.agency_id == agency_id)
    if integration_id is not None:
        query = query.where(sync_run.c.integration_id == integration_id)
    return [RunRow(**row._mapping) for row in conn.execute(query)]
