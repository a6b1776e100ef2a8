"""The Slack connector end to end against the sandbox's Slack emulator (real slack-sdk, real
HTTP). ``MemoryTable`` applies pages the way db.loader does, so "equals truth" covers upserts,
cursors and reconcile claims together."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from slack_fake import MemoryTable, sync

from connectors.common import AuthError, Secret
from connectors.slack import SlackConfig, SlackConnector, refresh_slack_token
from connectors.slack.records import channel_record, message_record, user_record

sandbox = pytest.importorskip("sandbox")

SCALE = 60.0  # one provider minute per real second


@pytest.fixture
def sb() -> Iterator[Any]:
    with sandbox.Sandbox(providers=("slack",), seed=7, time_scale=SCALE) as box:
        yield box


def make(sb: Any, ws: Any, **config: Any) -> SlackConnector:
    config.setdefault("rate_scale", SCALE)
    config.setdefault("tier", ws.tier)
    return SlackConnector(
        Secret(ws.credentials["access_token"]),
        SlackConfig.from_dict(config),
        base_url=sb.env["AOS_SLACK_API_URL"],
        retry_backoff=0.05,
    )


def tables(conn: SlackConnector) -> dict[str, MemoryTable]:
    return {name: MemoryTable(spec.primary_key) for name, spec in conn.streams.items()}


def sync_all(conn: SlackConnector, into: dict[str, MemoryTable]) -> None:
    for stream in ("users", "channels", "messages"):
        sync(conn, stream, into[stream])


def expected_messages(ws: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (m["channel"], m["ts"]): message_record(m["channel"], m)
        for m in ws.truth(reachable_only=True)["messages"]
    }


def history_calls(sb: Any) -> list[Any]:
    return sb.log.entries(provider="slack", method="conversations.history")


def test_full_read_equals_truth(sb: Any) -> None:
    ws = sb.slack.add_workspace(name="Acme", users=6, channels=5, messages_per_channel=120)
    conn = make(sb, ws, auto_join=True, page_limit=50)
    into = tables(conn)
    truth = ws.truth(reachable_only=True)  # before auto_join changes is_member
    sync_all(conn, into)

    assert into["users"].live() == {(u["id"],): user_record(u) for u in truth["users"]}
    assert into["channels"].live() == {(c["id"],): channel_record(c) for c in truth["channels"]}
    live = into["messages"].live()
    assert live == expected_messages(ws)
    assert any(r["is_reply"] for r in live.values()) and any(
        r["reply_count"] for r in live.values()
    )
    assert conn.stats.requests == len(sb.log.entries(provider="slack"))
    assert conn.stats.rate_limited == 0 and not conn.stats.skipped


def test_incremental_after_mutations(sb: Any) -> None:
    ws = sb.slack.add_workspace(name="Acme", users=6, channels=3, messages_per_channel=300)
    into = tables(make(sb, ws))
    sync_all(make(sb, ws, auto_join=True), into)

    channel = ws.channel_ids[0]
    recent = sorted(
        (
            k
            for k, r in into["messages"].live().items()
            if k[0] == channel
            and not r["is_reply"]
            and not r["reply_count"]
            and r["posted_at"] > datetime.now(UTC) - timedelta(days=5)
        ),
        key=lambda k: Decimal(k[1]),
    )
    parent = next(
        k
        for k, r in into["messages"].live().items()
        if r["reply_count"] and r["posted_at"] > datetime.now(UTC) - timedelta(days=20)
    )
    old_reply = next(
        k
        for k, r in into["messages"].live().items()
        if r["thread_ts"] == parent[1] and r["is_reply"] and r["subtype"] is None
    )
    new = ws.post_message(channel, "fresh news")
    ws.edit_message(channel, recent[-1][1], "edited text")
    ws.delete_message(channel, recent[-2][1])
    reply = ws.post_message(parent[0], "a late reply", thread_ts=parent[1])
    ws.delete_message(*old_reply)
    sb.log.clear()

    conn = make(sb, ws, auto_join=True)
    pages = list(conn.read("messages", dict(into["messages"].state)))
    for page in pages:
        into["messages"].apply(page)

    live = into["messages"].live()
    assert live == expected_messages(ws)
    assert live[(channel, new["ts"])]["text"] == "fresh news"
    assert live[recent[-1]]["edited_ts"] is not None
    assert recent[-2] in into["messages"].deleted and old_reply in into["messages"].deleted
    assert (parent[0], reply["ts"]) in live
    # Only the threads whose activity moved are re-read, and reconciled.
    replies = sb.log.entries(provider="slack", method="conversations.replies")
    assert {e.params["ts"] for e in replies} == {parent[1]}
    thread_claims = {p.reconcile.where.get("thread_ts") for p in pages if p.reconcile}
    assert thread_claims == {None, parent[1]}
    # The re-read is bounded by the lookback window, not the whole 90-day history.
    oldest = min(Decimal(e.params["oldest"]) for e in history_calls(sb))
    assert oldest >= Decimal((datetime.now(UTC) - timedelta(days=31)).timestamp())


def test_resume_from_mid_channel_state(sb: Any) -> None:
    start = datetime.now(UTC) - timedelta(days=200)
    ws = sb.slack.add_workspace(
        name="Old",
        users=4,
        channels=1,
        messages_per_channel=60,
        thread_ratio=0.0,
        start=start,
        span_days=20,
    )
    first = make(sb, ws, page_limit=10, max_requests=4)  # conversations.list + 3 pages
    into = tables(first)
    sync(first, "messages", into["messages"])
    channel = ws.channel_ids[0]
    state = into["messages"].state[channel]
    assert state["pending"] is not None and state["cursor"] is None
    assert len(into["messages"].live()) == 30
    assert any("max_requests" in w for w in first.stats.warnings)
    boundary = Decimal(state["pending"]["latest"])

    sb.log.clear()
    second = make(sb, ws, page_limit=10)
    sync(second, "messages", into["messages"])
    calls = history_calls(sb)
    resumed = [e for e in calls if Decimal(e.params["latest"]) <= boundary]
    assert Decimal(calls[0].params["latest"]) == boundary, "continues below the committed band"
    assert len(resumed) == 3, "reads only the 30 missing messages (3 pages of 10)"
    assert len(calls) == 4, "plus one look at the recent window, which is empty"
    assert into["messages"].live() == expected_messages(ws)
    assert into["messages"].state[channel]["pending"] is None


@pytest.mark.parametrize("tier_from", ["config", "default"])
def test_non_marketplace_tier_is_paced(
    sb: Any, monkeypatch: pytest.MonkeyPatch, tier_from: str
) -> None:
    """Since 29 May 2025 a new Slack app distributed outside the Marketplace gets one
    conversations.history (and replies) call a minute and 15 objects a page on every install
    (docs.slack.dev/apis/web-api/rate-limits, "App types and rate limits"). That is a new
    customer's app, so it is also the default: an integration whose config names no tier, in
    a deployment that does not set ``AOS_SLACK_TIER``, is paced so, without one 429."""
    monkeypatch.delenv("AOS_SLACK_TIER", raising=False)
    ws = sb.slack.add_workspace(
        name="Slow",
        users=3,
        channels=1,
        messages_per_channel=40,
        thread_ratio=0.0,
        tier="non_marketplace_2025",
    )
    if tier_from == "config":
        conn = make(sb, ws)
    else:
        conn = SlackConnector(
            Secret(ws.credentials["access_token"]),
            SlackConfig.from_dict({"rate_scale": SCALE}),
            base_url=sb.env["AOS_SLACK_API_URL"],
            retry_backoff=0.05,
        )
    into = tables(conn)
    sync(conn, "messages", into["messages"])
    calls = history_calls(sb)
    assert len(calls) == 3 and all(int(e.params["limit"]) == 15 for e in calls)
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 60 / SCALE * 0.95, gaps
    assert conn.stats.rate_limited == 0 and {e.status for e in calls} == {200}
    assert into["messages"].live() == expected_messages(ws)


def test_unpaced_client_hits_429_and_honours_retry_after(sb: Any) -> None:
    ws = sb.slack.add_workspace(
        name="Slow",
        users=3,
        channels=1,
        messages_per_channel=30,
        thread_ratio=0.0,
        tier="non_marketplace_2025",
    )
    conn = make(sb, ws, tier="unlimited", page_limit=15)
    into = tables(conn)
    sync(conn, "messages", into["messages"])
    assert conn.stats.rate_limited >= 1
    assert conn.stats.rate_limited == sum(1 for e in history_calls(sb) if e.status == 429)
    assert into["messages"].live() == expected_messages(ws)


def test_faults_end_in_success(sb: Any) -> None:
    ws = sb.slack.add_workspace(name="Flaky", users=5, channels=2, messages_per_channel=80)
    for method, kind in [
        ("users.list", "truncated"),
        ("conversations.list", "500"),
        ("conversations.history", "429"),
        ("conversations.history", "reset"),
        ("conversations.replies", "truncated"),
        ("conversations.replies", "503"),
    ]:
        sb.faults.add("slack", method=method, kind=kind, times=1)
    conn = make(sb, ws, auto_join=True, page_limit=30)
    into = tables(conn)
    started = time.monotonic()
    sync_all(conn, into)
    assert time.monotonic() - started < 15
    assert into["messages"].live() == expected_messages(ws)
    assert len(into["users"].live()) == len(ws.truth()["users"])
    assert conn.stats.rate_limited == 1 and conn.stats.retries >= 5
    assert conn.stats.requests == len(sb.log.entries(provider="slack"))


def test_revoked_token_raises_auth_error(sb: Any) -> None:
    ws = sb.slack.add_workspace(name="Gone", users=3, channels=1, messages_per_channel=10)
    token = ws.credentials["access_token"]
    sb.faults.add("slack", method="conversations.history", kind="revoked", times=1)
    conn = make(sb, ws)
    with pytest.raises(AuthError, match="token_revoked") as info:
        list(conn.read("messages", {}))
    assert token not in str(info.value)


def test_not_in_channel_is_skipped_with_a_warning(sb: Any) -> None:
    ws = sb.slack.add_workspace(name="Acme", users=3, channels=3, messages_per_channel=10)
    outsider = ws.channel_ids[2]  # the sandbox makes channel 2 public but not joined
    conn = make(sb, ws)
    into = tables(conn)
    sync(conn, "messages", into["messages"])
    assert [s.split()[0] for s in conn.stats.skipped] == [outsider]
    assert any("not_in_channel" in w for w in conn.stats.warnings)
    assert {k[0] for k in into["messages"].live()} == set(ws.channel_ids[:2])


def test_rotating_refresh(sb: Any) -> None:
    ws = sb.slack.add_workspace(
        name="Rot", users=3, channels=1, messages_per_channel=5, rotating=True
    )
    creds = ws.credentials
    url = sb.env["AOS_SLACK_API_URL"]
    bundle = refresh_slack_token(
        creds["client_id"],
        Secret(creds["client_secret"]),
        Secret(creds["refresh_token"]),
        base_url=url,
    )
    assert bundle["access_token"] == ws.credentials["access_token"] != creds["access_token"]
    assert datetime.fromisoformat(bundle["expires_at"]) > datetime.now(UTC)
    with pytest.raises(AuthError):
        refresh_slack_token(
            creds["client_id"],
            Secret(creds["client_secret"]),
            Secret(creds["refresh_token"]),
            base_url=url,
        )
