"""Google OAuth 2.0 token refresh, shared by the Gmail and Google Ads connectors.

``Credentials`` is built directly with our token URL: ``Credentials.from_authorized_user_info``
would force Google's, and the sandbox (and any proxy) needs it to be a setting. Google does
not rotate refresh tokens, so the result carries a ``refresh_token`` only when the server
sends a new one; the caller keeps the stored one otherwise.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import google.auth.exceptions
import requests
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials

from connectors.common import AuthError, PermanentError, Secret, TransientError

__all__ = ["DEFAULT_TOKEN_URL", "TOKEN_URL_ENV", "refresh_google_token", "resolve_token_url"]

DEFAULT_TOKEN_URL: Final = "https://oauth2.googleapis.com/token"
TOKEN_URL_ENV: Final = "AOS_GOOGLE_TOKEN_URL"
REQUEST_TIMEOUT_SECONDS: Final = 30
# OAuth errors meaning "a human must reconnect the account".
_REAUTH_ERRORS: Final = frozenset({"invalid_grant"})


def resolve_token_url(token_uri: str | None = None) -> str:
    return token_uri or os.environ.get(TOKEN_URL_ENV) or DEFAULT_TOKEN_URL


class _TimedRequest(Request):
    """google-auth's requests transport with a timeout on every call. It keeps the last
    successful grant body: ``Credentials`` drops ``token_type`` and (unless scopes were
    requested) ``scope``, which the caller stores with the token."""

    grant: dict[str, Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_SECONDS)
        response = super().__call__(*args, **kwargs)
        if response.status == 200:
            try:
                body = json.loads(response.data or b"{}")
            except ValueError:
                body = {}
            self.grant = body if isinstance(body, dict) else {}
        return response


def refresh_google_token(
    client_id: str,
    client_secret: Secret,
    refresh_token: Secret,
    token_uri: str | None = None,
) -> dict[str, Any]:
    """Exchange a refresh token for a new access token.

    Returns ``{"access_token", "expires_at" (ISO 8601, UTC), "token_type", "scope"}``, plus
    ``"refresh_token"`` only if Google issued a new one. ``invalid_grant`` (revoked, expired
    or wrong refresh token) raises :class:`AuthError`; an answer google-auth deems retryable,
    an unreadable one or a lost connection :class:`TransientError`; any other refusal
    (``invalid_client``, ``unauthorized_client``...) :class:`PermanentError` with Google's
    description. Messages never include a token or the client secret.
    """
    credentials = Credentials(
        token=None,
        refresh_token=refresh_token.reveal(),
        token_uri=resolve_token_url(token_uri),
        client_id=client_id,
        client_secret=client_secret.reveal(),
    )
    session = requests.Session()
    transport = _TimedRequest(session)
    transport.grant = {}
    try:
        credentials.refresh(transport)
    except google.auth.exceptions.RefreshError as exc:
        details = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        error = str(details.get("error") or "")
        description = str(details.get("error_description") or "")[:300]
        if error in _REAUTH_ERRORS:
            raise AuthError(
                f"Google refused the refresh token ({error}); the account must be reconnected",
                provider="google",
                method="oauth2.token",
                code=error,
                detail={"message": description},
            ) from None
        if getattr(exc, "retryable", False) or not error:
            raise TransientError(
                f"Google token refresh failed: {error or 'unexpected response'}",
                provider="google",
                method="oauth2.token",
            ) from None
        raise PermanentError(
            f"Google token refresh failed: {error}" + (f": {description}" if description else ""),
            provider="google",
            method="oauth2.token",
            code=error,
            detail={"message": description},
        ) from None
    except (google.auth.exceptions.TransportError, requests.RequestException, ValueError) as exc:
        raise TransientError(
            f"Google token refresh failed: {type(exc).__name__}",
            provider="google",
            method="oauth2.token",
        ) from None
    finally:
        session.close()

    if not credentials.token:
        raise TransientError(
            "Google token refresh answered without an access token",
            provider="google",
            method="oauth2.token",
        )
    expiry = credentials.expiry  # naive UTC in google-auth
    expires_at = expiry.replace(tzinfo=UTC) if expiry is not None else None
    result: dict[str, Any] = {
        "access_token": credentials.token,
        "expires_at": (expires_at or datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "token_type": transport.grant.get("token_type") or "Bearer",
        "scope": transport.grant.get("scope") or None,
    }
    if credentials.refresh_token and credentials.refresh_token != refresh_token.reveal():
        result["refresh_token"] = credentials.refresh_token
    return result
