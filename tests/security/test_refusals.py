"""Every refusal of a flow run is audited, typed, and says nothing about what the caller may
not see.

The finding: an invalid, expired, forged or misdirected run grant, a scheduler asking for a
backfill, a bare ``--as`` while grants are required and a malformed principal were refused
with no ``audit_event`` row; a caller from another agency (or a made-up user) was told
``integration 2 is a slack integration, not gmail`` because the flow looked the integration up
before authorizing; and authorize's own denials named the integration's provider and name to
outsiders. Each attack here runs the real flow (``sync_slack`` / ``sync_gmail`` /
``backfill``) under the session's Prefect server, against real PostgreSQL and the Slack
emulator over real sockets, and the CLI in a subprocess where the finding names it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from db import engine as db_engine
from db import tenancy
from db.grants import ENV_KEY, InvalidRunGrant, mint_run_grant
from db.rbac import OUTSIDER_MISSING, PermissionDenied
from db.schema import audit_event
from flows import backfill, sync_gmail, sync_slack
from tests.flows.conftest import World, seeded_world

START = datetime(2026, 10, 1, tzinfo=UTC)
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MISSING_ID = 7_654_321


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    with seeded_world(
        World, fresh_engine, monkeypatch, providers=("slack",), time_scale=60, seed=23
    ) as w:
        yield w


def _slack(world: World, key: str) -> int:
    """A real workspace behind the integration: had a refusal let the run through, it would
    have fetched and loaded rows, which the checks below would see."""
    return world.add_slack(
        key,
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )


def _last_audit_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(audit_event.c.id), 0))).scalar_one()
        )


def _audit_since(engine: sa.Engine, after: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(audit_event).where(audit_event.c.id > after).order_by(audit_event.c.id)
            )
        )


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608 - fixed names


def _assert_nothing_ran(world: World) -> None:
    assert len(world.sandbox.log) == 0, "a refused run reached the provider"
    assert _count(world.engine, "sync_run") == 0
    assert _count(world.data, "slack_messages") == 0
    assert _count(world.data, "slack_users") == 0


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tampered(token: str, **claims: Any) -> str:
    """The token with its payload changed and the original signature kept."""
    body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    return _b64(json.dumps({**payload, **claims}).encode()) + "." + sig


def _signed(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload).encode())
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


# -- refusals before the RBAC matrix: each one typed and audited ------------------------------


@dataclass(frozen=True)
class Case:
    """One way to be refused before authorize decides. ``call`` runs the flow for the
    integration; ``given`` is the principal the audit row must show; ``reason`` a substring of
    the refusal's reason."""

    name: str
    key: bool  # AOS_RUN_GRANT_KEY configured
    call: Callable[[World, int, int], Any]  # (world, integration, another integration)
    given: Callable[[World], str]
    reason: str


def _owner(w: World) -> str:
    return w.users["owner"]


CASES = [
    Case(
        "garbage grant",
        True,
        lambda w, i, _: sync_slack(
            integration_id=i, requested_by=_owner(w), run_grant="not-a-grant"
        ),
        _owner,  # as claimed; the row says it is unverified
        "malformed token",
    ),
    Case(
        "grant signed with another key",
        True,
        lambda w, i, _: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=mint_run_grant(OTHER_KEY, _owner(w), i, "sync"),
        ),
        _owner,  # as claimed; the row says it is unverified
        "bad signature",
    ),
    Case(
        "member's grant rewritten to name the owner",
        True,
        lambda w, i, _: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=_tampered(mint_run_grant(KEY, w.users["reader"], i, "sync"), sub=_owner(w)),
        ),
        _owner,  # as claimed; the row says it is unverified
        "bad signature",
    ),
    Case(
        "expired grant",
        True,
        lambda w, i, _: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=mint_run_grant(
                KEY, _owner(w), i, "sync", now=datetime.now(UTC) - timedelta(hours=1)
            ),
        ),
        _owner,
        "expired at",
    ),
    Case(
        "grant for another integration",
        True,
        lambda w, i, other: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=mint_run_grant(KEY, _owner(w), other, "sync"),
        ),
        _owner,
        "wrong integration",
    ),
    Case(
        "sync grant used for a backfill",
        True,
        lambda w, i, _: backfill(
            integration_id=i,
            start=date(2026, 10, 1),
            end=date(2026, 10, 5),
            requested_by=_owner(w),
            run_grant=mint_run_grant(KEY, _owner(w), i, "sync"),
        ),
        _owner,
        "wrong action",
    ),
    Case(
        "grant naming someone else than requested_by",
        True,
        lambda w, i, _: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=mint_run_grant(KEY, w.users["member"], i, "sync"),
        ),
        _owner,
        "does not match the grant's principal",
    ),
    Case(
        "bare --as while grants are required",
        True,
        lambda w, i, _: sync_slack(integration_id=i, requested_by=_owner(w)),
        _owner,
        "alone is not proof of identity",
    ),
    Case(
        "bare --as while grants are required (gmail)",
        True,
        lambda w, i, _: sync_gmail(integration_id=i, requested_by=_owner(w)),
        _owner,
        "alone is not proof of identity",
    ),
    Case(
        "scheduler asking for a backfill",
        False,
        lambda w, i, _: backfill(
            integration_id=i,
            start=date(2026, 10, 1),
            end=date(2026, 10, 5),
            requested_by=f"scheduler:{w.agency_id}",
        ),
        lambda w: f"scheduler:{w.agency_id}",
        "scheduler principal may only run 'sync'",
    ),
    Case(
        "scheduler asking for a full refresh",
        False,
        lambda w, i, _: sync_slack(
            integration_id=i, requested_by=f"scheduler:{w.agency_id}", full_refresh=True
        ),
        lambda w: f"scheduler:{w.agency_id}",
        "scheduler principal may only run 'sync'",
    ),
    Case(
        "malformed principal",
        False,
        lambda w, i, _: sync_slack(integration_id=i, requested_by="owner at acme " + "x" * 400),
        lambda w: ("owner at acme " + "x" * 400)[:197] + "...",
        "not a principal",
    ),
    Case(
        "no principal at all",
        False,
        lambda w, i, _: sync_gmail(integration_id=i, requested_by=""),
        lambda w: "(none)",
        "no principal",
    ),
    Case(
        "a grant while no key is configured",
        False,
        lambda w, i, _: sync_slack(
            integration_id=i,
            requested_by=_owner(w),
            run_grant=mint_run_grant(KEY, _owner(w), i, "sync"),
        ),
        _owner,  # as claimed; the row says it is unverified
        "cannot be checked",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_before_authorize_is_typed_and_audited(
    world: World, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    iid = _slack(world, "target")
    other = _slack(world, "other")
    if "gmail" in case.name or case.name == "no principal at all":
        with world.engine.begin() as conn:  # a Gmail integration: refused before any mailbox
            iid = tenancy.add_integration(conn, world.agency_id, "gmail", "Globex Gmail")
    if case.key:
        monkeypatch.setenv(ENV_KEY, base64.b64encode(KEY).decode())
    world.sandbox.log.clear()
    before = _last_audit_id(world.engine)

    with pytest.raises(PermissionDenied) as caught:
        case.call(world, iid, other)

    refusal = caught.value
    assert isinstance(refusal, InvalidRunGrant), type(refusal)
    assert case.reason in refusal.reason and str(refusal).startswith("permission denied: ")
    rows = _audit_since(world.engine, before)
    assert [(r.action, r.outcome, r.integration_id, r.agency_id) for r in rows] == [
        ("authorize.refused", "denied", iid, world.agency_id)
    ]
    assert rows[0].principal == case.given(world)
    assert case.reason in rows[0].detail["reason"]
    assert rows[0].detail["verified"] is False
    _assert_nothing_ran(world)


def test_refusal_reaches_the_cli_as_one_error_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aos-sync sync slack --as`` with grants required, and with a forged grant: exit 1 and
    one ``error: permission denied: ...`` line, no traceback; and both are audited."""
    iid = _slack(world, "cli")
    before = _last_audit_id(world.engine)
    env = {**world.env(), ENV_KEY: base64.b64encode(KEY).decode()}
    forged = _signed(OTHER_KEY, {"v": 2, "sub": world.users["owner"], "int": iid, "act": "sync"})
    lines = []
    for extra in ({}, {"AOS_RUN_GRANT": forged}):
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "sync", "slack", "--integration", str(iid)]
            + ["--as", world.users["owner"]],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 1, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
        assert "InvalidRunGrant" not in errors[0] and "PermissionDenied" not in errors[0]
        lines.append(errors[0])
    assert lines[0].startswith(
        f"error: permission denied: requested_by '{world.users['owner']}' alone is not proof"
    )
    assert lines[1].startswith("error: permission denied: invalid run grant: bad signature")
    rows = _audit_since(world.engine, before)
    assert [(r.action, r.principal, r.detail["verified"]) for r in rows] == [
        ("authorize.refused", world.users["owner"], False),
        ("authorize.refused", world.users["owner"], False),  # as claimed, not proven
    ]
    _assert_nothing_ran(world)


# -- nothing about an integration before authorization ----------------------------------------


def test_outsiders_cannot_tell_what_exists(world: World) -> None:
    """A missing id, another agency's integration, another agency's integration of the other
    provider, an unknown user: one exception type, one message modulo the principal and the id
    the caller supplied, and every one audited with the real reason for the operators."""
    ours = _slack(world, "ours")
    ws = world.sandbox.slack.add_workspace(name="rival", users=3, channels=2)
    with world.engine.begin() as conn:
        rival = tenancy.find_agency(conn, "Rival").id
        theirs = tenancy.add_integration(
            conn, rival, "slack", "Rival Secret Slack", external_account_id=ws.team_id
        )
        db_engine.default_vault().put(conn, theirs, dict(ws.credentials))
    owner, rival_owner = world.users["owner"], world.other_agency_user
    attempts: list[tuple[Any, int, str]] = [
        (sync_slack, MISSING_ID, owner),  # no such integration
        (sync_slack, theirs, owner),  # another agency's
        (sync_gmail, theirs, owner),  # another agency's, and not a gmail one
        (sync_gmail, MISSING_ID, owner),
        (sync_slack, ours, "ghost@acme.test"),  # no such user
        (sync_gmail, ours, "ghost@acme.test"),  # no such user, wrong provider too
        (sync_slack, ours, rival_owner),  # our integration, their owner
        (sync_gmail, ours, rival_owner),
    ]
    world.sandbox.log.clear()
    before = _last_audit_id(world.engine)
    messages = set()
    for flow, iid, who in attempts:
        with pytest.raises(PermissionDenied) as caught:
            flow(integration_id=iid, requested_by=who)
        assert type(caught.value) is PermissionDenied, (flow.name, iid, who, caught.value)
        messages.add(str(caught.value).replace(who, "<who>").replace(str(iid), "<id>"))
    assert messages == {
        f"permission denied: <who> may not sync integration <id>: needs {OUTSIDER_MISSING}"
    }
    rows = _audit_since(world.engine, before)
    assert [(r.action, r.outcome, r.integration_id, r.principal) for r in rows] == [
        ("authorize.denied", "denied", iid, who) for _, iid, who in attempts
    ]
    assert {r.detail["missing"] for r in rows} == {
        "an existing target (integration 7654321 does not exist)",
        f"membership in agency {rival}",
        "a user account (no user 'ghost@acme.test')",
        f"membership in agency {world.agency_id}",
    }
    _assert_nothing_ran(world)

    # Only a principal allowed to act on the integration learns what it is.
    with pytest.raises(ValueError, match=f"integration {ours} is a slack integration, not gmail"):
        sync_gmail(integration_id=ours, requested_by=owner)
    _assert_nothing_ran(world)


def test_in_agency_denials_still_say_what_is_missing(world: World) -> None:
    """The uniform message is for outsiders only: a member of the agency is told which grant
    to ask for, naming the integration they can see in their own agency."""
    iid = _slack(world, "mine")
    with pytest.raises(PermissionDenied) as caught:
        backfill(
            integration_id=iid,
            start=date(2026, 10, 1),
            end=date(2026, 10, 5),
            requested_by=world.users["member"],
        )
    assert type(caught.value) is PermissionDenied
    assert str(caught.value) == (
        f"permission denied: member {world.users['member']} may not backfill integration {iid} "
        "(slack 'slack-mine'): needs role admin or higher"
    )
    _assert_nothing_ran(world)


def test_a_failed_run_reaches_the_cli_as_one_error_line(world: World) -> None:
    """A run that fails (a token Slack refuses: needs re-auth) prints its sentence once, as
    ``error: ...``: no traceback, no exception class name, not even in Prefect's own lines on
    the terminal (the run's log in Prefect keeps them)."""
    iid = _slack(world, "failing")
    with world.engine.begin() as conn:
        db_engine.default_vault().put(conn, iid, {"access_token": "xoxb-not-a-token"})
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "sync", "slack", "--integration", str(iid)]
        + ["--as", world.users["owner"]],
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "needs re-authorisation" in errors[0], proc.stderr
    assert "Traceback" not in output and "ReauthRequired" not in output, output
    assert "xoxb-not-a-token" not in output
