"""How each provider's connector is built and its tokens refreshed: the one place that knows.

Adding a provider means adding one :class:`Provider` entry here; tasks and flows stay the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.common import Secret, StreamReader

__all__ = ["PROVIDERS", "Provider", "get_provider"]

# (token bundle as a plain mapping) -> (new bundle, expires_at)
Refresher = Callable[[Mapping[str, Any]], tuple[dict[str, Any], datetime | None]]


@dataclass(frozen=True)
class Provider:
    """``build_reader(token, settings)``: settings are the integration's config with per-run
    overrides (``start_date`` / ``end_date`` from ``since`` or a backfill window) laid over it.
    ``windowed`` streams are the ones a date window applies to (backfills re-read only those)."""

    name: str
    streams: tuple[str, ...]
    windowed: tuple[str, ...]
    build_reader: Callable[[Secret, Mapping[str, Any]], StreamReader]
    refresher: Refresher | None  # None: tokens never expire

    def can_refresh(self, bundle: Mapping[str, Any]) -> bool:
        return self.refresher is not None and bool(bundle.get("refresh_token"))


def _slack_reader(token: Secret, settings: Mapping[str, Any]) -> StreamReader:
    from connectors.slack import SlackConfig, SlackConnector

    return SlackConnector(token, SlackConfig.from_dict(settings))


def _oauth_args(bundle: Mapping[str, Any]) -> tuple[str, Secret, Secret]:
    return (
        str(bundle["client_id"]),
        Secret(str(bundle["client_secret"])),
        Secret(str(bundle["refresh_token"])),
    )


def _merged(
    bundle: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], datetime | None]:
    """The old bundle with the refreshed fields laid over it (Google keeps its refresh token)."""
    merged = {**bundle, **new}
    expires = merged.get("expires_at")
    return merged, datetime.fromisoformat(expires) if isinstance(expires, str) else expires


def _slack_refresh(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], datetime | None]:
    from connectors.slack import refresh_slack_token

    return _merged(bundle, refresh_slack_token(*_oauth_args(bundle)))


def _gmail_reader(token: Secret, settings: Mapping[str, Any]) -> StreamReader:
    from connectors.gmail import GmailConfig, GmailConnector

    return GmailConnector(token, GmailConfig.from_dict(settings))


def _google_refresh(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], datetime | None]:
    """Google's token URL comes from AOS_GOOGLE_TOKEN_URL (or Google's), never from the stored
    bundle: a credential must not be able to send its refresh token somewhere else."""
    from connectors.google_auth import refresh_google_token

    return _merged(bundle, refresh_google_token(*_oauth_args(bundle)))


PROVIDERS: dict[str, Provider] = {
    "slack": Provider(
        "slack", ("users", "channels", "messages"), ("messages",), _slack_reader, _slack_refresh
    ),
    "gmail": Provider(
        "gmail", ("labels", "messages"), ("messages",), _gmail_reader, _google_refresh
    ),
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(
            f"provider {name!r} has no connector yet (available: {', '.join(sorted(PROVIDERS))})"
        ) from None
