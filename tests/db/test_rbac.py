"""Every cell of the RBAC matrix (docs/rbac.md), against a real PostgreSQL.

One world per module: agency Acme with a user of each role, all holding the same grants
(``write`` on client Globex, ``read`` on Initech, nothing on Umbrella), an agency-wide
integration, and a second agency whose integration nobody at Acme may touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from db import tenancy
from db.rbac import (
    OUTSIDER_MISSING,
    SENSITIVE,
    Action,
    Decision,
    PermissionDenied,
    Principal,
    authorize,
)
from db.schema import audit_event

SITUATIONS = ("write", "read", "none", "agency", "other")
WHO = ("owner", "admin", "manager", "member", "scheduler")

# One string per (action, principal), one letter per situation in SITUATIONS order:
#   y  allowed
#   R  denied: needs a higher role               X  same, and says a client grant cannot reach
#   W  denied: needs write on the client            an agency-wide integration
#   G  denied: needs read or write on the client  A  denied: membership in the other agency
#   S  denied: the scheduler may only sync
MATRIX: dict[Action, tuple[str, ...]] = {
    #                            owner    admin    manager  member   scheduler
    Action.CONNECT: ("yyyyA", "yyyyA", "RRRRA", "RRRRA", "SSSSA"),
    Action.DISCONNECT: ("yyyyA", "yyyyA", "RRRRA", "RRRRA", "SSSSA"),
    Action.ROTATE_CREDENTIALS: ("yyyyA", "yyyyA", "RRRRA", "RRRRA", "SSSSA"),
    Action.SYNC: ("yyyyA", "yyyyA", "yyyyA", "yWWXA", "yyyyA"),
    Action.BACKFILL: ("yyyyA", "yyyyA", "yWWXA", "RRRRA", "SSSSA"),
    Action.READ: ("yyyyA", "yyyyA", "yyyyA", "yyGXA", "SSSSA"),
    Action.MANAGE_ACCESS: ("yyyyA", "RRRRA", "RRRRA", "RRRRA", "SSSSA"),
}
VERBS = {
    Action.CONNECT: "connect",
    Action.DISCONNECT: "disconnect",
    Action.ROTATE_CREDENTIALS: "rotate credentials of",
    Action.SYNC: "sync",
    Action.BACKFILL: "backfill",
    Action.READ: "read data of",
    Action.MANAGE_ACCESS: "manage access to",
}
CASES = [
    (action, who, situation, MATRIX[action][w][s])
    for action in Action
    for w, who in enumerate(WHO)
    for s, situation in enumerate(SITUATIONS)
]


@dataclass
class World:
    acme: int
    other: int
    clients: dict[str, tuple[int, str]]  # situation -> (client id, name)
    integrations: dict[str, tenancy.Integration]
    principals: dict[str, Principal]
    stale: int  # a needs_reauth integration of Acme


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> World:
    with engine.begin() as conn:
        acme = tenancy.create_agency(conn, "Acme")
        other = tenancy.create_agency(conn, "Other Co")
        clients = {
            s: (tenancy.add_client(conn, agency, name), name)
            for s, agency, name in (
                ("write", acme, "Globex"),
                ("read", acme, "Initech"),
                ("none", acme, "Umbrella"),
                ("other", other, "Hooli"),
            )
        }
        for role in ("owner", "admin", "manager", "member"):
            uid = tenancy.add_user(conn, acme, f"{role}@acme.test", role)
            tenancy.grant_access(conn, uid, clients["write"][0], "write")
            tenancy.grant_access(conn, uid, clients["read"][0], "read")
        tenancy.add_user(conn, other, "owner@other.test", "owner")
        ids = {
            "write": tenancy.add_integration(
                conn, acme, "slack", "Globex Slack", clients["write"][0]
            ),
            "read": tenancy.add_integration(
                conn, acme, "gmail", "Initech Gmail", clients["read"][0]
            ),
            "none": tenancy.add_integration(
                conn, acme, "meta_ads", "Umbrella Ads", clients["none"][0]
            ),
            "agency": tenancy.add_integration(conn, acme, "google_ads", "Acme MCC"),
            "other": tenancy.add_integration(
                conn, other, "slack", "Hooli Slack", clients["other"][0]
            ),
        }
        stale = tenancy.add_integration(conn, acme, "slack", "Stale Slack", clients["write"][0])
        tenancy.set_integration_status(conn, stale, "needs_reauth", "invalid_grant")
        integrations = {s: tenancy.get_integration(conn, i) for s, i in ids.items()}
    principals = {r: Principal.user(f"{r}@acme.test") for r in WHO[:4]}
    principals["scheduler"] = Principal.scheduler(acme)
    return World(acme, other, clients, integrations, principals, stale)


def _last_audit_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(audit_event.c.id), 0))
        ).scalar_one()


def _audit_since(engine: sa.Engine, after: int) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(audit_event).where(audit_event.c.id > after).order_by(audit_event.c.id)
            )
        )


def _expected_missing(world: World, code: str, situation: str) -> str:
    client_id, client_name = world.clients.get(situation, (0, ""))
    return {
        "W": f"write access to client '{client_name}' (id {client_id})",
        "G": f"read or write access to client '{client_name}' (id {client_id})",
        "A": f"membership in agency {world.other}",
    }.get(code, "")


@pytest.mark.parametrize(
    ("action", "who", "situation", "code"), CASES, ids=[f"{a}-{w}-{s}" for a, w, s, _ in CASES]
)
def test_matrix_cell(
    engine: sa.Engine, world: World, action: Action, who: str, situation: str, code: str
) -> None:
    principal = world.principals[who]
    integ = world.integrations[situation]
    before = _last_audit_id(engine)
    if code == "y":
        decision = authorize(engine, principal, action, integ.id)
        assert decision.allowed and decision.role == who and decision.agency_id == world.acme
        audits = _audit_since(engine, before)
        if action in SENSITIVE:
            assert [(a.action, a.outcome, a.principal, a.integration_id) for a in audits] == [
                ("authorize.allowed", "allowed", str(principal), integ.id)
            ]
        else:
            assert audits == []  # routine syncs/reads are recorded by the run ledger, not here
        return

    with pytest.raises(PermissionDenied) as caught:
        authorize(engine, principal, action, integ.id)
    denied = caught.value
    message = str(denied)
    assert (denied.principal, denied.action, denied.integration_id) == (principal, action, integ.id)
    [row] = _audit_since(engine, before)
    assert (row.action, row.outcome, row.principal, row.integration_id, row.agency_id) == (
        "authorize.denied",
        "denied",
        str(principal),
        integ.id,
        integ.agency_id,
    )
    if code == "A":
        # Another agency's integration: nothing about it (provider, name, agency) reaches the
        # caller, who may have no role to tell either; the audit row keeps the real reason.
        assert message == (
            f"permission denied: {principal} may not {VERBS[action]} integration {integ.id}: "
            f"needs {OUTSIDER_MISSING}"
        )
        assert denied.missing == OUTSIDER_MISSING
        assert row.detail["missing"] == _expected_missing(world, code, situation)
        return
    named = str(principal) if who == "scheduler" else f"{who} {principal}"
    assert message.startswith(
        f"permission denied: {named} may not {VERBS[action]} "
        f"integration {integ.id} ({integ.provider} '{integ.name}'): needs "
    )
    assert message.endswith(denied.missing)
    if code in "WG":
        assert denied.missing == _expected_missing(world, code, situation)
    elif code == "S":
        assert denied.missing.startswith("a user principal")
    else:
        assert denied.missing.startswith("role ")
        assert ("not reachable through a client grant" in denied.missing) == (code == "X")
    assert row.detail["action"] == str(action) and row.detail["missing"] == denied.missing


def test_denial_message_reads_as_documented(engine: sa.Engine, world: World) -> None:
    integ = world.integrations["read"]
    client_id = world.clients["read"][0]
    with pytest.raises(PermissionDenied) as caught:
        authorize(engine, "Member@Acme.test", "sync", integ.id)
    assert str(caught.value) == (
        f"permission denied: member member@acme.test may not sync integration {integ.id} "
        f"(gmail 'Initech Gmail'): needs write access to client 'Initech' (id {client_id})"
    )


def test_scheduler_may_not_sync_an_integration_that_needs_reauth(
    engine: sa.Engine, world: World
) -> None:
    before = _last_audit_id(engine)
    with pytest.raises(PermissionDenied, match="needs integration status 'connected'") as caught:
        authorize(engine, world.principals["scheduler"], Action.SYNC, world.stale)
    assert "needs_reauth" in caught.value.missing
    [row] = _audit_since(engine, before)
    assert row.action == "authorize.denied" and row.integration_id == world.stale
    # a person may still sync it (the flow then finds out about the credentials)
    assert authorize(engine, world.principals["admin"], Action.SYNC, world.stale).allowed


def test_scheduler_of_another_agency_is_denied(engine: sa.Engine, world: World) -> None:
    before = _last_audit_id(engine)
    integ = world.integrations["write"]
    with pytest.raises(PermissionDenied) as caught:
        authorize(engine, Principal.scheduler(world.other), Action.SYNC, integ.id)
    assert str(caught.value) == (
        f"permission denied: scheduler:{world.other} may not sync integration {integ.id}: "
        f"needs {OUTSIDER_MISSING}"
    )
    [row] = _audit_since(engine, before)
    assert row.detail["missing"] == f"membership in agency {world.acme}"


def test_unknown_user_is_denied_and_audited(engine: sa.Engine, world: World) -> None:
    integ = world.integrations["write"]
    before = _last_audit_id(engine)
    with pytest.raises(PermissionDenied) as caught:
        authorize(engine, "nobody@acme.test", Action.READ, integ.id)
    assert str(caught.value) == (
        f"permission denied: nobody@acme.test may not read data of integration {integ.id}: "
        f"needs {OUTSIDER_MISSING}"
    )
    [row] = _audit_since(engine, before)
    assert (row.principal, row.agency_id, row.outcome) == ("nobody@acme.test", world.acme, "denied")
    assert row.detail["missing"] == "a user account (no user 'nobody@acme.test')"


def test_missing_integration_is_denied_and_audited(engine: sa.Engine, world: World) -> None:
    before = _last_audit_id(engine)
    with pytest.raises(PermissionDenied) as caught:
        authorize(engine, world.principals["owner"], Action.SYNC, 999999)
    assert str(caught.value) == (
        f"permission denied: owner@acme.test may not sync integration 999999: "
        f"needs {OUTSIDER_MISSING}"
    )
    [row] = _audit_since(engine, before)
    assert (row.integration_id, row.agency_id) == (999999, None)
    assert row.detail["missing"] == "an existing target (integration 999999 does not exist)"


def test_outsiders_read_the_same_whatever_the_reason(engine: sa.Engine, world: World) -> None:
    """A missing integration, another agency's, and an unknown user: one message, modulo the
    principal and the id the caller supplied, so the answer reveals nothing that exists."""
    cases = [
        ("owner@acme.test", 999999),  # no such integration
        ("owner@acme.test", world.integrations["other"].id),  # another agency's
        ("owner@other.test", world.integrations["write"].id),  # likewise, seen from there
        ("nobody@acme.test", world.integrations["write"].id),  # no such user
        ("nobody@acme.test", 999999),
    ]
    messages = set()
    for who, iid in cases:
        with pytest.raises(PermissionDenied) as caught:
            authorize(engine, who, Action.BACKFILL, iid)
        assert type(caught.value) is PermissionDenied
        messages.add(str(caught.value).replace(who, "<who>").replace(str(iid), "<id>"))
    [message] = messages
    assert message == (
        f"permission denied: <who> may not backfill integration <id>: needs {OUTSIDER_MISSING}"
    )
    for revealing in ("Hooli", "Globex", "slack", "Acme", "Other Co"):
        assert revealing not in message
    # Agency-level: a nonexistent agency and another agency read the same too.
    texts = set()
    for agency_id in (world.other, 987654):
        with pytest.raises(PermissionDenied) as caught:
            authorize(engine, "owner@acme.test", Action.CONNECT, agency_id=agency_id)
        texts.add(str(caught.value).replace(str(agency_id), "<id>"))
    assert texts == {
        "permission denied: owner@acme.test may not connect agency <id>: "
        "needs membership in agency <id>"
    }


def test_malformed_principal_is_a_denial_and_audited(engine: sa.Engine, world: World) -> None:
    integ = world.integrations["write"]
    before = _last_audit_id(engine)
    garbage = "not a principal " + "x" * 500
    with pytest.raises(PermissionDenied, match="not a principal") as caught:
        authorize(engine, garbage, Action.SYNC, integ.id)
    assert caught.value.principal is None
    [row] = _audit_since(engine, before)
    assert (row.action, row.outcome, row.integration_id, row.agency_id) == (
        "authorize.refused",
        "denied",
        integ.id,
        world.acme,
    )
    assert row.principal.startswith("not a principal x") and len(row.principal) == 200


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (Action.CONNECT, {"owner", "admin"}),
        (Action.MANAGE_ACCESS, {"owner"}),
        (Action.READ, {"owner", "admin", "manager"}),
    ],
)
def test_agency_level_actions(
    engine: sa.Engine, world: World, action: Action, allowed: set[str]
) -> None:
    """Connecting a new integration or managing access has no integration yet: the agency is
    the target. A member cannot read "the whole agency" (only granted clients)."""
    for who in ("owner", "admin", "manager", "member"):
        if who in allowed:
            assert authorize(engine, world.principals[who], action, agency_id=world.acme).allowed
        else:
            with pytest.raises(PermissionDenied, match=f"agency {world.acme} \\('Acme'\\)"):
                authorize(engine, world.principals[who], action, agency_id=world.acme)
    with pytest.raises(PermissionDenied, match=f"membership in agency {world.other}"):
        authorize(engine, world.principals["owner"], action, agency_id=world.other)


def test_denial_audit_survives_the_callers_rollback(engine: sa.Engine, world: World) -> None:
    before = _last_audit_id(engine)
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        conn.execute(sa.text("SELECT 1"))
        authorize(
            engine, world.principals["member"], Action.BACKFILL, world.integrations["write"].id
        )
    assert [r.action for r in _audit_since(engine, before)] == ["authorize.denied"]


def test_with_a_connection_the_audit_is_part_of_the_callers_transaction(
    engine: sa.Engine, world: World
) -> None:
    before = _last_audit_id(engine)
    with engine.connect() as conn:
        with pytest.raises(PermissionDenied):
            authorize(
                conn, world.principals["member"], Action.CONNECT, world.integrations["write"].id
            )
        assert (
            conn.execute(sa.select(sa.func.count()).where(audit_event.c.id > before)).scalar_one()
            == 1
        )
        conn.rollback()
    assert _audit_since(engine, before) == []


def test_revoked_grant_takes_effect_at_once(engine: sa.Engine, world: World) -> None:
    with engine.connect() as conn:
        member = tenancy.find_user(conn, "member@acme.test")
    integ = world.integrations["write"]
    assert authorize(engine, world.principals["member"], Action.SYNC, integ.id).allowed
    with engine.begin() as conn:
        tenancy.revoke_access(conn, member.id, world.clients["write"][0])
    try:
        with pytest.raises(PermissionDenied, match="write access to client 'Globex'"):
            authorize(engine, world.principals["member"], Action.SYNC, integ.id)
    finally:
        with engine.begin() as conn:
            tenancy.grant_access(conn, member.id, world.clients["write"][0], "write")


def test_decision_carries_the_principal_and_reason(engine: sa.Engine, world: World) -> None:
    decision = authorize(
        engine, world.principals["member"], Action.SYNC, world.integrations["write"].id
    )
    assert decision == Decision(
        allowed=True,
        role="member",
        principal=world.principals["member"],
        reason=f"role member with write access to client 'Globex' (id {world.clients['write'][0]})",
        agency_id=world.acme,
        integration_id=world.integrations["write"].id,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scheduler:7", Principal("scheduler", None, 7)),
        (" Bob@Acme.Test ", Principal("user", "bob@acme.test", None)),
    ],
)
def test_principal_parse_and_str(text: str, expected: Principal) -> None:
    assert Principal.parse(text) == expected
    assert str(expected) == text.strip().lower()


@pytest.mark.parametrize("text", ["", "bob", "scheduler:", "scheduler:x", "a@b@c"])
def test_principal_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a principal"):
        Principal.parse(text)
