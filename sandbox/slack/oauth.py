"""Tokens, the app's client credentials, and ``oauth.v2.access``.

Slack token rotation is what the project's refresh logic must get right: a refresh hands out
a new ``xoxe.xoxb-`` access token (12 h) *and* a new ``xoxe-1-`` refresh token, and the old
refresh token is dead from then on. Reusing it -- e.g. two workers refreshing at once -- gets
``invalid_refresh_token``, which is exactly the failure a row lock in the vault prevents.
The old access token stays valid until it expires, as on Slack.

:class:`SlackConsent` is the install screen (``GET /oauth/v2/authorize``): the test user's
answer comes from its knobs (:mod:`sandbox.consent`; ``user`` is the team id of the workspace
the browser is signed into), the code it hands out is bound to the ``redirect_uri`` and to the
scopes granted, and ``auth.revoke`` uninstalls the app as Slack does (every token of the
workspace answers ``token_revoked`` from then on).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.consent import (
    CodeBook,
    ConsentKnobs,
    PendingCode,
    consent_page,
    error_page,
    redirect,
)
from sandbox.protocol import Response

__all__ = [
    "ACCESS_TOKEN_TTL",
    "BOT_SCOPES",
    "OAuthError",
    "AUTHORIZE_PATH",
    "SlackApp",
    "SlackConsent",
    "TokenRecord",
    "TokenStore",
    "client_credentials",
    "oauth_v2_access",
]

ACCESS_TOKEN_TTL = 43_200
AUTHORIZE_PATH = "/oauth/v2/authorize"
BOT_SCOPES = "channels:history,channels:join,channels:read,groups:history,groups:read,team:read,users:read,users:read.email"


class OAuthError(Exception):
    """An ``oauth.v2.access`` failure; the message is Slack's error code."""


@dataclass(frozen=True)
class SlackApp:
    """The one app (ours) installed in every emulated workspace."""

    app_id: str
    client_id: str
    client_secret: str


@dataclass
class TokenRecord:
    team_id: str
    kind: str  # "access" or "refresh"
    expires_at: float | None = None  # epoch seconds; None for non-expiring bot tokens
    revoked: bool = False

    def check(self, now: float | None = None) -> str | None:
        """Slack's error code for this access token, or None when it may be used."""
        if self.revoked:
            return "token_revoked"
        if self.kind != "access":
            return "invalid_auth"
        if self.expires_at is not None and (now or time.time()) >= self.expires_at:
            return "token_expired"
        return None


class TokenStore:
    """Every token the emulator ever issued, across workspaces."""

    def __init__(self) -> None:
        self._records: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()

    def issue(self, token: str, record: TokenRecord) -> str:
        with self._lock:
            self._records[token] = record
        return token

    def get(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._records.get(token)

    def consume(self, token: str, kind: str) -> TokenRecord | None:
        """Remove and return a one-use token (a refresh token or an OAuth code)."""
        with self._lock:
            record = self._records.get(token)
            if record is None or record.kind != kind or record.revoked:
                return None
            del self._records[token]
            return record

    def revoke(self, token: str) -> None:
        with self._lock:
            if token in self._records:
                self._records[token].revoked = True

    def revoke_team(self, team_id: str) -> None:
        with self._lock:
            for record in self._records.values():
                if record.team_id == team_id:
                    record.revoked = True


def client_credentials(params: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
    """``client_id``/``client_secret`` from HTTP Basic auth (preferred by Slack) or the form."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return str(params.get("client_id", "")), str(params.get("client_secret", ""))


def oauth_v2_access(
    app: SlackApp,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    redeem_code: Callable[[str], dict[str, Any] | None],
    rotate: Callable[[str], dict[str, Any] | None],
) -> dict[str, Any]:
    """Exchange a code, or rotate a refresh token; raises :class:`OAuthError`."""
    client_id, client_secret = client_credentials(params, headers)
    if client_id != app.client_id:
        raise OAuthError("invalid_client_id")
    if client_secret != app.client_secret:
        raise OAuthError("bad_client_secret")
    grant_type = str(params.get("grant_type") or "authorization_code")
    if grant_type == "refresh_token":
        result = rotate(str(params.get("refresh_token", "")))
        if result is None:
            raise OAuthError("invalid_refresh_token")
        return result
    if grant_type != "authorization_code":
        raise OAuthError("invalid_grant_type")
    result = redeem_code(str(params.get("code", "")))
    if result is None:
        raise OAuthError("invalid_code")
    return result


class SlackConsent:
    """The install screen and the revocation of installs."""

    def __init__(self, app: SlackApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens
        self.knobs = ConsentKnobs()
        self.codes = CodeBook("")
        self.revoked: list[str] = []  # team ids whose install ``auth.revoke`` removed

    def authorize(self, params: Mapping[str, Any], teams: Mapping[str, Any]) -> Response:
        self.knobs.screens += 1
        if str(params.get("client_id") or "") != self.app.client_id:
            return error_page(400, "Invalid client_id parameter", "no such app")
        uri = str(params.get("redirect_uri") or "")
        if not self.knobs.accepts(uri):
            return error_page(400, "redirect_uri did not match any configured URIs", uri)
        state = str(params.get("state") or "")
        back = {"state": state} if state else {}
        deny, team = self.knobs.answer(params)
        bot = [x for x in str(params.get("scope") or "").split(",") if x]
        if not deny and team is None:
            choices = [(t, getattr(ws, "name", t)) for t, ws in teams.items()]
            return consent_page("AudienceOS Sync", params, choices, bot)
        if deny or team not in teams:
            return redirect(uri, {"error": "access_denied", **back})
        user = [x for x in str(params.get("user_scope") or "").split(",") if x]
        granted = [x for x in bot if x not in self.knobs.withhold]
        granted_user = [x for x in user if x not in self.knobs.withhold]
        code = self.codes.issue(
            PendingCode(
                str(team),
                self.app.client_id,
                uri,
                tuple(granted),
                extra={"user_scope": ",".join(granted_user)},
            )
        )
        code = f"{str(team)[1:]}.{code}"
        return redirect(uri, back | {"code": code})

    def exchange(
        self, code: str, params: Mapping[str, Any], install: Callable[[str], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """``oauth.v2.access`` for a code of this screen: ``install(team_id)`` issues the bot
        token; the answer is narrowed to what was granted. ``None``: not one of our codes."""
        pending = self.codes.redeem(code.partition(".")[2]) if "." in code else None
        if pending is None:
            return None
        if str(params.get("redirect_uri") or "") != pending.redirect_uri:
            raise OAuthError("bad_redirect_uri")
        answer = install(pending.subject)
        answer["scope"] = ",".join(pending.scopes)
        if pending.extra.get("user_scope"):
            user_token = "xoxp-" + code.rpartition(".")[2][:40]
            self.tokens.issue(user_token, TokenRecord(pending.subject, "access"))
            answer["authed_user"] = {
                **answer.get("authed_user", {}),
                "scope": pending.extra["user_scope"],
                "access_token": user_token,
                "token_type": "user",
            }
        return answer

    def revoke(self, token: str) -> dict[str, Any]:
        """``auth.revoke``: the app is uninstalled from the token's workspace."""
        record = self.tokens.get(token) if token else None
        if record is None:
            return {"ok": False, "error": "invalid_auth"}
        if record.revoked:
            return {"ok": False, "error": "token_revoked"}
        self.tokens.revoke_team(record.team_id)
        self.revoked.append(record.team_id)
        return {"ok": True, "revoked": True}
