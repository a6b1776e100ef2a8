"""What every provider's consent flow shares: settings, PKCE, the grant, typed refusals, HTTP.

A provider module (``slack``, ``google``, ``meta``) is an :class:`OAuthClient`: it builds the
authorization request, exchanges the code server-side, checks the granted scopes, identifies the
external account the tokens belong to, and revokes. It knows nothing of agencies, state or the
database: the connect service (``deployments/connect_service.py``) joins it to those.

Secrets (client secrets, codes, tokens) travel as :class:`~connectors.common.Secret` or inside a
:class:`Grant`, whose ``repr`` shows no value; no exception raised here quotes one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from connectors.common import Secret

__all__ = [
    "CONNECT_BASE_URL_ENV",
    "ConsentDenied",
    "ExchangeFailed",
    "Grant",
    "Identity",
    "IdentifyFailed",
    "NoRefreshToken",
    "NotConfigured",
    "OAuthClient",
    "OAuthError",
    "ScopesMissing",
    "SettingsSource",
    "pkce_pair",
]

CONNECT_BASE_URL_ENV = "AOS_CONNECT_BASE_URL"
TIMEOUT_SECONDS = 30.0


class OAuthError(Exception):
    """A consent flow that cannot complete. ``code`` is short and stable (for audit rows and
    tests); the message is for the person connecting and never quotes a secret."""

    code = "oauth_error"


class NotConfigured(OAuthError):
    code = "not_configured"


class ConsentDenied(OAuthError):
    code = "consent_denied"


class ScopesMissing(OAuthError):
    code = "scopes_missing"

    def __init__(self, provider: str, missing: tuple[str, ...]) -> None:
        super().__init__(
            f"the {provider} grant is missing the permission(s) {', '.join(missing)}; "
            "connect again and leave every requested permission ticked"
        )
        self.missing = missing


class NoRefreshToken(OAuthError):
    code = "no_refresh_token"


class ExchangeFailed(OAuthError):
    code = "exchange_failed"


class IdentifyFailed(OAuthError):
    code = "identify_failed"


@dataclass(frozen=True)
class Identity:
    """The external account tokens belong to. ``external_account_id`` keys the integration;
    ``aliases`` are other ids that name the same account (a Meta user's businesses, which
    integrations added by hand were keyed by); ``accounts`` what the grant reaches (Google Ads
    customers, Meta ad accounts), shown to the person and audited."""

    external_account_id: str
    display: str
    aliases: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    def names(self, account_id: str | None) -> bool:
        return account_id is not None and account_id in (self.external_account_id, *self.aliases)


@dataclass(frozen=True)
class Grant:
    """What a successful consent produced: the bundle to encrypt, and whose it is."""

    bundle: Mapping[str, Any] = field(repr=False)
    identity: Identity
    scopes: tuple[str, ...]
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.bundle))
        return f"Grant(identity={self.identity!r}, scopes={self.scopes!r}, bundle keys=[{keys}])"


def pkce_pair() -> tuple[str, str]:
    """``(verifier, S256 challenge)`` (RFC 7636: 43-128 unreserved characters)."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# (environment variable name) -> value, e.g. a Prefect Secret block lookup
SecretLookup = Callable[[str], str | None]


@dataclass
class SettingsSource:
    """Connect settings: the environment first, then ``lookup`` (the connect service passes a
    Prefect Secret block lookup), then the default. Never the request."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    lookup: SecretLookup | None = None

    def get(self, name: str, default: str = "") -> str:
        value = self.env.get(name, "").strip()
        if not value and self.lookup is not None:
            value = (self.lookup(name) or "").strip()
        return value or default

    def require(self, name: str, why: str) -> str:
        value = self.get(name)
        if not value:
            raise NotConfigured(f"{name} is not set ({why})")
        return value

    def secret(self, name: str, why: str) -> Secret:
        return Secret(self.require(name, why))


class OAuthClient:
    """One provider's side of the authorization-code flow (see the module docstring)."""

    provider: str = ""
    uses_pkce: bool = False
    required_scopes: tuple[str, ...] = ()

    def __init__(self, source: SettingsSource | None = None) -> None:
        self.source = source or SettingsSource()

    def authorization_url(self, *, state: str, redirect_uri: str, challenge: str) -> str:
        raise NotImplementedError

    def exchange(self, *, code: Secret, redirect_uri: str, verifier: Secret | None) -> Grant:
        """Code -> tokens, scopes checked, account identified; raises :class:`OAuthError`."""
        raise NotImplementedError

    def identify(self, bundle: Mapping[str, Any]) -> Identity:
        """Whose stored (or pasted) credentials these are; raises :class:`IdentifyFailed`."""
        raise NotImplementedError

    def revoke(self, bundle: Mapping[str, Any]) -> bool:
        """Revoke at the provider: True when revoked now, False when already dead there."""
        raise NotImplementedError

    def _check_scopes(self, granted: tuple[str, ...]) -> None:
        missing = tuple(s for s in self.required_scopes if s not in granted)
        if missing:
            raise ScopesMissing(self.provider, missing)

    # -- HTTP ------------------------------------------------------------------------------
    def _call(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request; a network failure is an :class:`ExchangeFailed` naming ``what``."""
        try:
            with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
                return client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ExchangeFailed(
                f"{self.provider}: {what} failed ({type(exc).__name__}); try again"
            ) from None

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
