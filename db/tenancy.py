"""Tenancy administration: agencies, users and roles, clients, access grants, integrations.

These are the verbs behind ``aos-sync agency create / user add / client add / access grant |
revoke / integration add | list``. Each takes a :class:`sqlalchemy.engine.Connection` whose
transaction the caller owns, so a CLI command (or a test) can do several of them atomically and
roll all back. They return plain dataclasses or ids, never rows, so callers do not depend on the
table layout.

Duplicates are detected with ``INSERT .. ON CONFLICT DO NOTHING RETURNING``: that is race-free
and, unlike catching ``IntegrityError``, does not abort the caller's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db.schema import (
    INTEGRATION_STATUSES,
    ROLE_LEVELS,
    app_user,
    audit_event,
    client,
    integration,
    member_client_access,
    user_role,
)
from db.schema import agency as agency_t

__all__ = [
    "ATTRIBUTION_COLUMNS",
    "PERMISSIONS",
    "Agency",
    "Conflict",
    "Integration",
    "Invalid",
    "NotFound",
    "TenancyError",
    "User",
    "add_client",
    "add_integration",
    "add_user",
    "client_attribution_map",
    "create_agency",
    "delete_agency",
    "find_agency",
    "find_client",
    "find_user",
    "get_integration",
    "grant_access",
    "list_integrations",
    "record_audit",
    "revoke_access",
    "set_integration_status",
    "set_role",
]

PERMISSIONS = ("read", "write")
ATTRIBUTION_COLUMNS = ("email_domains", "slack_channel_ids", "ad_account_ids")


class TenancyError(Exception):
    """Base of the errors below; the message is meant for the person at the CLI."""


class NotFound(TenancyError, LookupError):
    """The named agency / user / client / integration / grant does not exist."""


class Conflict(TenancyError):
    """The object already exists, or the change would break an invariant (e.g. no owner left)."""


class Invalid(TenancyError, ValueError):
    """A bad value (unknown role, provider, status) or a cross-agency reference."""


@dataclass(frozen=True)
class Agency:
    id: int
    name: str


@dataclass(frozen=True)
class User:
    id: int
    agency_id: int
    email: str
    name: str | None
    role: str | None


@dataclass(frozen=True)
class Integration:
    id: int
    agency_id: int
    client_id: int | None
    provider: str
    name: str
    status: str
    status_reason: str | None
    config: dict[str, Any]
    external_account_id: str | None


#: Which providers exist is the provider registry's business (connectors/registry.py); here
#: only the shape of the name is checked, as the database does.
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _check(value: str, allowed: Iterable[str], what: str) -> str:
    choices = tuple(allowed)
    if value not in choices:
        raise Invalid(f"unknown {what} {value!r} (expected one of: {', '.join(choices)})")
    return value


def record_audit(
    conn: sa.Connection,
    *,
    principal: str,
    action: str,
    outcome: str,
    agency_id: int | None = None,
    integration_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one ``audit_event`` row (in the caller's transaction)."""
    conn.execute(
        audit_event.insert().values(
            agency_id=agency_id,
            principal=principal,
            action=action,
            outcome=outcome,
            integration_id=integration_id,
            detail=dict(detail or {}),
        )
    )


# --- agencies and users ---------------------------------------------------------------------


def create_agency(conn: sa.Connection, name: str) -> int:
    name = name.strip()
    if not name:
        raise Invalid("an agency needs a name")
    new_id = conn.execute(
        insert(agency_t).values(name=name).on_conflict_do_nothing().returning(agency_t.c.id)
    ).scalar()
    if new_id is None:
        raise Conflict(f"agency {name!r} already exists")
    return int(new_id)


def delete_agency(conn: sa.Connection, agency_id: int) -> None:
    """Delete the agency's row and, by cascade, its users, clients, integrations, credentials,
    runs and audit rows (its database is dropped first, by ``db.agencydb.drop_database``)."""
    conn.execute(agency_t.delete().where(agency_t.c.id == agency_id))


def find_agency(conn: sa.Connection, name_or_id: str | int) -> Agency:
    """By id (an int or a string of digits) or else by exact name, as typed at the CLI."""
    text = str(name_or_id).strip()
    row = None
    if text.isdigit():
        row = conn.execute(
            sa.select(agency_t.c.id, agency_t.c.name).where(agency_t.c.id == int(text))
        ).first()
    if row is None:
        row = conn.execute(
            sa.select(agency_t.c.id, agency_t.c.name).where(agency_t.c.name == text)
        ).first()
    if row is None:
        raise NotFound(f"no agency {text!r}")
    return Agency(id=row.id, name=row.name)


def _user_query() -> sa.Select[Any]:
    return sa.select(
        app_user.c.id,
        app_user.c.agency_id,
        app_user.c.email,
        app_user.c.name,
        user_role.c.role_name.label("role"),
    ).outerjoin(user_role)


def _user(row: Any) -> User:
    return User(id=row.id, agency_id=row.agency_id, email=row.email, name=row.name, role=row.role)


def find_user(conn: sa.Connection, email: str) -> User:
    email = email.strip().lower()
    row = conn.execute(_user_query().where(app_user.c.email == email)).first()
    if row is None:
        raise NotFound(f"no user {email!r}")
    return _user(row)


def _get_user(conn: sa.Connection, user_id: int) -> User:
    row = conn.execute(_user_query().where(app_user.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no user with id {user_id}")
    return _user(row)


def add_user(
    conn: sa.Connection,
    agency_id: int,
    email: str,
    role: str,
    name: str | None = None,
    *,
    actor: str = "cli",
) -> int:
    """Create a user with their one role. Emails are unique across agencies: a login is one
    person in one tenant, so the email alone identifies a principal."""
    _check(role, ROLE_LEVELS, "role")
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid(f"not an email address: {email!r}")
    find_agency(conn, agency_id)
    user_id = conn.execute(
        insert(app_user)
        .values(agency_id=agency_id, email=email, name=name)
        .on_conflict_do_nothing()
        .returning(app_user.c.id)
    ).scalar()
    if user_id is None:
        raise Conflict(f"user {email!r} already exists")
    conn.execute(user_role.insert().values(user_id=user_id, role_name=role))
    record_audit(
        conn,
        principal=actor,
        action="role.change",
        outcome="ok",
        agency_id=agency_id,
        detail={"user": email, "from": None, "to": role},
    )
    return int(user_id)


def set_role(conn: sa.Connection, user_id: int, role: str, *, actor: str = "cli") -> None:
    """Change a user's role; refuses to demote the agency's last owner, who alone can fix it."""
    _check(role, ROLE_LEVELS, "role")
    user = _get_user(conn, user_id)
    if user.role == "owner" and role != "owner":
        owners = conn.execute(
            sa.select(sa.func.count())
            .select_from(user_role.join(app_user))
            .where(app_user.c.agency_id == user.agency_id, user_role.c.role_name == "owner")
        ).scalar_one()
        if owners <= 1:
            raise Conflict(f"{user.email} is the last owner of agency {user.agency_id}")
    stmt = insert(user_role).values(user_id=user_id, role_name=role)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[user_role.c.user_id],
            set_={"role_name": stmt.excluded.role_name, "granted_at": sa.func.now()},
        )
    )
    record_audit(
        conn,
        principal=actor,
        action="role.change",
        outcome="ok",
        agency_id=user.agency_id,
        detail={"user": user.email, "from": user.role, "to": role},
    )


# --- clients and grants ---------------------------------------------------------------------


def _clean(values: Iterable[str], *, lower: bool = False) -> list[str]:
    out = [v.strip().lower() if lower else v.strip() for v in values]
    return sorted({v for v in out if v})


def add_client(
    conn: sa.Connection,
    agency_id: int,
    name: str,
    email_domains: Iterable[str] = (),
    slack_channel_ids: Iterable[str] = (),
    ad_account_ids: Iterable[str] = (),
) -> int:
    """Create a client. An attribution key (domain, channel, ad account) may name only one client
    of the agency; otherwise a synced row could not be attributed unambiguously."""
    find_agency(conn, agency_id)
    keys = {
        "email_domains": _clean(email_domains, lower=True),
        "slack_channel_ids": _clean(slack_channel_ids),
        "ad_account_ids": _clean(ad_account_ids),
    }
    for column, values in keys.items():
        taken = {
            k: c for k, c in client_attribution_map(conn, agency_id, column).items() if k in values
        }
        if taken:
            raise Conflict(f"{column} already attributed to other clients: {taken}")
    client_id = conn.execute(
        insert(client)
        .values(agency_id=agency_id, name=name.strip(), **keys)
        .on_conflict_do_nothing()
        .returning(client.c.id)
    ).scalar()
    if client_id is None:
        raise Conflict(f"client {name!r} already exists in agency {agency_id}")
    return int(client_id)


def find_client(conn: sa.Connection, agency_id: int, name_or_id: str | int) -> int:
    """A client of the agency by id or by name."""
    text = str(name_or_id).strip()
    cond = client.c.id == int(text) if text.isdigit() else client.c.name == text
    found = conn.execute(
        sa.select(client.c.id).where(cond, client.c.agency_id == agency_id)
    ).scalar()
    if found is None:
        raise NotFound(f"no client {text!r} in agency {agency_id}")
    return int(found)


def _client_agency(conn: sa.Connection, client_id: int) -> tuple[int, str]:
    row = conn.execute(
        sa.select(client.c.agency_id, client.c.name).where(client.c.id == client_id)
    ).first()
    if row is None:
        raise NotFound(f"no client with id {client_id}")
    return row.agency_id, row.name


def grant_access(
    conn: sa.Connection, user_id: int, client_id: int, permission: str, *, actor: str = "cli"
) -> None:
    """Give (or change) a user's read/write access to one client of their own agency."""
    _check(permission, PERMISSIONS, "permission")
    user = _get_user(conn, user_id)
    client_agency, client_name = _client_agency(conn, client_id)
    if client_agency != user.agency_id:
        raise Invalid(
            f"user {user.email} (agency {user.agency_id}) cannot be granted client "
            f"{client_name!r} of agency {client_agency}"
        )
    stmt = insert(member_client_access).values(
        user_id=user_id, client_id=client_id, agency_id=client_agency, permission=permission
    )
    previous = conn.execute(
        sa.select(member_client_access.c.permission).where(
            member_client_access.c.user_id == user_id, member_client_access.c.client_id == client_id
        )
    ).scalar()
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[member_client_access.c.user_id, member_client_access.c.client_id],
            set_={"permission": stmt.excluded.permission, "granted_at": sa.func.now()},
        )
    )
    record_audit(
        conn,
        principal=actor,
        action="access.grant",
        outcome="ok",
        agency_id=user.agency_id,
        detail={
            "user": user.email,
            "client_id": client_id,
            "permission": permission,
            "previous": previous,
        },
    )


def revoke_access(conn: sa.Connection, user_id: int, client_id: int, *, actor: str = "cli") -> None:
    user = _get_user(conn, user_id)
    gone = conn.execute(
        member_client_access.delete()
        .where(
            member_client_access.c.user_id == user_id, member_client_access.c.client_id == client_id
        )
        .returning(member_client_access.c.permission)
    ).scalar()
    if gone is None:
        raise NotFound(f"user {user.email} has no access to client {client_id}")
    record_audit(
        conn,
        principal=actor,
        action="access.revoke",
        outcome="ok",
        agency_id=user.agency_id,
        detail={"user": user.email, "client_id": client_id, "permission": gone},
    )


def client_attribution_map(conn: sa.Connection, agency_id: int, column: str) -> dict[str, int]:
    """``{key: client_id}`` for one attribution column, e.g. ``{"C123": 4}`` for Slack channels;
    email domains are lower-cased. Loaders use it to fill ``client_id`` on synced rows."""
    _check(column, ATTRIBUTION_COLUMNS, "attribution column")
    key = sa.func.unnest(client.c[column]).label("key")
    rows = conn.execute(
        sa.select(key, client.c.id).where(client.c.agency_id == agency_id).order_by(client.c.id)
    ).all()
    out: dict[str, int] = {}
    for k, client_id in rows:
        k = k.lower() if column == "email_domains" else k
        if out.setdefault(k, client_id) != client_id:
            raise Conflict(f"{column} {k!r} is attributed to clients {out[k]} and {client_id}")
    return out


# --- integrations ---------------------------------------------------------------------------


def add_integration(
    conn: sa.Connection,
    agency_id: int,
    provider: str,
    name: str,
    client_id: int | None = None,
    external_account_id: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> int:
    """Register an integration (status ``connected``; credentials are stored separately)."""
    if not _PROVIDER_NAME.fullmatch(provider):
        raise Invalid(f"not a provider name: {provider!r}")
    find_agency(conn, agency_id)
    if client_id is not None:
        client_agency, client_name = _client_agency(conn, client_id)
        if client_agency != agency_id:
            raise Invalid(
                f"client {client_name!r} (id {client_id}) belongs to agency "
                f"{client_agency}, not {agency_id}"
            )
    new_id = conn.execute(
        insert(integration)
        .values(
            agency_id=agency_id,
            client_id=client_id,
            provider=provider,
            name=name.strip(),
            external_account_id=external_account_id,
            config=dict(config or {}),
        )
        .on_conflict_do_nothing()
        .returning(integration.c.id)
    ).scalar()
    if new_id is None:
        raise Conflict(f"integration {name!r} already exists in agency {agency_id}")
    return int(new_id)


def set_integration_status(
    conn: sa.Connection,
    integration_id: int,
    status: str,
    reason: str | None = None,
    *,
    actor: str = "system",
) -> None:
    """Move an integration between connected / needs_reauth / error / disabled (audited, since
    a status change decides whether the scheduler may sync it)."""
    _check(status, INTEGRATION_STATUSES, "status")
    before = get_integration(conn, integration_id)
    conn.execute(
        integration.update()
        .where(integration.c.id == integration_id)
        .values(status=status, status_reason=reason, updated_at=sa.func.now())
    )
    record_audit(
        conn,
        principal=actor,
        action="integration.status",
        outcome="ok",
        agency_id=before.agency_id,
        integration_id=integration_id,
        detail={"from": before.status, "to": status, "reason": reason},
    )


def _integration(row: Any) -> Integration:
    return Integration(
        id=row.id,
        agency_id=row.agency_id,
        client_id=row.client_id,
        provider=row.provider,
        name=row.name,
        status=row.status,
        status_reason=row.status_reason,
        config=dict(row.config or {}),
        external_account_id=row.external_account_id,
    )


_INTEGRATION_COLUMNS = [
    integration.c[n]
    for n in (
        "id",
        "agency_id",
        "client_id",
        "provider",
        "name",
        "status",
        "status_reason",
        "config",
        "external_account_id",
    )
]


def get_integration(conn: sa.Connection, integration_id: int) -> Integration:
    row = conn.execute(
        sa.select(*_INTEGRATION_COLUMNS).where(integration.c.id == integration_id)
    ).first()
    if row is None:
        raise NotFound(f"no integration with id {integration_id}")
    return _integration(row)


def list_integrations(
    conn: sa.Connection,
    agency_id: int | None = None,
    provider: str | None = None,
    status: str | None = None,
) -> list[Integration]:
    query = sa.select(*_INTEGRATION_COLUMNS).order_by(integration.c.id)
    if agency_id is not None:
        query = query.where(integration.c.agency_id == agency_id)
    if provider is not None:
        query = query.where(integration.c.provider == provider)
    if status is not None:
        query = query.where(integration.c.status == _check(status, INTEGRATION_STATUSES, "status"))
    return [_integration(row) for row in conn.execute(query)]
