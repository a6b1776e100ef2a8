"""The Slack emulator, driven end to end by the real ``slack_sdk.WebClient`` over sockets."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox import REDACTED, Sandbox
from sandbox.cli import serve_main
from sandbox.slack import SlackWorkspace

START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(providers=("slack",), seed=7, time_scale=60) as sandbox:
        yield sandbox


def client(sb: Sandbox, ws: SlackWorkspace, **kwargs: Any) -> WebClient:
    return WebClient(
        token=ws.credentials["access_token"], base_url=sb.env["AOS_SLACK_API_URL"], **kwargs
    )


def error_of(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def ts_float(message: dict[str, Any]) -> float:
    return float(message["ts"])


def is_top_level(message: dict[str, Any]) -> bool:
    return message.get("thread_ts") in (None, message["ts"]) or (
        message.get("subtype") == "thread_broadcast"
    )


def pages_of(response: Any) -> list[dict[str, Any]]:
    """Pages as dicts: slack-sdk's paginator re-uses one SlackResponse for every page."""
    return [dict(page.data) for page in response]


def all_history(c: WebClient, channel: str, **params: Any) -> list[dict[str, Any]]:
    return [
        m for page in c.conversations_history(channel=channel, **params) for m in page["messages"]
    ]


# -- basics and pagination ---------------------------------------------------------------
def test_env_auth_test_and_team_info(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(name="Acme", users=3, channels=1, messages_per_channel=5)
    assert sb.env["AOS_SLACK_API_URL"].startswith("http://127.0.0.1:")
    assert sb.env["AOS_SLACK_API_URL"].endswith("/api/")
    c = client(sb, ws)
    auth = c.auth_test()
    assert auth["team_id"] == ws.team_id and auth["bot_id"].startswith("B")
    assert auth["user_id"] == ws.bot_user_id
    assert c.team_info()["team"]["name"] == "Acme"
    bad = WebClient(token="xoxb-0-0-nope", base_url=sb.env["AOS_SLACK_API_URL"])
    assert error_of(bad.auth_test).response["error"] == "invalid_auth"


def test_users_and_conversations_paginate(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(users=45, channels=12, messages_per_channel=0)
    c = client(sb, ws)
    pages = pages_of(c.users_list(limit=10))
    assert len(pages) == 5
    assert pages[0]["response_metadata"]["next_cursor"]
    members = [u for p in pages for u in p["members"]]
    assert members == ws.truth()["users"]
    assert {u["id"] for u in members} >= {"USLACKBOT", ws.bot_user_id}

    public = [ch for p in pages_of(c.conversations_list(limit=3)) for ch in p["channels"]]
    assert public and all(not ch["is_private"] for ch in public)
    both = [
        ch
        for p in pages_of(c.conversations_list(types="public_channel,private_channel", limit=3))
        for ch in p["channels"]
    ]
    assert len(both) > len(public)
    invisible = [ch for ch in ws.channels.values() if ch.is_private and not ch.is_member]
    assert invisible and not {ch.id for ch in invisible} & {ch["id"] for ch in both}
    assert all(ch["id"].startswith("C") for ch in both)

    ws.archive_channel(public[1]["id"])
    listed = c.conversations_list(exclude_archived=True, limit=100)["channels"]
    assert public[1]["id"] not in {ch["id"] for ch in listed}
    assert c.conversations_info(channel=public[1]["id"])["channel"]["is_archived"] is True
    assert error_of(c.conversations_list, cursor="bm9wZQ==").response["error"] == "invalid_cursor"


def test_history_pages_newest_first_and_matches_truth(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(
        channels=1,
        messages_per_channel=250,
        thread_ratio=0.3,
        replies_per_thread=4,
        start=START,
        span_days=30,
    )
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    pages = pages_of(c.conversations_history(channel=channel, limit=40))
    assert len(pages) == 7
    assert all(p["has_more"] for p in pages[:-1]) and not pages[-1]["has_more"]
    assert all(len(p["messages"]) == 40 for p in pages[:-1])
    history = [m for p in pages for m in p["messages"]]
    stamps = [ts_float(m) for m in history]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    truth = [m for m in ws.truth()["messages"] if is_top_level(m)]
    assert len(history) == len(truth) == 250
    assert sorted(history, key=ts_float) == [
        {k: v for k, v in m.items() if k != "channel"} for m in sorted(truth, key=ts_float)
    ]
    # Replies are not in history, except broadcasts; subtypes and decorations are realistic.
    assert all(is_top_level(m) for m in history)
    subtypes = {m.get("subtype") for m in history}
    assert {"bot_message", "channel_join", "file_share", "thread_broadcast"} <= subtypes
    assert all(m["bot_id"].startswith("B") for m in history if m.get("subtype") == "bot_message")
    assert all(
        m["files"][0]["id"].startswith("F") for m in history if m.get("subtype") == "file_share"
    )
    assert any("edited" in m for m in history) and any("reactions" in m for m in history)
    assert any("<@U" in m["text"] for m in history)
    parents = [m for m in history if m.get("reply_count")]
    assert parents and all(
        m["thread_ts"] == m["ts"] and m["latest_reply"] > m["ts"] for m in parents
    )
    first, last = datetime.fromtimestamp(stamps[-1], UTC), datetime.fromtimestamp(stamps[0], UTC)
    assert START <= first and last <= datetime(2025, 3, 31, tzinfo=UTC)


def test_history_oldest_latest_inclusive(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=30)
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    everything = all_history(c, channel, limit=100)
    low, high = everything[20]["ts"], everything[10]["ts"]
    exclusive = all_history(c, channel, oldest=low, latest=high, limit=3)
    assert [m["ts"] for m in exclusive] == [m["ts"] for m in everything[11:20]]
    inclusive = all_history(c, channel, oldest=low, latest=high, inclusive=True, limit=4)
    assert [m["ts"] for m in inclusive] == [m["ts"] for m in everything[10:21]]
    newer = all_history(c, channel, oldest=high)
    assert [m["ts"] for m in newer] == [m["ts"] for m in everything[:10]]
    assert (
        error_of(c.conversations_history, channel=channel, oldest="abc").response["error"]
        == "invalid_ts_oldest"
    )


def test_replies_paginate_with_parent_first(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(
        channels=1, messages_per_channel=40, thread_ratio=0.5, replies_per_thread=7
    )
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    parent = max(all_history(c, channel, limit=100), key=lambda m: m.get("reply_count", 0))
    assert parent["reply_count"] >= 5
    pages = pages_of(c.conversations_replies(channel=channel, ts=parent["ts"], limit=3))
    assert len(pages) > 1 and all(p["messages"][0]["ts"] == parent["ts"] for p in pages)
    replies = [m for p in pages for m in p["messages"][1:]]
    assert len(replies) == parent["reply_count"]
    assert [m["ts"] for m in replies] == sorted(m["ts"] for m in replies)
    assert all(m["thread_ts"] == parent["ts"] for m in replies)
    assert replies[-1]["ts"] == parent["latest_reply"]
    authors = {m["user"] for m in replies}
    assert set(parent["reply_users"]) <= authors and parent["reply_users_count"] == len(authors)
    later = c.conversations_replies(channel=channel, ts=parent["ts"], oldest=replies[1]["ts"])
    assert [m["ts"] for m in later["messages"][1:]] == [m["ts"] for m in replies[2:]]
    # Asking with a reply's ts returns the same thread, as Slack does.
    again = c.conversations_replies(channel=channel, ts=replies[0]["ts"])
    assert again["messages"][0]["ts"] == parent["ts"]
    assert (
        error_of(c.conversations_replies, channel=channel, ts="1.000001").response["error"]
        == "thread_not_found"
    )


# -- tiers and time scale ---------------------------------------------------------------
def test_non_marketplace_tier_caps_pages_and_rate(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=40, tier="non_marketplace_2025")
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    first = c.conversations_history(channel=channel, limit=200)
    assert len(first["messages"]) == 15 and first["has_more"]
    err = error_of(c.conversations_history, channel=channel, limit=200)
    assert err.response.status_code == 429 and err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "1"  # one minute at time_scale=60
    patient = client(sb, ws, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    started = time.monotonic()
    cursor = first["response_metadata"]["next_cursor"]
    second = patient.conversations_history(channel=channel, limit=200, cursor=cursor)
    assert time.monotonic() - started >= 0.5
    assert len(second["messages"]) == 15
    assert second["messages"][0]["ts"] < first["messages"][-1]["ts"]
    assert c.auth_test()["ok"]  # other methods keep their usual tier


def test_tier3_window_and_retry_after_scale() -> None:
    with Sandbox(seed=1, time_scale=1.0) as sb:
        ws = sb.slack.add_workspace(channels=1, messages_per_channel=1)
        c = client(sb, ws)
        for _ in range(50):
            c.team_info()
        err = error_of(c.team_info)
        assert err.response.status_code == 429
        assert 50 <= int(err.response.headers["Retry-After"]) <= 60
        assert c.auth_test()["ok"]  # tier 4 is counted separately
        unlimited = sb.slack.add_workspace(name="Bench", channels=1, tier="unlimited")
        for _ in range(60):
            client(sb, unlimited).team_info()


# -- faults -----------------------------------------------------------------------------
def test_fault_429_and_5xx(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=5)
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    sb.faults.add("slack", method="conversations.history", kind="429", times=2, retry_after=1)
    err = error_of(c.conversations_history, channel=channel)
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "1"
    patient = client(sb, ws, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    assert patient.conversations_history(channel=channel)["ok"]
    assert [e.status for e in sb.log.entries(method="conversations.history")] == [429, 429, 200]
    assert c.auth_test()["ok"]  # the rule was scoped to one method

    for kind in ("500", "503"):
        sb.faults.add("slack", kind=kind)
        err = error_of(c.auth_test)
        assert err.response.status_code == int(kind)
    assert c.auth_test()["ok"]


def test_fault_slow_reset_truncated(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=5)
    sb.faults.add("slack", kind="slow", seconds=0.6)
    started = time.monotonic()
    assert client(sb, ws).auth_test()["ok"]
    assert time.monotonic() - started >= 0.6
    sb.faults.add("slack", kind="slow", seconds=1.5)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        client(sb, ws, timeout=0.3).auth_test()

    no_retry = client(sb, ws, retry_handlers=[])
    sb.faults.add("slack", kind="reset")
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        no_retry.auth_test()
    sb.faults.add("slack", kind="reset", times=1)
    assert client(sb, ws).auth_test()["ok"]  # slack-sdk retries a reset once by default

    sb.faults.add("slack", kind="truncated")
    with pytest.raises(http.client.IncompleteRead):
        no_retry.auth_test()
    assert no_retry.auth_test()["ok"]
    kinds = [e.fault for e in sb.log if e.fault]  # the timed-out slow one may still be asleep
    assert kinds.count("reset") == 2 and kinds.count("truncated") == 1 and "slow" in kinds


def test_fault_revoked_and_rate_faults_are_seeded(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=5)
    c = client(sb, ws)
    sb.faults.add("slack", kind="revoked", method="auth.test")
    assert error_of(c.auth_test).response["error"] == "token_revoked"
    assert error_of(c.team_info).response["error"] == "token_revoked"

    def outcomes(seed: int) -> list[int]:
        with Sandbox(seed=seed) as other:
            w = other.slack.add_workspace(channels=1, messages_per_channel=1, tier="unlimited")
            other.faults.add("slack", kind="500", rate=0.3)
            cl = client(other, w, retry_handlers=[])
            statuses = []
            for _ in range(40):
                try:
                    statuses.append(cl.auth_test().status_code)
                except SlackApiError as exc:
                    statuses.append(exc.response.status_code)
            return statuses

    first = outcomes(3)
    assert 3 <= first.count(500) <= 25 and first == outcomes(3)
    sb.faults.clear()
    assert not sb.faults.rules()


# -- credentials ------------------------------------------------------------------------
def test_token_rotation_and_revocation(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=1, rotating=True)
    creds = ws.credentials
    assert creds["access_token"].startswith("xoxe.xoxb-")
    assert creds["refresh_token"].startswith("xoxe-1-")
    assert datetime.fromisoformat(creds["expires_at"]) > datetime.now(UTC)
    oauth = WebClient(base_url=sb.env["AOS_SLACK_API_URL"])
    rotated = oauth.oauth_v2_access(
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        grant_type="refresh_token",
        refresh_token=creds["refresh_token"],
    )
    assert rotated["access_token"].startswith("xoxe.xoxb-")
    assert rotated["access_token"] != creds["access_token"]
    assert rotated["refresh_token"].startswith("xoxe-1-")
    assert rotated["refresh_token"] != creds["refresh_token"]
    assert rotated["expires_in"] == 43200 and rotated["team"]["id"] == ws.team_id
    assert ws.credentials["refresh_token"] == rotated["refresh_token"]
    reuse = error_of(
        oauth.oauth_v2_access,
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        grant_type="refresh_token",
        refresh_token=creds["refresh_token"],
    )
    assert reuse.response["error"] == "invalid_refresh_token"
    wrong = error_of(
        oauth.oauth_v2_access,
        client_id=creds["client_id"],
        client_secret="x",
        grant_type="refresh_token",
        refresh_token=rotated["refresh_token"],
    )
    assert wrong.response["error"] == "bad_client_secret"
    fresh = WebClient(token=rotated["access_token"], base_url=sb.env["AOS_SLACK_API_URL"])
    assert fresh.auth_test()["team_id"] == ws.team_id

    ws.expire_access_token()
    assert error_of(fresh.auth_test).response["error"] == "token_expired"
    installed = oauth.oauth_v2_access(
        client_id=creds["client_id"], client_secret=creds["client_secret"], code=ws.oauth_code()
    )
    assert installed["team"]["id"] == ws.team_id
    ws.revoke_token()
    revoked = WebClient(token=installed["access_token"], base_url=sb.env["AOS_SLACK_API_URL"])
    assert error_of(revoked.auth_test).response["error"] == "token_revoked"


def test_not_in_channel_then_join_and_private_channels(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=5, messages_per_channel=10)
    c = client(sb, ws)
    outside = next(ch for ch in ws.channels.values() if not ch.is_member and not ch.is_private)
    err = error_of(c.conversations_history, channel=outside.id)
    assert err.response["error"] == "not_in_channel"
    assert c.conversations_join(channel=outside.id)["channel"]["is_member"] is True
    assert len(c.conversations_history(channel=outside.id)["messages"]) == 10
    assert c.conversations_join(channel=outside.id)["warning"] == "already_in_channel"

    secret = ws.add_channel("secret", is_private=True, is_member=False, messages=3)
    assert (
        error_of(c.conversations_history, channel=secret.id).response["error"]
        == "channel_not_found"
    )
    assert (
        error_of(c.conversations_join, channel=secret.id).response["error"]
        == "method_not_supported_for_channel_type"
    )
    assert error_of(c.conversations_info, channel="CNOPE").response["error"] == "channel_not_found"
    assert secret.id not in {m["channel"] for m in ws.iter_messages(reachable_only=True)}
    assert secret.id in {m["channel"] for m in ws.iter_messages()}


# -- mutations --------------------------------------------------------------------------
def test_mutations_are_visible(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=20, thread_ratio=0.0)
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    posted = ws.post_message(channel, f"Launch is *go* :rocket: <@{ws.user_ids[1]}>")
    assert c.conversations_history(channel=channel, limit=1)["messages"][0] == posted
    reply = ws.post_message(channel, "on it", user=ws.user_ids[2], thread_ts=posted["ts"])
    parent = c.conversations_history(channel=channel, limit=1)["messages"][0]
    assert parent["reply_count"] == 1 and parent["latest_reply"] == reply["ts"]
    assert parent["reply_users"] == [ws.user_ids[2]]
    thread = c.conversations_replies(channel=channel, ts=posted["ts"])["messages"]
    assert [m["ts"] for m in thread] == [posted["ts"], reply["ts"]]

    old = all_history(c, channel, limit=100)[-1]
    edited = ws.edit_message(channel, old["ts"], "fixed typo")
    assert edited["text"] == "fixed typo" and edited["edited"]["ts"] > old["ts"]
    assert all_history(c, channel, limit=100)[-1]["edited"] == edited["edited"]

    ws.delete_message(channel, old["ts"])
    assert old["ts"] not in {m["ts"] for m in all_history(c, channel, limit=100)}
    ws.delete_message(channel, posted["ts"])  # has a reply: a tombstone stays
    tomb = c.conversations_history(channel=channel, limit=1)["messages"][0]
    assert tomb["subtype"] == "tombstone" and tomb["reply_count"] == 1
    ws.delete_message(channel, reply["ts"])  # last reply gone: so is the tombstone
    assert posted["ts"] not in {m["ts"] for m in all_history(c, channel, limit=100)}
    assert len(ws.truth()["messages"]) == 19


def test_generated_thread_mutations_update_parent(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(
        channels=1, messages_per_channel=30, thread_ratio=0.6, replies_per_thread=3
    )
    channel = ws.channel_ids[0]
    c = client(sb, ws)
    parent = next(m for m in all_history(c, channel, limit=100) if m.get("reply_count"))
    replies = c.conversations_replies(channel=channel, ts=parent["ts"])["messages"][1:]
    ws.delete_message(channel, replies[0]["ts"])
    new = ws.post_message(channel, "late answer", thread_ts=parent["ts"])
    after = next(m for m in all_history(c, channel, limit=100) if m["ts"] == parent["ts"])
    assert after["reply_count"] == parent["reply_count"]
    assert after["latest_reply"] == new["ts"]
    listed = c.conversations_replies(channel=channel, ts=parent["ts"])["messages"][1:]
    assert replies[0]["ts"] not in {m["ts"] for m in listed} and listed[-1]["ts"] == new["ts"]


# -- log, admin surface, determinism, scale, CLI -------------------------------------------
def test_request_log_never_holds_tokens(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=3, rotating=True)
    creds = ws.credentials
    base = sb.env["AOS_SLACK_API_URL"]
    form = urllib.parse.urlencode({"token": creds["access_token"], "limit": 2}).encode()
    with urllib.request.urlopen(f"{base}users.list", data=form) as response:
        assert json.load(response)["ok"] is True
    WebClient(base_url=base).oauth_v2_access(
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        grant_type="refresh_token",
        refresh_token=creds["refresh_token"],
    )
    json_body = urllib.request.Request(
        f"{base}conversations.history",
        data=json.dumps({"channel": ws.channel_ids[0], "limit": 2}).encode(),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {ws.credentials['access_token']}",
        },
    )
    with urllib.request.urlopen(json_body) as response:
        assert len(json.load(response)["messages"]) == 2
    assert sb.log.count(method="users.list") == 1
    entry = sb.log.entries(method="users.list")[0]
    assert entry.params == {"token": REDACTED, "limit": "2"} and entry.status == 200
    assert entry.provider == "slack" and entry.path == "/api/users.list"
    assert entry.at.tzinfo is not None
    assert sb.log.entries(method="oauth.v2.access")[0].params["refresh_token"] == REDACTED
    with urllib.request.urlopen(f"{base.removesuffix('/api/')}/_sandbox/log") as response:
        dumped = response.read().decode()
    assert len(json.loads(dumped)["entries"]) == 3
    for secret in (
        creds["access_token"],
        creds["refresh_token"],
        creds["client_secret"],
        ws.credentials["access_token"],
    ):
        assert secret not in dumped and secret not in repr(list(sb.log))
    sb.log.clear()
    assert len(sb.log) == 0


def test_admin_surface_drives_faults(sb: Sandbox) -> None:
    ws = sb.slack.add_workspace(channels=1, messages_per_channel=1)
    admin = sb.base_url("slack") + "/_sandbox/"
    with urllib.request.urlopen(admin + "health") as response:
        assert json.load(response) == {"ok": True, "provider": "slack", "time_scale": 60}
    body = json.dumps({"kind": "503", "method": "auth.test", "times": 1}).encode()
    request = urllib.request.Request(
        admin + "faults", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["fault"]["kind"] == "503"
    assert error_of(client(sb, ws).auth_test).response.status_code == 503
    sb.faults.add("slack", kind="500")
    clear = urllib.request.Request(admin + "faults", method="DELETE")
    with urllib.request.urlopen(clear) as response:
        assert json.load(response)["ok"] is True
    assert client(sb, ws).auth_test()["ok"]


def test_same_seed_same_truth() -> None:
    def build(seed: int) -> dict[str, Any]:
        sandbox = Sandbox(seed=seed)  # never started: truth needs no sockets
        ws = sandbox.slack.add_workspace(
            users=6,
            channels=3,
            messages_per_channel=60,
            thread_ratio=0.3,
            start=START,
            span_days=20,
        )
        return {"truth": ws.truth(), "team": ws.team_id, "token": ws.credentials}

    first, second, other = build(11), build(11), build(12)
    assert first == second
    assert first["truth"]["messages"] != other["truth"]["messages"]
    assert first["team"] != other["team"]


def test_million_message_workspace_is_lazy_and_fast() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    sb = Sandbox(seed=5)
    ws = sb.slack.add_workspace(
        channels=10, messages_per_channel=100_000, users=100, tier="unlimited"
    )
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 1024 * 1024
    with sb:
        c = client(sb, ws)
        channel = ws.channel_ids[0]
        page = c.conversations_history(channel=channel, limit=1000)
        assert len(page["messages"]) == 1000 and page["has_more"]
        oldest = ws.start.timestamp()
        window = c.conversations_history(
            channel=channel, oldest=str(oldest), latest=str(oldest + 86_400), limit=1000
        )["messages"]
        # ~1,111 messages a day per channel over 90 days: a full page from the first day.
        assert len(window) == 1000 and all(float(m["ts"]) < oldest + 86_400 for m in window)


def test_serve_main_prints_settings_and_stops() -> None:
    stop, out = threading.Event(), io.StringIO()
    thread = threading.Thread(
        target=serve_main,
        args=(["--seed", "3", "--size", "tiny", "--time-scale", "60"],),
        kwargs={"stop": stop, "out": out},
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 5
    while "export AOS_SLACK_API_URL=" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = out.getvalue().splitlines()
    url = next(line for line in lines if line.startswith("export AOS_SLACK_API_URL="))
    token = next(
        part for line in lines for part in line.split() if part.startswith("access_token=")
    ).split("=", 1)[1]
    base = url.split("=", 1)[1]
    assert WebClient(token=token, base_url=base).auth_test()["ok"]
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
