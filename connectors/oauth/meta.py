"""Meta: the Facebook Login dialog, the code exchange for a short-lived user token, its scopes
checked with ``debug_token``, then ``fb_exchange_token`` for the long-lived (about 60 days)
token that is stored. Meta tokens have no refresh token: the expiry is stored and watched.

Facebook Login for Business (``AOS_META_CONFIG_ID`` set): the dialog is asked for a
*configuration* made in the App Dashboard (Facebook Login for Business > Configurations)
instead of ``scope``: ``config_id`` names it, and it fixes the token type, the assets and the
permissions, all of which the person must grant (Facebook Login for Business, "Requirements").
``response_type=code`` with ``override_default_response_type=true`` is what a configuration of
*system-user* tokens requires. The code is exchanged as in Facebook Login; a token that
``debug_token`` says never expires (``expires_at`` 0: a business integration system user's)
is stored as it is, with no expiry, and no ``fb_exchange_token`` (which is for user tokens,
"Get Long-Lived Access Tokens"); a configuration of user tokens goes on as above.

The external account is the Facebook user who consented (``/me``); the businesses the grant
covers are its aliases, so an integration that was added by hand under a business id is
recognised on reconnect."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.common import Secret
from connectors.oauth.base import ExchangeFailed, Grant, IdentifyFailed, Identity, OAuthClient

__all__ = ["API_VERSION", "MetaOAuth"]

API_VERSION = "v26.0"
DIALOG_URL = f"https://www.facebook.com/{API_VERSION}/dialog/oauth"
GRAPH_URL = "https://graph.facebook.com"
SCOPES = ("ads_read", "business_management")
CONFIG_ID_ENV = "AOS_META_CONFIG_ID"


class MetaOAuth(OAuthClient):
    provider = "meta_ads"
    required_scopes = SCOPES

    @property
    def graph(self) -> str:
        return self.source.get("AOS_META_GRAPH_URL", GRAPH_URL).rstrip("/") + f"/{API_VERSION}/"

    def _client(self) -> tuple[str, Secret]:
        why = "the Meta app's App ID and App Secret (developers.facebook.com > App settings)"
        return (
            self.source.require("AOS_META_CLIENT_ID", why),
            self.source.secret("AOS_META_CLIENT_SECRET", why),
        )

    def authorization_url(self, *, state: str, redirect_uri: str, challenge: str) -> str:
        client_id, _ = self._client()
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
        }
        config_id = self.source.get(CONFIG_ID_ENV)
        if config_id:  # Facebook Login for Business: the configuration decides (docstring)
            params.update(config_id=config_id, override_default_response_type="true")
        else:
            params["scope"] = ",".join(SCOPES)
        return f"{self.source.get('AOS_META_DIALOG_URL', DIALOG_URL)}?{urlencode(params)}"

    def exchange(self, *, code: Secret, redirect_uri: str, verifier: Secret | None) -> Grant:
        client_id, secret = self._client()
        short = self._graph_json(
            "GET",
            "oauth/access_token",
            "the code exchange",
            params={
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "client_secret": secret.reveal(),
                "code": code.reveal(),
            },
        )
        short_token = str(short.get("access_token") or "")
        debug = self._debug(short_token)
        granted = tuple(str(s) for s in debug.get("scopes") or ())
        self._check_scopes(granted)
        if not int(debug.get("expires_at") or 0):  # a system user's token: it never expires
            bundle = {
                "access_token": short_token,
                "user_id": str(debug.get("user_id") or ""),
                "scope": ",".join(granted),
            }
            return Grant(bundle, self.identify(bundle), granted, None)
        long = self._graph_json(
            "GET",
            "oauth/access_token",
            "the long-lived token exchange",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": client_id,
                "client_secret": secret.reveal(),
                "fb_exchange_token": short_token,
            },
        )
        token = str(long.get("access_token") or "")
        expires_at = datetime.now(UTC) + timedelta(seconds=int(long.get("expires_in") or 0))
        bundle = {
            "access_token": token,
            "expires_at": expires_at.isoformat(),
            "user_id": str(debug.get("user_id") or ""),
            "scope": ",".join(granted),
        }
        return Grant(bundle, self.identify(bundle), granted, expires_at)

    def identify(self, bundle: Mapping[str, Any]) -> Identity:
        token = str(bundle.get("access_token") or "")
        if not token:
            raise IdentifyFailed("the credentials have no access_token")
        try:
            me = self._graph_json("GET", "me", "the /me request", params=self._auth(token))
            accounts = self._graph_json(
                "GET",
                "me/adaccounts",
                "the ad account listing",
                params={**self._auth(token), "fields": "account_id", "limit": "500"},
            )
        except ExchangeFailed as exc:
            raise IdentifyFailed(str(exc)) from None
        debug = self._debug(token)
        businesses = tuple(
            str(target)
            for item in debug.get("granular_scopes") or ()
            if item.get("scope") == "business_management"
            for target in item.get("target_ids") or ()
        )
        ids = tuple(sorted(str(a.get("account_id")) for a in accounts.get("data") or ()))
        return Identity(str(me["id"]), str(me.get("name") or me["id"]), businesses, ids)

    def revoke(self, bundle: Mapping[str, Any]) -> bool:
        token = str(bundle.get("access_token") or "")
        response = self._call(
            "DELETE", self.graph + "me/permissions", "revocation", params=self._auth(token)
        )
        if response.status_code == 200 and self._json(response).get("success"):
            return True
        if (self._json(response).get("error") or {}).get("code") == 190:
            return False  # the token was dead already (expired, removed, password changed)
        raise ExchangeFailed(f"Meta did not revoke the permissions (HTTP {response.status_code})")

    # -- Graph calls -----------------------------------------------------------------------
    def _auth(self, token: str) -> dict[str, str]:
        """The token with its ``appsecret_proof`` (HMAC-SHA256 of the token under the secret)."""
        _, secret = self._client()
        proof = hmac.new(secret.reveal().encode(), token.encode(), hashlib.sha256).hexdigest()
        return {"access_token": token, "appsecret_proof": proof}

    def _debug(self, token: str) -> dict[str, Any]:
        client_id, secret = self._client()
        data = self._graph_json(
            "GET",
            "debug_token",
            "the token inspection",
            params={"input_token": token, "access_token": f"{client_id}|{secret.reveal()}"},
        ).get("data")
        if not isinstance(data, dict) or not data.get("is_valid"):
            raise IdentifyFailed("Meta says the token is not valid")
        return data

    def _graph_json(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, self.graph + path, what, **kwargs)
        body = self._json(response)
        if response.status_code != 200 or "error" in body:
            error = body.get("error") or {}
            raise ExchangeFailed(
                f"Meta refused {what} (code {error.get('code', response.status_code)})"
            )
        return body
