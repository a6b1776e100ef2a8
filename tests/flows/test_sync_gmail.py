"""``sync_gmail`` end to end: the Gmail emulator over real sockets (REST, the multipart batch
endpoint, the History API and Google's token endpoint), the real google-api-python-client,
real PostgreSQL and real Prefect (one test harness per session).

"Equal to the truth" compares the live rows with the emulator's own account of the mailbox
(``mb.truth()``), mapped to our columns here with the standard library only -- never with the
connector's parsing code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from typing import Any

import pytest
import sqlalchemy as sa

from db import engine as db_engine
from db import schema, tenancy
from db.rbac import PermissionDenied
from flows import sync_gmail
from tests.flows.conftest import World, at_once, kill_cli_midway, seeded_world

START = datetime(2026, 9, 1, tzinfo=UTC)
HIDDEN = {"SPAM", "TRASH"}  # a default sync leaves spam and trash out
DOMAINS = {"globex": "globex.com", "initech": "initech.com"}
COLUMNS = (
    "thread_id",
    "history_id",
    "internal_date",
    "from_address",
    "from_name",
    "to_addresses",
    "cc_addresses",
    "subject",
    "snippet",
    "label_ids",
    "size_estimate",
    "has_attachments",
)
LABEL_COLUMNS = (
    "name",
    "type",
    "messages_total",
    "messages_unread",
    "threads_total",
    "threads_unread",
)
TOKEN = "oauth2.token"  # how the emulator logs Google's token endpoint
_HEADERS = HeaderRegistry()


# -- the world: one agency, a Gmail sandbox, mailboxes as integrations -----------------------


@dataclass
class GmailWorld(World):
    mailboxes: dict[str, Any] = field(default_factory=dict)

    def add_gmail(
        self,
        key: str,
        *,
        client: str | None = None,
        config: dict[str, Any] | None = None,
        **mailbox: Any,
    ) -> int:
        """A mailbox and its integration. Without ``client`` it is an agency mailbox whose
        rows are attributed to clients by email domain. The emulator's quota is off unless
        asked for, and so is the connector's pacing (tests are not about Gmail's 250 u/s)."""
        mailbox.setdefault("quota", False)
        mb = self.sandbox.gmail.add_mailbox(f"{key}@acme-agency.test", **mailbox)
        with self.engine.begin() as conn:
            iid = tenancy.add_integration(
                conn,
                self.agency_id,
                "gmail",
                f"gmail-{key}",
                client_id=self.clients[client] if client else None,
                external_account_id=mb.email,
                config={"quota_units_per_second": None, **(config or {})},
            )
            db_engine.default_vault().put(conn, iid, dict(mb.credentials))
        self.integrations[key] = iid
        self.mailboxes[key] = mb
        return iid

    def expire_token(self, key: str) -> None:
        """The access token is dead at Google and the vault knows it is past its expiry."""
        mb = self.mailboxes[key]
        mb.expire_access_token()
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        with self.engine.begin() as conn:
            db_engine.default_vault().put(
                conn, self.integrations[key], {**mb.credentials, "expires_at": past}
            )


@pytest.fixture
def gworld(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[GmailWorld]:
    # time_scale 10 keeps a scaled access token (3599 s / 10) longer than the vault's 5-minute
    # refresh margin, so a fresh token is not refreshed again on every run.
    with seeded_world(
        GmailWorld,
        fresh_engine,
        monkeypatch,
        providers=("gmail",),
        time_scale=10,
        seed=7,
        client_domains=DOMAINS,
    ) as w:
        yield w


# -- the truth, mapped independently -----------------------------------------------------------


def _decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def _mailboxes(name: str, values: list[str]) -> list[tuple[str | None, str]]:
    """(decoded display name, lower-cased address) of every mailbox, by the stdlib's
    RFC 5322 header parser (not ``getaddresses``, which the connector uses)."""
    out: list[tuple[str | None, str]] = []
    for value in values:
        for address in _HEADERS(name, value).addresses:
            display = _decoded(address.display_name) if address.display_name else None
            out.append((display, address.addr_spec.lower()))
    return out


def _attachments(part: Any) -> bool:
    """Walk the emulator's own MIME tree."""
    if getattr(part, "filename", "") or getattr(part, "attachment_id", ""):
        return True
    return any(_attachments(child) for child in getattr(part, "children", ()))


def expected(world: GmailWorld, key: str) -> dict[str, dict[str, tuple]]:
    """``{"messages": {id: row}, "labels": {id: row}, "clients": {id: client_id | "?"}}``."""
    mb = world.mailboxes[key]
    truth = mb.truth()
    by_domain = {d: world.clients[c] for c, d in DOMAINS.items()}
    messages, clients = {}, {}
    counts: dict[str, list[Any]] = {}
    for m in truth["messages"]:
        labels = list(m.get("labelIds") or ())
        for label in labels:
            entry = counts.setdefault(label, [0, 0, set(), set()])
            entry[0] += 1
            entry[1] += "UNREAD" in labels
            entry[2].add(m["threadId"])
            if "UNREAD" in labels:
                entry[3].add(m["threadId"])
        if set(labels) & HIDDEN:
            continue
        headers: dict[str, list[str]] = {}
        for h in m["payload"]["headers"]:
            headers.setdefault(h["name"].lower(), []).append(h["value"])
        sender = _mailboxes("from", headers.get("from", []))
        to = [a for _, a in _mailboxes("to", headers.get("to", []))]
        cc = [a for _, a in _mailboxes("cc", headers.get("cc", []))]
        subject = headers.get("subject")
        messages[m["id"]] = (
            m["threadId"],
            int(m["historyId"]),
            datetime.fromtimestamp(int(m["internalDate"]) / 1000, UTC),
            sender[0][1] if sender else None,
            sender[0][0] if sender else None,
            tuple(to),
            tuple(cc),
            _decoded(subject[0]) if subject else None,
            m.get("snippet") or None,
            tuple(sorted(labels)),
            int(m["sizeEstimate"]),
            _attachments(mb.spec(m["id"]).part),
        )
        touched = {
            by_domain[d]
            for a in [*(a for _, a in sender), *to, *cc]
            if (d := a.rsplit("@", 1)[1]) in by_domain
        }
        clients[m["id"]] = touched.pop() if len(touched) == 1 else (None if not touched else "?")
    labels_out = {}
    for label in truth["labels"]:
        total, unread, threads, threads_unread = counts.get(label["id"], (0, 0, set(), set()))
        labels_out[label["id"]] = (
            label["name"],
            label["type"].lower(),
            total,
            unread,
            len(threads),
            len(threads_unread),
        )
    return {"messages": messages, "labels": labels_out, "clients": clients}


def actual(engine: sa.Engine, integration_id: int) -> dict[str, dict[str, Any]]:
    m, lab = schema.gmail_messages, schema.gmail_labels
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.message_id, m.c.client_id, *[m.c[c] for c in COLUMNS]).where(
                m.c.integration_id == integration_id, m.c.deleted_at.is_(None)
            )
        )
        messages, clients = {}, {}
        for r in rows:
            values = dict(zip(COLUMNS, r[2:], strict=True))
            values["to_addresses"] = tuple(values["to_addresses"])
            values["cc_addresses"] = tuple(values["cc_addresses"])
            values["label_ids"] = tuple(sorted(values["label_ids"]))
            messages[r.message_id] = tuple(values[c] for c in COLUMNS)
            clients[r.message_id] = r.client_id
        labels = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                sa.select(lab.c.label_id, *[lab.c[c] for c in LABEL_COLUMNS]).where(
                    lab.c.integration_id == integration_id, lab.c.deleted_at.is_(None)
                )
            )
        }
    return {"messages": messages, "labels": labels, "clients": clients}


def assert_equal_to_truth(world: GmailWorld, key: str) -> dict[str, dict[str, Any]]:
    want = expected(world, key)
    got = actual(world.data, world.integrations[key])
    for table in ("messages", "labels"):
        w, g = want[table], got[table]
        missing, extra = w.keys() - g.keys(), g.keys() - w.keys()
        wrong = {k: (g[k], w[k]) for k in w.keys() & g.keys() if g[k] != w[k]}
        assert not (missing or extra or wrong), (
            f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
            f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:1]}"
        )
    misattributed = {
        k: (got["clients"][k], c)
        for k, c in want["clients"].items()
        if c != "?" and got["clients"][k] != c
    }
    assert not misattributed, (
        f"{len(misattributed)} rows misattributed, e.g. {list(misattributed.items())[:3]}"
    )
    return want


def _scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def _visible(world: GmailWorld, key: str) -> list[str]:
    """Ids of messages a default sync stores (newest first)."""
    return [
        m["id"]
        for m in world.mailboxes[key].truth()["messages"]
        if not set(m.get("labelIds") or ()) & HIDDEN
    ]


def _calls(world: GmailWorld, method: str) -> int:
    return world.sandbox.log.count(provider="gmail", method=method)


def _mutate(world: GmailWorld, key: str) -> dict[str, Any]:
    """New mail, deletions, label changes, a trashing and a rescue from spam."""
    mb = world.mailboxes[key]
    visible = _visible(world, key)
    spam = next(m["id"] for m in mb.truth()["messages"] if "SPAM" in (m.get("labelIds") or ()))
    new = [
        mb.deliver(
            subject="Réunion – budget Q4 ✅",
            sender='"Doe, Jane" <Jane.Doe@Globex.com>',
            to=["ops@acme-agency.test", "=?UTF-8?Q?Ren=C3=A9e?= <renee@initech.com>"],
        ),
        mb.deliver(subject="Re: thread", thread_id=visible[5], cc=["a@example.org"]),
        mb.deliver(subject="plain", sender="bob@example.org", attachments=1),
    ]
    short_lived = mb.deliver(subject="sent by mistake")
    mb.delete(short_lived["id"])
    mb.delete(visible[0])
    mb.delete(visible[7])
    mb.modify(visible[2], add=["STARRED"], remove=["UNREAD", "INBOX"])
    mb.modify(visible[3], add=[mb.user_labels[0]["id"]])
    mb.trash(visible[4])
    mb.modify(spam, add=["INBOX"], remove=["SPAM"])
    new_label = mb.add_label("Clients/Hooli")
    mb.modify(new[2]["id"], add=[new_label])
    return {
        "new": [n["id"] for n in new],
        "deleted": [visible[0], visible[7], short_lived["id"]],
        "trashed": visible[4],
        "rescued": spam,
    }


# -- the acceptance tests ------------------------------------------------------------------------


def test_full_sync_lands_exactly_the_truth(gworld: GmailWorld) -> None:
    iid = gworld.add_gmail("full", messages=300, start=START, span_days=30)
    result = sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert result["status"] == "succeeded"
    want = assert_equal_to_truth(gworld, "full")
    assert result["streams"]["messages"]["inserted"] == len(want["messages"])
    # The data is the varied kind the mapping must get right, not a trivially easy sample.
    rows = want["messages"].values()
    assert any(not (r[7] or "").isascii() for r in rows)  # decoded non-ASCII subjects
    assert any(r[4] and not r[4].isascii() for r in rows)  # decoded display names
    assert any(len(r[5]) + len(r[6]) > 2 for r in rows)  # several To and Cc recipients
    globex = sum(1 for c in want["clients"].values() if c == gworld.clients["globex"])
    assert 0 < globex < len(rows)
    assert sum(1 for c in want["clients"].values() if c is None) > 0
    assert (
        _scalar(
            gworld.data,
            "SELECT count(*) FROM gmail_messages WHERE client_id = :c",
            c=gworld.clients["globex"],
        )
        == globex
    )
    assert _scalar(gworld.data, "SELECT count(DISTINCT agency_id) FROM gmail_messages") == 1
    with gworld.engine.connect() as conn:
        run = conn.execute(sa.select(schema.sync_run)).one()
    assert run.status == "succeeded" and set(run.streams) == {"labels", "messages"}
    assert _calls(gworld, TOKEN) == 0  # the stored token was fresh


def test_incremental_uses_only_the_history_api(gworld: GmailWorld) -> None:
    iid = gworld.add_gmail("inc", messages=300, start=START, span_days=30)
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    changed = _mutate(gworld, "inc")
    gworld.sandbox.log.clear()

    result = sync_gmail(integration_id=iid, requested_by=gworld.users["manager"])
    assert_equal_to_truth(gworld, "inc")
    assert _calls(gworld, "users.messages.list") == 0
    assert _calls(gworld, "users.history.list") >= 1
    # Only the messages history named were fetched: 3 new, 3 relabelled, 1 trashed, 1 rescued.
    assert _calls(gworld, "users.messages.get") <= 8
    counts = result["streams"]["messages"]
    assert counts["inserted"] == 4  # three new messages and the one rescued from spam
    gone = _scalar(
        gworld.data,
        "SELECT array_agg(message_id ORDER BY message_id) "
        "FROM gmail_messages WHERE deleted_at IS NOT NULL",
    )
    # The trashed message and the two deleted ones are soft-deleted; the short-lived one
    # was never stored, so there is nothing to delete.
    assert sorted(gone) == sorted([*changed["deleted"][:2], changed["trashed"]])
    # Nothing changed upstream: the next run reads one history page and fetches nothing.
    gworld.sandbox.log.clear()
    again = sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert again["streams"]["messages"]["fetched"] == 0
    assert _calls(gworld, "users.messages.get") == 0 and _calls(gworld, "users.messages.list") == 0


def test_expired_history_id_triggers_a_full_resync(gworld: GmailWorld) -> None:
    iid = gworld.add_gmail("exp", messages=250, start=START, span_days=30)
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    changed = _mutate(gworld, "exp")
    gworld.mailboxes["exp"].expire_history()
    gworld.sandbox.log.clear()

    result = sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert result["status"] == "succeeded"
    assert_equal_to_truth(gworld, "exp")
    warnings = result["streams"]["messages"]["warnings"]
    assert any("expired; full resync" in w for w in warnings), warnings
    history = gworld.sandbox.log.entries(method="users.history.list")
    assert [e.status for e in history] == [404]
    assert _calls(gworld, "users.messages.list") >= 1
    # The resync's reconcile soft-deleted what vanished while history was unavailable.
    assert (
        _scalar(gworld.data, "SELECT count(*) FROM gmail_messages WHERE deleted_at IS NOT NULL")
        == 3
    )
    with gworld.engine.connect() as conn:
        run = conn.execute(sa.select(schema.sync_run).order_by(schema.sync_run.c.id.desc())).first()
    assert any("expired" in w for w in run.streams["messages"]["warnings"])
    assert changed["rescued"] in actual(gworld.data, iid)["messages"]
    # And back on the History API afterwards.
    gworld.mailboxes["exp"].deliver(subject="after the resync")
    gworld.sandbox.log.clear()
    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert _calls(gworld, "users.messages.list") == 0
    assert_equal_to_truth(gworld, "exp")


def test_expired_token_is_refreshed_once_by_concurrent_runs(gworld: GmailWorld) -> None:
    from db.runs import SyncLocked
    from tasks.sync import refresh_credentials

    iid = gworld.add_gmail("tok", messages=120, start=START, span_days=20)
    gworld.expire_token("tok")
    # A slow token endpoint keeps the first refresh in flight while the second run arrives.
    gworld.sandbox.faults.add("gmail", kind="slow", method=TOKEN, times=1, seconds=1.5)
    outcomes = at_once(
        lambda _: sync_gmail(integration_id=iid, requested_by=gworld.users["owner"]), timeout=120
    )
    # The one that finds the other holding the integration raises SyncLocked, touching nothing.
    assert all(isinstance(o, dict | SyncLocked) for o in outcomes), outcomes
    statuses = sorted("skipped" if isinstance(o, SyncLocked) else o["status"] for o in outcomes)
    assert statuses in (["skipped", "succeeded"], ["succeeded", "succeeded"]), outcomes
    assert _calls(gworld, TOKEN) == 1
    assert_equal_to_truth(gworld, "tok")

    # The task itself, twice at the same moment on an expired credential: one token call.
    gworld.expire_token("tok")
    gworld.sandbox.log.clear()
    gworld.sandbox.faults.add("gmail", kind="slow", method=TOKEN, times=1, seconds=1.5)
    answers = at_once(lambda _: refresh_credentials.fn(iid, "gmail"), timeout=60)
    assert all(a in ("refreshed", "fresh") for a in answers), answers
    assert _calls(gworld, TOKEN) == 1
    refreshes = _scalar(
        gworld.engine,
        "SELECT count(*) FROM audit_event WHERE action = "
        "'credentials.refresh' AND outcome = 'ok' AND integration_id = :i",
        i=iid,
    )
    assert refreshes == 2  # one per expiry above, never two for one
    # The refreshed token is the one Gmail accepts now.
    gworld.sandbox.log.clear()
    assert (
        sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])["status"] == "succeeded"
    )
    assert _calls(gworld, TOKEN) == 0


def test_a_run_that_outlives_its_access_token_refreshes_mid_run_and_completes(
    gworld: GmailWorld,
) -> None:
    """Google access tokens live about an hour and a run may last longer; "A 401 error
    indicates that the access token you're using is either expired or invalid" and is
    answered by refreshing it (Gmail API guide "Resolve errors",
    developers.google.com/gmail/api/guides/handle-errors). Here tokens live 3 s (the
    emulator's short-lived tokens on request) and the run's first batch (the labels' counts)
    answers slowly (3.5 s), so the token dies in it and every part is refused: the run
    refreshes under the credential's lock, sends the parts again and completes, and the
    integration stays ``connected``. One refresh per refused call (a batch is one call), plus
    the run's start, whose stored token is within the refresh margin."""
    gworld.sandbox.gmail.oauth.access_token_ttl = 3.0
    iid = gworld.add_gmail("long", messages=80, start=START, span_days=20)
    gworld.sandbox.faults.add("gmail", kind="slow", method="batch", times=1, seconds=3.5)
    result = sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert result["status"] == "succeeded", result
    assert_equal_to_truth(gworld, "long")
    with gworld.engine.connect() as conn:
        assert tenancy.get_integration(conn, iid).status == "connected"
    log = gworld.sandbox.log.entries()
    refusals = [
        n for n, e in enumerate(log) if e.status == 401 and (n == 0 or log[n - 1].status != 401)
    ]
    assert refusals and log[refusals[0]].method == "users.labels.get", log[: refusals[0] + 1]
    for n in refusals:  # each refused call (its parts logged together) then one refresh
        after = next(e for e in log[n:] if e.status != 401 and e.method != "batch")
        assert (after.method, after.status) == (TOKEN, 200)
    assert _calls(gworld, TOKEN) == 1 + len(refusals)
    refreshes = _scalar(
        gworld.engine,
        "SELECT string_agg(detail->>'refused', ',' ORDER BY id) FROM audit_event"
        " WHERE action = 'credentials.refresh' AND outcome = 'ok' AND integration_id = :i",
        i=iid,
    )
    assert refreshes == ",".join(["false"] + ["true"] * len(refusals))


def test_revoked_refresh_token_ends_in_needs_reauth(gworld: GmailWorld) -> None:
    iid = gworld.add_gmail("rev", messages=60, start=START, span_days=10)
    mb = gworld.mailboxes["rev"]
    secrets = [mb.credentials[k] for k in ("access_token", "refresh_token", "client_secret")]
    mb.revoke_refresh_token()
    gworld.expire_token("rev")
    with pytest.raises(Exception, match="needs re-authorisation") as info:
        sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    message = str(info.value)
    assert "invalid_grant" in message and "reconnect" in message
    assert not any(s in message for s in secrets)
    with gworld.engine.connect() as conn:
        integ = tenancy.get_integration(conn, iid)
        run = conn.execute(sa.select(schema.sync_run)).one()
    assert integ.status == "needs_reauth" and "invalid_grant" in (integ.status_reason or "")
    assert not any(s in (integ.status_reason or "") for s in secrets)
    assert run.status == "failed" and "needs re-authorisation" in run.error
    assert not any(s in run.error for s in secrets)
    # One refusal is enough: no retried refresh, and Gmail itself was never called.
    assert [e.status for e in gworld.sandbox.log.entries(method=TOKEN)] == [400]
    assert len(gworld.sandbox.log) == 1
    assert _scalar(gworld.data, "SELECT count(*) FROM gmail_messages") == 0


def test_sigkill_mid_sync_then_rerun_equals_truth(gworld: GmailWorld) -> None:
    # The loader commits a batch of pages every 10 s of a slow API (or 50k rows): with a slow
    # batch endpoint, the first commit lands at ~10 s and the rest of the mailbox is to come.
    iid = gworld.add_gmail(
        "kill", messages=600, start=START, span_days=30, config={"batch_size": 20}
    )
    gworld.sandbox.faults.add("gmail", kind="slow", method="batch", rate=1.0, seconds=0.5)
    kill_cli_midway(
        gworld.env(),
        ["sync", "gmail", "--integration", str(iid), "--as", gworld.users["owner"]],
        lambda: _scalar(gworld.data, "SELECT count(*) FROM gmail_messages") > 0,
        timeout=120,
    )
    total = len(_visible(gworld, "kill"))
    partial = _scalar(gworld.data, "SELECT count(*) FROM gmail_messages")
    assert 0 < partial < total
    gworld.sandbox.faults.clear()
    gworld.sandbox.log.clear()

    sync_gmail(integration_id=iid, requested_by=gworld.users["owner"])
    assert_equal_to_truth(gworld, "kill")
    assert _scalar(gworld.data, "SELECT count(*) FROM gmail_messages") == total
    # The rerun resumed from the committed cursor: it fetched at most what was not stored
    # (plus the batch in flight), not the whole mailbox again.
    assert _calls(gworld, "users.messages.get") <= total - partial + 20
    statuses = _scalar(gworld.engine, "SELECT string_agg(status, ',' ORDER BY id) FROM sync_run")
    assert statuses == "failed,succeeded"


def test_quota_and_server_faults_end_in_success(gworld: GmailWorld) -> None:
    # The emulator's per-user quota answers 403 userRateLimitExceeded (the older Gmail reply)
    # and is tight: a 50-part batch of messages.get (250 units) overruns it.
    iid = gworld.add_gmail(
        "faults",
        messages=200,
        start=START,
        span_days=20,
        quota=120,
        quota_status=403,
        config={"backoff_base": 0.2},
    )
    faults = gworld.sandbox.faults
    faults.add("gmail", kind="429", method="users.messages.get", times=4, retry_after=1)
    faults.add("gmail", kind="503", method="users.messages.list", times=1)
    result = sync_gmail(integration_id=iid, requested_by=gworld.users["admin"])
    assert result["status"] == "succeeded"
    assert_equal_to_truth(gworld, "faults")
    parts = gworld.sandbox.log.entries(method="users.messages.get")
    assert sum(1 for e in parts if e.status == 429 and e.fault == "429") == 4
    assert sum(1 for e in parts if e.status == 403) >= 1
    assert result["streams"]["messages"]["rate_limited"] >= 5

    _mutate(gworld, "faults")
    gworld.sandbox.log.clear()
    faults.add("gmail", kind="503", method="users.history.list", times=2)
    faults.add("gmail", kind="429", method="users.messages.get", times=2, retry_after=1)
    result = sync_gmail(integration_id=iid, requested_by=gworld.users["admin"])
    assert result["status"] == "succeeded"
    assert_equal_to_truth(gworld, "faults")
    history = [e.status for e in gworld.sandbox.log.entries(method="users.history.list")]
    assert history[:3] == [503, 503, 200]
    assert (
        sum(1 for e in gworld.sandbox.log.entries(method="users.messages.get") if e.status == 429)
        == 2
    )
    assert all(f.exhausted for f in faults.rules())


@pytest.mark.parametrize("who", ["reader", "rival"])
def test_denied_before_any_request_and_audited(gworld: GmailWorld, who: str) -> None:
    iid = gworld.add_gmail("deny", client="globex", messages=20, start=START, span_days=5)
    principal = gworld.other_agency_user if who == "rival" else gworld.users["reader"]
    gworld.sandbox.log.clear()
    with pytest.raises(PermissionDenied, match=principal):
        sync_gmail(integration_id=iid, requested_by=principal)
    assert len(gworld.sandbox.log) == 0
    assert _scalar(gworld.data, "SELECT count(*) FROM gmail_messages") == 0
    assert _scalar(gworld.engine, "SELECT count(*) FROM sync_run") == 0
    audited = _scalar(
        gworld.engine,
        "SELECT count(*) FROM audit_event WHERE principal = :p "
        "AND outcome = 'denied' AND integration_id = :i",
        p=principal,
        i=iid,
    )
    assert audited == 1
