"""``sync_all``: a killed dispatcher converges on rerun; provider slots hold across runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from flows import sync_all, sync_slack
from tests.flows.conftest import World, kill_cli_midway
from tests.flows.test_sync_slack import _scalar, assert_equal_to_truth

START = datetime(2026, 10, 1, tzinfo=UTC)


def test_killed_dispatcher_then_rerun_converges(world: World) -> None:
    keys = ["d1", "d2", "d3"]
    for key in keys:
        world.add_slack(
            key,
            client="globex",
            users=4,
            channels=3,
            messages_per_channel=200,
            start=START,
            span_days=20,
            config={"auto_join": True, "page_limit": 25},
        )
    world.sandbox.faults.add(
        "slack", kind="slow", method="conversations.history", rate=1.0, seconds=0.1
    )
    kill_cli_midway(
        world.env(),
        ["sync", "all"],
        lambda: _scalar(world.data, "SELECT count(*) FROM slack_messages") >= 400,
        timeout=120,
        poll=0.1,
    )
    world.sandbox.faults.clear()

    outcomes = sync_all(provider="slack")
    assert {o["outcome"] for o in outcomes} == {"succeeded"} and len(outcomes) == 3
    for key in keys:
        assert_equal_to_truth(world, key)
    with world.engine.connect() as conn:
        counts = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM sync_run GROUP BY status")).all()
        )
    assert counts.get("running", 0) == 0 and counts["succeeded"] == 3


def test_provider_slot_serialises_runs_across_workers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AOS_PROVIDER_LIMITS=1 and a global limit of 1, two runs never overlap."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="aos-provider-slack", limit=1)
        )
    monkeypatch.setenv("AOS_PROVIDER_LIMITS", "1")
    ids = [
        world.add_slack(
            k,
            client="globex",
            users=3,
            channels=2,
            messages_per_channel=60,
            start=START,
            span_days=5,
            config={"page_limit": 10},
        )
        for k in ("g1", "g2")
    ]
    world.sandbox.faults.add(
        "slack", kind="slow", method="conversations.history", rate=1.0, seconds=0.1
    )
    errors: list[BaseException] = []

    def run(iid: int) -> None:
        try:
            sync_slack(integration_id=iid, requested_by=world.users["owner"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with world.engine.connect() as conn:
        spans = conn.execute(
            sa.text("SELECT started_at, finished_at FROM sync_run ORDER BY started_at")
        ).all()
    assert len(spans) == 2 and spans[0].finished_at <= spans[1].started_at, spans
