"""Analyst database roles: a PostgreSQL login bound to one user of one agency.

Row-level security (``db/rls.py``) reads the binding for ``session_user``, so what an analyst
sees follows the user's role and client grants in the app, live.

A binding is forever: a role bound to one user is never re-bound to another user or agency.
Role names are unique per user *and* per database (roles are cluster-wide, databases are not)
and say nothing about the user: ``analyst_<16 hex of sha256(database, user id)>``. Every login
can list every role (``pg_roles`` is readable by all), so a name built from the email would
tell one agency's analysts who the other agencies' users are. A role that already exists but is
not this user's analyst login is refused, never taken over.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg import sql

from db.rls import ANALYST_GROUP
from db.schema import analyst_binding, app_user

__all__ = [
    "AnalystRole",
    "AnalystRoleConflict",
    "create_analyst",
    "drop_analyst",
    "role_name_for",
]

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class AnalystRoleConflict(ValueError):
    """The requested role name belongs to someone or something else."""


@dataclass(frozen=True)
class AnalystRole:
    role_name: str
    password: str
    agency_id: int
    user_id: int

    def __repr__(self) -> str:
        return (
            f"AnalystRole(role_name={self.role_name!r}, password='****', "
            f"agency_id={self.agency_id}, user_id={self.user_id})"
        )


def role_name_for(user_id: int, database: str) -> str:
    """``analyst_<tag>``: unique per (database, user), and naming nobody."""
    return "analyst_" + hashlib.sha256(f"{database}\0{user_id}".encode()).hexdigest()[:16]


def _raw(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection


def _lock_out_temp(conn: sa.Connection, dbname: str) -> None:
    """No TEMP for analysts (PUBLIC), while the application keeps it (its loader stages rows in
    temp tables). ``CREATE DATABASE .. TEMPLATE`` does not copy database privileges, so this is
    re-asserted whenever a login is made, not only by the migration."""
    raw = _raw(conn)
    db = sql.Identifier(dbname)
    raw.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO CURRENT_USER").format(db))
    raw.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))


def create_analyst(
    conn: sa.Connection, email: str, *, role_name: str | None = None, password: str | None = None
) -> AnalystRole:
    """Create the analyst login of the user with ``email``, or reset its password.

    Raises :class:`LookupError` for an unknown user and :class:`AnalystRoleConflict` when the
    name is taken by another user's login, by a role that is no analyst of this database, or
    when the user already has a login under another name."""
    user = conn.execute(
        sa.select(app_user.c.id, app_user.c.agency_id).where(app_user.c.email == email.lower())
    ).one_or_none()
    if user is None:
        raise LookupError(f"no user {email!r}")
    dbname = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    existing = conn.execute(
        sa.select(analyst_binding.c.role_name)
        .where(analyst_binding.c.user_id == user.id)
        .with_for_update()
    ).scalar()
    name = role_name or existing or role_name_for(user.id, dbname)
    if not _ROLE_NAME.fullmatch(name):
        raise AnalystRoleConflict(
            f"role name {name!r} is not a plain lower-case identifier of at most 63 characters"
        )
    if existing is not None and existing != name:
        raise AnalystRoleConflict(
            f"user {email} already has the analyst login {existing!r}; reset its password with "
            "`aos-sync analyst create --user EMAIL` (no --role-name) or drop it first"
        )
    bound = conn.execute(
        sa.select(analyst_binding.c.user_id).where(analyst_binding.c.role_name == name)
    ).first()
    if bound is not None and bound.user_id != user.id:
        raise AnalystRoleConflict(f"role {name!r} is the analyst login of another user")
    role_exists = conn.execute(
        sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
    ).first()
    if role_exists and bound is None:
        raise AnalystRoleConflict(
            f"a database role {name!r} already exists and is not an analyst login of this "
            "database; choose another name (--role-name) or have an administrator drop it"
        )
    password = password or secrets.token_urlsafe(18)
    raw = _raw(conn)
    # A new login gets no attribute beyond LOGIN; an existing one (ours, checked above) only a
    # new password (changing other attributes of a role needs more than CREATEROLE).
    statement = (
        "ALTER ROLE {} LOGIN PASSWORD {}"
        if role_exists
        else "CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
        " NOBYPASSRLS PASSWORD {}"
    )
    raw.execute(sql.SQL(statement).format(sql.Identifier(name), sql.Literal(password)))
    raw.execute(
        sql.SQL("GRANT {} TO {}").format(sql.Identifier(ANALYST_GROUP), sql.Identifier(name))
    )
    raw.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(name)
        )
    )
    _lock_out_temp(conn, dbname)
    if bound is None:
        conn.execute(
            analyst_binding.insert().values(
                role_name=name, agency_id=user.agency_id, user_id=user.id
            )
        )
    return AnalystRole(role_name=name, password=password, agency_id=user.agency_id, user_id=user.id)


def drop_analyst(conn: sa.Connection, role_name: str) -> None:
    """Drop an analyst login of this database (and only that: other roles are refused)."""
    deleted = conn.execute(
        analyst_binding.delete()
        .where(analyst_binding.c.role_name == role_name)
        .returning(analyst_binding.c.role_name)
    ).first()
    if deleted is None:
        raise AnalystRoleConflict(f"{role_name!r} is not an analyst login of this database")
    raw = _raw(conn)
    dbname = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    raw.execute(
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
            sql.Identifier(dbname), sql.Identifier(role_name)
        )
    )
    raw.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role_name)))
