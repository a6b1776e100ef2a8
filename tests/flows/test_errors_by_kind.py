"""Errors by kind, through the whole flow: a permanent refusal on one Slack channel skips that
channel and the run succeeds with a warning; on every channel the run fails, the integration is
marked ``error`` with Slack's own words, and nothing was retried (a retry cannot grant a scope)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db import schema
from flows import sync_slack
from tasks.run import SyncFailed
from tests.flows.conftest import World

START = datetime(2026, 10, 1, tzinfo=UTC)


def _history_calls(world: World) -> Counter[str]:
    """conversations.history requests per channel."""
    return Counter(
        str(e.params.get("channel"))
        for e in world.sandbox.log.entries(method="conversations.history")
    )


def _integration(world: World, iid: int) -> tuple[str, str | None]:
    with world.engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.integration.c.status, schema.integration.c.status_reason).where(
                schema.integration.c.id == iid
            )
        ).one()
    return row.status, row.status_reason


def test_one_refused_channel_is_skipped_with_a_warning(world: World) -> None:
    iid = world.add_slack(
        "one", client="globex", channels=3, messages_per_channel=10, start=START, span_days=5
    )
    ws = world.workspaces["one"]
    refused = next(c for c in ws.channel_ids if ws.channel(c).is_member)
    world.sandbox.faults.add(
        "slack",
        kind="missing_scope",
        method="conversations.history",
        match={"channel": refused},
        rate=1.0,
    )
    result = sync_slack(integration_id=iid, requested_by=world.users["owner"])
    messages = result["streams"]["messages"]
    assert result["status"] == "succeeded"
    assert any(refused in s and "missing_scope" in s for s in messages["skipped"])
    assert any("needed: channels:history" in w for w in messages["warnings"])
    assert _integration(world, iid) == ("connected", None)


def test_every_channel_refused_fails_the_run_and_marks_the_integration(world: World) -> None:
    iid = world.add_slack(
        "all", client="globex", channels=3, messages_per_channel=10, start=START, span_days=5
    )
    world.sandbox.faults.add(
        "slack", kind="missing_scope", method="conversations.history", rate=1.0
    )
    world.sandbox.log.clear()
    with pytest.raises(SyncFailed, match="missing_scope") as failed:
        sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert set(failed.value.errors) == {"messages"}  # users and channels still synced
    calls = _history_calls(world)
    assert calls and set(calls.values()) == {1}  # each channel asked once: permanent, no retry
    assert all(channel in str(failed.value) for channel in calls)
    status, reason = _integration(world, iid)
    assert status == "error" and reason and "missing_scope" in reason and "needed" in reason
    with world.engine.connect() as conn:
        run = conn.execute(
            sa.select(schema.sync_run.c.status, schema.sync_run.c.error).where(
                schema.sync_run.c.integration_id == iid
            )
        ).one()
    assert run.status == "failed" and "missing_scope" in (run.error or "")
