"""Slack: ``oauth/v2/authorize`` (bot ``scope`` and ``user_scope``), ``oauth.v2.access`` with
HTTP Basic client authentication, ``auth.test`` for the workspace, ``auth.revoke``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.common import Secret
from connectors.oauth.base import (
    ExchangeFailed,
    Grant,
    IdentifyFailed,
    Identity,
    OAuthClient,
    ScopesMissing,
)

__all__ = ["BOT_SCOPES", "SlackOAuth"]

AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
API_URL = "https://slack.com/api/"
#: What the Slack connector reads with: public and private channels the bot is in, their
#: history, joining public channels, users (with emails, to attribute messages) and the team.
BOT_SCOPES = (
    "channels:history",
    "channels:join",
    "channels:read",
    "groups:history",
    "groups:read",
    "team:read",
    "users:read",
    "users:read.email",
)


class SlackOAuth(OAuthClient):
    provider = "slack"
    required_scopes = BOT_SCOPES

    @property
    def api(self) -> str:
        return self.source.get("AOS_SLACK_API_URL", API_URL).rstrip("/") + "/"

    @property
    def user_scopes(self) -> tuple[str, ...]:
        """``AOS_SLACK_USER_SCOPES``: user-token scopes to ask for too (none by default: the
        connector reads as the bot)."""
        raw = self.source.get("AOS_SLACK_USER_SCOPES")
        return tuple(s.strip() for s in raw.split(",") if s.strip())

    def _client(self) -> tuple[str, Secret]:
        why = "the Slack app's credentials, from api.slack.com/apps"
        return (
            self.source.require("AOS_SLACK_CLIENT_ID", why),
            self.source.secret("AOS_SLACK_CLIENT_SECRET", why),
        )

    def authorization_url(self, *, state: str, redirect_uri: str, challenge: str) -> str:
        client_id, _ = self._client()
        params = {
            "client_id": client_id,
            "scope": ",".join(BOT_SCOPES),
            "user_scope": ",".join(self.user_scopes),
            "redirect_uri": redirect_uri,
            "state": state,
        }
        base = self.source.get("AOS_SLACK_AUTHORIZE_URL", AUTHORIZE_URL)
        return f"{base}?{urlencode(params)}"

    def exchange(self, *, code: Secret, redirect_uri: str, verifier: Secret | None) -> Grant:
        client_id, secret = self._client()
        body = self._json(
            self._call(
                "POST",
                self.api + "oauth.v2.access",
                "the code exchange",
                auth=(client_id, secret.reveal()),
                data={"code": code.reveal(), "redirect_uri": redirect_uri},
            )
        )
        if not body.get("ok") or not body.get("access_token"):
            raise ExchangeFailed(
                f"Slack refused the authorization code ({body.get('error') or 'no answer'})"
            )
        granted = tuple(s for s in str(body.get("scope") or "").split(",") if s)
        self._check_scopes(granted)
        user = body.get("authed_user") or {}
        user_granted = tuple(s for s in str(user.get("scope") or "").split(",") if s)
        missing_user = tuple(s for s in self.user_scopes if s not in user_granted)
        if missing_user:
            raise ScopesMissing(self.provider, missing_user)
        bundle: dict[str, Any] = {"access_token": body["access_token"], "scope": ",".join(granted)}
        expires_at = None
        if body.get("refresh_token"):  # token rotation is on: the refresher needs the client
            expires_at = datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 0))
            bundle |= {
                "refresh_token": body["refresh_token"],
                "expires_at": expires_at.isoformat(),
                "client_id": client_id,
                "client_secret": secret.reveal(),
            }
        if user.get("access_token"):
            bundle["user_access_token"] = user["access_token"]
        identity = self.identify(bundle)
        team = str((body.get("team") or {}).get("id") or "")
        if team and team != identity.external_account_id:
            raise IdentifyFailed("Slack's answer names two different workspaces")
        return Grant(bundle, identity, granted, expires_at)

    def identify(self, bundle: Mapping[str, Any]) -> Identity:
        body = self._auth_call("auth.test", bundle)
        if not body.get("ok") or not body.get("team_id"):
            raise IdentifyFailed(
                f"Slack did not say whose token this is ({body.get('error') or 'no answer'})"
            )
        return Identity(str(body["team_id"]), str(body.get("team") or body["team_id"]))

    def revoke(self, bundle: Mapping[str, Any]) -> bool:
        body = self._auth_call("auth.revoke", bundle)
        if body.get("ok"):
            return True
        if body.get("error") in ("token_revoked", "invalid_auth", "account_inactive"):
            return False
        raise ExchangeFailed(f"Slack did not revoke the token ({body.get('error') or 'no answer'})")

    def _auth_call(self, method: str, bundle: Mapping[str, Any]) -> dict[str, Any]:
        token = str(bundle.get("access_token") or "")
        if not token:
            raise IdentifyFailed("the credentials have no access_token")
        return self._json(
            self._call(
                "POST", self.api + method, method, headers={"Authorization": f"Bearer {token}"}
            )
        )
