"""The Gmail connector end to end against the sandbox's Gmail emulator (real
google-api-python-client, real sockets, the multipart batch endpoint). ``MemoryTable`` applies
pages the way db.loader does, so "equals truth" covers upserts, deletions, cursors and
reconcile claims together."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from slack_fake import MemoryTable, sync

from connectors.common import AuthError, Secret
from connectors.gmail import GmailConfig, GmailConnector
from connectors.gmail.records import message_record
from connectors.google_auth import refresh_google_token
from connectors.kit.reader import Window

pytest.importorskip("sandbox.gmail")
sandbox = pytest.importorskip("sandbox")

HIDDEN = {"SPAM", "TRASH"}
FAST = {"backoff_base": 0.01, "quota_units_per_second": None}


@pytest.fixture
def sb() -> Iterator[Any]:
    with sandbox.Sandbox(providers=("gmail",), seed=7) as box:
        yield box


def make(sb: Any, mb: Any, **config: Any) -> GmailConnector:
    return GmailConnector(
        Secret(mb.credentials["access_token"]),
        GmailConfig.from_dict({**FAST, **config}),
        base_url=sb.env["AOS_GMAIL_API_URL"],
    )


def add_mailbox(sb: Any, **kwargs: Any) -> Any:
    """Without the emulator's per-user quota unless asked (the pacing test turns it on)."""
    kwargs.setdefault("quota", False)
    return sb.gmail.add_mailbox(**kwargs)


def messages_table() -> MemoryTable:
    return MemoryTable(("message_id",))


def _attachments(part: Any) -> bool:
    """Independent of the connector: walk the emulator's MIME tree."""
    if getattr(part, "filename", "") or getattr(part, "attachment_id", ""):
        return True
    return any(_attachments(child) for child in getattr(part, "children", ()))


def expected(mb: Any) -> dict[tuple[str], dict[str, Any]]:
    """Truth (format=metadata shapes) as rows; SPAM/TRASH excluded like a default sync."""
    out: dict[tuple[str], dict[str, Any]] = {}
    for message in mb.truth()["messages"]:
        if set(message.get("labelIds") or ()) & HIDDEN:
            continue
        record = message_record(message)
        record["has_attachments"] = _attachments(mb.spec(message["id"]).part)
        out[(message["id"],)] = record
    return out


def calls(sb: Any, method: str) -> int:
    return sb.log.count(provider="gmail", method=method)


def test_full_read_equals_truth(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=260, domains=("acme.com", "globex.org"))
    special = mb.deliver(
        subject="Réunion, Q3 – café ☕",
        sender="=?UTF-8?Q?Ren=C3=A9e_L=C3=A9vy?= <Renee@Acme.com>",
        to=['"Doe, John" <John@Acme.com>', "ops@globex.org"],
        cc=["=?UTF-8?B?w4lsb2RpZSwgTS4=?= <elodie@globex.org>"],
        attachments=2,
    )
    conn = make(sb, mb, batch_size=40, page_size=100)
    labels, messages = MemoryTable(("label_id",)), messages_table()
    sync(conn, "labels", labels)
    pages = sync(conn, "messages", messages)

    truth_labels = {label["id"]: label for label in mb.truth()["labels"]}
    assert set(labels.live()) == {(i,) for i in truth_labels}
    for (label_id,), row in labels.live().items():
        assert row["name"] == truth_labels[label_id]["name"]
        assert row["type"] == truth_labels[label_id]["type"].lower()
    inbox = labels.live()[("INBOX",)]
    assert inbox["messages_total"] is not None and inbox["messages_total"] > 0

    live = messages.live()
    assert live == expected(mb)
    row = live[(special["id"],)]
    assert row["subject"] == "Réunion, Q3 – café ☕"
    assert (row["from_name"], row["from_address"]) == ("Renée Lévy", "renee@acme.com")
    assert row["to_addresses"] == ["john@acme.com", "ops@globex.org"]
    assert row["cc_addresses"] == ["elodie@globex.org"]
    assert row["has_attachments"] is True and row["_domains"] == ["acme.com", "globex.org"]
    assert not any("=?" in (r["subject"] or "") for r in live.values())
    assert any(not (r["subject"] or "").isascii() for r in live.values())
    assert any(len(r["to_addresses"]) + len(r["cc_addresses"]) > 1 for r in live.values())
    assert any(r["has_attachments"] for r in live.values())
    assert any(not r["has_attachments"] for r in live.values())

    # Bounded pages, one per batch; the last one finishes the full sync.
    assert max(len(p.records) for p in pages) <= 40
    assert messages.state[""]["full_sync"] is None and messages.state[""]["history_id"]
    assert calls(sb, "users.messages.get") == len(live)
    # Requests count like Gmail's quota: each batch part is one, the envelope is not.
    api_calls = [e for e in sb.log.entries(provider="gmail") if e.method != "batch"]
    assert conn.stats.requests == len(api_calls)
    assert calls(sb, "batch") == len(pages) + 1  # a batch per messages page + labels
    assert conn.stats.rate_limited == 0
    assert conn.stats.records == len(live) + len(labels.live())


def test_incremental_uses_history_and_batch_gets_only(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=120, domains=("acme.com",))
    table = messages_table()
    sync(make(sb, mb), "messages", table)
    visible = [i for (i,) in expected(mb)]
    sb.log.clear()

    new = [
        mb.deliver(subject=f"Neu {n} – größer", to=["a@acme.com", "b@acme.com"]) for n in range(3)
    ]
    mb.delete(visible[0])
    mb.delete(visible[1])
    mb.modify(visible[2], add=["STARRED"], remove=["UNREAD"])
    mb.modify(visible[3], add=["TRASH"])  # trashed: leaves the default view
    gone_quickly = mb.deliver(subject="oops")
    mb.delete(gone_quickly["id"])

    conn = make(sb, mb, batch_size=2)
    sync(conn, "messages", table)
    assert table.live() == expected(mb)
    assert {(i,) for i in (visible[0], visible[1], visible[3])} <= table.deleted
    assert (gone_quickly["id"],) not in table.rows
    assert all((m["id"],) in table.live() for m in new)
    assert calls(sb, "users.messages.list") == 0
    assert calls(sb, "users.history.list") >= 1
    fetched = calls(sb, "users.messages.get")
    assert fetched == len(new) + 2  # 3 new + 2 relabelled; deleted ones never fetched
    assert table.state[""]["history_id"] == str(mb.history_id)

    # Nothing changed: one history call, no gets, same cursor.
    sb.log.clear()
    sync(make(sb, mb), "messages", table)
    assert calls(sb, "users.history.list") == 1 and calls(sb, "users.messages.get") == 0


def test_expired_history_id_full_resync_with_reconcile(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=90, domains=("acme.com",))
    table = messages_table()
    sync(make(sb, mb), "messages", table)
    visible = [i for (i,) in expected(mb)]
    mb.delete(visible[5])
    mb.delete(visible[6])
    mb.deliver(subject="while away")
    mb.expire_history()

    conn = make(sb, mb, page_size=40)
    pages = sync(conn, "messages", table)
    assert any("history id" in w and "full resync" in w for w in conn.stats.warnings)
    claims = [p.reconcile for p in pages if p.reconcile is not None]
    assert len(claims) == 1 and pages[-1].reconcile is claims[0]
    assert {k for k in claims[0].alive_keys} == set(expected(mb))
    assert table.live() == expected(mb)
    assert {(visible[5],), (visible[6],)} <= table.deleted
    assert table.state[""]["full_sync"] is None

    # Back in sync: the next run is incremental again.
    sb.log.clear()
    sync(make(sb, mb), "messages", table)
    assert calls(sb, "users.messages.list") == 0


def test_quota_faults_single_and_inside_batch_parts(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=60, domains=("acme.com",))
    sb.faults.add("gmail", method="users.messages.get", kind="429", times=4, retry_after=0)
    sb.faults.add("gmail", method="users.messages.list", kind="503", times=1)
    sb.faults.add("gmail", method="users.getProfile", kind="429", times=1, retry_after=0)
    conn = make(sb, mb, batch_size=25)
    table = messages_table()
    sync(conn, "messages", table)
    assert table.live() == expected(mb)
    assert conn.stats.rate_limited >= 5 and conn.stats.retries >= 6
    # Only the failed parts were re-sent: every message fetched once, plus 4 retries.
    assert calls(sb, "users.messages.get") == len(table.live()) + 4


def test_truncated_batch_and_reset_connections_are_retried(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=50, domains=("acme.com",))
    table = messages_table()
    sync(make(sb, mb), "messages", table)
    for n in range(4):
        mb.deliver(subject=f"after {n}")
    sb.faults.add("gmail", method="batch", kind="truncated", times=1)
    sb.faults.add("gmail", method="users.history.list", kind="reset", times=1)
    sb.faults.add("gmail", method="users.messages.get", kind="500", times=1)
    conn = make(sb, mb)
    sync(conn, "messages", table)
    assert table.live() == expected(mb)
    assert conn.stats.retries >= 3 and not conn.stats.warnings


def test_resumed_expired_resync_still_reconciles(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=120, domains=("acme.com",))
    table = messages_table()
    sync(make(sb, mb), "messages", table)
    visible = [i for (i,) in expected(mb)]
    mb.delete(visible[0])
    mb.delete(visible[-1])
    mb.expire_history()
    config = {"batch_size": 20, "page_size": 50, "max_requests": 45}
    first = make(sb, mb, **config)
    sync(first, "messages", table)
    assert table.state[""]["full_sync"]["reason"] == "history_expired"
    assert table.state[""]["full_sync"]["reconcile"] is True
    sb.log.clear()
    while table.state[""]["full_sync"] is not None:
        sync(make(sb, mb, batch_size=20, page_size=50), "messages", table)
    # The finishing run did not see the first pages: it re-listed ids before the claim.
    assert calls(sb, "users.messages.list") > 2
    assert table.live() == expected(mb)
    assert {(visible[0],), (visible[-1],)} <= table.deleted


def test_pacing_keeps_under_the_per_user_quota(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=70, domains=("acme.com",), quota=True)
    conn = make(sb, mb, quota_units_per_second=250)
    table = messages_table()
    sync(conn, "messages", table)
    assert table.live() == expected(mb)
    assert conn.stats.rate_limited == 0 and conn.stats.retries == 0


def test_user_rate_limit_403_is_retried(sb: Any) -> None:
    mb = add_mailbox(
        sb, email="owner@agency.io", messages=70, domains=("acme.com",), quota=True,
        quota_status=403,
    )  # fmt: skip
    conn = make(sb, mb, batch_size=60, backoff_base=0.1)  # no pacing: the server says no
    table = messages_table()
    sync(conn, "messages", table)
    assert table.live() == expected(mb)
    assert conn.stats.rate_limited > 0


def test_revoked_refresh_token_and_dead_access_token(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=5, domains=("acme.com",))
    creds = mb.credentials
    fresh = refresh_google_token(
        creds["client_id"],
        Secret(creds["client_secret"]),
        Secret(creds["refresh_token"]),
        sb.env["AOS_GOOGLE_TOKEN_URL"],
    )
    assert fresh["access_token"] and fresh["expires_at"] and "refresh_token" not in fresh
    conn = GmailConnector(
        Secret(fresh["access_token"]),
        GmailConfig.from_dict(FAST),
        base_url=sb.env["AOS_GMAIL_API_URL"],
    )
    assert sync(conn, "messages", messages_table())  # the refreshed token works

    mb.revoke_refresh_token()
    with pytest.raises(AuthError) as raised:
        refresh_google_token(
            creds["client_id"],
            Secret(creds["client_secret"]),
            Secret(creds["refresh_token"]),
            sb.env["AOS_GOOGLE_TOKEN_URL"],
        )
    assert creds["refresh_token"] not in str(raised.value)
    with pytest.raises(AuthError) as raised:
        sync(make(sb, mb), "labels", MemoryTable(("label_id",)))
    assert creds["access_token"] not in str(raised.value)


class Renewal:
    """A :data:`~connectors.common.TokenRenewal` standing in for the task layer's: it records
    each token it is told was refused and hands out a new one from the emulator's token
    endpoint (a refresh with the mailbox's refresh token), living ``lives`` seconds in turn."""

    def __init__(self, sb: Any, mb: Any, *lives: float) -> None:
        self.oauth, self.credentials, self.lives = sb.gmail.oauth, mb.credentials, list(lives)
        self.refused: list[str] = []
        self.issued: list[str] = []

    def __call__(self, refused: Secret) -> Secret:
        self.refused.append(refused.reveal())
        if self.lives:
            self.oauth.access_token_ttl = self.lives.pop(0)
        answer = self.oauth.token_endpoint({"grant_type": "refresh_token", **self.credentials}, {})
        self.issued.append(answer["access_token"])
        return Secret(answer["access_token"])


def test_a_token_refused_mid_read_is_renewed_once_per_refusal(sb: Any) -> None:
    """A run outlives its access token (Google's live an hour; "A 401 error indicates that the
    access token you're using is either expired or invalid", Gmail API guide "Resolve errors",
    developers.google.com/gmail/api/guides/handle-errors): the refused call -- a single call,
    then every part of a batch -- is sent again with a fresh token, once, and the read ends
    equal to the truth. The first fresh token lives one second and dies while the first batch
    is on its (slow) way, so both shapes of call meet a refusal."""
    mb = add_mailbox(sb, email="owner@agency.io", messages=40, domains=("acme.com",))
    stored = mb.credentials["access_token"]
    mb.expire_access_token()  # the run's token is dead before its first call
    renewal = Renewal(sb, mb, 1.0, 3599.0)
    sb.faults.add("gmail", kind="slow", method="batch", times=1, seconds=1.5)
    conn = GmailConnector(
        Secret(stored),
        GmailConfig.from_dict(FAST),
        base_url=sb.env["AOS_GMAIL_API_URL"],
        renew=renewal,
    )
    labels, messages = MemoryTable(("label_id",)), messages_table()
    sync(conn, "labels", labels)
    sync(conn, "messages", messages)

    assert renewal.refused == [stored, renewal.issued[0]]
    assert set(labels.live()) == {(label["id"],) for label in mb.truth()["labels"]}
    assert messages.live() == expected(mb)
    refused = [e for e in sb.log.entries(provider="gmail") if e.status == 401]
    assert [e.method for e in refused] == ["users.labels.list"] + ["users.labels.get"] * len(
        labels.live()
    )
    assert not conn.stats.skipped


@pytest.mark.parametrize("renewal", ["refused_again", "refresh_refused"])
def test_a_token_refused_after_its_renewal_is_an_auth_error(sb: Any, renewal: str) -> None:
    """One renewal per refusal, never a loop: a fresh token refused too, or a refresh the
    provider refuses (``invalid_grant``: the user removed the app), ends the read with
    :class:`AuthError` (the task layer then marks the integration ``needs_reauth``)."""
    mb = add_mailbox(sb, email="owner@agency.io", messages=5, domains=("acme.com",))
    mb.expire_access_token()
    asked: list[str] = []

    def renew(refused: Secret) -> Secret:
        asked.append(refused.reveal())
        if renewal == "refresh_refused":
            mb.revoke_refresh_token()
            creds = mb.credentials
            refresh_google_token(
                creds["client_id"],
                Secret(creds["client_secret"]),
                Secret(creds["refresh_token"]),
                sb.env["AOS_GOOGLE_TOKEN_URL"],
            )
        return Secret("ya29.never-issued")

    conn = GmailConnector(
        Secret(mb.credentials["access_token"]),
        GmailConfig.from_dict(FAST),
        base_url=sb.env["AOS_GMAIL_API_URL"],
        renew=renew,
    )
    with pytest.raises(AuthError) as raised:
        sync(conn, "labels", MemoryTable(("label_id",)))
    assert asked == [mb.credentials["access_token"]]
    if renewal == "refresh_refused":
        assert raised.value.code == "invalid_grant"
    assert sb.log.count(provider="gmail", method="users.labels.list") == (
        1 if renewal == "refresh_refused" else 2
    )


def test_full_sync_resumes_from_mid_way_state(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=150, domains=("acme.com",))
    table = messages_table()
    config = {"batch_size": 20, "page_size": 50, "max_requests": 70}
    first = make(sb, mb, **config)
    sync(first, "messages", table)
    assert any("max_requests" in w for w in first.stats.warnings)
    state = table.state[""]
    assert state["history_id"] is None and state["full_sync"]["pending"]
    assert state["full_sync"]["next_page_token"]
    stored = len(table.rows)
    assert 0 < stored < len(expected(mb))

    mb.deliver(subject="arrived mid-sync")
    runs = 1
    while table.state[""]["full_sync"] is not None:
        runs += 1
        sync(make(sb, mb, **config), "messages", table)
        assert runs < 10
    assert runs >= 3
    # Each message fetched once (the delivery above is after the profile snapshot: it comes
    # back through history next time, so it may be fetched twice).
    assert calls(sb, "users.messages.get") <= len(expected(mb)) + 1
    sync(make(sb, mb), "messages", table)
    assert table.live() == expected(mb)


def test_label_filter_and_deleted_labels(sb: Any) -> None:
    mb = add_mailbox(sb, email="owner@agency.io", messages=80, domains=("acme.com",))
    conn = make(sb, mb, label_ids=["INBOX"])
    table = messages_table()
    sync(conn, "messages", table)
    want = {k: v for k, v in expected(mb).items() if "INBOX" in v["label_ids"]}
    assert table.live() == want
    inbox = next(k for k, v in want.items() if "UNREAD" in v["label_ids"])
    mb.modify(inbox[0], remove=["INBOX"])  # archived: leaves the filtered view
    sync(make(sb, mb, label_ids=["INBOX"]), "messages", table)
    assert inbox in table.deleted


# -- windows (a since run, a backfill chunk) ---------------------------------------------------


def _dated_mailbox(sb: Any) -> Any:
    start = datetime.now(UTC) - timedelta(days=30)
    return add_mailbox(
        sb,
        email="owner@agency.io",
        messages=120,
        domains=("acme.com",),
        start=start,
        span_days=29.9,
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def test_a_since_listing_keeps_its_dates_and_position_when_a_later_run_resumes_it(
    sb: Any,
) -> None:
    """A since run stopped by max_requests: the plain run that resumes it asks Gmail the same
    query its page token belongs to, claims only the since range, and history then catches up
    from the position the since run kept (a deletion before the date is found there)."""
    mb = _dated_mailbox(sb)
    table = messages_table()
    sync(make(sb, mb), "messages", table)
    saved = table.state[""]["history_id"]
    since = (datetime.now(UTC) - timedelta(days=12)).date()
    oldest = min(expected(mb), key=lambda k: expected(mb)[k]["internal_date"])
    mb.delete(oldest[0])

    sync(
        make(sb, mb, batch_size=10, page_size=20, max_requests=5), "messages", table, Window(since)
    )
    full = table.state[""]["full_sync"]
    assert (full["reason"], full["after"], full["history_id"]) == (
        "since",
        since.isoformat(),
        saved,
    )
    sb.log.clear()
    pages = sync(make(sb, mb, batch_size=10, page_size=20), "messages", table)
    listed = sb.log.entries(method="users.messages.list")
    after = int(_midnight(since).timestamp())
    assert listed and all(e.params.get("q") == f"after:{after}" for e in listed)
    claims = [p.reconcile for p in pages if p.reconcile is not None]
    assert len(claims) == 1 and claims[0].range_column == "internal_date"
    assert claims[0].lo == _midnight(since) + timedelta(seconds=1) and claims[0].hi is None
    assert calls(sb, "users.history.list") == 1
    assert table.live() == expected(mb) and oldest in table.deleted
    assert table.state[""]["full_sync"] is None and int(table.state[""]["history_id"]) > int(saved)


def test_a_window_reads_and_claims_its_dates_only_and_is_done_once_read(sb: Any) -> None:
    mb = _dated_mailbox(sb)
    incremental = messages_table()
    sync(make(sb, mb), "messages", incremental)
    lo, hi = (
        (datetime.now(UTC) - timedelta(days=20)).date(),
        (datetime.now(UTC) - timedelta(days=10)).date(),
    )
    rows = expected(mb)
    inside = [k for k, r in rows.items() if _midnight(lo) < r["internal_date"] < _midnight(hi)]
    outside = [k for k in rows if k not in inside]
    mb.delete(inside[0][0])
    mb.delete(outside[0][0])

    chunk = messages_table()  # the chunk's own cursor, over the same rows
    chunk.rows = dict(incremental.rows)
    window = Window(lo, hi, own_cursors=True)
    pages = sync(make(sb, mb), "messages", chunk, window)
    claim = pages[-1].reconcile
    assert claim is not None and claim.range_column == "internal_date"
    assert (claim.lo, claim.hi) == (
        _midnight(lo) + timedelta(seconds=1),
        _midnight(hi) - timedelta(seconds=1),
    )
    assert {k for p in pages for k in ((r["message_id"],) for r in p.records)} == set(inside[1:])
    assert inside[0] in chunk.deleted and outside[0] not in chunk.deleted
    assert calls(sb, "users.history.list") == 0
    sb.log.clear()
    assert sync(make(sb, mb), "messages", chunk, window) == [] and len(sb.log) == 0
