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

The consent side (``GET /o/oauth2/v2/auth``, ``grant_type=authorization_code``, ``POST /revoke``,
``GET /v1/userinfo``; :func:`handle_http`) follows Google's web-server flow: PKCE ``S256`` is
checked when the request carried a challenge, the code is single use and bound to its
``redirect_uri``, a refresh token is handed out only when the user saw the consent screen
(``prompt=consent``, or a first grant), and ``include_granted_scopes`` adds earlier grants' scopes.
The test user's answer is :attr:`GoogleOAuth.consent` (see :mod:`sandbox.consent`).

Lifetimes are in provider seconds, divided by the time scale -- but a scaled lifetime never
drops below :data:`MIN_SCALED_TTL` real seconds, because google-auth treats a token as expired
3 min 45 s early and would otherwise refresh before every single call.

Short-lived access tokens on request: an ``access_token_ttl`` of :data:`MIN_SCALED_TTL` or less
is taken as real seconds, unscaled (``expires_in`` says so too), so a test can have a token die
in the middle of a run, as a real one does an hour after it was issued ("Access tokens have
limited lifetimes", developers.google.com/identity/protocols/oauth2, "Refresh the access token,
if necessary"). Every Google emulator checks tokens here (:meth:`GoogleOAuth.refusal`) and
tells a token that outlived its lifetime from one that was revoked or never issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import string
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.consent import (
    CodeBook,
    ConsentKnobs,
    PendingCode,
    consent_page,
    error_page,
    redirect,
)
from sandbox.ids import derive_key
from sandbox.protocol import Request, Response, json_response

__all__ = [
    "ACCESS_TOKEN_TTL",
    "MIN_SCALED_TTL",
    "AccessToken",
    "GoogleOAuth",
    "TokenError",
    "client_credentials",
    "handle_http",
    "oauth_env",
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
        self.consent = ConsentKnobs()
        self.codes = CodeBook("4/0A")
        self.revoked: list[str] = []  # subjects whose grant the revoke endpoint removed
        self.omit_refresh_tokens = 0  # the next n code exchanges answer without a refresh token

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
        if grant_type == "authorization_code":
            return self._exchange_code(params)
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

    # -- consent -----------------------------------------------------------------------
    def authorize(self, params: Mapping[str, Any]) -> Response:
        """``GET /o/oauth2/v2/auth``: the consent screen, answered by :attr:`consent`."""
        self.consent.screens += 1
        if str(params.get("client_id") or "") != self.client_id:
            return error_page(401, "Error 401: invalid_client", "The OAuth client was not found.")
        uri = str(params.get("redirect_uri") or "")
        if not self.consent.accepts(uri):
            return error_page(400, "Error 400: redirect_uri_mismatch", f"{uri!r} is not allowed")
        state = str(params.get("state") or "")
        back = {"state": state} if state else {}
        requested = tuple(str(params.get("scope") or "").split())
        if params.get("response_type") != "code" or not requested:
            return redirect(uri, {"error": "invalid_request", **back})
        method = str(params.get("code_challenge_method") or "")
        challenge = str(params.get("code_challenge") or "")
        if challenge and method != "S256":
            return redirect(uri, {"error": "invalid_request", **back})
        deny, subject = self.consent.answer(params)
        if not deny and subject is None:
            with self._lock:  # the Google accounts this emulator knows: its seeded logins
                known = sorted({g.subject for g in self._grants.values()})
            choices = [(s, s) for s in known]
            return consent_page("AudienceOS Sync", params, choices, requested)
        if deny or not subject:
            return redirect(uri, {"error": "access_denied", **back})
        granted = [s for s in requested if s not in self.consent.withhold]
        if str(params.get("include_granted_scopes") or "") == "true":
            with self._lock:
                earlier = [
                    scope
                    for g in self._grants.values()
                    if g.subject == subject and not g.revoked
                    for scope in g.scope.split()
                ]
            granted += [s for s in earlier if s not in granted]
        offline = params.get("access_type") == "offline"
        seen_consent = params.get("prompt") == "consent" or not self._has_grant(subject)
        code = self.codes.issue(
            PendingCode(
                subject,
                self.client_id,
                uri,
                tuple(granted),
                challenge,
                method,
                extra={"refresh": "1" if offline and seen_consent else ""},
            )
        )
        return redirect(uri, {"code": code, "scope": " ".join(granted), **back})

    def _has_grant(self, subject: str) -> bool:
        with self._lock:
            return any(g.subject == subject and not g.revoked for g in self._grants.values())

    def _exchange_code(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pending = self.codes.redeem(str(params.get("code") or ""))
        if pending is None:
            raise TokenError(400, "invalid_grant", "Malformed auth code.")
        if str(params.get("redirect_uri") or "") != pending.redirect_uri:
            raise TokenError(400, "redirect_uri_mismatch", "Bad Request")
        if pending.challenge:
            verifier = str(params.get("code_verifier") or "")
            if not verifier:
                raise TokenError(400, "invalid_request", "code_verifier is missing.")
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pending.challenge:
                raise TokenError(400, "invalid_grant", "Invalid code verifier.")
        scope = " ".join(pending.scopes)
        token, record = self.issue_access_token(pending.subject)
        answer: dict[str, Any] = {
            "access_token": token,
            "expires_in": max(1, round(record.expires_at - time.time())),
            "scope": scope,
            "token_type": "Bearer",
        }
        with self._lock:
            omit, self.omit_refresh_tokens = (
                self.omit_refresh_tokens > 0,
                max(0, self.omit_refresh_tokens - 1),
            )
        if pending.extra.get("refresh") and not omit:
            answer["refresh_token"] = self.grant(pending.subject, scope)
        return answer

    def revoke_endpoint(self, params: Mapping[str, Any]) -> Response:
        """``POST /revoke`` (``token=`` an access or refresh token)."""
        token = str(params.get("token") or "")
        with self._lock:
            record = self._access.get(token) or self._grants.get(token)
        if record is None or record.revoked:
            return json_response(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
            )
        self.revoke_subject(record.subject)
        with self._lock:
            self.revoked.append(record.subject)
        return json_response({})

    def userinfo(self, headers: Mapping[str, str]) -> Response:
        """``GET /v1/userinfo`` (OpenID Connect): who the bearer token belongs to."""
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        subject = self.authenticate(token) if token else None
        if subject is None:
            return json_response(
                {"error": "invalid_token", "error_description": "Invalid Credentials"}, 401
            )
        return json_response(
            {
                "sub": str(derive_key("google-user", subject)),
                "email": subject,
                "email_verified": True,
            }
        )

    # -- checking and revoking ---------------------------------------------------------
    def authenticate(self, access_token: str) -> str | None:
        """The subject of a valid (known, unexpired, unrevoked) access token, else None."""
        with self._lock:
            record = self._access.get(access_token)
        return record.subject if record is not None and record.valid() else None

    def refusal(self, access_token: str) -> str | None:
        """Why ``access_token`` is refused: ``"expired"`` (issued here, outlived its lifetime),
        ``"revoked"`` or ``"unknown"``; ``None`` when it is valid."""
        with self._lock:
            record = self._access.get(access_token)
        if record is None:
            return "unknown"
        if record.revoked:
            return "revoked"
        return None if record.valid() else "expired"

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


AUTHORIZE_PATH, REVOKE_PATH, USERINFO_PATH = "/o/oauth2/v2/auth", "/revoke", "/v1/userinfo"


def handle_http(oauth: GoogleOAuth, request: Request) -> Response | None:
    """The consent-side endpoints of ``oauth`` for an emulator's HTTP server; ``None`` when the
    request is not for one of them (``/token`` stays the caller's)."""
    if request.path == AUTHORIZE_PATH and request.verb == "GET":
        return oauth.authorize(request.params)
    if request.path == REVOKE_PATH and request.verb == "POST":
        return oauth.revoke_endpoint(request.params)
    if request.path == USERINFO_PATH and request.verb == "GET":
        return oauth.userinfo(request.headers)
    return None


def oauth_env(base_url: str, oauth: GoogleOAuth) -> dict[str, str]:
    """The connect settings pointing at these endpoints on ``base_url``, with ``oauth``'s
    client id and secret (one OAuth client for every Google product)."""
    return {
        "AOS_GOOGLE_CLIENT_ID": oauth.client_id,
        "AOS_GOOGLE_CLIENT_SECRET": oauth.client_secret,
        "AOS_GOOGLE_AUTHORIZE_URL": base_url + AUTHORIZE_PATH,
        "AOS_GOOGLE_REVOKE_URL": base_url + REVOKE_PATH,
        "AOS_GOOGLE_USERINFO_URL": base_url + USERINFO_PATH,
    }
