"""Run modes, one test per mode and provider: incremental, ``since DATE``, full refresh and a
backfill window mean the same for Slack and Gmail (``tasks/modes.py``).

Each test syncs, mutates the emulator (new, edited, relabelled, trashed and deleted objects on
both sides of the mode's dates), runs the mode under Prefect and compares the live rows with
the emulator's own truth, mapped to our columns by the flow tests' independent mappings
(``expected`` of ``test_sync_slack`` and ``test_sync_gmail``). Where a mode must leave rows
alone, the expected rows are the truth as it was before the mutations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from db import state
from flows import sync_gmail, sync_slack
from flows.backfill import backfill
from tests.flows import test_sync_gmail as gm
from tests.flows import test_sync_slack as sl
from tests.flows.conftest import World, seeded_world

DAY = 86_400.0


# -- shared helpers ----------------------------------------------------------------------------


def _assert_rows(table: str, want: Mapping[Any, Any], got: Mapping[Any, Any]) -> None:
    missing, extra = want.keys() - got.keys(), got.keys() - want.keys()
    wrong = {k: (got[k], want[k]) for k in want.keys() & got.keys() if got[k] != want[k]}
    assert not (missing or extra or wrong), (
        f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
        f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:2]}"
    )


def _cursors(world: World, iid: int) -> dict[str, dict[str, Any]]:
    """Every saved cursor of the integration: ``stream/partition`` -> cursor."""
    with world.data.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT stream, partition, cursor FROM sync_state WHERE integration_id = :i"),
            {"i": iid},
        ).all()
    return {f"{r.stream}/{r.partition}": r.cursor for r in rows}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _merged(
    after: Mapping[Any, Any], before: Mapping[Any, Any], reread: Callable[[Any, Any], bool]
) -> dict[Any, Any]:
    """Rows a mode re-read as they are now, every other row as it was before the mutations."""
    return {
        **{k: v for k, v in before.items() if not reread(k, v)},
        **{k: v for k, v in after.items() if reread(k, v)},
    }


# -- Slack -------------------------------------------------------------------------------------


def _slack(world: World, key: str, **config: Any) -> tuple[int, Any]:
    """Three channels, 40 days of history with threads, ending now."""
    iid = world.add_slack(
        key,
        client="globex",
        users=5,
        channels=3,
        messages_per_channel=200,
        start=datetime.now(UTC) - timedelta(days=40),
        span_days=39.9,
        thread_ratio=0.15,
        config={"auto_join": True, "page_limit": 50, **config},
    )
    return iid, world.workspaces[key]


def _age(m: Mapping[str, Any]) -> float:
    return (datetime.now(UTC).timestamp() - float(m["ts"])) / DAY


def _slack_pick(
    ws: Any, lo: float, hi: float, *, kind: str = "plain", taken: set[str] | None = None
) -> dict[str, Any]:
    """A message aged ``lo``..``hi`` days: ``plain`` (top-level, no replies), ``parent`` or
    ``reply`` (a reply whose parent is that old); each call picks one not picked before, and
    never a second one from a thread already picked from."""
    taken = taken if taken is not None else set()
    for m in ws.truth()["messages"]:
        thread = m.get("thread_ts") or m["ts"]
        if m["ts"] in taken or thread in taken:
            continue
        if kind == "reply":
            if thread == m["ts"] or not lo <= _age({"ts": thread}) <= hi:
                continue
        elif thread != m["ts"] or not lo <= _age(m) <= hi:
            continue
        elif bool(m.get("reply_count")) != (kind == "parent"):
            continue
        taken.update((m["ts"], thread))
        return dict(m)
    raise AssertionError(f"no {kind} message aged {lo}..{hi} days")


def _slack_messages(world: World, key: str) -> dict[tuple, tuple]:
    return sl.actual(world.data, world.integrations[key])["messages"]


def _ts_cursors(world: World, iid: int) -> dict[str, Decimal]:
    return {
        k: Decimal(v["cursor"])
        for k, v in _cursors(world, iid).items()
        if k.startswith("messages/") and v.get("cursor")
    }


def test_slack_incremental_rereads_its_lookback_below_start_date(world: World) -> None:
    """Incremental: the saved cursors plus the lookback. The configured ``start_date`` bounds
    the first sync only, so rows a backfill stored below it stay current inside the lookback;
    a change older than the lookback is not re-read."""
    start_date = (datetime.now(UTC) - timedelta(days=10)).date()
    iid, ws = _slack(
        world,
        "inc",
        start_date=start_date.isoformat(),
        edit_lookback_days=14,
        thread_lookback_days=14,
    )
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    seed_start = (datetime.now(UTC) - timedelta(days=41)).date()
    backfill(
        integration_id=iid,
        start=seed_start,
        end=start_date,
        requested_by=world.users["admin"],
        chunk_days=45,
    )
    sl.assert_equal_to_truth(world, "inc")  # the first sync and the backfill hold it all
    before = sl.expected(ws)["messages"]
    cursors = _ts_cursors(world, iid)

    taken: set[str] = set()
    channel = ws.channel_ids[0]
    edited = _slack_pick(ws, 11, 13, taken=taken)  # below start_date, inside the lookback
    ws.edit_message(edited["channel"], edited["ts"], "edited below start_date")
    gone = _slack_pick(ws, 11, 13, taken=taken)
    ws.delete_message(gone["channel"], gone["ts"])
    reply = _slack_pick(ws, 2, 12, kind="reply", taken=taken)
    ws.delete_message(reply["channel"], reply["ts"])
    recent = _slack_pick(ws, 1, 4, taken=taken)
    ws.edit_message(recent["channel"], recent["ts"], "edited recently")
    parent = _slack_pick(ws, 1, 12, kind="parent", taken=taken)
    ws.post_message(parent["channel"], "a late reply", thread_ts=parent["ts"])
    for n in range(3):
        ws.post_message(channel, f"new message {n}")
    old = _slack_pick(ws, 25, 35, taken=taken)  # older than the lookback: not re-read
    ws.delete_message(old["channel"], old["ts"])

    result = sync_slack(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded"
    old_key = (old["channel"], old["ts"])
    _assert_rows(
        "messages",
        {**sl.expected(ws)["messages"], old_key: before[old_key]},
        _slack_messages(world, "inc"),
    )
    assert all(v >= cursors[k] for k, v in _ts_cursors(world, iid).items())


def test_slack_since_rereads_from_the_date_on_top_of_a_newer_cursor(world: World) -> None:
    """``since DATE`` re-reads every channel from DATE although the saved cursors are newer
    and the lookback is 3 days: changes after DATE are found (threads included), a deletion
    before DATE is not claimed, and the cursors end no older than they were."""
    iid, ws = _slack(world, "since", edit_lookback_days=3, thread_lookback_days=3)
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    before = sl.expected(ws)["messages"]
    cursors = _ts_cursors(world, iid)
    since = (datetime.now(UTC) - timedelta(days=20)).date()
    assert all(c > Decimal(_midnight(since).timestamp()) for c in cursors.values())

    taken: set[str] = set()
    early = _slack_pick(ws, 25, 35, taken=taken)  # before DATE: stays as it was
    ws.delete_message(early["channel"], early["ts"])
    early_edit = _slack_pick(ws, 25, 35, taken=taken)
    ws.edit_message(early_edit["channel"], early_edit["ts"], "edited before the date")
    gone = _slack_pick(ws, 8, 18, taken=taken)  # after DATE, older than the lookback
    ws.delete_message(gone["channel"], gone["ts"])
    edited = _slack_pick(ws, 8, 18, taken=taken)
    ws.edit_message(edited["channel"], edited["ts"], "edited after the date")
    reply = _slack_pick(ws, 8, 18, kind="reply", taken=taken)  # its thread is otherwise idle
    ws.edit_message(reply["channel"], reply["ts"], "an edited reply")
    dropped = _slack_pick(ws, 8, 18, kind="reply", taken=taken)
    ws.delete_message(dropped["channel"], dropped["ts"])
    ws.post_message(ws.channel_ids[1], "posted after the sync")

    result = sync_slack(integration_id=iid, requested_by=world.users["admin"], since=since)
    assert result["status"] == "succeeded"
    edge = Decimal(_midnight(since).timestamp())

    def reread(key: tuple, row: tuple) -> bool:
        return Decimal(row[4] or key[1]) > edge  # a reply goes with its parent's thread

    want = _merged(sl.expected(ws)["messages"], before, reread)
    assert (early["channel"], early["ts"]) in want and want[
        (early_edit["channel"], early_edit["ts"])
    ] == before[(early_edit["channel"], early_edit["ts"])]
    _assert_rows("messages", want, _slack_messages(world, "since"))
    after = _ts_cursors(world, iid)
    assert after.keys() == cursors.keys() and all(after[k] >= cursors[k] for k in cursors)
    assert all(v.get("pending") is None for v in _cursors(world, iid).values())


def test_slack_full_refresh_soft_deletes_what_is_gone_anywhere(world: World) -> None:
    """A full refresh re-reads every channel from its beginning, below the configured
    ``start_date`` too (rows a backfill stored there), and soft-deletes what is gone."""
    start_date = (datetime.now(UTC) - timedelta(days=10)).date()
    iid, ws = _slack(
        world,
        "full",
        start_date=start_date.isoformat(),
        edit_lookback_days=3,
        thread_lookback_days=3,
    )
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    backfill(
        integration_id=iid,
        start=(datetime.now(UTC) - timedelta(days=41)).date(),
        end=start_date,
        requested_by=world.users["admin"],
        chunk_days=45,
    )
    sl.assert_equal_to_truth(world, "full")

    taken: set[str] = set()
    for lo, hi in ((25, 38), (12, 20), (5, 9)):  # backfilled, backfilled, first-synced
        gone = _slack_pick(ws, lo, hi, taken=taken)
        ws.delete_message(gone["channel"], gone["ts"])
        edited = _slack_pick(ws, lo, hi, taken=taken)
        ws.edit_message(edited["channel"], edited["ts"], f"edited, {lo} days or more ago")
    reply = _slack_pick(ws, 20, 35, kind="reply", taken=taken)
    ws.delete_message(reply["channel"], reply["ts"])
    ws.post_message(ws.channel_ids[2], "posted after the sync")

    result = sync_slack(integration_id=iid, requested_by=world.users["admin"], full_refresh=True)
    assert result["status"] == "succeeded"
    assert result["streams"]["messages"]["deleted"] == 4
    sl.assert_equal_to_truth(world, "full")
    assert all(v.get("pending") is None for v in _cursors(world, iid).values())


def test_slack_backfill_window_reads_only_its_window(world: World) -> None:
    """A backfill window re-reads its dates with cursors of its own: changes inside it land,
    changes outside it (deletions included) are left alone, and the incremental cursors are
    exactly as they were."""
    iid, ws = _slack(world, "window", edit_lookback_days=3, thread_lookback_days=3)
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    before = sl.expected(ws)["messages"]
    incremental = {k: v for k, v in _cursors(world, iid).items() if k.startswith("messages/")}
    lo, hi = (
        (datetime.now(UTC) - timedelta(days=25)).date(),
        (datetime.now(UTC) - timedelta(days=15)).date(),
    )

    taken: set[str] = set()
    for age in ((17, 23), (30, 38), (7, 12)):  # inside the window, before it, after it
        gone = _slack_pick(ws, *age, taken=taken)
        ws.delete_message(gone["channel"], gone["ts"])
        edited = _slack_pick(ws, *age, taken=taken)
        ws.edit_message(edited["channel"], edited["ts"], "edited upstream")
    reply = _slack_pick(ws, 17, 23, kind="reply", taken=taken)
    ws.delete_message(reply["channel"], reply["ts"])
    ws.post_message(ws.channel_ids[0], "posted after the sync")

    result = backfill(
        integration_id=iid, start=lo, end=hi, requested_by=world.users["admin"], chunk_days=5
    )
    assert result["status"] == "succeeded" and len(result["streams"]) == 2
    first, last = Decimal(_midnight(lo).timestamp()), Decimal(_midnight(hi).timestamp())

    def reread(key: tuple, row: tuple) -> bool:
        return first < Decimal(row[4] or key[1]) < last  # a reply goes with its parent

    _assert_rows(
        "messages",
        _merged(sl.expected(ws)["messages"], before, reread),
        _slack_messages(world, "window"),
    )
    now = {k: v for k, v in _cursors(world, iid).items() if k.startswith("messages/")}
    assert now == incremental, "the incremental cursors are untouched"


# -- Gmail -------------------------------------------------------------------------------------


@pytest.fixture
def gworld(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[gm.GmailWorld]:
    with seeded_world(
        gm.GmailWorld,
        fresh_engine,
        monkeypatch,
        providers=("gmail",),
        time_scale=10,
        seed=7,
        client_domains=gm.DOMAINS,
    ) as w:
        yield w


def _gmail(world: gm.GmailWorld, key: str, **config: Any) -> tuple[int, Any]:
    """A mailbox of 40 days of mail ending now."""
    iid = world.add_gmail(
        key,
        messages=240,
        start=datetime.now(UTC) - timedelta(days=40),
        span_days=39.9,
        config=config,
    )
    return iid, world.mailboxes[key]


def _mail_pick(world: gm.GmailWorld, key: str, lo: float, hi: float, taken: set[str]) -> str:
    """A visible message aged ``lo``..``hi`` days, not picked before."""
    now = datetime.now(UTC)
    for message_id, row in gm.expected(world, key)["messages"].items():
        if lo <= (now - row[2]).total_seconds() / DAY <= hi and message_id not in taken:
            taken.add(message_id)
            return str(message_id)
    raise AssertionError(f"no message aged {lo}..{hi} days")


def _mutate_mail(world: gm.GmailWorld, key: str, ages: tuple[tuple[float, float], ...]) -> None:
    """In each age band: a deletion, a trashing and two relabellings."""
    mb, taken = world.mailboxes[key], set[str]()
    for lo, hi in ages:
        mb.delete(_mail_pick(world, key, lo, hi, taken))
        mb.trash(_mail_pick(world, key, lo, hi, taken))
        mb.modify(_mail_pick(world, key, lo, hi, taken), add=["STARRED"], remove=["UNREAD"])
        mb.modify(_mail_pick(world, key, lo, hi, taken), add=[mb.user_labels[0]["id"]])


def _history_id(world: gm.GmailWorld, iid: int) -> int:
    cursor = _cursors(world, iid)["messages/"]
    assert cursor["full_sync"] is None
    return int(cursor["history_id"])


def _gmail_messages(world: gm.GmailWorld, key: str) -> dict[str, tuple]:
    return gm.actual(world.data, world.integrations[key])["messages"]


def test_gmail_incremental_keeps_rows_below_start_date_current(gworld: gm.GmailWorld) -> None:
    """Incremental: history from the saved cursor. The configured ``start_date`` bounds the
    first sync only: a relabelled message a backfill stored below it is updated, not
    soft-deleted as if it had stopped matching."""
    start_date = (datetime.now(UTC) - timedelta(days=15)).date()
    iid, mb = _gmail(gworld, "inc", start_date=start_date.isoformat())
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    backfill(
        integration_id=iid,
        start=(datetime.now(UTC) - timedelta(days=41)).date(),
        end=start_date,
        requested_by=gworld.users["admin"],
        chunk_days=45,
    )
    gm.assert_equal_to_truth(gworld, "inc")  # the first sync and the backfill hold it all
    cursor = _history_id(gworld, iid)

    _mutate_mail(gworld, "inc", ((20, 38), (1, 12)))  # below start_date, above it
    mb.deliver(subject="new mail")
    mb.deliver(subject="late delivery", at=datetime.now(UTC) - timedelta(days=30))

    result = sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert result["status"] == "succeeded"
    gm.assert_equal_to_truth(gworld, "inc")
    assert _history_id(gworld, iid) > cursor
    gworld.sandbox.log.clear()
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert gworld.sandbox.log.count(method="users.messages.list") == 0  # history only


def test_gmail_since_rereads_from_the_date_on_top_of_a_newer_cursor(
    gworld: gm.GmailWorld,
) -> None:
    """``since DATE`` lists the mailbox again from DATE on top of the saved cursor. The cursor
    is moved past the mutations first (as if history had lost them), so only the re-read can
    find them: after DATE everything equals the truth, before DATE nothing moved (a deletion
    included), and the cursor ends no older than it was."""
    iid, mb = _gmail(gworld, "since")
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    before = gm.expected(gworld, "since")["messages"]
    since = (datetime.now(UTC) - timedelta(days=20)).date()

    _mutate_mail(gworld, "since", ((25, 38), (2, 18)))  # before DATE, after it
    mb.deliver(subject="new mail")
    mb.deliver(subject="dated after the date", at=datetime.now(UTC) - timedelta(days=10))
    mb.deliver(subject="dated before the date", at=datetime.now(UTC) - timedelta(days=30))
    skipped = {"v": 1, "history_id": str(mb.history.current), "full_sync": None}
    with gworld.data.begin() as conn:
        state.save_state(conn, iid, "messages", "", skipped)

    result = sync_gmail(integration_id=iid, requested_by=gworld.users["admin"], since=since)
    assert result["status"] == "succeeded"
    edge = _midnight(since)
    truth = gm.expected(gworld, "since")
    _assert_rows(
        "messages",
        _merged(truth["messages"], before, lambda _key, row: row[2] >= edge),
        _gmail_messages(gworld, "since"),
    )
    labels = gm.actual(gworld.data, iid)["labels"]
    _assert_rows("labels", truth["labels"], labels)
    assert _history_id(gworld, iid) >= int(skipped["history_id"])


def test_gmail_full_refresh_soft_deletes_what_is_gone_anywhere(gworld: gm.GmailWorld) -> None:
    """A full refresh lists the whole mailbox, below the configured ``start_date`` too (rows a
    backfill stored there), soft-deletes what is gone anywhere and leaves a cursor the next
    incremental run continues from."""
    start_date = (datetime.now(UTC) - timedelta(days=15)).date()
    iid, mb = _gmail(gworld, "full", start_date=start_date.isoformat())
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    backfill(
        integration_id=iid,
        start=(datetime.now(UTC) - timedelta(days=41)).date(),
        end=start_date,
        requested_by=gworld.users["admin"],
        chunk_days=45,
    )
    gm.assert_equal_to_truth(gworld, "full")

    _mutate_mail(gworld, "full", ((20, 38), (1, 12)))
    mb.deliver(subject="new mail")
    result = sync_gmail(integration_id=iid, requested_by=gworld.users["admin"], full_refresh=True)
    assert result["status"] == "succeeded"
    assert result["streams"]["messages"]["deleted"] == 4  # deleted and trashed, both sides
    gm.assert_equal_to_truth(gworld, "full")

    _history_id(gworld, iid)  # in sync again
    mb.deliver(subject="after the refresh")
    gworld.sandbox.log.clear()
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    gm.assert_equal_to_truth(gworld, "full")
    assert gworld.sandbox.log.count(method="users.messages.list") == 0


def test_gmail_backfill_window_reads_only_its_window(gworld: gm.GmailWorld) -> None:
    """A backfill window lists its dates with a cursor of its own: inside it the rows equal
    the truth (a deletion and a trashing soft-delete), outside it nothing moved, and the
    incremental cursor is exactly as it was."""
    iid, mb = _gmail(gworld, "window")
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    before = gm.expected(gworld, "window")["messages"]
    incremental = _cursors(gworld, iid)["messages/"]
    lo = (datetime.now(UTC) - timedelta(days=25)).date()
    hi = (datetime.now(UTC) - timedelta(days=15)).date()

    _mutate_mail(gworld, "window", ((17, 23), (30, 38), (3, 12)))  # inside, before, after
    mb.deliver(subject="dated inside the window", at=_midnight(lo) + timedelta(days=3))
    mb.deliver(subject="new mail")

    result = backfill(
        integration_id=iid, start=lo, end=hi, requested_by=gworld.users["admin"], chunk_days=5
    )
    assert result["status"] == "succeeded" and len(result["streams"]) == 2
    first, last = _midnight(lo), _midnight(hi)
    _assert_rows(
        "messages",
        _merged(
            gm.expected(gworld, "window")["messages"],
            before,
            lambda _key, row: first <= row[2] < last,
        ),
        _gmail_messages(gworld, "window"),
    )
    assert _cursors(gworld, iid)["messages/"] == incremental, "the incremental cursor is untouched"


def test_the_trigger_is_worked_out_not_asked_for() -> None:
    """The ledger's ``trigger`` comes from who asks and from the command line's marker, so the
    flows need no ``trigger`` parameter (the Prefect Run form must not offer it)."""
    from flows.provider_sync import run_trigger, started_by

    assert run_trigger("scheduler:7") == "schedule"
    assert run_trigger("ann@acme.test") == "manual"
    with started_by("cli"):
        assert run_trigger("ann@acme.test") == "cli"
        assert run_trigger("scheduler:7") == "schedule"
    assert run_trigger("ann@acme.test") == "manual"
