"""Errors by kind, through the whole flow: a permanent refusal on one Slack channel skips that
channel and the run succeeds with a warning; on every channel the run fails, the integration is
marked ``error`` with Slack's own words, and nothing was retried (a retry cannot grant a scope)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db import schema
from flows import sync_gmail, sync_slack
from tasks.run import SyncFailed
from tests.flows.conftest import World
from tests.flows.test_sync_gmail import GmailWorld, gworld  # noqa: F401 - fixture

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


def test_a_poison_message_is_set_aside_and_its_channel_moves_on(world: World) -> None:
    """A message the database refuses (here: a constraint no connector check knows about) lands
    in sync_reject; the channel's other messages and its cursor move on, the run succeeds and
    its summary counts the record set aside. Once the database takes it, the next run loads it."""
    from tests.flows.test_sync_slack import actual, expected

    iid = world.add_slack(
        "poison", client="globex", channels=2, messages_per_channel=15, start=START, span_days=5
    )
    ws = world.workspaces["poison"]
    channel = next(c for c in ws.channel_ids if ws.channel(c).is_member)
    poison = ws.post_message(channel, "poison-7f3a")
    later = ws.post_message(channel, "after the poison")
    with world.data.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE slack_messages ADD CONSTRAINT refuse_poison "
                "CHECK (text IS DISTINCT FROM 'poison-7f3a')"
            )
        )
    result = sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded" and result["streams"]["messages"]["rejected"] == 1
    want, got = expected(ws)["messages"], actual(world.data, iid)["messages"]
    assert set(want) - set(got) == {(channel, poison["ts"])}  # all but the poison one
    assert (channel, later["ts"]) in got
    with world.data.connect() as conn:
        reject = conn.execute(sa.select(schema.sync_reject)).one()
        cursor = conn.execute(
            sa.select(schema.sync_state.c.cursor).where(
                schema.sync_state.c.integration_id == iid,
                schema.sync_state.c.stream == "messages",
                schema.sync_state.c.partition == channel,
            )
        ).scalar_one()
    assert reject.record_key == [channel, poison["ts"]] and "refuse_poison" in reject.reason
    assert float(cursor["cursor"]) >= float(later["ts"])  # the channel's read completed

    with world.data.begin() as conn:
        conn.execute(sa.text("ALTER TABLE slack_messages DROP CONSTRAINT refuse_poison"))
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert (channel, poison["ts"]) in actual(world.data, iid)["messages"]
    with world.data.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.sync_reject)).scalar() == 0
        )


def test_a_truncated_listing_during_a_resync_soft_deletes_nothing(
    gworld: GmailWorld,  # noqa: F811 - the fixture imported above
) -> None:
    """The history id expired, so the run re-lists the mailbox; the listing answers with cut
    bodies on every attempt. Before, an unparsable body read as an empty mailbox and every
    stored message was soft-deleted by a run that ended 'succeeded'."""
    iid = gworld.add_gmail("cut", messages=60, start=START, span_days=10, config={"max_retries": 1})
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    with gworld.data.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM gmail_messages")).scalar()
    gworld.mailboxes["cut"].deliver(subject="while history was lost")  # the saved id is older
    gworld.mailboxes["cut"].expire_history()
    gworld.sandbox.faults.add(
        "gmail", kind="truncated_body", method="users.messages.list", rate=1.0
    )
    with pytest.raises(SyncFailed, match="users.messages.list"):
        sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    with gworld.data.connect() as conn:
        deleted = conn.execute(
            sa.text("SELECT count(*) FROM gmail_messages WHERE deleted_at IS NOT NULL")
        ).scalar()
        live = conn.execute(sa.text("SELECT count(*) FROM gmail_messages")).scalar()
    assert deleted == 0 and live == stored and stored > 50
