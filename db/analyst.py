"""Analyst database roles: a PostgreSQL login bound to one user of one agency.

Row-level security (``db/rls.py``) reads the binding for ``session_user``, so what an analyst
sees follows the user's role and client grants in the app, live.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import sql

from db.rls import ANALYST_GROUP
from db.schema import analyst_binding, app_user

__all__ = ["AnalystRole", "create_analyst", "drop_analyst", "role_name_for"]


@dataclass(frozen=True)
class AnalystRole:
    role_name: str
    password: str
    agency_id: int
    user_id: int

    def __repr__(self) -> str:
        return f"AnalystRole(role_name={self.role_name!r}, password='****', agency_id={self.agency_id})"


def role_name_for(email: str) -> str:
    """A stable, valid role name derived from the user's email (``analyst_bob_acme_test``)."""
    return "analyst_" + re.sub(r"[^a-z0-9]+", "_", email.lower()).strip("_")[:50]


def _raw(conn: sa.Connection):
    return conn.connection.driver_connection


def create_analyst(
    conn: sa.Connection, email: str, *, role_name: str | None = None, password: str | None = None
) -> AnalystRole:
    """Create (or reset the password of) the analyst login for the user with ``email``."""
    user = conn.execute(
        sa.select(app_user.c.id, app_user.c.agency_id).where(app_user.c.email == email.lower())
    ).one_or_none()
    if user is None:
        raise LookupError(f"no user {email!r}")
    name = role_name or role_name_for(email)
    password = password or secrets.token_urlsafe(18)
    raw = _raw(conn)
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    verb = "ALTER" if exists else "CREATE"
    raw.execute(
        sql.SQL(verb + " ROLE {} LOGIN INHERIT NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    raw.execute(
        sql.SQL("GRANT {} TO {}").format(sql.Identifier(ANALYST_GROUP), sql.Identifier(name))
    )
    dbname = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    raw.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(name)
        )
    )
    conn.execute(
        sa.dialects.postgresql.insert(analyst_binding)
        .values(role_name=name, agency_id=user.agency_id, user_id=user.id)
        .on_conflict_do_update(
            index_elements=["role_name"], set_={"agency_id": user.agency_id, "user_id": user.id}
        )
    )
    return AnalystRole(role_name=name, password=password, agency_id=user.agency_id, user_id=user.id)


def drop_analyst(conn: sa.Connection, role_name: str) -> None:
    conn.execute(analyst_binding.delete().where(analyst_binding.c.role_name == role_name))
    raw = _raw(conn)
    dbname = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    raw.execute(
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
            sql.Identifier(dbname), sql.Identifier(role_name)
        )
    )
    raw.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role_name)))
