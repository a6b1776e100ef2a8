"""The provider side of connecting accounts through OAuth (authorization-code flow).

``client("slack")`` is the :class:`OAuthClient` of a provider: authorization request, code
exchange, scope check, account identification and revocation. No database, no Prefect: the
connect service joins this to state, RBAC and the vault.

The settings every client reads (environment first, then a Prefect Secret block, then the
default) are listed in :data:`SETTINGS`.
"""

from __future__ import annotations

from connectors.oauth.base import (
    CONNECT_BASE_URL_ENV,
    ConsentDenied,
    ExchangeFailed,
    Grant,
    IdentifyFailed,
    Identity,
    NoRefreshToken,
    NotConfigured,
    OAuthClient,
    OAuthError,
    ScopesMissing,
    SettingsSource,
    pkce_pair,
)
from connectors.oauth.google import GmailOAuth, GoogleAdsOAuth
from connectors.oauth.meta import MetaOAuth
from connectors.oauth.slack import SlackOAuth

__all__ = [
    "CLIENTS",
    "CONNECT_BASE_URL_ENV",
    "SETTINGS",
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
    "client",
    "pkce_pair",
]

CLIENTS: dict[str, type[OAuthClient]] = {
    "slack": SlackOAuth,
    "gmail": GmailOAuth,
    "google_ads": GoogleAdsOAuth,
    "meta_ads": MetaOAuth,
}

#: (variable, meaning, default) of every connect setting; the README lists them all.
SETTINGS: tuple[tuple[str, str, str], ...] = (
    (CONNECT_BASE_URL_ENV, "public base URL of the connect service", "required to connect"),
    ("AOS_SLACK_CLIENT_ID", "Slack app client id", "required to connect Slack"),
    ("AOS_SLACK_CLIENT_SECRET", "Slack app client secret", "required to connect Slack"),
    ("AOS_SLACK_AUTHORIZE_URL", "Slack install screen", "https://slack.com/oauth/v2/authorize"),
    ("AOS_SLACK_USER_SCOPES", "user-token scopes to request too (comma-separated)", "none"),
    ("AOS_GOOGLE_CLIENT_ID", "Google OAuth client id (Gmail and Google Ads)", "required"),
    ("AOS_GOOGLE_CLIENT_SECRET", "Google OAuth client secret", "required to connect Google"),
    (
        "AOS_GOOGLE_AUTHORIZE_URL",
        "Google consent screen",
        "https://accounts.google.com/o/oauth2/v2/auth",
    ),
    ("AOS_GOOGLE_REVOKE_URL", "Google token revocation", "https://oauth2.googleapis.com/revoke"),
    (
        "AOS_GOOGLE_USERINFO_URL",
        "Google OpenID Connect userinfo",
        "https://openidconnect.googleapis.com/v1/userinfo",
    ),
    ("AOS_META_CLIENT_ID", "Meta app id", "required to connect Meta; sync workers too"),
    ("AOS_META_CLIENT_SECRET", "Meta app secret", "required to connect Meta; sync workers too"),
    (
        "AOS_META_DIALOG_URL",
        "Facebook Login dialog",
        "https://www.facebook.com/v26.0/dialog/oauth",
    ),
    (
        "AOS_META_CONFIG_ID",
        "Facebook Login for Business configuration id (asked for instead of scopes)",
        "unset: Facebook Login with scopes",
    ),
)


def client(provider: str, source: SettingsSource | None = None) -> OAuthClient:
    try:
        return CLIENTS[provider](source)
    except KeyError:
        raise NotConfigured(
            f"no OAuth connect flow for provider {provider!r} "
            f"(available: {', '.join(sorted(CLIENTS))})"
        ) from None
