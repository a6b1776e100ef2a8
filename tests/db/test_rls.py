"""Row-level security, proved by connecting as real non-superuser analyst roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa

from db import rls, schema
from db.analyst import AnalystRole, create_analyst


def _agency(conn: sa.Connection, name: str) -> int:
    return conn.execute(
        schema.agency.insert().values(name=name).returning(schema.agency.c.id)
    ).scalar_one()


def _user(conn: sa.Connection, agency_id: int, email: str, role: str) -> int:
    uid = conn.execute(
        schema.app_user.insert()
        .values(agency_id=agency_id, email=email)
        .returning(schema.app_user.c.id)
    ).scalar_one()
    conn.execute(schema.user_role.insert().values(user_id=uid, role_name=role))
    return uid


def _client(conn: sa.Connection, agency_id: int, name: str) -> int:
    return conn.execute(
        schema.client.insert().values(agency_id=agency_id, name=name).returning(schema.client.c.id)
    ).scalar_one()


def _integration(conn: sa.Connection, agency_id: int, name: str, client_id: int | None) -> int:
    return conn.execute(
        schema.integration.insert()
        .values(agency_id=agency_id, client_id=client_id, provider="slack", name=name)
        .returning(schema.integration.c.id)
    ).scalar_one()


def _messages(
    conn: sa.Connection,
    agency_id: int,
    integration_id: int,
    client_id: int | None,
    prefix: str,
    n: int,
) -> None:
    conn.execute(
        schema.slack_messages.insert(),
        [
            dict(
                integration_id=integration_id,
                agency_id=agency_id,
                client_id=client_id,
                channel_id=f"C{prefix}",
                ts=f"{1700000000 + i}.000100",
                posted_at=datetime.fromtimestamp(1700000000 + i, UTC),
                text=f"{prefix} {i}",
                is_reply=False,
                reply_count=0,
            )
            for i in range(n)
        ],
    )


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, object]:
    """Two agencies; agency A has clients X and Y and an agency-wide integration."""
    with engine.begin() as conn:
        a, b = _agency(conn, "Acme"), _agency(conn, "Beta")
        x, y = _client(conn, a, "X"), _client(conn, a, "Y")
        bx = _client(conn, b, "BX")
        ix, iy, ia = (
            _integration(conn, a, "x", x),
            _integration(conn, a, "y", y),
            _integration(conn, a, "agency-wide", None),
        )
        ib = _integration(conn, b, "b", bx)
        _messages(conn, a, ix, x, "x", 5)
        _messages(conn, a, iy, y, "y", 7)
        _messages(conn, a, ia, None, "a", 3)
        _messages(conn, b, ib, bx, "b", 11)
        users = {
            "owner": _user(conn, a, "owner@acme.test", "owner"),
            "manager": _user(conn, a, "manager@acme.test", "manager"),
            "member": _user(conn, a, "member@acme.test", "member"),
            "bowner": _user(conn, b, "owner@beta.test", "owner"),
        }
        conn.execute(
            schema.member_client_access.insert().values(
                user_id=users["member"], client_id=x, agency_id=a, permission="read"
            )
        )
        roles = {
            k: create_analyst(
                conn, f"{k.removeprefix('b')}@{'beta' if k.startswith('b') else 'acme'}.test"
            )
            for k in users
        }
    return {"roles": roles, "clients": {"x": x, "y": y}, "engine": engine, "agency": a}


@pytest.fixture
def connect(world: dict[str, object], engine: sa.Engine) -> Iterator[object]:
    opened: list[psycopg.Connection] = []
    url = engine.url

    def _connect(key: str) -> psycopg.Connection:
        role: AnalystRole = world["roles"][key]  # type: ignore[index]
        conn = psycopg.connect(
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=role.role_name,
            password=role.password,
            autocommit=True,
        )
        opened.append(conn)
        return conn

    yield _connect
    for c in opened:
        c.close()


def _texts(conn: psycopg.Connection) -> set[str]:
    return {r[0].split()[0] for r in conn.execute("SELECT text FROM slack_messages")}


def test_owner_and_manager_see_all_of_their_agency_only(connect) -> None:
    for who in ("owner", "manager"):
        conn = connect(who)
        assert conn.execute("SELECT count(*) FROM slack_messages").fetchone()[0] == 15
        assert _texts(conn) == {"x", "y", "a"}
    assert _texts(connect("bowner")) == {"b"}


def test_member_sees_only_granted_clients_and_revoke_is_live(connect, world, engine) -> None:
    conn = connect("member")
    assert _texts(conn) == {"x"}
    assert {r[0] for r in conn.execute("SELECT name FROM client")} == {"X"}
    member_user = world["roles"]["member"].user_id
    with engine.begin() as admin:
        admin.execute(
            schema.member_client_access.delete().where(
                schema.member_client_access.c.user_id == member_user
            )
        )
    assert _texts(conn) == set()
    with engine.begin() as admin:
        admin.execute(
            schema.member_client_access.insert().values(
                user_id=member_user,
                client_id=world["clients"]["y"],
                agency_id=world["agency"],
                permission="write",
            )
        )
    assert _texts(conn) == {"y"}


def test_analyst_cannot_widen_its_view(connect, world) -> None:
    owner = world["roles"]["owner"].role_name
    conn = connect("member")
    before = _texts(conn)
    assert before and before < {"x", "y", "a"}
    for stmt in (
        f"SET ROLE {owner}",
        f"SET SESSION AUTHORIZATION {owner}",
        "UPDATE analyst_binding SET agency_id = agency_id",
        "SELECT * FROM analyst_binding",
        "SELECT * FROM integration_credential",
        "SELECT * FROM member_client_access",
        "INSERT INTO member_client_access VALUES (1, 1, 'read')",
        "ALTER TABLE slack_messages DISABLE ROW LEVEL SECURITY",
        "UPDATE slack_messages SET text = 'x'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(stmt)
    # A custom setting changes nothing: the policy reads the binding, not a GUC.
    conn.execute("SET aos.agency_id = '999'")
    assert _texts(conn) == before


def analyst_tables() -> set[str]:
    """The tables analysts read: the platform tenant tables and every provider table."""
    provider = {
        t.name
        for t in schema.metadata.sorted_tables
        if set(schema.TENANT_COLUMNS) <= set(t.c.keys())
    }
    return set(rls.TENANT_TABLES) | provider


def test_rls_is_enabled_on_every_tenant_table(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        rls_on = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT relname FROM pg_class WHERE relrowsecurity AND relkind = 'r' "
                    "AND relnamespace = 'public'::regnamespace"
                )
            )
        }
        readable = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'v', 'm') "
                    "AND c.relnamespace = 'public'::regnamespace "
                    "AND has_table_privilege('aos_analyst', c.oid, 'SELECT')"
                )
            )
        }
    assert analyst_tables() <= rls_on, analyst_tables() - rls_on
    # Analysts read exactly the tenant tables; every other table is out of their reach.
    assert readable == analyst_tables()
