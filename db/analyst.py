"""Analyst database roles: a PostgreSQL login bound to one user of one agency.

A login connects to its agency's own database and nothing else (``db/agencydb.py``); what it
can reach there follows the user's role and client grants (``db/readers.py``), applied when the
login is made and whenever they change.

A binding is forever: a role bound to one user is never re-bound to another user or agency.
Role names are unique per user *and* per agency database (roles are cluster-wide, databases are
not) and say nothing about the user: ``analyst_<16 hex of sha256(database, user id)>``. Every
login can list every role (``pg_roles`` is readable by all), so a name built from the email would
tell one agency's analysts who the other agencies' users are. A role that already exists but is
not this user's analyst login is refused, never taken over.

No analyst can crowd out the application: each login has a connection limit, a
``statement_timeout`` and an ``idle_in_transaction_session_timeout`` (``db.readers.limits``),
and a login is refused when the analysts' connection limits together would leave the server
fewer than ``AOS_APP_RESERVED_CONNECTIONS`` (default 20) of its ``max_connections``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg import sql

from db import readers
from db.agencydb import engine_for, placement
from db.schema import analyst_binding, app_user

__all__ = [
    "AnalystRole",
    "AnalystRoleConflict",
    "create_analyst",
    "drop_agency_logins",
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
    database: str

    def __repr__(self) -> str:
        return (
            f"AnalystRole(role_name={self.role_name!r}, password='****', "
            f"agency_id={self.agency_id}, user_id={self.user_id}, database={self.database!r})"
        )


def role_name_for(user_id: int, database: str) -> str:
    """``analyst_<tag>``: unique per (database, user), and naming nobody."""
    return "analyst_" + hashlib.sha256(f"{database}\0{user_id}".encode()).hexdigest()[:16]


def _raw(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection


def _check_connection_budget(conn: sa.Connection, role_name: str, limit: int) -> None:
    """Refuse a login whose connection limit would let the analysts together take the slots
    the application needs."""
    reserve = int(os.environ.get("AOS_APP_RESERVED_CONNECTIONS", "20"))
    total, taken = conn.execute(
        sa.text(
            "SELECT current_setting('max_connections')::int,"
            " coalesce(sum(rolconnlimit) FILTER (WHERE rolname <> :me), 0)"
            " FROM pg_roles WHERE rolname LIKE 'analyst\\_%' AND rolcanlogin"
        ),
        {"me": role_name},
    ).one()
    if taken + limit > total - reserve:
        raise AnalystRoleConflict(
            f"the server's max_connections ({total}) leaves room for no more analyst logins: "
            f"analysts may already hold {taken} connections and the application keeps "
            f"{reserve}; raise max_connections, lower AOS_ANALYST_CONNECTION_LIMIT, or drop "
            "unused logins (`aos-sync analyst list` / `drop`)"
        )


def create_analyst(
    control: sa.Engine, email: str, *, role_name: str | None = None, password: str | None = None
) -> AnalystRole:
    """Create the analyst login of the user with ``email``, or reset its password, and give it
    exactly what the user may read in the agency's database.

    Raises :class:`LookupError` for an unknown user and :class:`AnalystRoleConflict` when the
    name is taken by another user's login, by a role that is no analyst of this installation,
    or when the user already has a login under another name."""
    with control.connect() as conn:
        user = conn.execute(
            sa.select(app_user.c.id, app_user.c.agency_id).where(app_user.c.email == email.lower())
        ).one_or_none()
    if user is None:
        raise LookupError(f"no user {email!r}")
    where = placement(control, user.agency_id)
    cap = readers.limits()
    # The role lives on the agency database's server (which may not be the control one); its
    # binding in the control database.
    with control.begin() as conn, engine_for(control, user.agency_id).begin() as server:
        existing = conn.execute(
            sa.select(analyst_binding.c.role_name)
            .where(analyst_binding.c.user_id == user.id)
            .with_for_update()
        ).scalar()
        name = role_name or existing or role_name_for(user.id, where.database)
        if not _ROLE_NAME.fullmatch(name):
            raise AnalystRoleConflict(
                f"role name {name!r} is not a plain lower-case identifier of at most 63 characters"
            )
        if existing is not None and existing != name:
            raise AnalystRoleConflict(
                f"user {email} already has the analyst login {existing!r}; reset its password "
                "with `aos-sync analyst create --user EMAIL` (no --role-name) or drop it first"
            )
        bound = conn.execute(
            sa.select(analyst_binding.c.user_id).where(analyst_binding.c.role_name == name)
        ).first()
        if bound is not None and bound.user_id != user.id:
            raise AnalystRoleConflict(f"role {name!r} is the analyst login of another user")
        role_exists = server.execute(
            sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
        ).first()
        if role_exists and bound is None:
            raise AnalystRoleConflict(
                f"a database role {name!r} already exists and is not an analyst login of this "
                "installation; choose another name (--role-name) or have an administrator "
                "drop it"
            )
        if not name.startswith("analyst_"):
            raise AnalystRoleConflict(f"analyst logins are named analyst_...; {name!r} is not")
        _check_connection_budget(server, name, cap.connections)
        password = password or secrets.token_urlsafe(18)
        raw = _raw(server)
        ident = sql.Identifier(name)
        # A new login gets no attribute beyond LOGIN and its limits; an existing one (ours,
        # checked above) a new password and the current limits.
        statement = (
            "ALTER ROLE {} LOGIN CONNECTION LIMIT {} PASSWORD {}"
            if role_exists
            else "CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE"
            " NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {} PASSWORD {}"
        )
        raw.execute(
            sql.SQL(statement).format(ident, sql.Literal(cap.connections), sql.Literal(password))
        )
        for setting, value in (
            ("statement_timeout", cap.statement_timeout),
            ("idle_in_transaction_session_timeout", cap.idle_in_transaction_timeout),
            ("lock_timeout", "5s"),
        ):
            raw.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    ident, sql.Identifier(setting), sql.Literal(value)
                )
            )
        if bound is None:
            conn.execute(
                analyst_binding.insert().values(
                    role_name=name, agency_id=user.agency_id, user_id=user.id
                )
            )
    readers.refresh(control, user.agency_id, only=[name])
    return AnalystRole(
        role_name=name,
        password=password,
        agency_id=user.agency_id,
        user_id=user.id,
        database=where.database,
    )


def drop_analyst(control: sa.Engine, role_name: str) -> None:
    """Drop an analyst login of this installation (and only that: other roles are refused)."""
    with control.connect() as conn:
        agency_id = conn.execute(
            sa.select(analyst_binding.c.agency_id).where(analyst_binding.c.role_name == role_name)
        ).scalar()
    if agency_id is None:
        raise AnalystRoleConflict(f"{role_name!r} is not an analyst login of this installation")
    with engine_for(control, agency_id).begin() as conn:
        readers.revoke_all(conn, role_name)
        _raw(conn).execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role_name)))
    with control.begin() as conn:
        conn.execute(analyst_binding.delete().where(analyst_binding.c.role_name == role_name))


def drop_agency_logins(control: sa.Engine, agency_id: int) -> int:
    """Drop every analyst login of an agency whose database is already gone (``agency
    delete``); returns how many."""
    from db.agencydb import server_connection

    with control.connect() as conn:
        names = conn.scalars(
            sa.select(analyst_binding.c.role_name).where(analyst_binding.c.agency_id == agency_id)
        ).all()
    with server_connection(control, agency_id) as pg:
        for name in names:
            pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    return len(names)
