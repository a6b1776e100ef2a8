"""The connect flow's steps, shared by the web service and the command line.

:meth:`ConnectService.summarize` says what a verified connect link will do (the page a person
reads before continuing); :meth:`ConnectService.begin` turns a verified connect link into an authorization URL (RBAC,
a signed single-use state, its nonce and PKCE verifier stored); :meth:`ConnectService.complete`
turns the provider's redirect into an integration (state verified and spent, RBAC again, code
exchanged server-side, scopes checked, account identified, tokens into the vault, integration
upserted by external account). :func:`disconnect` and :func:`reconnect_with_bundle` are the
administrative verbs. Every refusal is a :class:`ConnectRefused` and an ``audit_event``; no
refusal message, log line or audit row holds a token, a code or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors import oauth, registry
from connectors.common import Secret
from db import connect as store
from db import schema, tenancy
from db.connect_tokens import (
    BadToken,
    ConnectClaims,
    mint_state,
    read_link,
    read_state,
    sign_state,
)
from db.rbac import Action, PermissionDenied, authorize
from db.vault import CredentialMissing, Vault

__all__ = [
    "ConnectRefused",
    "ConnectService",
    "Connected",
    "LinkSummary",
    "Reprompt",
    "disconnect",
    "reconnect_with_bundle",
]

log = logging.getLogger("aos_sync.connect")
MAX_REPROMPTS = 1


class ConnectRefused(Exception):
    """The flow stopped; ``reason`` is a stable code, the message a sentence for a person."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Connected:
    integration_id: int
    created: bool
    name: str
    provider: str
    account: str
    accounts: tuple[str, ...] = ()
    previous_status: str | None = None
    agency: str = ""  # the name of the agency the account joined


@dataclass(frozen=True)
class LinkSummary:
    """What a connect link will do, in names a person recognises."""

    agency: str
    principal: str  # who asked (the link's subject)
    provider: str  # its title
    client: str | None  # None: agency-wide
    integration: str | None  # set when the link reconnects an existing integration
    reads: tuple[str, ...]  # the streams that will be synced
    scopes: tuple[str, ...]  # the permissions the consent screen will ask for


@dataclass(frozen=True)
class Reprompt:
    """Google answered without a refresh token: send the browser to consent again."""

    url: str


@dataclass
class ConnectService:
    engine: sa.Engine
    key: bytes
    vault: Vault
    source: oauth.SettingsSource = field(default_factory=oauth.SettingsSource)

    # -- start ---------------------------------------------------------------------------
    def read_link(self, provider: str, token: str) -> ConnectClaims:
        try:
            claims = read_link(self.key, token)
        except BadToken as exc:
            self._audit(exc.claims, provider, "link_refused", exc.reason)
            raise ConnectRefused(
                "bad_link", f"this connect link is not valid: {exc.reason}"
            ) from None
        if claims.provider != provider:
            self._audit(claims, provider, "link_refused", "link for another provider")
            raise ConnectRefused("bad_link", f"this connect link is for {claims.provider}")
        return claims

    def summarize(self, link: ConnectClaims) -> LinkSummary:
        """The link's agency, client, integration and what will be read, once RBAC allows it
        (the same check as :meth:`begin`): the page shown before the provider's consent."""
        self._authorize(link)
        with self.engine.connect() as conn:
            agency = tenancy.find_agency(conn, link.agency_id).name
            client = None
            if link.client_id is not None:
                client = conn.execute(
                    sa.select(schema.client.c.name).where(schema.client.c.id == link.client_id)
                ).scalar()
            integration = None
            if link.integration_id is not None:
                integ = tenancy.get_integration(conn, link.integration_id)
                integration = f"{integ.name} (#{integ.id})"
        entry = registry.get(link.provider)
        return LinkSummary(
            agency,
            link.principal,
            entry.title,
            client,
            integration,
            entry.streams,
            oauth.CLIENTS[link.provider].required_scopes,
        )

    def begin(
        self, link: ConnectClaims, *, browser: str, redirect_uri: str, attempt: int = 0
    ) -> str:
        """The provider's authorization URL for one consent screen (see the module docstring)."""
        client = oauth.client(link.provider, self.source)
        self._authorize(link)
        state = mint_state(link)
        verifier, challenge = oauth.pkce_pair() if client.uses_pkce else (None, "")
        url = client.authorization_url(
            state=sign_state(self.key, state), redirect_uri=redirect_uri, challenge=challenge
        )
        with self.engine.begin() as conn:
            store.save_state(
                conn,
                state,
                browser=browser,
                redirect_uri=redirect_uri,
                code_verifier=verifier,
                attempt=attempt,
            )
        return url

    # -- callback ------------------------------------------------------------------------
    def complete(
        self, provider: str, params: Mapping[str, str], *, browser: str
    ) -> Connected | Reprompt:
        try:
            claims = read_state(self.key, params.get("state", ""))
        except BadToken as exc:
            self._audit(exc.claims, provider, "state_refused", exc.reason)
            raise ConnectRefused(
                "bad_state", f"this sign-in cannot be used: {exc.reason}"
            ) from None
        if claims.provider != provider:
            self._audit(claims, provider, "state_refused", "state of another provider")
            raise ConnectRefused("bad_state", "this sign-in was started for another provider")
        try:
            with self.engine.begin() as conn:
                stored = store.consume_state(conn, claims, browser=browser)
        except store.StateRefused as exc:
            self._audit(claims, provider, exc.reason, str(exc))
            raise ConnectRefused(exc.reason, str(exc)) from None
        if params.get("error"):
            error = params["error"][:100]
            self._audit(claims, provider, "consent_denied", error)
            raise ConnectRefused(
                "consent_denied",
                f"access was not granted ({error}); nothing was connected",
            )
        self._authorize(claims)
        code = params.get("code", "")
        if not code:
            self._audit(claims, provider, "no_code", "the provider sent no code")
            raise ConnectRefused("no_code", "the provider sent no authorization code")
        client = oauth.client(provider, self.source)
        try:
            grant = client.exchange(
                code=Secret(code),
                redirect_uri=stored.redirect_uri,
                verifier=Secret(stored.code_verifier) if stored.code_verifier else None,
            )
        except oauth.NoRefreshToken as exc:
            if stored.attempt < MAX_REPROMPTS:
                self._audit(claims, provider, "reprompt", str(exc), outcome="retry")
                url = self.begin(
                    claims,
                    browser=browser,
                    redirect_uri=stored.redirect_uri,
                    attempt=stored.attempt + 1,
                )
                return Reprompt(url)
            self._audit(claims, provider, exc.code, str(exc))
            raise ConnectRefused(exc.code, f"{exc}; nothing was connected") from None
        except oauth.OAuthError as exc:
            self._audit(claims, provider, exc.code, str(exc))
            raise ConnectRefused(exc.code, f"{exc}; nothing was connected") from None
        identity = grant.identity
        try:
            with self.engine.begin() as conn:
                done = store.attach(
                    conn,
                    self.vault,
                    agency_id=claims.agency_id,
                    provider=provider,
                    external_account_id=identity.external_account_id,
                    aliases=identity.aliases,
                    display=identity.display,
                    client_id=claims.client_id,
                    integration_id=claims.integration_id,
                    bundle=dict(grant.bundle),
                    expires_at=grant.expires_at,
                    actor=claims.principal,
                    detail={"scopes": list(grant.scopes), "accounts": list(identity.accounts)},
                )
        except tenancy.TenancyError as exc:
            self._audit(claims, provider, "account_refused", str(exc))
            raise ConnectRefused("account_refused", str(exc), status=409) from None
        with self.engine.connect() as conn:
            agency = tenancy.find_agency(conn, claims.agency_id).name
        return Connected(
            done.integration_id,
            done.created,
            done.name,
            provider,
            identity.display,
            identity.accounts,
            done.previous_status,
            agency,
        )

    # -- helpers -------------------------------------------------------------------------
    def _authorize(self, claims: ConnectClaims) -> None:
        """Connect = owner or admin of the agency (of the integration, when reconnecting)."""
        try:
            if claims.client_id is not None:
                with self.engine.connect() as conn:
                    tenancy.find_client(conn, claims.agency_id, claims.client_id)
            if claims.integration_id is not None:
                authorize(self.engine, claims.principal, Action.CONNECT, claims.integration_id)
                with self.engine.connect() as conn:
                    integ = tenancy.get_integration(conn, claims.integration_id)
                if integ.agency_id != claims.agency_id or integ.provider != claims.provider:
                    raise tenancy.Invalid("the integration is not one of this agency/provider")
            else:
                authorize(self.engine, claims.principal, Action.CONNECT, agency_id=claims.agency_id)
        except PermissionDenied as exc:
            raise ConnectRefused("permission_denied", str(exc), status=403) from None
        except tenancy.TenancyError as exc:
            self._audit(claims, claims.provider, "bad_target", str(exc))
            raise ConnectRefused("bad_target", str(exc)) from None

    def _audit(
        self,
        claims: ConnectClaims | None,
        provider: str,
        reason: str,
        detail: str,
        *,
        outcome: str = "denied",
    ) -> None:
        audit(self.engine, claims, provider, reason, detail, outcome=outcome)


def audit(
    engine: sa.Engine,
    claims: ConnectClaims | None,
    provider: str,
    reason: str,
    detail: str,
    *,
    outcome: str = "denied",
) -> None:
    """One ``connect.refused`` (or ``connect.retry``) audit row, committed at once. A refusal
    whose signature did not verify is recorded with principal ``(unverified)`` and no agency:
    nothing it claims is believed."""
    agency_id = None
    if claims is not None:
        with engine.connect() as conn:
            try:
                agency_id = tenancy.find_agency(conn, claims.agency_id).id
            except tenancy.NotFound:
                agency_id = None
    with engine.begin() as conn:
        tenancy.record_audit(
            conn,
            principal=claims.principal[:200] if claims else "(unverified)",
            action="connect.refused" if outcome == "denied" else "connect.retry",
            outcome=outcome,
            agency_id=agency_id,
            integration_id=claims.integration_id if claims else None,
            detail={"provider": provider[:50], "reason": reason, "detail": detail[:500]},
        )
    log.info("connect %s: %s (%s)", provider[:50], reason, outcome)


# -- administration -----------------------------------------------------------------------
def disconnect(
    engine: sa.Engine,
    vault: Vault,
    integration_id: int,
    principal: str,
    *,
    purge: bool = False,
    source: oauth.SettingsSource | None = None,
) -> dict[str, Any]:
    """Revoke at the provider, destroy the credential, mark the integration ``disabled`` and,
    with ``purge``, delete its synced rows and cursors. RBAC: disconnect = owner or admin."""
    authorize(engine, principal, Action.DISCONNECT, integration_id)
    with engine.begin() as conn:
        integ = tenancy.get_integration(conn, integration_id)
        revoked: str
        try:
            bundle = vault.get(conn, integration_id)
        except CredentialMissing:
            bundle = None
        if bundle is None:
            revoked = "no credential stored"
        elif integ.provider not in oauth.CLIENTS:
            revoked = "not revocable here"
        else:
            try:
                done = oauth.client(integ.provider, source).revoke(bundle)
                revoked = "revoked" if done else "already invalid at the provider"
            except oauth.OAuthError as exc:
                revoked = f"revocation failed ({exc})"
        had_credential = store.forget_credentials(conn, integration_id)
        purged = store.purge_synced_rows(engine, integ.agency_id, integration_id) if purge else {}
        tenancy.set_integration_status(
            conn, integration_id, "disabled", f"disconnected by {principal}", actor=principal
        )
        tenancy.record_audit(
            conn,
            principal=principal,
            action="integration.disconnect",
            outcome="ok",
            agency_id=integ.agency_id,
            integration_id=integration_id,
            detail={
                "provider": integ.provider,
                "revocation": revoked,
                "credential_destroyed": had_credential,
                "purged": purged,
            },
        )
    return {
        "integration_id": integration_id,
        "status": "disabled",
        "revocation": revoked,
        "credential_destroyed": had_credential,
        "purged_rows": sum(purged.values()),
    }


def reconnect_with_bundle(
    engine: sa.Engine,
    vault: Vault,
    integration_id: int,
    bundle: Mapping[str, Any],
    *,
    principal: str,
    source: oauth.SettingsSource | None = None,
) -> store.Attached:
    """New credentials pasted for an existing integration: stored only when they belong to the
    integration's own external account (identified at the provider)."""
    with engine.connect() as conn:
        integ = tenancy.get_integration(conn, integration_id)
    try:
        identity = oauth.client(integ.provider, source).identify(bundle)
    except oauth.OAuthError as exc:
        _refuse_reconnect(engine, integ, principal, exc.code, str(exc))
        raise ConnectRefused(exc.code, f"{exc}; nothing was changed") from None
    try:
        with engine.begin() as conn:
            return store.attach(
                conn,
                vault,
                agency_id=integ.agency_id,
                provider=integ.provider,
                external_account_id=identity.external_account_id,
                aliases=identity.aliases,
                display=identity.display,
                client_id=None,
                integration_id=integ.id,
                bundle=bundle,
                expires_at=None,
                actor=principal,
                detail={"via": "integration reconnect"},
            )
    except tenancy.TenancyError as exc:
        _refuse_reconnect(engine, integ, principal, "account_refused", str(exc))
        raise ConnectRefused("account_refused", str(exc), status=409) from None


def _refuse_reconnect(
    engine: sa.Engine, integ: tenancy.Integration, principal: str, reason: str, detail: str
) -> None:
    with engine.begin() as conn:
        tenancy.record_audit(
            conn,
            principal=principal,
            action="connect.refused",
            outcome="denied",
            agency_id=integ.agency_id,
            integration_id=integ.id,
            detail={"provider": integ.provider, "reason": reason, "detail": detail[:500]},
        )
