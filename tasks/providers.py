"""How each provider's connector is built and its tokens refreshed: the one place that knows.

Adding a provider means adding one :class:`Provider` entry here; tasks and flows stay the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.common import Secret, StreamReader

__all__ = ["PROVIDERS", "Provider", "get_provider"]

# (token bundle as a plain mapping) -> (new bundle, expires_at)
Refresher = Callable[[Mapping[str, Any]], tuple[dict[str, Any], datetime | None]]


@dataclass(frozen=True)
class Provider:
    name: str
    streams: tuple[str, ...]
    build_reader: Callable[[Secret, Mapping[str, Any], date | None], StreamReader]
    refresher: Refresher | None  # None: tokens never expire

    def can_refresh(self, bundle: Mapping[str, Any]) -> bool:
        return self.refresher is not None and bool(bundle.get("refresh_token"))


def _slack_reader(token: Secret, config: Mapping[str, Any], since: date | None) -> StreamReader:
    from connectors.slack import SlackConfig, SlackConnector

    settings = dict(config)
    if since is not None:
        settings["start_date"] = since.isoformat()
    return SlackConnector(token, SlackConfig.from_dict(settings))


def _slack_refresh(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], datetime | None]:
    from connectors.slack import refresh_slack_token

    new = refresh_slack_token(
        str(bundle["client_id"]), Secret(str(bundle["client_secret"])),
        Secret(str(bundle["refresh_token"])),
    )
    merged = {**bundle, **new}
    expires = merged.get("expires_at")
    return merged, datetime.fromisoformat(expires) if isinstance(expires, str) else expires


PROVIDERS: dict[str, Provider] = {
    "slack": Provider("slack", ("users", "channels", "messages"), _slack_reader, _slack_refresh),
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"provider {name!r} has no connector yet "
                         f"(available: {', '.join(sorted(PROVIDERS))})") from None
