"""Tenancy admin operations against a real PostgreSQL; each test runs in a rolled-back transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from db import tenancy
from db.schema import audit_event, member_client_access


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        connection.begin()
        yield connection
        connection.rollback()


@pytest.fixture
def acme(conn: sa.Connection) -> int:
    return tenancy.create_agency(conn, "Acme")


def _audits(conn: sa.Connection, action: str) -> list[sa.Row[tuple[object, ...]]]:
    return list(
        conn.execute(
            sa.select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.id)
        )
    )


def test_create_and_find_agency(conn: sa.Connection) -> None:
    agency_id = tenancy.create_agency(conn, "  Acme ")
    assert tenancy.find_agency(conn, "Acme") == tenancy.Agency(agency_id, "Acme")
    assert tenancy.find_agency(conn, agency_id).name == "Acme"
    assert tenancy.find_agency(conn, str(agency_id)).id == agency_id
    with pytest.raises(tenancy.NotFound, match="no agency 'Nope'"):
        tenancy.find_agency(conn, "Nope")


def test_duplicate_agency_is_a_conflict_and_keeps_the_transaction_usable(
    conn: sa.Connection, acme: int
) -> None:
    with pytest.raises(tenancy.Conflict, match="agency 'Acme' already exists"):
        tenancy.create_agency(conn, "Acme")
    assert tenancy.find_agency(conn, "Acme").id == acme  # no aborted transaction


def test_add_user_lowercases_email_and_records_the_role(conn: sa.Connection, acme: int) -> None:
    user_id = tenancy.add_user(conn, acme, " Bob@Acme.TEST ", "manager", name="Bob")
    assert tenancy.find_user(conn, "BOB@acme.test") == tenancy.User(
        user_id, acme, "bob@acme.test", "Bob", "manager"
    )
    [event] = _audits(conn, "role.change")
    assert event.detail == {"user": "bob@acme.test", "from": None, "to": "manager"}


def test_add_user_errors(conn: sa.Connection, acme: int) -> None:
    tenancy.add_user(conn, acme, "bob@acme.test", "member")
    with pytest.raises(tenancy.Conflict, match="user 'bob@acme.test' already exists"):
        tenancy.add_user(conn, acme, "BOB@acme.test", "admin")
    with pytest.raises(tenancy.Invalid, match="unknown role 'boss'"):
        tenancy.add_user(conn, acme, "carol@acme.test", "boss")
    with pytest.raises(tenancy.Invalid, match="not an email"):
        tenancy.add_user(conn, acme, "carol", "member")
    with pytest.raises(tenancy.NotFound, match="no agency"):
        tenancy.add_user(conn, 987654, "carol@acme.test", "member")
    with pytest.raises(tenancy.NotFound, match="no user 'x@y.com'"):
        tenancy.find_user(conn, "x@y.com")


def test_set_role_changes_role_and_audits(conn: sa.Connection, acme: int) -> None:
    tenancy.add_user(conn, acme, "own@acme.test", "owner")
    bob = tenancy.add_user(conn, acme, "bob@acme.test", "member")
    tenancy.set_role(conn, bob, "admin", actor="own@acme.test")
    assert tenancy.find_user(conn, "bob@acme.test").role == "admin"
    event = _audits(conn, "role.change")[-1]
    assert (event.principal, event.agency_id) == ("own@acme.test", acme)
    assert event.detail == {"user": "bob@acme.test", "from": "member", "to": "admin"}
    with pytest.raises(tenancy.Invalid):
        tenancy.set_role(conn, bob, "root")
    with pytest.raises(tenancy.NotFound):
        tenancy.set_role(conn, 987654, "admin")


def test_last_owner_cannot_be_demoted(conn: sa.Connection, acme: int) -> None:
    first = tenancy.add_user(conn, acme, "one@acme.test", "owner")
    with pytest.raises(tenancy.Conflict, match="last owner"):
        tenancy.set_role(conn, first, "admin")
    tenancy.add_user(conn, acme, "two@acme.test", "owner")
    tenancy.set_role(conn, first, "admin")
    assert tenancy.find_user(conn, "one@acme.test").role == "admin"


def test_add_client_cleans_attribution_keys(conn: sa.Connection, acme: int) -> None:
    globex = tenancy.add_client(
        conn,
        acme,
        "Globex",
        email_domains=["Globex.COM", " globex.com"],
        slack_channel_ids=["C1", "C2"],
        ad_account_ids=["act_9"],
    )
    initech = tenancy.add_client(conn, acme, "Initech", email_domains=["initech.io"])
    assert tenancy.client_attribution_map(conn, acme, "email_domains") == {
        "globex.com": globex,
        "initech.io": initech,
    }
    assert tenancy.client_attribution_map(conn, acme, "slack_channel_ids") == {
        "C1": globex,
        "C2": globex,
    }
    assert tenancy.client_attribution_map(conn, acme, "ad_account_ids") == {"act_9": globex}
    with pytest.raises(tenancy.Invalid, match="attribution column"):
        tenancy.client_attribution_map(conn, acme, "name")


def test_add_client_conflicts(conn: sa.Connection, acme: int) -> None:
    other = tenancy.create_agency(conn, "Other")
    tenancy.add_client(conn, acme, "Globex", slack_channel_ids=["C1"])
    with pytest.raises(tenancy.Conflict, match="client 'Globex' already exists"):
        tenancy.add_client(conn, acme, "Globex")
    with pytest.raises(tenancy.Conflict, match="slack_channel_ids already attributed"):
        tenancy.add_client(conn, acme, "Initech", slack_channel_ids=["C1"])
    tenancy.add_client(conn, other, "Globex", slack_channel_ids=["C1"])  # other tenant: fine


def test_ambiguous_attribution_is_refused(conn: sa.Connection, acme: int) -> None:
    tenancy.add_client(conn, acme, "Globex", email_domains=["globex.com"])
    conn.execute(
        sa.text(
            "INSERT INTO client (agency_id, name, email_domains) VALUES (:a, 'Dup', '{GLOBEX.com}')"
        ),
        {"a": acme},
    )
    with pytest.raises(tenancy.Conflict, match="'globex.com' is attributed to clients"):
        tenancy.client_attribution_map(conn, acme, "email_domains")


def _grants(conn: sa.Connection) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            sa.select(
                member_client_access.c.user_id,
                member_client_access.c.client_id,
                member_client_access.c.permission,
            )
        )
    ]


def test_grant_is_an_upsert_and_revoke_removes_it(conn: sa.Connection, acme: int) -> None:
    bob = tenancy.add_user(conn, acme, "bob@acme.test", "member")
    globex = tenancy.add_client(conn, acme, "Globex")
    tenancy.grant_access(conn, bob, globex, "read")
    tenancy.grant_access(conn, bob, globex, "write")
    assert _grants(conn) == [(bob, globex, "write")]
    grants = _audits(conn, "access.grant")
    assert [g.detail["permission"] for g in grants] == ["read", "write"]
    assert grants[-1].detail["previous"] == "read" and grants[-1].agency_id == acme
    tenancy.revoke_access(conn, bob, globex)
    assert _grants(conn) == []
    [revoke] = _audits(conn, "access.revoke")
    assert revoke.detail == {"user": "bob@acme.test", "client_id": globex, "permission": "write"}
    with pytest.raises(tenancy.NotFound, match="has no access"):
        tenancy.revoke_access(conn, bob, globex)


def test_grant_errors(conn: sa.Connection, acme: int) -> None:
    other = tenancy.create_agency(conn, "Other")
    bob = tenancy.add_user(conn, acme, "bob@acme.test", "member")
    hooli = tenancy.add_client(conn, other, "Hooli")
    globex = tenancy.add_client(conn, acme, "Globex")
    with pytest.raises(tenancy.Invalid, match="cannot be granted client 'Hooli' of agency"):
        tenancy.grant_access(conn, bob, hooli, "read")
    with pytest.raises(tenancy.Invalid, match="unknown permission 'admin'"):
        tenancy.grant_access(conn, bob, globex, "admin")
    with pytest.raises(tenancy.NotFound, match="no client"):
        tenancy.grant_access(conn, bob, 987654, "read")
    with pytest.raises(tenancy.NotFound, match="no user"):
        tenancy.grant_access(conn, 987654, globex, "read")
    assert _grants(conn) == []


def test_add_and_get_integration(conn: sa.Connection, acme: int) -> None:
    globex = tenancy.add_client(conn, acme, "Globex")
    iid = tenancy.add_integration(
        conn,
        acme,
        "slack",
        "Globex Slack",
        client_id=globex,
        external_account_id="T123",
        config={"rate_tier": 3},
    )
    assert tenancy.get_integration(conn, iid) == tenancy.Integration(
        id=iid,
        agency_id=acme,
        client_id=globex,
        provider="slack",
        name="Globex Slack",
        status="connected",
        status_reason=None,
        config={"rate_tier": 3},
        external_account_id="T123",
    )
    with pytest.raises(tenancy.NotFound, match="no integration"):
        tenancy.get_integration(conn, 987654)


def test_add_integration_errors(conn: sa.Connection, acme: int) -> None:
    other = tenancy.create_agency(conn, "Other")
    hooli = tenancy.add_client(conn, other, "Hooli")
    tenancy.add_integration(conn, acme, "gmail", "Inbox")
    with pytest.raises(tenancy.Conflict, match="integration 'Inbox' already exists"):
        tenancy.add_integration(conn, acme, "gmail", "Inbox")
    with pytest.raises(tenancy.Invalid, match="belongs to agency"):
        tenancy.add_integration(conn, acme, "slack", "Hooli Slack", client_id=hooli)
    # Which providers exist is the registry's business (the CLI offers only those); the
    # database layer refuses what cannot be a provider name at all.
    with pytest.raises(tenancy.Invalid, match="not a provider name: 'Tik Tok!'"):
        tenancy.add_integration(conn, acme, "Tik Tok!", "TT")


def test_status_changes_and_listing(conn: sa.Connection, acme: int) -> None:
    other = tenancy.create_agency(conn, "Other")
    slack = tenancy.add_integration(conn, acme, "slack", "Slack")
    gmail = tenancy.add_integration(conn, acme, "gmail", "Gmail")
    theirs = tenancy.add_integration(conn, other, "slack", "Slack")
    tenancy.set_integration_status(conn, slack, "needs_reauth", "invalid_grant")
    got = tenancy.get_integration(conn, slack)
    assert (got.status, got.status_reason) == ("needs_reauth", "invalid_grant")
    [event] = _audits(conn, "integration.status")
    assert event.integration_id == slack
    assert event.detail == {"from": "connected", "to": "needs_reauth", "reason": "invalid_grant"}
    with pytest.raises(tenancy.Invalid, match="unknown status 'broken'"):
        tenancy.set_integration_status(conn, slack, "broken")

    def ids(**kw: object) -> list[int]:
        return [i.id for i in tenancy.list_integrations(conn, **kw)]  # type: ignore[arg-type]

    assert ids() == [slack, gmail, theirs]
    assert ids(agency_id=acme) == [slack, gmail]
    assert ids(provider="slack") == [slack, theirs]
    assert ids(agency_id=acme, status="connected") == [gmail]
