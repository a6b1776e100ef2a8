"""Google's OAuth 2.0 token endpoint (``POST /token``) and the tokens it issued.

Shared by the Google emulators (Gmail now, Google Ads later): one :class:`GoogleOAuth` holds the
OAuth client, the refresh tokens of every grant ("subject" = a mailbox address or an Ads login)
and the short-lived access tokens, so an access token minted here authenticates wherever the
same store is consulted.

Google's behaviour, which the project's refresh logic must meet:

* ``grant_type=refresh_token`` answers ``access_token``, ``expires_in`` (3599), ``scope`` and
  ``token_type: Bearer`` -- and *no* new refresh token: Google does not rotate them;
* an unknown or revoked refresh token is HTTP 400 ``invalid_grant`` /
  "Token has been expired or revoked."; an unknown client or wrong secret is HTTP 401
  ``invalid_client``;
* revoking a grant (the user removed the app) kills its refresh token *and* its access tokens.

Lifetimes are in provider seconds, divided by the time scale -- but a scaled lifetime never
drops below :data:`MIN_SCALED_TTL` real seconds, because google-auth treats a token as expired
3 min 45 s early and would otherwise refresh before every single call.
"""

from __future__ import annotations

import base64
import binascii
import random
import string
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.ids import derive_key

__all__ = [
    "ACCESS_TOKEN_TTL",
    "MIN_SCALED_TTL",
    "AccessToken",
    "GoogleOAuth",
    "TokenError",
    "client_credentials",
]

ACCESS_TOKEN_TTL = 3599
MIN_SCALED_TTL = 240.0
_ALPHABET = string.ascii_letters + string.digits + "-_"


def client_credentials(params: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
    """``client_id``/``client_secret`` from the form (google-auth) or HTTP Basic auth."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return str(params.get("client_id", "")), str(params.get("client_secret", ""))


class TokenError(Exception):
    """A token endpoint failure: HTTP status, OAuth ``error`` and ``error_description``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description

    def payload(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class _Grant:
    subject: str
    scope: str
    revoked: bool = False


@dataclass
class AccessToken:
    subject: str
    expires_at: float  # epoch seconds
    revoked: bool = False

    def valid(self, now: float | None = None) -> bool:
        return not self.revoked and (now or time.time()) < self.expires_at


class GoogleOAuth:
    """The OAuth client of our app and every token issued for it (thread-safe)."""

    def __init__(
        self, seed: int = 0, *, time_scale: float = 1.0, access_token_ttl: float = ACCESS_TOKEN_TTL
    ) -> None:
        key = derive_key(seed, "google-oauth-client")
        self.client_id = f"{key % 10**12:012d}-{key:016x}.apps.googleusercontent.com"
        self.client_secret = f"GOCSPX-{derive_key(seed, 'google-secret'):016x}{key % 10**6:06d}"
        self.time_scale = time_scale
        self.access_token_ttl = access_token_ttl
        self._rng = random.Random(derive_key(seed, "google-tokens"))
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    @property
    def real_ttl(self) -> float:
        """Seconds an access token lives in real time (see the module docstring)."""
        scaled = self.access_token_ttl / self.time_scale
        if self.access_token_ttl <= MIN_SCALED_TTL:
            return self.access_token_ttl
        return max(MIN_SCALED_TTL, scaled)

    def _secret(self, length: int) -> str:
        return "".join(self._rng.choices(_ALPHABET, k=length))

    # -- issuing -----------------------------------------------------------------------
    def grant(self, subject: str, scope: str) -> str:
        """A new refresh token for ``subject`` (as after the consent screen)."""
        with self._lock:
            token = f"1//0{self._secret(99)}"
            self._grants[token] = _Grant(subject, scope)
        return token

    def issue_access_token(self, subject: str) -> tuple[str, AccessToken]:
        with self._lock:
            token = f"ya29.a0{self._secret(150)}"
            record = AccessToken(subject, time.time() + self.real_ttl)
            self._access[token] = record
        return token, record

    def token_endpoint(
        self, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """``POST /token``: the JSON answer, or :class:`TokenError`."""
        client_id, client_secret = client_credentials(params, headers)
        if client_id != self.client_id:
            raise TokenError(401, "invalid_client", "The OAuth client was not found.")
        if client_secret != self.client_secret:
            raise TokenError(401, "invalid_client", "Unauthorized")
        grant_type = str(params.get("grant_type") or "")
        if grant_type != "refresh_token":
            raise TokenError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        refresh_token = str(params.get("refresh_token") or "")
        if not refresh_token:
            raise TokenError(400, "invalid_request", "Missing required parameter: refresh_token")
        with self._lock:
            grant = self._grants.get(refresh_token)
        if grant is None or grant.revoked:
            raise TokenError(400, "invalid_grant", "Token has been expired or revoked.")
        token, record = self.issue_access_token(grant.subject)
        return {
            "access_token": token,
            "expires_in": max(1, round(record.expires_at - time.time())),
            "scope": grant.scope,
            "token_type": "Bearer",
        }

    # -- checking and revoking ---------------------------------------------------------
    def authenticate(self, access_token: str) -> str | None:
        """The subject of a valid (known, unexpired, unrevoked) access token, else None."""
        with self._lock:
            record = self._access.get(access_token)
        return record.subject if record is not None and record.valid() else None

    def expire(self, access_token: str) -> None:
        with self._lock:
            record = self._access.get(access_token)
            if record is not None:
                record.expires_at = time.time() - 1

    def expire_subject(self, subject: str) -> None:
        """Every access token of ``subject`` is expired now (refresh tokens stay good)."""
        with self._lock:
            for access in self._access.values():
                if access.subject == subject:
                    access.expires_at = min(access.expires_at, time.time() - 1)

    def revoke_token(self, token: str) -> None:
        """Revoke whatever grant ``token`` (access or refresh) belongs to, as Google's
        revoke endpoint does: the refresh token and every access token of that subject."""
        with self._lock:
            record = self._access.get(token) or self._grants.get(token)
            subject = record.subject if record is not None else None
        if subject is not None:
            self.revoke_subject(subject)

    def revoke_subject(self, subject: str) -> None:
        with self._lock:
            for grant in self._grants.values():
                if grant.subject == subject:
                    grant.revoked = True
            for access in self._access.values():
                if access.subject == subject:
                    access.revoked = True

    def expires_at_iso(self, record: AccessToken) -> str:
        return datetime.fromtimestamp(record.expires_at, UTC).isoformat()
