"""Google (Gmail and Google Ads): the web-server flow with PKCE (S256), ``access_type=offline``
and ``prompt=consent`` (without a consent screen Google sends no refresh token), the account's
email from the OpenID Connect userinfo endpoint and, for Ads, its accessible customers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connectors.common import ConnectorError, Secret
from connectors.google_auth import refresh_google_token, resolve_token_url
from connectors.oauth.base import (
    ExchangeFailed,
    Grant,
    IdentifyFailed,
    Identity,
    NoRefreshToken,
    OAuthClient,
)

__all__ = ["ADWORDS_SCOPE", "GMAIL_SCOPE", "GmailOAuth", "GoogleAdsOAuth", "GoogleOAuth"]

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"
USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"
ADS_ENDPOINT = "googleads.googleapis.com"
GMAIL_SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"
IDENTITY_SCOPES = ("openid", "email")


class GoogleOAuth(OAuthClient):
    """One Google OAuth client (``AOS_GOOGLE_CLIENT_ID``) for every Google product."""

    uses_pkce = True

    def _client(self) -> tuple[str, Secret]:
        why = "the OAuth client of the Google Cloud project (APIs & Services > Credentials)"
        return (
            self.source.require("AOS_GOOGLE_CLIENT_ID", why),
            self.source.secret("AOS_GOOGLE_CLIENT_SECRET", why),
        )

    def authorization_url(self, *, state: str, redirect_uri: str, challenge: str) -> str:
        client_id, _ = self._client()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join((*IDENTITY_SCOPES, *self.required_scopes)),
            "state": state,
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        base = self.source.get("AOS_GOOGLE_AUTHORIZE_URL", AUTHORIZE_URL)
        return f"{base}?{urlencode(params)}"

    def exchange(self, *, code: Secret, redirect_uri: str, verifier: Secret | None) -> Grant:
        client_id, secret = self._client()
        response = self._call(
            "POST",
            resolve_token_url(),
            "the code exchange",
            data={
                "grant_type": "authorization_code",
                "code": code.reveal(),
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "client_secret": secret.reveal(),
                "code_verifier": verifier.reveal() if verifier else "",
            },
        )
        body = self._json(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise ExchangeFailed(
                f"Google refused the authorization code ({body.get('error') or response.status_code})"
            )
        granted = tuple(str(body.get("scope") or "").split())
        self._check_scopes(granted)
        if not body.get("refresh_token"):
            raise NoRefreshToken("Google granted access without a refresh token")
        expires_at = datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 3599))
        bundle = {
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "expires_at": expires_at.isoformat(),
            "client_id": client_id,
            "client_secret": secret.reveal(),
            "scope": " ".join(granted),
        }
        return Grant(bundle, self._whose(str(body["access_token"])), granted, expires_at)

    def identify(self, bundle: Mapping[str, Any]) -> Identity:
        """Pasted credentials may hold an expired access token: refresh first when possible."""
        token = str(bundle.get("access_token") or "")
        if bundle.get("refresh_token") and bundle.get("client_id") and bundle.get("client_secret"):
            try:
                fresh = refresh_google_token(
                    str(bundle["client_id"]),
                    Secret(str(bundle["client_secret"])),
                    Secret(str(bundle["refresh_token"])),
                )
            except ConnectorError as exc:
                raise IdentifyFailed(f"Google refused the refresh token ({exc})") from None
            token = str(fresh["access_token"])
        if not token:
            raise IdentifyFailed("the credentials have neither a usable refresh nor access token")
        return self._whose(token)

    def revoke(self, bundle: Mapping[str, Any]) -> bool:
        token = str(bundle.get("refresh_token") or bundle.get("access_token") or "")
        if not token:
            return False
        response = self._call(
            "POST",
            self.source.get("AOS_GOOGLE_REVOKE_URL", REVOKE_URL),
            "revocation",
            data={"token": token},
        )
        if response.status_code == 200:
            return True
        if self._json(response).get("error") == "invalid_token":
            return False
        raise ExchangeFailed(f"Google did not revoke the token (HTTP {response.status_code})")

    def _whose(self, access_token: str) -> Identity:
        response = self._call(
            "GET",
            self.source.get("AOS_GOOGLE_USERINFO_URL", USERINFO_URL),
            "the userinfo request",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        email = str(self._json(response).get("email") or "").strip().lower()
        if response.status_code != 200 or not email:
            raise IdentifyFailed(
                f"Google did not say whose account this is ({response.status_code})"
            )
        return Identity(email, email)


class GmailOAuth(GoogleOAuth):
    provider = "gmail"
    required_scopes = (GMAIL_SCOPE,)


class GoogleAdsOAuth(GoogleOAuth):
    """The account is the Google login; the customers it can reach are listed with
    ``CustomerService.ListAccessibleCustomers`` (a login that reaches none is refused)."""

    provider = "google_ads"
    required_scopes = (ADWORDS_SCOPE,)

    def _whose(self, access_token: str) -> Identity:
        person = super()._whose(access_token)
        customers = self._accessible_customers(access_token)
        if not customers:
            raise IdentifyFailed(f"{person.display} has access to no Google Ads account")
        return Identity(person.external_account_id, person.display, accounts=customers)

    def _accessible_customers(self, access_token: str) -> tuple[str, ...]:
        import grpc
        from google.ads.googleads.client import GoogleAdsClient
        from google.ads.googleads.errors import GoogleAdsException
        from google.api_core.exceptions import GoogleAPIError
        from google.oauth2.credentials import Credentials

        client = GoogleAdsClient(
            credentials=Credentials(token=access_token),
            developer_token=None,  # retired in 2026: access belongs to the Cloud project
            endpoint=self.source.get("AOS_GOOGLE_ADS_API_ENDPOINT", ADS_ENDPOINT),
            use_proto_plus=True,
        )
        try:
            answer = client.get_service(
                "CustomerService", version="v26"
            ).list_accessible_customers()
        except (GoogleAdsException, GoogleAPIError, grpc.RpcError) as exc:
            raise IdentifyFailed(
                f"Google Ads did not list the accessible customers ({type(exc).__name__})"
            ) from None
        return tuple(sorted(name.rpartition("/")[2] for name in answer.resource_names))
