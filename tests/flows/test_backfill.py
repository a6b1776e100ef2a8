"""``backfill``: chunked, checkpointed, resumable; the incremental cursor is left alone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from db.rbac import PermissionDenied
from flows.backfill import backfill, chunks
from tests.flows.conftest import World, kill_cli_midway
from tests.flows.test_sync_slack import actual, expected

START = datetime(2026, 9, 1, tzinfo=UTC)


def _in_window(key: tuple, lo: date, hi: date) -> bool:
    posted = datetime.fromtimestamp(float(key[1]), UTC).date()
    return lo <= posted < hi


def _state(world: World, iid: int) -> dict[str, dict]:
    with world.data.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT stream, partition, cursor FROM sync_state WHERE integration_id = :i"),
            {"i": iid},
        ).all()
    return {f"{r.stream}/{r.partition}": r.cursor for r in rows}


def test_chunks() -> None:
    assert chunks(date(2026, 1, 1), date(2026, 1, 20), 7) == [
        (date(2026, 1, 1), date(2026, 1, 8)),
        (date(2026, 1, 8), date(2026, 1, 15)),
        (date(2026, 1, 15), date(2026, 1, 20)),
    ]
    with pytest.raises(ValueError, match="empty backfill window"):
        chunks(date(2026, 1, 2), date(2026, 1, 1), 7)


def test_backfill_loads_the_window_only_and_keeps_the_incremental_cursor(world: World) -> None:
    iid = world.add_slack(
        "bf",
        client="globex",
        users=4,
        channels=3,
        messages_per_channel=200,
        start=START,
        span_days=30,
        thread_ratio=0.1,
        config={"auto_join": True},
    )
    lo, hi = date(2026, 9, 8), date(2026, 9, 22)
    with pytest.raises(PermissionDenied):
        backfill(integration_id=iid, start=lo, end=hi, requested_by=world.users["member"])
    result = backfill(
        integration_id=iid, start=lo, end=hi, requested_by=world.users["admin"], chunk_days=7
    )
    assert result["status"] == "succeeded"
    assert set(result["streams"]) == {
        "messages@2026-09-08..2026-09-15",
        "messages@2026-09-15..2026-09-22",
    }
    want = {
        k: v
        for k, v in expected(world.workspaces["bf"])["messages"].items()
        if not v[5] and _in_window(k, lo, hi)
    }  # top-level messages of the window
    got = actual(world.data, iid)["messages"]
    assert {k: got[k] for k in want} == want
    top_level_outside = [k for k, v in got.items() if not v[5] and not _in_window(k, lo, hi)]
    assert top_level_outside == []
    state = _state(world, iid)
    assert not any(k.startswith("messages/") for k in state), "incremental cursor untouched"
    assert state["backfill/2026-09-08..2026-09-22"] == {
        "done": ["2026-09-08..2026-09-15", "2026-09-15..2026-09-22"]
    }
    # Rerunning a finished window reads nothing.
    world.sandbox.log.clear()
    again = backfill(integration_id=iid, start=lo, end=hi, requested_by=world.users["owner"])
    assert again["streams"] == {} and world.sandbox.log.count(method="conversations.history") == 0


def test_interrupted_backfill_resumes_from_its_last_chunk(world: World) -> None:
    iid = world.add_slack(
        "bfkill",
        client="globex",
        users=4,
        channels=3,
        messages_per_channel=300,
        start=START,
        span_days=30,
        thread_ratio=0.0,
        config={"auto_join": True, "page_limit": 20},
    )
    world.sandbox.faults.add(
        "slack", kind="slow", method="conversations.history", rate=1.0, seconds=0.1
    )
    window = ["--start", "2026-09-01", "--end", "2026-09-29", "--chunk-days", "7"]
    kill_cli_midway(
        world.env(),
        ["backfill", "--integration", str(iid), *window, "--as", world.users["owner"]],
        lambda: (
            len(_state(world, iid).get("backfill/2026-09-01..2026-09-29", {}).get("done", [])) >= 2
        ),
        timeout=120,
    )
    done = _state(world, iid)["backfill/2026-09-01..2026-09-29"]["done"]
    assert 2 <= len(done) < 4
    world.sandbox.faults.clear()
    world.sandbox.log.clear()

    result = backfill(
        integration_id=iid,
        start=date(2026, 9, 1),
        end=date(2026, 9, 29),
        requested_by=world.users["owner"],
        chunk_days=7,
    )
    assert result["status"] == "succeeded"
    # The rerun asked Slack only about chunks that were not finished.
    first_open = datetime.fromisoformat(sorted(done)[-1].split("..")[1]).replace(tzinfo=UTC)
    history = world.sandbox.log.entries(method="conversations.history")
    assert history and all(float(e.params["latest"]) > first_open.timestamp() for e in history)
    assert all(float(e.params.get("oldest") or 0) >= first_open.timestamp() - 1 for e in history)
    want = {
        k: v
        for k, v in expected(world.workspaces["bfkill"])["messages"].items()
        if _in_window(k, date(2026, 9, 1), date(2026, 9, 29))
    }
    got = actual(world.data, iid)["messages"]
    assert {k: got.get(k) for k in want} == want
    runs = [
        r[0]
        for r in world.engine.connect().execute(sa.text("SELECT status FROM sync_run ORDER BY id"))
    ]
    assert runs == ["failed", "succeeded"]
