"""The run ledger and the one-sync-per-integration advisory lock."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from db import locks, runs, schema, tenancy


@pytest.fixture
def integration_id(fresh_engine: sa.Engine) -> int:
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme")
        return tenancy.add_integration(conn, agency, "slack", "ws")


def test_second_sync_of_same_integration_is_refused_cleanly(
    fresh_engine: sa.Engine, integration_id: int
) -> None:
    with runs.integration_lock(fresh_engine, integration_id):
        with pytest.raises(runs.SyncLocked, match=f"integration {integration_id} is already"):
            with runs.integration_lock(fresh_engine, integration_id):
                pytest.fail("two holders of one integration lock")
    # Released on exit: a later run gets it.
    with runs.integration_lock(fresh_engine, integration_id):
        pass


def test_lock_is_per_integration_and_cross_thread(
    fresh_engine: sa.Engine, integration_id: int
) -> None:
    with fresh_engine.begin() as conn:
        other = tenancy.add_integration(
            conn, tenancy.get_integration(conn, integration_id).agency_id, "slack", "ws2"
        )
    outcome: list[str] = []
    with runs.integration_lock(fresh_engine, integration_id):

        def second() -> None:
            try:
                with runs.integration_lock(fresh_engine, integration_id):
                    outcome.append("acquired")
            except runs.SyncLocked:
                outcome.append("locked")
            with runs.integration_lock(fresh_engine, other):
                outcome.append("other acquired")

        t = threading.Thread(target=second)
        t.start()
        t.join()
    assert outcome == ["locked", "other acquired"]


def test_lock_released_when_holder_connection_dies(
    fresh_engine: sa.Engine, integration_id: int
) -> None:
    """A SIGKILLed worker's connection drops; PostgreSQL frees the lock with it."""
    holder = fresh_engine.connect()
    locks.lock(holder, f"integration:{integration_id}")
    holder.commit()
    with pytest.raises(runs.SyncLocked):
        with runs.integration_lock(fresh_engine, integration_id):
            pass
    holder.invalidate()  # closes the socket without unlocking, like a killed process
    holder.close()
    with runs.integration_lock(fresh_engine, integration_id):
        pass


def test_ledger_records_runs_and_abandons_dead_ones(
    fresh_engine: sa.Engine, integration_id: int
) -> None:
    first = runs.start_run(
        fresh_engine,
        integration_id,
        trigger="manual",
        principal="o@a.test",
        principal_verified=False,
    )
    second = runs.start_run(
        fresh_engine,
        integration_id,
        trigger="schedule",
        principal="scheduler:1",
        principal_verified=False,
        flow_run_id="7f1d3c1e-8d0e-4d5e-9a51-0c2a4b8e9f00",
    )
    runs.finish_run(
        fresh_engine,
        second,
        integration_id=integration_id,
        status="succeeded",
        streams={"users": {"inserted": 3, "updated": 1}},
    )
    with fresh_engine.connect() as conn:
        rows = {r.id: r for r in runs.list_runs(conn, integration_id=integration_id)}
        agency = conn.execute(sa.select(schema.sync_run.c.agency_id)).scalars().first()
    assert rows[first].status == "failed" and "abandoned" in (rows[first].error or "")
    assert rows[second].status == "succeeded"
    assert rows[second].streams == {"users": {"inserted": 3, "updated": 1}}
    assert rows[second].flow_run_id == "7f1d3c1e-8d0e-4d5e-9a51-0c2a4b8e9f00"
    assert rows[second].finished_at >= rows[second].started_at
    assert agency is not None
