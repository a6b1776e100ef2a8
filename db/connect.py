"""Connecting accounts: consent screens in flight, and integrations keyed by external account.

* :func:`save_state` / :func:`consume_state`: the server side of an OAuth state. The row holds
  the PKCE verifier (never put in the URL) and the hash of the browser-binding cookie; the first
  callback presenting the nonce from the right browser spends it, atomically, so a replay, a
  state opened in another browser or one never issued here is refused, each with its reason.
* :func:`attach`: tokens for an external account become an integration's credentials. The
  integration is found by (agency, provider, external account) -- a unique index -- so
  connecting the same account again replaces its credentials, clears ``needs_reauth`` and keeps
  its id and history, and never adds a twin; credentials of a *different* account are never
  attached to an existing integration (:class:`AccountMismatch`).

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db import locks, tenancy
from db.connect_tokens import ConnectClaims
from db.schema import (
    connect_state,
    integration,
    integration_credential,
)
from db.vault import Vault

__all__ = [
    "AccountMismatch",
    "Attached",
    "StateRefused",
    "StoredState",
    "attach",
    "browser_hash",
    "consume_state",
    "forget_credentials",
    "purge_synced_rows",
    "save_state",
]

#: Spent and expired rows are deleted this long after expiry (a late replay still reads
#: "already used" rather than "unknown" for a while, which is the clearer answer).
PRUNE_AFTER = timedelta(hours=1)
_PRUNE_BATCH = 500


class StateRefused(Exception):
    """The state cannot be used; ``reason`` is one of ``replayed``, ``other_browser``,
    ``unknown``, ``mismatch`` with a sentence for the page as the message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AccountMismatch(tenancy.Conflict):
    """The tokens belong to another external account than the integration's."""


@dataclass(frozen=True)
class StoredState:
    claims: ConnectClaims
    redirect_uri: str
    code_verifier: str | None
    attempt: int


@dataclass(frozen=True)
class Attached:
    integration_id: int
    created: bool
    previous_status: str | None
    name: str


def browser_hash(cookie_value: str) -> str:
    """What is stored of the browser-binding cookie: its SHA-256, never the value."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def save_state(
    conn: sa.Connection,
    claims: ConnectClaims,
    *,
    browser: str,
    redirect_uri: str,
    code_verifier: str | None,
    attempt: int = 0,
) -> None:
    stale = (
        sa.select(connect_state.c.nonce)
        .where(connect_state.c.expires_at < sa.func.now() - PRUNE_AFTER)
        .limit(_PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    conn.execute(connect_state.delete().where(connect_state.c.nonce.in_(stale.scalar_subquery())))
    conn.execute(
        insert(connect_state).values(
            nonce=claims.nonce,
            agency_id=claims.agency_id,
            client_id=claims.client_id,
            integration_id=claims.integration_id,
            provider=claims.provider,
            principal=claims.principal,
            browser=browser_hash(browser),
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            attempt=attempt,
            expires_at=claims.expires_at,
        )
    )


def consume_state(conn: sa.Connection, claims: ConnectClaims, *, browser: str) -> StoredState:
    """Spend the state's row, or raise :class:`StateRefused` saying why not."""
    spent = conn.execute(
        connect_state.update()
        .where(
            connect_state.c.nonce == claims.nonce,
            connect_state.c.used_at.is_(None),
            connect_state.c.browser == browser_hash(browser),
        )
        .values(used_at=sa.func.now())
        .returning(connect_state)
    ).first()
    if spent is None:
        row = conn.execute(
            sa.select(connect_state.c.used_at, connect_state.c.browser).where(
                connect_state.c.nonce == claims.nonce
            )
        ).first()
        if row is None:
            raise StateRefused("unknown", "this sign-in link was not issued by this service")
        if row.used_at is not None:
            raise StateRefused("replayed", "this sign-in link was already used")
        raise StateRefused(
            "other_browser", "this sign-in was started in another browser; start again here"
        )
    stored = (
        spent.provider,
        spent.agency_id,
        spent.client_id,
        spent.integration_id,
        spent.principal,
    )
    signed = (
        claims.provider,
        claims.agency_id,
        claims.client_id,
        claims.integration_id,
        claims.principal,
    )
    if not hmac.compare_digest(repr(stored).encode(), repr(signed).encode()):
        raise StateRefused("mismatch", "this sign-in link does not match its record")
    return StoredState(claims, spent.redirect_uri, spent.code_verifier, spent.attempt)


def _find(
    conn: sa.Connection, agency_id: int, provider: str, ids: Sequence[str]
) -> tenancy.Integration | None:
    found = conn.execute(
        sa.select(integration.c.id)
        .where(
            integration.c.agency_id == agency_id,
            integration.c.provider == provider,
            integration.c.external_account_id.in_(list(ids)),
        )
        .order_by(integration.c.id)
        .limit(1)
    ).scalar()
    return None if found is None else tenancy.get_integration(conn, int(found))


def attach(
    conn: sa.Connection,
    vault: Vault,
    *,
    agency_id: int,
    provider: str,
    external_account_id: str,
    aliases: Sequence[str] = (),
    display: str,
    client_id: int | None,
    integration_id: int | None,
    bundle: Mapping[str, Any],
    expires_at: datetime | None,
    actor: str,
    detail: Mapping[str, Any] | None = None,
) -> Attached:
    """Store ``bundle`` as the credentials of the account's integration (see the module
    docstring). ``integration_id`` names the integration being reconnected, when known."""
    ids = [external_account_id, *aliases]
    # one attach per (agency, provider, account) at a time
    locks.xact_lock(conn, f"connect:{agency_id}:{provider}:{external_account_id}")
    target = _find(conn, agency_id, provider, ids)
    if integration_id is not None:
        asked = tenancy.get_integration(conn, integration_id)
        if asked.agency_id != agency_id or asked.provider != provider:
            raise tenancy.Invalid(f"integration {integration_id} is not a {provider} one here")
        if asked.external_account_id is not None and asked.external_account_id not in ids:
            raise AccountMismatch(
                f"these credentials belong to {provider} account {external_account_id}, but "
                f"integration {integration_id} is connected to {asked.external_account_id}; "
                "nothing was changed"
            )
        if target is not None and target.id != asked.id:
            raise AccountMismatch(
                f"{provider} account {external_account_id} is already connected as "
                f"integration {target.id}; nothing was changed"
            )
        target = asked
    if target is not None and client_id is not None and target.client_id != client_id:
        raise tenancy.Conflict(
            f"{provider} account {external_account_id} is connected as integration {target.id} "
            f"of another client; nothing was changed"
        )
    created = target is None
    if target is None:
        new_id = tenancy.add_integration(
            conn,
            agency_id,
            provider,
            _free_name(conn, agency_id, f"{provider} {display}"),
            client_id=client_id,
            external_account_id=external_account_id,
        )
        target = tenancy.get_integration(conn, new_id)
    elif target.external_account_id is None:
        conn.execute(
            integration.update()
            .where(integration.c.id == target.id)
            .values(external_account_id=external_account_id)
        )
    vault.put(conn, target.id, bundle, expires_at)
    if not created and target.status != "connected":
        tenancy.set_integration_status(conn, target.id, "connected", actor=actor)
    tenancy.record_audit(
        conn,
        principal=actor,
        action="integration.connect",
        outcome="ok",
        agency_id=agency_id,
        integration_id=target.id,
        detail={
            "provider": provider,
            "external_account_id": external_account_id,
            "created": created,
            "previous_status": None if created else target.status,
            **(detail or {}),
        },
    )
    return Attached(target.id, created, None if created else target.status, target.name)


def _free_name(conn: sa.Connection, agency_id: int, wanted: str) -> str:
    taken = set(
        conn.execute(
            sa.select(integration.c.name).where(
                integration.c.agency_id == agency_id, integration.c.name.like(f"{wanted}%")
            )
        ).scalars()
    )
    name, n = wanted, 1
    while name in taken:
        n += 1
        name = f"{wanted} ({n})"
    return name


def forget_credentials(conn: sa.Connection, integration_id: int) -> bool:
    """Delete the stored credential (the ciphertext row); True when there was one."""
    gone = conn.execute(
        integration_credential.delete()
        .where(integration_credential.c.integration_id == integration_id)
        .returning(integration_credential.c.integration_id)
    ).first()
    return gone is not None


def purge_synced_rows(control: sa.Engine, agency_id: int, integration_id: int) -> dict[str, int]:
    """Drop every partition of the integration in the agency's database (its synced rows), its
    cursors and its rejects; returns the rows each held. The run ledger and the audit log stay."""
    from db.agencydb import drop_partitions, engine_for

    with engine_for(control, agency_id).begin() as conn:
        return drop_partitions(conn, integration_id)
