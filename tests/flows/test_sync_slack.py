"""``sync_slack`` end to end: the Slack emulator over real sockets, the real slack-sdk, real
PostgreSQL and real Prefect (one test harness per session)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from db import schema, tenancy
from db.engine import default_vault
from db.rbac import PermissionDenied
from flows import sync_slack
from tests.flows.conftest import World, kill_cli_midway

START = datetime(2026, 10, 1, tzinfo=UTC)
MESSAGE_COLUMNS = (
    "user_id",
    "bot_id",
    "subtype",
    "text",
    "thread_ts",
    "is_reply",
    "reply_count",
    "latest_reply",
    "edited_ts",
)


def _none(value: Any) -> Any:
    return value if value not in ("", None) else None


def expected(ws: Any, *, channels: set[str] | None = None) -> dict[str, dict[tuple, tuple]]:
    """The sandbox's truth, mapped to our typed columns independently of the connector."""
    truth = ws.truth()
    users = {
        (u["id"],): (
            u["name"],
            bool(u.get("is_bot")),
            bool(u.get("deleted")),
            _none(u.get("real_name")),
        )
        for u in truth["users"]
    }
    chans = {
        (c["id"],): (c["name"], bool(c["is_private"]), bool(c["is_archived"]))
        for c in truth["channels"]
    }
    msgs = {}
    for m in truth["messages"]:
        if channels is not None and m["channel"] not in channels:
            continue
        thread_ts = m.get("thread_ts")
        msgs[(m["channel"], m["ts"])] = (
            _none(m.get("user")),
            _none(m.get("bot_id")),
            _none(m.get("subtype")),
            _none(m.get("text")),
            thread_ts,
            bool(thread_ts and thread_ts != m["ts"]),
            int(m.get("reply_count") or 0),
            m.get("latest_reply"),
            (m.get("edited") or {}).get("ts"),
        )
    return {"users": users, "channels": chans, "messages": msgs}


def actual(engine: sa.Engine, integration_id: int) -> dict[str, dict[tuple, tuple]]:
    u, c, m = schema.slack_users, schema.slack_channels, schema.slack_messages
    live = {t: (t.c.integration_id == integration_id) & t.c.deleted_at.is_(None) for t in (u, c, m)}
    with engine.connect() as conn:
        users = {
            (r[0],): tuple(r[1:])
            for r in conn.execute(
                sa.select(u.c.user_id, u.c.name, u.c.is_bot, u.c.is_deleted, u.c.real_name).where(
                    live[u]
                )
            )
        }
        chans = {
            (r[0],): tuple(r[1:])
            for r in conn.execute(
                sa.select(c.c.channel_id, c.c.name, c.c.is_private, c.c.is_archived).where(live[c])
            )
        }
        msgs = {
            (r[0], r[1]): tuple(r[2:])
            for r in conn.execute(
                sa.select(m.c.channel_id, m.c.ts, *[m.c[k] for k in MESSAGE_COLUMNS]).where(live[m])
            )
        }
    return {"users": users, "channels": chans, "messages": msgs}


def assert_equal_to_truth(world: World, key: str, **kw: Any) -> None:
    want = expected(world.workspaces[key], **kw)
    got = actual(world.data, world.integrations[key])
    for table in ("users", "channels", "messages"):
        missing = want[table].keys() - got[table].keys()
        extra = got[table].keys() - want[table].keys()
        wrong = {
            k: (got[table][k], want[table][k])
            for k in want[table].keys() & got[table].keys()
            if got[table][k] != want[table][k]
        }
        assert not (missing or extra or wrong), (
            f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
            f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:2]}"
        )


def _scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def test_full_sync_lands_the_truth_with_ledger_and_artifact(world: World) -> None:
    iid = world.add_slack(
        "globex",
        client="globex",
        users=8,
        channels=4,
        messages_per_channel=150,
        start=START,
        span_days=20,
        config={"auto_join": True},
    )
    result = sync_slack(integration_id=iid, requested_by=world.users["member"])
    assert result["status"] == "succeeded"
    assert_equal_to_truth(world, "globex")
    assert result["streams"]["messages"]["inserted"] == len(
        expected(world.workspaces["globex"])["messages"]
    )
    # Tenant columns set by the loader: this agency and the integration's client.
    assert (
        _scalar(world.data, "SELECT count(DISTINCT (agency_id, client_id)) FROM slack_messages")
        == 1
    )
    assert (
        _scalar(world.data, "SELECT min(client_id) FROM slack_messages") == world.clients["globex"]
    )
    with world.engine.connect() as conn:
        run = conn.execute(sa.select(schema.sync_run)).one()
    assert run.status == "succeeded" and run.principal == world.users["member"]
    assert run.principal_verified is False and run.flow_run_id
    assert set(run.streams) == {"users", "channels", "messages"}
    assert run.streams["messages"]["requests"] >= 4
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    # The session's Prefect server is shared: other tests' integration ids repeat, so pick
    # this run's artifact by its flow run.
    mine = [
        a
        for a in artifacts
        if a.key == f"slack-sync-integration-{iid}" and str(a.flow_run_id) == str(run.flow_run_id)
    ]
    assert mine and mine[0].type == "table" and "messages" in str(mine[0].data)


def test_incremental_after_mutations_within_request_budget(world: World) -> None:
    iid = world.add_slack(
        "inc",
        client="globex",
        users=6,
        channels=3,
        messages_per_channel=300,
        start=datetime.now(UTC) - timedelta(days=60),
        span_days=59.9,
        thread_ratio=0.15,
        config={
            "auto_join": True,
            "thread_lookback_days": 10,
            "edit_lookback_days": 10,
            "page_limit": 50,
        },
    )
    ws = world.workspaces["inc"]
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    full_requests = len(world.sandbox.log)

    truth = ws.truth()["messages"]
    week_old = [
        m
        for m in truth
        if m.get("reply_count")
        and m["channel"] == ws.channel_ids[0]
        and 5 <= (datetime.now(UTC).timestamp() - float(m["ts"])) / 86400 <= 9
    ]
    assert week_old, "the seeded workspace has a week-old thread"
    recent = [
        m
        for m in truth
        if not m.get("thread_ts")
        and m["channel"] == ws.channel_ids[1]
        and datetime.now(UTC).timestamp() - float(m["ts"]) < 3 * 86400
    ]
    for i in range(5):
        ws.post_message(ws.channel_ids[1], f"new message {i} :tada:")
    ws.post_message(ws.channel_ids[0], "late reply to an old thread", thread_ts=week_old[0]["ts"])
    ws.edit_message(ws.channel_ids[1], recent[0]["ts"], "edited *text*")
    ws.delete_message(ws.channel_ids[1], recent[1]["ts"])
    reply = next(
        m
        for m in truth
        if m.get("thread_ts")
        and m["ts"] != m["thread_ts"]
        and m["channel"] == ws.channel_ids[0]
        and datetime.now(UTC).timestamp() - float(m["ts"]) < 8 * 86400
    )
    ws.delete_message(reply["channel"], reply["ts"])

    world.sandbox.log.clear()
    result = sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert_equal_to_truth(world, "inc")
    counts = result["streams"]["messages"]
    assert counts["inserted"] == 6 and counts["deleted"] == 2 and counts["updated"] >= 2
    # Budget: history re-reads only the 10-day lookback (~1/6 of 60 days of history), replies
    # only for threads that moved. Stated as: at most a third of a full crawl's requests.
    incremental = len(world.sandbox.log)
    assert incremental <= full_requests / 3, (incremental, full_requests)
    history = world.sandbox.log.count(method="conversations.history")
    per_channel_window = math.ceil(300 * 10 / 60 / 50) + 1
    assert history <= 3 * per_channel_window, history
    assert (
        _scalar(world.data, "SELECT count(*) FROM slack_messages WHERE deleted_at IS NOT NULL") == 2
    )


def test_sigkill_mid_sync_then_rerun_equals_clean_sync(world: World) -> None:
    iid = world.add_slack(
        "kill",
        client="globex",
        users=5,
        channels=4,
        messages_per_channel=600,
        start=START,
        span_days=30,
        thread_ratio=0.05,
        config={"auto_join": True, "page_limit": 40},
    )
    world.sandbox.faults.add(
        "slack", kind="slow", method="conversations.history", rate=1.0, seconds=0.15
    )
    kill_cli_midway(
        world.env(),
        ["sync", "slack", "--integration", str(iid), "--as", world.users["owner"]],
        lambda: _scalar(world.data, "SELECT count(*) FROM slack_messages") >= 300,
        timeout=120,
        poll=0.1,
    )
    total = len(expected(world.workspaces["kill"])["messages"])
    partial = _scalar(world.data, "SELECT count(*) FROM slack_messages")
    assert 0 < partial < total
    world.sandbox.faults.clear()
    world.sandbox.log.clear()

    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert_equal_to_truth(world, "kill")
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") == total
    # The rerun resumed: it did not re-read the history that the killed run had committed.
    assert world.sandbox.log.count(method="conversations.history") < math.ceil(600 / 40) * 4
    statuses = _scalar(world.engine, "SELECT string_agg(status, ',' ORDER BY id) FROM sync_run")
    assert statuses == "failed,succeeded"
    assert "abandoned" in _scalar(world.engine, "SELECT error FROM sync_run ORDER BY id LIMIT 1")


def test_faults_end_in_success(world: World) -> None:
    iid = world.add_slack(
        "faults",
        client="globex",
        users=5,
        channels=3,
        messages_per_channel=120,
        start=START,
        span_days=10,
        config={"auto_join": True, "page_limit": 30},
    )
    faults = world.sandbox.faults
    faults.add("slack", kind="429", method="conversations.history", times=3, retry_after=1)
    faults.add("slack", kind="500", method="conversations.history", times=2)
    faults.add("slack", kind="503", method="users.list", times=1)
    faults.add("slack", kind="reset", method="conversations.replies", times=2)
    faults.add("slack", kind="truncated", method="conversations.history", times=2)
    faults.add("slack", kind="truncated", method="conversations.list", times=1)
    faults.add("slack", kind="slow", method="conversations.replies", times=1, seconds=1)
    result = sync_slack(integration_id=iid, requested_by=world.users["admin"])
    assert result["status"] == "succeeded"
    assert_equal_to_truth(world, "faults")
    assert result["streams"]["messages"]["rate_limited"] >= 3
    assert sum(1 for e in world.sandbox.log if e.fault) >= 11


def test_revoked_token_ends_in_needs_reauth_then_reconnect_resumes(world: World) -> None:
    iid = world.add_slack(
        "revoke",
        client="globex",
        users=5,
        channels=3,
        messages_per_channel=90,
        start=START,
        span_days=10,
        config={"auto_join": True, "page_limit": 30},
    )
    ws = world.workspaces["revoke"]
    world.sandbox.faults.add("slack", kind="revoked", method="conversations.history", times=1)
    # The fault revokes the token from the first history call on: earlier streams are complete.
    with pytest.raises(Exception, match="needs re-authorisation") as info:
        sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert ws.credentials["access_token"] not in str(info.value)
    with world.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
        run = conn.execute(sa.select(schema.sync_run)).one()
    assert integ.status == "needs_reauth" and "token_revoked" in (integ.status_reason or "")
    assert run.status == "failed" and "needs re-authorisation" in run.error
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") == 0
    assert _scalar(world.data, "SELECT count(*) FROM slack_users") == len(ws.truth()["users"])
    # A scheduled run does not hammer a dead token; a person reconnects, then it resumes.
    with pytest.raises(PermissionDenied):
        sync_slack(integration_id=iid, requested_by=f"scheduler:{world.agency_id}")
    ws.redeem()
    with world.engine.begin() as conn:
        default_vault().put(conn, iid, dict(ws.credentials))
        tenancy.set_integration_status(conn, iid, "connected")
    sync_slack(integration_id=iid, requested_by=f"scheduler:{world.agency_id}")
    assert_equal_to_truth(world, "revoke")


@pytest.mark.parametrize("who", ["reader", "rival"])
def test_denied_before_any_request_and_audited(world: World, who: str) -> None:
    iid = world.add_slack(
        "deny",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
    )
    principal = world.other_agency_user if who == "rival" else world.users["reader"]
    world.sandbox.log.clear()
    with pytest.raises(PermissionDenied, match=principal):
        sync_slack(integration_id=iid, requested_by=principal)
    assert len(world.sandbox.log) == 0
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") == 0
    assert _scalar(world.engine, "SELECT count(*) FROM sync_run") == 0
    audited = _scalar(
        world.engine,
        "SELECT count(*) FROM audit_event WHERE principal = :p "
        "AND outcome = 'denied' AND integration_id = :i",
        p=principal,
        i=iid,
    )
    assert audited == 1


def test_second_concurrent_sync_exits_cleanly(world: World) -> None:
    from db.runs import SyncLocked, integration_lock

    iid = world.add_slack(
        "lock",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
    )
    with integration_lock(world.engine, iid), pytest.raises(SyncLocked, match="already being"):
        sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert _scalar(world.data, "SELECT count(*) FROM slack_users") == 0


def test_non_marketplace_backfill_across_runs_uses_the_budget(world: World) -> None:
    """1 request per (scaled) minute and 15 messages per page: a backfill spread over runs."""
    iid = world.add_slack(
        "slow",
        client="globex",
        users=3,
        channels=3,
        messages_per_channel=200,
        start=START,
        span_days=10,
        thread_ratio=0.0,
        tier="non_marketplace_2025",
        config={
            "tier": "non_marketplace_2025",
            "rate_scale": 60,
            "max_requests": 14,
            "auto_join": False,
            "thread_lookback_days": 0,
            "edit_lookback_days": 0,
        },
    )
    ws = world.workspaces["slow"]
    readable = {c for c in ws.channel_ids if ws.channels[c].is_member}
    runs = 0
    while runs < 8:
        runs += 1
        result = sync_slack(integration_id=iid, requested_by=f"scheduler:{world.agency_id}")
        assert result["status"] == "succeeded"
        if not any("max_requests" in w for w in result["streams"]["messages"]["warnings"]):
            break  # this run was not cut short by max_requests: the backfill is complete
    assert runs >= 3, "the backfill should need several runs at this tier"
    assert_equal_to_truth(world, "slow", channels=readable)
    statuses = _scalar(world.engine, "SELECT string_agg(DISTINCT status, ',') FROM sync_run")
    assert statuses == "succeeded"
    calls = world.sandbox.log.entries(method="conversations.history")
    assert sum(1 for e in calls if e.status == 429) <= runs  # pacing, not fighting
    history = sorted(e.at for e in calls if e.status == 200)
    window = 60 / 60  # one scaled minute
    allowed = math.floor((history[-1] - history[0]).total_seconds() / window) + 1
    used = len(history)
    assert used / allowed >= 0.9, (used, allowed)
    assert world.sandbox.log.count(method="conversations.history") >= 2 * math.ceil(200 / 15)
