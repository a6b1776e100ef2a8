"""A failure is never read as an answer: damaged answers, permanent refusals, bad characters.

The connectors run against the sandbox emulators (real google-api-python-client and slack-sdk,
real sockets) with faults that damage an answer rather than refuse it. ``MemoryTable`` applies
pages as db.loader does, so a damaged answer mistaken for an empty one shows up as rows
soft-deleted by a reconcile claim.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import httplib2
import pytest
from googleapiclient.errors import BatchError, HttpError
from slack_fake import FakeSlack, MemoryTable, running_fake, sync

from connectors.common import (
    AuthError,
    PermanentError,
    RunStats,
    Secret,
    TransientError,
    sanitize,
    sanitize_text,
)
from connectors.gmail import GmailConfig, GmailConnector
from connectors.gmail.batch import TolerantBatch
from connectors.gmail.errors import unusable
from connectors.gmail.records import message_record as gmail_record
from connectors.gmail.transport import GmailTransport
from connectors.kit import PartitionFailures
from connectors.slack import SlackConfig, SlackConnector
from connectors.slack.errors import SlackCallError
from connectors.slack.records import message_record as slack_record
from sandbox import Sandbox

HIDDEN = {"SPAM", "TRASH"}
GMAIL_FAST = {"backoff_base": 0.01, "quota_units_per_second": None, "max_retries": 2}
SCALE = 60.0


def read_into(conn: Any, stream: str, table: MemoryTable) -> list[Any]:
    """Like ``sync``, but applies each page as it comes, so a stream that fails half-way
    leaves exactly what the loader would have committed."""
    pages = []
    for page in conn.read(stream, dict(table.state)):
        table.apply(page)
        pages.append(page)
    return pages


def storable(record: dict[str, Any]) -> bool:
    """What PostgreSQL needs of text: UTF-8 encodable, no NUL (jsonb values included)."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\u0000" not in text and "\x00" not in text


# -- Gmail ----------------------------------------------------------------------------------


@pytest.fixture
def gsb() -> Iterator[Sandbox]:
    with Sandbox(providers=("gmail",), seed=11) as box:
        yield box


def gmail(sb: Sandbox, mb: Any, **config: Any) -> GmailConnector:
    return GmailConnector(
        Secret(mb.credentials["access_token"]),
        GmailConfig.from_dict({**GMAIL_FAST, **config}),
        base_url=sb.env["AOS_GMAIL_API_URL"],
    )


def expected(mb: Any) -> set[tuple[str]]:
    return {(m["id"],) for m in mb.truth()["messages"] if not set(m.get("labelIds") or ()) & HIDDEN}


def gcalls(sb: Sandbox, method: str) -> int:
    return sb.log.count(provider="gmail", method=method)


def test_truncated_messages_list_in_a_resync_never_soft_deletes(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=60, quota=False)
    table = MemoryTable(("message_id",))
    sync(gmail(gsb, mb), "messages", table)
    stored = set(table.live())
    mb.deliver(subject="while away")
    mb.expire_history()
    gsb.faults.add("gmail", kind="truncated_body", method="users.messages.list", rate=1.0)
    gsb.log.clear()
    conn = gmail(gsb, mb, page_size=40)
    with pytest.raises(TransientError, match=r"users\.messages\.list") as raised:
        read_into(conn, "messages", table)
    assert raised.value.method == "users.messages.list"
    assert gcalls(gsb, "users.messages.list") == 3  # retried at the request level, then failed
    assert not table.deleted and set(table.live()) == stored

    # One damaged answer is retried and the resync completes, reconcile included.
    gsb.faults.clear()
    gsb.faults.add("gmail", kind="truncated_body", method="users.messages.list", times=1)
    conn = gmail(gsb, mb, page_size=40)
    pages = read_into(conn, "messages", table)
    assert pages[-1].reconcile is not None and conn.stats.retries >= 1
    assert set(table.live()) == expected(mb) and not table.deleted


def test_truncated_labels_list_never_soft_deletes(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=5, quota=False)
    labels = MemoryTable(("label_id",))
    sync(gmail(gsb, mb), "labels", labels)
    stored = set(labels.live())
    assert len(stored) > 5
    gsb.faults.add("gmail", kind="truncated_body", method="users.labels.list", rate=1.0)
    with pytest.raises(TransientError, match=r"users\.labels\.list"):
        read_into(gmail(gsb, mb), "labels", labels)
    assert not labels.deleted and set(labels.live()) == stored


def test_truncated_batch_part_is_retried_never_gone(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=30, quota=False)
    table = MemoryTable(("message_id",))
    sync(gmail(gsb, mb), "messages", table)
    new = [mb.deliver(subject=f"after {n}") for n in range(3)]
    gsb.faults.add("gmail", kind="truncated_body", method="users.messages.get", times=2)
    conn = gmail(gsb, mb)
    read_into(conn, "messages", table)
    assert set(table.live()) == expected(mb) and not table.deleted
    assert all((m["id"],) in table.live() for m in new)
    assert conn.stats.retries >= 2

    # A part that stays damaged fails the stream (naming the call); nothing is claimed gone.
    more = mb.deliver(subject="one more")
    gsb.faults.add("gmail", kind="truncated_body", method="users.messages.get", rate=1.0)
    with pytest.raises(TransientError, match=r"users\.messages\.get"):
        read_into(gmail(gsb, mb), "messages", table)
    assert not table.deleted and (more["id"],) not in table.rows


def test_batch_answer_without_content_ids_is_matched_in_order(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=70, quota=False)
    gsb.faults.add("gmail", kind="no_content_id", method="batch", rate=1.0)
    conn = gmail(gsb, mb, batch_size=25)
    messages, labels = MemoryTable(("message_id",)), MemoryTable(("label_id",))
    sync(conn, "labels", labels)
    sync(conn, "messages", messages)
    assert set(messages.live()) == expected(mb)
    assert {k for (k,) in labels.live()} == {label["id"] for label in mb.labels()}
    # Every part was matched at the first attempt (a part matched to the wrong request would
    # carry another id and be retried).
    assert conn.stats.retries == 0 and not conn.stats.warnings
    assert gcalls(gsb, "users.messages.get") == len(messages.live())
    assert all(e.fault == "no_content_id" for e in gsb.log.entries(method="batch"))


def test_truncated_multipart_answer_is_retried(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=50, quota=False)
    gsb.faults.add("gmail", kind="truncated_body", method="batch", times=1)
    conn = gmail(gsb, mb, batch_size=25)
    table = MemoryTable(("message_id",))
    sync(conn, "messages", table)
    assert set(table.live()) == expected(mb) and not table.deleted
    assert conn.stats.retries >= 1
    # The parts read before the cut are kept; only the rest is sent again.
    assert len(table.live()) < gcalls(gsb, "users.messages.get") < len(table.live()) + 25


def test_one_failing_label_is_skipped_and_kept(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=5, quota=False)
    labels = MemoryTable(("label_id",))
    sync(gmail(gsb, mb), "labels", labels)
    stored = set(labels.live())
    failed = "SENT"
    gsb.faults.add(
        "gmail",
        kind="500",
        method="users.labels.get",
        match={"path": f"/gmail/v1/users/me/labels/{failed}"},
        rate=1.0,
    )
    conn = gmail(gsb, mb)
    pages = read_into(conn, "labels", labels)
    (skipped,) = conn.stats.skipped
    refused = [e for e in gsb.log.entries(method="users.labels.get") if e.status == 500]
    assert len(refused) == 3 and all(e.path.endswith("/SENT") for e in refused)
    assert skipped.startswith(f"label {failed}:") and "users.labels.get" in skipped
    assert any(failed in w for w in conn.stats.warnings)
    assert pages[-1].reconcile is not None
    assert (failed,) in {tuple(k) for k in pages[-1].reconcile.alive_keys}
    assert set(labels.live()) == stored and not labels.deleted
    assert sum(len(p.records) for p in pages) == len(stored) - 1


def test_every_label_failing_fails_the_stream(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=5, quota=False)
    labels = MemoryTable(("label_id",))
    gsb.faults.add("gmail", kind="503", method="users.labels.get", rate=1.0)
    with pytest.raises(TransientError, match="Gmail labels"):
        read_into(gmail(gsb, mb), "labels", labels)
    assert not labels.rows


def test_subject_mixing_raw_utf8_and_encoded_words(gsb: Sandbox) -> None:
    mb = gsb.gmail.add_mailbox(messages=3, quota=False)
    mixed = mb.deliver(raw_subject="Réunion =?utf-8?q?caf=C3=A9?=")
    nul = mb.deliver(raw_subject="=?utf-8?q?before=00after?= x")
    table = MemoryTable(("message_id",))
    sync(gmail(gsb, mb), "messages", table)
    assert table.live()[(mixed["id"],)]["subject"] == "Réunion café"
    assert table.live()[(nul["id"],)]["subject"] == "before\ufffdafter x"
    assert all(storable(r) for r in table.live().values())
    assert gmail_record(mixed)["subject"] == "Réunion café"


# -- Slack ----------------------------------------------------------------------------------


@pytest.fixture
def ssb() -> Iterator[Sandbox]:
    with Sandbox(providers=("slack",), seed=11, time_scale=SCALE) as box:
        yield box


def slack(sb: Sandbox, ws: Any, **config: Any) -> SlackConnector:
    config.setdefault("rate_scale", SCALE)
    config.setdefault("tier", ws.tier)
    return SlackConnector(
        Secret(ws.credentials["access_token"]),
        SlackConfig.from_dict(config),
        base_url=sb.env["AOS_SLACK_API_URL"],
        retry_backoff=0.01,
    )


def history_calls(sb: Sandbox, channel: str) -> int:
    return sum(
        1
        for e in sb.log.entries(provider="slack", method="conversations.history")
        if e.params.get("channel") == channel
    )


def test_missing_scope_skips_only_that_channel_and_is_not_retried(ssb: Sandbox) -> None:
    ws = ssb.slack.add_workspace(channels=4, messages_per_channel=12, thread_ratio=0.0)
    members = [c for c in ws.channel_ids if ws.channel(c).is_member]
    assert len(members) >= 3
    refused = members[1]
    ssb.faults.add(
        "slack",
        kind="missing_scope",
        method="conversations.history",
        match={"channel": refused},
        rate=1.0,
    )
    conn = slack(ssb, ws)
    table = MemoryTable(("channel_id", "ts"))
    pages = read_into(conn, "messages", table)
    assert {p.partition for p in pages} == set(members) - {refused}
    assert {k[0] for k in table.live()} == set(members) - {refused}
    (entry,) = [s for s in conn.stats.skipped if s.startswith(refused)]
    assert "missing_scope" in entry and "needed: channels:history" in entry
    assert "provided: " in entry and "users:read" in entry
    assert any(refused in w and "missing_scope" in w for w in conn.stats.warnings)
    assert history_calls(ssb, refused) == 1  # permanent: asked once


def test_missing_scope_everywhere_fails_the_stream_as_permanent(ssb: Sandbox) -> None:
    ws = ssb.slack.add_workspace(channels=3, messages_per_channel=5, thread_ratio=0.0)
    ssb.faults.add("slack", kind="missing_scope", method="conversations.history", rate=1.0)
    conn = slack(ssb, ws)
    with pytest.raises(PermanentError, match="every partition failed") as raised:
        read_into(conn, "messages", MemoryTable(("channel_id", "ts")))
    assert raised.value.code == "missing_scope"
    members = [c for c in ws.channel_ids if ws.channel(c).is_member]
    assert all(history_calls(ssb, c) == 1 for c in members)


def test_join_warnings_are_recorded(ssb: Sandbox) -> None:
    ws = ssb.slack.add_workspace(channels=3, messages_per_channel=5, thread_ratio=0.0)
    outsider = next(c for c in ws.channel_ids if not ws.channel(c).is_member)
    ssb.faults.add("slack", kind="warning", method="conversations.join", rate=1.0)
    conn = slack(ssb, ws, auto_join=True)
    read_into(conn, "messages", MemoryTable(("channel_id", "ts")))
    assert (
        f"Slack conversations.join (channel {outsider}) warned: already_in_channel"
        in conn.stats.warnings
    )


def test_nul_and_lone_surrogates_are_sanitised(ssb: Sandbox) -> None:
    ws = ssb.slack.add_workspace(channels=3, messages_per_channel=8, thread_ratio=0.0)
    first, second = [c for c in ws.channel_ids if ws.channel(c).is_member][:2]
    posted = ws.post_message(second, "broken \ud83d emoji\x00 and a pair \ud83d\ude00")
    ssb.faults.add(
        "slack", kind="bad_text", method="conversations.history", match={"channel": first}
    )
    table = MemoryTable(("channel_id", "ts"))
    read_into(slack(ssb, ws), "messages", table)
    live = table.live()
    assert live[(second, posted["ts"])]["text"] == "broken \ufffd emoji\ufffd and a pair 😀"
    damaged = [r for k, r in live.items() if k[0] == first]
    assert damaged and all(r["text"].endswith(" \ufffd \ufffd") for r in damaged)
    assert all(storable(r) for r in live.values())
    nested = slack_record("C1", {"ts": "1.000001", "reactions": [{"name": "a\x00", "users": []}]})
    assert nested["reactions"][0]["name"] == "a\ufffd"


def test_truncated_conversations_list_never_soft_deletes(ssb: Sandbox) -> None:
    ws = ssb.slack.add_workspace(channels=4, messages_per_channel=3, thread_ratio=0.0)
    channels = MemoryTable(("channel_id",))
    sync(slack(ssb, ws), "channels", channels)
    assert len(channels.live()) == 4
    ssb.faults.add("slack", kind="truncated_body", method="conversations.list", rate=1.0)
    with pytest.raises(TransientError, match=r"conversations\.list") as raised:
        read_into(slack(ssb, ws, page_limit=2), "channels", channels)
    assert raised.value.method == "conversations.list"
    assert len(channels.live()) == 4 and not channels.deleted
    ssb.faults.clear()
    ssb.faults.add("slack", kind="truncated_body", method="conversations.list", times=1)
    conn = slack(ssb, ws, page_limit=2)
    read_into(conn, "channels", channels)
    assert len(channels.live()) == 4 and conn.stats.retries >= 1


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    yield from running_fake()


TIER3 = SlackConfig(tier="tier3")  # the fake's pages are not capped like a new app's


def test_page_without_its_list_is_not_an_empty_page(fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C1", "general")
    for n in range(5):
        fake_slack.add_message("C1", f"17000000{n:02d}.000100")
    conn = SlackConnector(
        Secret(fake_slack.token), TIER3, base_url=fake_slack.url, retry_backoff=0.01
    )
    table = MemoryTable(("channel_id", "ts"))
    sync(conn, "messages", table)
    assert len(table.live()) == 5
    # `{"ok": true}` without `messages`: four times, every attempt of the call.
    fake_slack.faults += [("conversations.history", "ok_only")] * 4
    conn = SlackConnector(
        Secret(fake_slack.token), TIER3, base_url=fake_slack.url, retry_backoff=0.01
    )
    with pytest.raises(TransientError, match=r"conversations\.history"):
        read_into(conn, "messages", table)
    assert len(table.live()) == 5 and not table.deleted
    fake_slack.faults.append(("conversations.history", "ok_only"))
    conn = SlackConnector(
        Secret(fake_slack.token), TIER3, base_url=fake_slack.url, retry_backoff=0.01
    )
    read_into(conn, "messages", table)
    assert len(table.live()) == 5 and not table.deleted and conn.stats.retries == 1


# -- the pieces, without a server --------------------------------------------------------------


def test_sanitize_replaces_what_postgresql_cannot_store() -> None:
    assert sanitize_text("plain café 😀") == "plain café 😀"
    assert sanitize_text("a\x00b") == "a\ufffdb"
    assert sanitize_text("lone \ud83d and \ude00 end") == "lone \ufffd and \ufffd end"
    assert sanitize_text("pair \ud83d\ude00") == "pair 😀"  # two code points joined, not lost
    record = {"t\x00": ["x\ud800", ("y",)], "n": 1, "d": {"k": "\x00"}, "none": None}
    assert sanitize(record) == {
        "t\ufffd": ["x\ufffd", ("y",)],
        "n": 1,
        "d": {"k": "\ufffd"},
        "none": None,
    }


def test_partition_failures_rules() -> None:
    stats = RunStats()
    partitions = PartitionFailures("X things", stats)
    partitions.failed("p1", PermanentError("refused", code="missing_scope"))
    partitions.succeeded()
    partitions.failed("p2", TransientError("flaky"))
    partitions.finish()  # one success is enough
    assert stats.skipped == ["p1: refused", "p2: flaky"] and len(stats.warnings) == 2

    only_permanent = PartitionFailures("X things", RunStats())
    only_permanent.failed("p1", PermanentError("refused", code="missing_scope"))
    with pytest.raises(PermanentError, match="every partition failed") as raised:
        only_permanent.finish()
    assert raised.value.code == "missing_scope"

    outage = PartitionFailures("X things", RunStats(), max_consecutive_transient=2)
    outage.succeeded()
    outage.failed("p1", TransientError("503"))
    with pytest.raises(TransientError, match="2 partitions in a row"):
        outage.failed("p2", TransientError("503"))
    with pytest.raises(AuthError):
        PartitionFailures("X things", RunStats()).failed("p", AuthError("revoked"))


def _multipart(parts: list[tuple[str | None, str]], *, close: bool = True) -> bytes:
    chunks = []
    for content_id, body in parts:
        head = "Content-Type: application/http\r\n"
        if content_id is not None:
            head += f"Content-ID: {content_id}\r\n"
        chunks.append(
            f"--zz\r\n{head}\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
        )
    return ("".join(chunks) + ("--zz--\r\n" if close else "")).encode()


def test_batch_answer_is_matched_by_content_id_or_by_order() -> None:
    transport = GmailTransport(
        Secret("ya29.x"), GmailConfig(), RunStats(), base_url="http://127.0.0.1:9"
    )
    batch = TolerantBatch(batch_uri="http://127.0.0.1:9/batch/gmail/v1")
    ids = ["a", "b", "c"]
    for i in ids:
        batch.add(transport.service.users().messages().get(userId="me", id=i), request_id=i)

    def cid(i: str) -> str:
        return "<response-" + batch._id_to_header(i)[1:]

    def read(body: bytes) -> tuple[dict[str, str], str]:
        answers, why = batch._read("multipart/mixed; boundary=zz", body)
        return {k: json.loads(v)["id"] for k, (_, v) in answers.items()}, why

    by_id = _multipart([(cid(i), f'{{"id": "{i}"}}') for i in reversed(ids)])
    assert read(by_id) == ({"a": "a", "b": "b", "c": "c"}, "")
    by_order = _multipart([(None, f'{{"id": "{i}"}}') for i in ids])
    assert read(by_order) == ({"a": "a", "b": "b", "c": "c"}, "")
    # Two parts for three requests, complete: which one is missing cannot be known.
    answers, why = read(_multipart([(None, '{"id": "a"}'), (None, '{"id": "b"}')]))
    assert answers == {} and why == "3 of 3 parts missing or unreadable"
    # Cut short inside the third part: the first two stand, by order.
    cut = _multipart([(None, f'{{"id": "{i}"}}') for i in ids])[:-30]
    answers, why = read(cut)
    assert answers == {"a": "a", "b": "b"} and "cut short" in why
    # A Content-ID we cannot read matches nothing, and rules out matching by order.
    odd = _multipart([("<nonsense>", '{"id": "a"}'), (None, '{"id": "b"}'), (None, '{"id": "c"}')])
    assert read(odd)[0] == {}
    with pytest.raises(BatchError):
        batch._read("application/json", b'{"error": "not a batch"}')


def test_damaged_gmail_answers_are_not_answers() -> None:
    assert unusable("users.messages.list", '{"messages": [{"id": "a"') is not None
    assert unusable("users.messages.list", {}) is not None
    assert unusable("users.messages.list", {"resultSizeEstimate": 0}) is None
    assert unusable("users.labels.list", {"labels": []}) is None
    assert "historyId" in str(unusable("users.messages.get", {"id": "a", "internalDate": "1"}))


def test_permanent_errors_carry_the_providers_words_and_survive_pickling() -> None:
    transport = GmailTransport(
        Secret("ya29.x"), GmailConfig(), RunStats(), base_url="http://127.0.0.1:9"
    )
    body = {
        "error": {"code": 400, "message": "Invalid label: Label_9", "status": "INVALID_ARGUMENT"}
    }
    refused = HttpError(httplib2.Response({"status": "400"}), json.dumps(body).encode())
    with pytest.raises(PermanentError) as google:
        transport.failure("users.messages.list", refused)
    assert "Invalid label: Label_9" in str(google.value)
    assert google.value.detail["message"] == "Invalid label: Label_9"
    scope = SlackCallError(
        "conversations.history", "missing_scope", {"needed": "a", "provided": "b"}
    )
    assert str(scope).endswith("missing_scope (needed: a; provided: b)")
    # A task's failed state may be pickled: the detail must come back.
    for error in (google.value, scope, TransientError("t", provider="slack", method="m")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
        assert again.__dict__ == error.__dict__
