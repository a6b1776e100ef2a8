"""Slack connector layers, each through a fake at its boundary (see slack_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from slack_fake import TOKEN, FakeSlack, MemoryTable, running_fake, sync

from connectors.common import AuthError, ConnectorError, Secret
from connectors.kit import SlidingWindowLimiter, TokenPaginator
from connectors.kit.reader import Window
from connectors.slack import STREAMS, SlackConfig, SlackConnector, refresh_slack_token
from connectors.slack.cursor import ChannelCursor
from connectors.slack.records import (
    datetime_to_ts,
    message_record,
    ts_add_micros,
    ts_to_datetime,
)
from connectors.slack.transport import next_cursor


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    yield from running_fake()


NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86_400


def ts(days_ago: float, micro: int = 0) -> str:
    return f"{int(NOW.timestamp() - days_ago * DAY)}.{micro:06d}"


def connector(fake: FakeSlack, token: str = TOKEN, **config: object) -> SlackConnector:
    config.setdefault("tier", "tier3")  # the fake's pages are not capped like a new app's
    return SlackConnector(
        Secret(token),
        SlackConfig.from_dict(config),
        base_url=fake.url,
        now=lambda: NOW,
        retry_backoff=0.01,
    )


# -- records and timestamps --------------------------------------------------------------------


def test_ts_conversions_are_exact() -> None:
    moment = ts_to_datetime("1700000000.000100")
    assert moment == datetime(2023, 11, 14, 22, 13, 20, 100, tzinfo=UTC)
    assert datetime_to_ts(moment) == "1700000000.000100"
    assert ts_add_micros("1700000000.999999", 1) == "1700000001.000000"
    assert ts_add_micros("1700000000.000000", -1) == "1699999999.999999"


def test_message_record_columns() -> None:
    record = message_record(
        "C1",
        {
            "ts": "1700000001.000200",
            "thread_ts": "1700000000.000100",
            "user": "U1",
            "text": "x",
            "edited": {"ts": "1700000005.000000", "user": "U1"},
            "reactions": [{"name": "tada", "count": 2, "users": ["U1", "U2"]}],
            "files": [{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 3, "x": 1}],
        },
    )
    assert record["is_reply"] is True and record["reply_count"] == 0
    assert record["posted_at"] == datetime(2023, 11, 14, 22, 13, 21, 200, tzinfo=UTC)
    assert record["edited_ts"] == "1700000005.000000"
    assert record["reactions"] == [{"name": "tada", "count": 2, "users": ["U1", "U2"]}]
    assert record["files"] == [{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 3}]
    assert record["bot_id"] is None and record["subtype"] is None


def test_config_from_dict_and_page_cap() -> None:
    cfg = SlackConfig.from_dict(
        {"tier": "non_marketplace_2025", "start_date": "2024-01-02", "include_channels": "x"}
    )
    assert cfg.start_date == date(2024, 1, 2) and cfg.include_channels == ("x",)
    assert cfg.limit_for("conversations.history") == 15
    assert cfg.limit_for("users.list") == 200
    with pytest.raises(ValueError):
        SlackConfig(tier="tier9")


def test_the_default_tier_is_the_deployments_and_a_new_apps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``AOS_SLACK_TIER`` an integration without a ``tier`` runs on the non-Marketplace
    tier (a new app outside the Slack Marketplace: docs.slack.dev/apis/web-api/rate-limits);
    the setting names the app's tier, an integration's config its own; a wrong setting is one
    clear error naming it and the tiers there are."""
    monkeypatch.delenv("AOS_SLACK_TIER", raising=False)
    assert SlackConfig().tier == "non_marketplace_2025"
    assert SlackConfig.from_dict({}).limit_for("conversations.replies") == 15
    monkeypatch.setenv("AOS_SLACK_TIER", "tier3")
    assert SlackConfig.from_dict(None).tier == "tier3"
    assert SlackConfig.from_dict({"tier": "unlimited"}).tier == "unlimited"
    monkeypatch.setenv("AOS_SLACK_TIER", "marketplace")
    with pytest.raises(ValueError) as wrong:
        SlackConfig.from_dict({})
    message = str(wrong.value)
    assert "AOS_SLACK_TIER='marketplace'" in message and "non_marketplace_2025" in message
    assert "\n" not in message
    assert SlackConfig.from_dict({"tier": "tier3"}).tier == "tier3"  # the setting unread


def test_streams_declaration() -> None:
    assert STREAMS["messages"].primary_key == ("channel_id", "ts")
    assert STREAMS["messages"].partition_by == "channel_id"
    assert STREAMS["messages"].client_match == "slack_channel_ids"
    assert STREAMS["channels"].client_field == "channel_id"
    assert STREAMS["users"].table == "slack_users"


# -- small state holders ---------------------------------------------------------------------


def test_limiter_sleeps_only_when_the_window_is_full() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    limiter = SlidingWindowLimiter(2, 60.0, clock=lambda: clock[0], sleep=sleep)
    limiter.acquire()
    limiter.acquire()
    assert sleeps == []
    clock[0] = 10.0
    limiter.acquire()
    assert sleeps == [pytest.approx(60.0 * SlidingWindowLimiter.SAFETY - 10.0)]


def test_paginator_detects_loops() -> None:
    paginator = TokenPaginator("Slack users.list", next_cursor)
    paginator.update({"response_metadata": {"next_cursor": "a"}})
    assert paginator.next_token == "a"  # the next request carries cursor=a
    with pytest.raises(ConnectorError, match="Loop"):
        paginator.update({"response_metadata": {"next_cursor": "a"}})


def test_cursor_state_round_trip_prunes_old_threads() -> None:
    cursor = ChannelCursor.from_state(
        {"cursor": ts(1), "threads": {ts(40): [ts(39), 2], ts(2): [ts(1), 1]}}
    )
    state = cursor.to_state(keep_threads_since=ts(30))
    assert state["threads"] == {ts(2): [ts(1), 1]}
    assert not cursor.thread_is_stale(ts(2), ts(1), 1)
    assert cursor.thread_is_stale(ts(2), ts(0.5), 2)
    assert cursor.thread_is_stale(ts(3), ts(2), 1)  # new parent


# -- the connector against the fake ----------------------------------------------------------


def seed(fake: FakeSlack) -> None:
    fake.users = [
        {
            "id": "U1",
            "team_id": "T1",
            "name": "ann",
            "real_name": "Ann",
            "deleted": False,
            "profile": {"email": "ann@x.io", "display_name": ""},
            "updated": 1_700_000_000,
        },
        {"id": "U2", "team_id": "T1", "name": "bob", "deleted": True, "profile": {}},
    ]
    fake.add_channel("C1", "general")
    fake.add_channel("C2", "client-acme", is_private=True, topic={"value": "Acme"})
    for i in range(6):
        fake.add_message("C1", ts(10 - i))
    fake.add_reply("C1", ts(9), ts(8.5))
    fake.add_reply("C1", ts(9), ts(8.4))
    fake.add_message("C2", ts(3))


def test_full_read(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    conn = connector(fake_slack, page_limit=2)
    users = MemoryTable(("user_id",))
    sync(conn, "users", users)
    assert users.rows[("U2",)]["is_deleted"] is True
    assert users.rows[("U1",)]["email"] == "ann@x.io"
    assert users.rows[("U1",)]["display_name"] is None

    channels = MemoryTable(("channel_id",))
    channels.rows[("C9",)] = {"channel_id": "C9"}  # gone upstream
    pages = sync(conn, "channels", channels)
    assert pages[-1].reconcile is not None and pages[-1].reconcile.where == {}
    assert set(channels.live()) == {("C1",), ("C2",)}
    assert channels.rows[("C2",)]["topic"] == "Acme"

    messages = MemoryTable(("channel_id", "ts"))
    sync(conn, "messages", messages)
    assert len(messages.live()) == 6 + 2 + 1
    reply = messages.rows[("C1", ts(8.4))]
    assert reply["is_reply"] is True and reply["thread_ts"] == ts(9)
    assert messages.rows[("C1", ts(9))]["reply_count"] == 2
    state = messages.state["C1"]
    assert state["cursor"] == ts(5) and state["pending"] is None
    assert state["threads"] == {ts(9): [ts(8.4), 2]}
    assert conn.stats.records == 2 + 2 + 9 and conn.stats.requests == len(fake_slack.calls)


def test_incremental_sees_new_edited_and_deleted(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    messages = MemoryTable(("channel_id", "ts"))
    sync(connector(fake_slack), "messages", messages)

    fake_slack.add_message("C1", ts(0.5), text="new")
    fake_slack.history["C1"][ts(6)]["text"] = "edited"
    fake_slack.history["C1"][ts(6)]["edited"] = {"ts": ts(0.4)}
    del fake_slack.history["C1"][ts(7)]
    fake_slack.add_reply("C1", ts(9), ts(0.3))
    # A reply deleted in a thread whose activity did not move must not be claimed deleted
    # by any other thread's reconcile.
    fake_slack.calls.clear()
    pages = sync(connector(fake_slack), "messages", messages)

    live = messages.live()
    assert live[("C1", ts(0.5))]["text"] == "new"
    assert live[("C1", ts(6))]["edited_ts"] == ts(0.4)
    assert ("C1", ts(7)) not in live and ("C1", ts(7)) in messages.rows
    assert ("C1", ts(0.3)) in live and ("C1", ts(8.5)) in live
    history = [p for m, p in fake_slack.calls if m == "conversations.history"]
    c1 = [p for p in history if p["channel"] == "C1"][0]
    assert Decimal(c1["oldest"]) == Decimal(ts(30)), "re-reads the lookback window"
    assert Decimal(c1["latest"]) > Decimal(ts(0)), "latest is always explicit"
    thread_claims = [p.reconcile for p in pages if p.reconcile and "thread_ts" in p.reconcile.where]
    assert [c.where["thread_ts"] for c in thread_claims] == [ts(9)]
    assert all(c.where.get("is_reply") is True for c in thread_claims)
    top_claims = [
        p.reconcile for p in pages if p.reconcile and "thread_ts" not in p.reconcile.where
    ]
    assert all(c.where["is_reply"] is False and c.range_column == "ts" for c in top_claims)


def test_unchanged_threads_are_not_refetched(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    messages = MemoryTable(("channel_id", "ts"))
    sync(connector(fake_slack), "messages", messages)
    fake_slack.calls.clear()
    sync(connector(fake_slack), "messages", messages)
    assert "conversations.replies" not in fake_slack.methods()


def test_backfill_resumes_mid_channel(fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C1", "general")
    for i in range(10):
        fake_slack.add_message("C1", ts(20 - i))
    messages = MemoryTable(("channel_id", "ts"))
    # conversations.list + 3 history pages, then the budget stops the run cleanly.
    conn = connector(fake_slack, page_limit=3, max_requests=4)
    sync(conn, "messages", messages)
    assert any("max_requests" in w for w in conn.stats.warnings)
    pending = messages.state["C1"]["pending"]
    assert pending["latest"] == ts(19) and messages.state["C1"]["cursor"] is None
    assert len(messages.live()) == 9

    fake_slack.calls.clear()
    sync(connector(fake_slack, page_limit=3), "messages", messages)
    history = [p for m, p in fake_slack.calls if m == "conversations.history"]
    assert history[0]["latest"] == ts(19), "resumes below what was committed"
    assert len(messages.live()) == 10
    assert messages.state["C1"]["cursor"] == ts(11) and messages.state["C1"]["pending"] is None


def test_windows_only_widen_an_incremental_read_and_bound_a_backfill(
    fake_slack: FakeSlack,
) -> None:
    """Where each read of C1 starts and ends: the configured start_date bounds the first sync
    only; a window on top of the cursor lowers the bound, never raises it, and re-reads every
    thread; a window with cursors of its own is its dates alone."""
    seed(fake_slack)
    start_date = (NOW - timedelta(days=9.5)).date()
    messages = MemoryTable(("channel_id", "ts"))

    def bounds(window: Window | None, table: MemoryTable, **config: object) -> dict[str, str]:
        fake_slack.calls.clear()
        sync(
            connector(fake_slack, start_date=start_date.isoformat(), **config),
            "messages",
            table,
            window,
        )
        history = [p for m, p in fake_slack.calls if m == "conversations.history"]
        return next(p for p in history if p["channel"] == "C1")

    first = bounds(None, messages)
    assert Decimal(first["oldest"]) == Decimal(
        datetime_to_ts(datetime.combine(start_date, datetime.min.time(), UTC))
    )
    assert len(messages.live()) == 5 + 2 + 1  # ts(9)..ts(5), ts(9)'s 2 replies, C2's ts(3)
    # Later runs re-read the lookback, below start_date too (rows a backfill stored there).
    lookback = {"edit_lookback_days": 12, "thread_lookback_days": 12}
    assert Decimal(bounds(None, messages, **lookback)["oldest"]) == Decimal(ts(12))
    assert len(messages.live()) == 6 + 2 + 1

    since = bounds(Window((NOW - timedelta(days=40)).date()), messages)
    assert Decimal(since["oldest"]) < Decimal(ts(39))
    assert "conversations.replies" in fake_slack.methods(), "a re-read re-reads its threads"
    narrow = bounds(Window((NOW - timedelta(days=1)).date()), messages)
    assert Decimal(narrow["oldest"]) == Decimal(ts(30)), "the cursor's own read is kept"
    everything = bounds(Window(None), MemoryTable(("channel_id", "ts")))
    assert "oldest" not in everything

    lo, hi = (NOW - timedelta(days=9)).date(), (NOW - timedelta(days=6)).date()
    window = MemoryTable(("channel_id", "ts"))
    own = bounds(Window(lo, hi, own_cursors=True), window)
    edges = [
        Decimal(datetime_to_ts(datetime.combine(d, datetime.min.time(), UTC))) for d in (lo, hi)
    ]
    assert [Decimal(own["oldest"]), Decimal(own["latest"])] == edges
    assert {k[1] for k in window.live() if not window.live()[k]["is_reply"]} == {
        ts(9),
        ts(8),
        ts(7),
    }


def test_faults_are_retried_and_counted(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    fake_slack.faults = [("users.list", "429"), ("users.list", "truncated"), ("users.list", "500")]
    conn = connector(fake_slack)
    table = MemoryTable(("user_id",))
    sync(conn, "users", table)
    assert len(table.live()) == 2
    assert conn.stats.rate_limited == 1
    assert conn.stats.requests == 4 and conn.stats.retries == 3


def test_revoked_token_raises_auth_error(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    fake_slack.faults = [("conversations.list", "revoked")]
    conn = connector(fake_slack)
    with pytest.raises(AuthError, match="token_revoked") as info:
        list(conn.read("channels", {}))
    assert TOKEN not in str(info.value)


def test_not_in_channel_is_skipped_and_auto_join(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    fake_slack.channels[0]["is_member"] = False
    conn = connector(fake_slack)
    table = MemoryTable(("channel_id", "ts"))
    sync(conn, "messages", table)
    assert conn.stats.skipped and "not_in_channel" in conn.stats.skipped[0]
    assert {k[0] for k in table.live()} == {"C2"}

    conn = connector(fake_slack, auto_join=True)
    sync(conn, "messages", table)
    assert "conversations.join" in fake_slack.methods() and not conn.stats.skipped
    assert ("C1", ts(10)) in table.live()


def test_channel_filters(fake_slack: FakeSlack) -> None:
    seed(fake_slack)
    table = MemoryTable(("channel_id", "ts"))
    sync(
        connector(
            fake_slack, include_channels=["#client-acme", "C1"], exclude_channels=["general"]
        ),
        "messages",
        table,
    )
    assert {k[0] for k in table.live()} == {"C2"}


def test_refresh_token(fake_slack: FakeSlack) -> None:
    bundle = refresh_slack_token(
        "cid", Secret("sec"), Secret("xoxe-1-good"), base_url=fake_slack.url
    )
    assert bundle["access_token"] == "xoxe.xoxb-new" and bundle["refresh_token"] == "xoxe-1-next"
    expires = datetime.fromisoformat(bundle["expires_at"])
    assert expires.tzinfo is not None and expires - datetime.now(UTC) > timedelta(hours=11)
    with pytest.raises(AuthError, match="invalid_refresh_token"):
        refresh_slack_token("cid", Secret("sec"), Secret("xoxe-1-good"), base_url=fake_slack.url)
