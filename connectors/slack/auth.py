"""Slack token rotation: exchange a refresh token for a new token bundle.

Slack rotates both tokens on every refresh, so the caller must store the returned
``refresh_token`` before using the new access token (the task layer does this under a row lock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from connectors.common import AuthError, RunStats, Secret, TransientError

from . import settings
from .config import SlackConfig
from .errors import SlackCallError
from .transport import SlackTransport

_METHOD: Final = "oauth.v2.access"


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
    raises :class:`TransientError`, any other refusal
    :class:`~connectors.slack.errors.SlackCallError` (a ``PermanentError``). 429s and 5xx are
    retried; a lost connection or an unreadable answer is not: the request may have spent the
    rotating token.
    """
    transport = SlackTransport(None, SlackConfig(), RunStats(), base_url=base_url)
    requested_at = datetime.now(UTC)
    try:
        data = transport.call(
            _METHOD,
            idempotent=False,
            client_id=client_id,
            client_secret=client_secret.reveal(),
            grant_type="refresh_token",
            refresh_token=refresh_token.reveal(),
        )
    except (AuthError, SlackCallError) as exc:
        if isinstance(exc, AuthError) or exc.code in settings.REFRESH_AUTH_ERRORS:
            raise AuthError(
                f"Slack refused the refresh token ({exc.code}); the workspace must be reconnected",
                provider="slack",
                method=_METHOD,
                code=exc.code,
            ) from None
        raise
    if not data.get("access_token"):
        raise TransientError(
            "Slack token refresh answered without an access token", provider="slack", method=_METHOD
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
