"""Slack token rotation: exchange a refresh token for a new token bundle.

Slack rotates both tokens on every refresh, so the caller must store the returned
``refresh_token`` before using the new access token (the task layer does this under a row lock).
"""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from connectors.common import AuthError, PermanentError, RunStats, Secret, TransientError

from . import settings
from .transport import build_web_client, resolve_base_url


def refresh_slack_token(
    client_id: str,
    client_secret: Secret,
    refresh_token: Secret,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Call ``oauth.v2.access`` with ``grant_type=refresh_token``.

    Returns ``{"access_token", "refresh_token", "expires_at" (ISO 8601, UTC), "token_type",
    "scope", "team_id", "bot_user_id"}``. A refused refresh token raises :class:`AuthError`
    (the integration needs re-authorisation); Slack having a bad moment or a lost connection
    raises :class:`TransientError`, any other refusal :class:`PermanentError`. Connection
    errors are not retried here: the request may have spent the rotating token.
    """
    client = build_web_client(
        None, resolve_base_url(base_url), RunStats(), retry_connection_errors=False
    )
    requested_at = datetime.now(UTC)
    try:
        response = client.oauth_v2_access(
            client_id=client_id,
            client_secret=client_secret.reveal(),
            grant_type="refresh_token",
            refresh_token=refresh_token.reveal(),
        )
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {exc.response.status_code}")
        if error.startswith("Received a response in a non-JSON format"):
            # The SDK quotes the body, which may hold the new tokens: never repeat it.
            data, error = {}, "response body does not parse (truncated?)"
        if error in settings.REFRESH_AUTH_ERRORS or error in settings.AUTH_ERRORS:
            raise AuthError(
                f"Slack refused the refresh token ({error}); the workspace must be reconnected"
            ) from None
        status = int(getattr(exc.response, "status_code", 0) or 0)
        if status == 429 or status >= 500 or error in settings.TRANSIENT_ERRORS or not data:
            raise TransientError(
                f"Slack token refresh failed: {error}", provider="slack", method="oauth.v2.access"
            ) from None
        raise PermanentError(
            f"Slack token refresh failed: {error}",
            provider="slack",
            method="oauth.v2.access",
            code=error,
        ) from None
    except (json.JSONDecodeError, http.client.HTTPException, OSError) as exc:
        raise TransientError(
            f"Slack token refresh failed: {type(exc).__name__}",
            provider="slack",
            method="oauth.v2.access",
        ) from None

    data = dict(response.data) if isinstance(response.data, dict) else {}
    if not data.get("access_token"):
        raise TransientError(
            "Slack token refresh answered without an access token",
            provider="slack",
            method="oauth.v2.access",
        )
    expires_in = data.get("expires_in")
    expires_at = (
        (requested_at + timedelta(seconds=int(expires_in))).isoformat() if expires_in else None
    )
    return {
        "access_token": data["access_token"],
        "refresh_token": data.get("refresh_token") or refresh_token.reveal(),
        "expires_at": expires_at,
        "token_type": data.get("token_type"),
        "scope": data.get("scope"),
        "team_id": (data.get("team") or {}).get("id"),
        "bot_user_id": data.get("bot_user_id"),
    }
