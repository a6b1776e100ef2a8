"""Per-integration Slack settings, built from the integration's config JSON."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from . import settings


def default_tier() -> str:
    """The tier of the deployment's Slack app: ``AOS_SLACK_TIER``, else the non-Marketplace
    one a new app is on (see ``settings.DEFAULT_TIER``)."""
    tier = os.environ.get(settings.TIER_ENV, "").strip() or settings.DEFAULT_TIER
    if tier not in settings.TIERS:
        raise ValueError(
            f"{settings.TIER_ENV}={tier[:40]!r} is not a Slack tier: set it to one of "
            f"{', '.join(settings.TIERS)} ({settings.DEFAULT_TIER} unless the Slack app is "
            "Marketplace-approved or internal to one workspace)"
        )
    return tier


@dataclass(frozen=True)
class SlackConfig:
    """What an agency can tune per Slack workspace.

    ``rate_scale`` divides the per-minute rate windows and the retry backoff; it exists so a
    time-scaled sandbox can exercise the 1-request-per-minute tier in seconds. ``max_requests``
    bounds one run: the connector stops cleanly and the saved cursors let the next run carry
    on, which is how a long backfill on a slow tier is spread over scheduled runs.

    ``start_date`` bounds how far back the *first* sync of a channel reads; later runs re-read
    their lookback from the saved cursor and never consult it, so it never bounds (nor
    soft-deletes) what a backfill or a ``since`` run loaded. The dates of a ``since`` run, a
    full refresh or a backfill chunk are not settings: the task layer passes them to ``read``
    as a window (``connectors.kit.reader.Window``).

    ``tier`` is the Slack rate tier the workspace's install is on; without one, the
    deployment's (:func:`default_tier`).
    """

    tier: str = field(default_factory=default_tier)
    rate_scale: float = 1.0
    thread_lookback_days: int = settings.THREAD_LOOKBACK_DAYS
    edit_lookback_days: int = settings.EDIT_LOOKBACK_DAYS
    include_channels: tuple[str, ...] = field(default_factory=tuple)
    exclude_channels: tuple[str, ...] = field(default_factory=tuple)
    auto_join: bool = False
    page_limit: int = settings.DEFAULT_PAGE_LIMIT
    start_date: date | None = None
    max_requests: int | None = None

    def __post_init__(self) -> None:
        if self.tier not in settings.TIERS:
            raise ValueError(f"unknown Slack tier {self.tier!r}; expected one of {settings.TIERS}")
        if self.rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
        if self.page_limit < 1:
            raise ValueError("page_limit must be at least 1")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be at least 1 when set")
        if self.thread_lookback_days < 0 or self.edit_lookback_days < 0:
            raise ValueError("lookback days cannot be negative")
        # Frozen dataclass: normalise list inputs to tuples through object.__setattr__.
        object.__setattr__(self, "include_channels", tuple(self.include_channels))
        object.__setattr__(self, "exclude_channels", tuple(self.exclude_channels))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SlackConfig:
        """Build from config JSON; unknown keys are ignored so other settings can live there."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        if isinstance(kwargs.get("start_date"), str):
            kwargs["start_date"] = date.fromisoformat(kwargs["start_date"][:10])
        for key in ("include_channels", "exclude_channels"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = (kwargs[key],)
        return cls(**kwargs)

    def limit_for(self, method: str) -> int:
        """Objects per page for ``method`` (the 2025 non-Marketplace tier caps messages at 15)."""
        if self.tier == "non_marketplace_2025" and method in settings.PAGED_MESSAGE_METHODS:
            return min(self.page_limit, settings.NON_MARKETPLACE_PAGE_LIMIT)
        return self.page_limit

    def window_seconds(self) -> float:
        """Length of a rate-limit window after scaling."""
        return settings.RATE_WINDOW_SECONDS / self.rate_scale


def describe_limit(config: Mapping[str, Any] | None) -> str:
    """The registry's ``rate_limit`` for Slack: the tier an integration with ``config`` runs
    on (``None``: the deployment's default), what it allows and where it is set."""
    tier = SlackConfig.from_dict(config).tier
    source = "config tier" if (config or {}).get("tier") else settings.TIER_ENV
    return f"{tier}: {settings.TIER_NOTES[tier]} ({source})"
