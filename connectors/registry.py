"""The provider registry: one declaration per provider, everything else derives from it.

The task layer builds readers and refreshes tokens through it; ``sync_<provider>`` flows,
``sync_all``, backfills, the command line's provider choices, the sandbox's emulators,
``prefect.yaml`` (checked by a test) and the provider tables of the docs (checked too) follow
it. Adding a provider is: one package under ``connectors/``, its tables and migration, its
emulator under ``sandbox/``, and one :class:`ProviderEntry` in :data:`REGISTRY` (see
``docs/connectors.md``).

Entries name their code as ``"module:attribute"`` strings, imported on first use: listing the
providers costs no SDK import, and production code never imports the sandbox (only the sandbox
and tests resolve ``emulator``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.common import Secret, StreamReader

__all__ = [
    "REGISTRY",
    "ProviderEntry",
    "Setting",
    "UnknownProvider",
    "get",
    "names",
    "register",
    "unregister",
]

#: (token bundle) -> (bundle with the refreshed fields laid over it, new expiry)
Refresher = Callable[[Mapping[str, Any]], tuple[dict[str, Any], datetime | None]]
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class UnknownProvider(ValueError):
    """No registry entry has that name."""


@dataclass(frozen=True)
class Setting:
    """An ``AOS_*`` environment variable of a provider (its default is the real endpoint)."""

    env: str
    default: str
    meaning: str


@dataclass(frozen=True)
class ProviderEntry:
    """One provider.

    ``streams`` are synced in this order; ``windowed`` are the ones a date window applies to
    (``since``, backfills). ``reader(token, settings)`` builds the connector (settings: the
    integration's config with per-run overrides). ``token_refresh(client_id, client_secret,
    refresh_token)`` returns the provider's new token fields; ``None`` when tokens do not
    expire or cannot be refreshed. ``emulator(seed, time_scale)`` builds its sandbox emulator.
    ``schedule`` is the cron of its ``sync-all-<slug>`` deployment."""

    name: str
    title: str
    streams: tuple[str, ...]
    windowed: tuple[str, ...]
    reader: str
    emulator: str
    schedule: str
    token_refresh: str | None = None
    settings: tuple[Setting, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"provider name {self.name!r} must be a lower-case identifier")
        stray = set(self.windowed) - set(self.streams)
        if stray:
            raise ValueError(f"{self.name}: windowed streams {sorted(stray)} are not streams")

    @property
    def slug(self) -> str:
        """The name as deployments spell it (``google-ads``)."""
        return self.name.replace("_", "-")

    @property
    def flow_name(self) -> str:
        return f"sync_{self.name}"

    @property
    def interval(self) -> timedelta:
        """The longest gap between two runs of ``schedule`` over a day (how late data may be
        before it is late)."""
        from cronsim import CronSim

        start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: weekday fields behave
        times = CronSim(self.schedule, start)
        previous, gap = next(times), timedelta(0)
        while previous < start + timedelta(days=1):
            current = next(times)
            gap, previous = max(gap, current - previous), current
        return gap

    def build_reader(self, token: Secret, settings: Mapping[str, Any]) -> StreamReader:
        reader: StreamReader = _load(self.reader)(token, settings)
        return reader

    @property
    def refresher(self) -> Refresher | None:
        if self.token_refresh is None:
            return None
        refresh = _load(self.token_refresh)

        def run(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], datetime | None]:
            new = refresh(
                str(bundle["client_id"]),
                Secret(str(bundle["client_secret"])),
                Secret(str(bundle["refresh_token"])),
            )
            merged = {**bundle, **new}  # e.g. Google keeps its refresh token
            expires = merged.get("expires_at")
            when = datetime.fromisoformat(expires) if isinstance(expires, str) else expires
            return merged, when

        return run

    def can_refresh(self, bundle: Mapping[str, Any]) -> bool:
        return self.token_refresh is not None and bool(bundle.get("refresh_token"))

    def make_emulator(self, seed: int, time_scale: float) -> Any:
        """The sandbox emulator (tests, benchmarks and the demo only)."""
        return _load(self.emulator)(seed=seed, time_scale=time_scale)


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


_GOOGLE_TOKEN = Setting(
    "AOS_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", "Google OAuth token endpoint"
)

REGISTRY: dict[str, ProviderEntry] = {
    "slack": ProviderEntry(
        name="slack",
        title="Slack",
        streams=("users", "channels", "messages"),
        windowed=("messages",),
        reader="connectors.slack.entry:build_reader",
        token_refresh="connectors.slack:refresh_slack_token",
        emulator="sandbox.slack:SlackEmulator",
        schedule="*/15 * * * *",
        settings=(Setting("AOS_SLACK_API_URL", "https://slack.com/api/", "Slack Web API base"),),
    ),
    "gmail": ProviderEntry(
        name="gmail",
        title="Gmail",
        streams=("labels", "messages"),
        windowed=("messages",),
        reader="connectors.gmail.entry:build_reader",
        token_refresh="connectors.google_auth:refresh_google_token",
        emulator="sandbox.gmail:GmailEmulator",
        schedule="5,35 * * * *",
        settings=(
            Setting("AOS_GMAIL_API_URL", "https://gmail.googleapis.com/", "Gmail API root"),
            _GOOGLE_TOKEN,
        ),
    ),
    "meta_ads": ProviderEntry(
        name="meta_ads",
        title="Meta Ads",
        streams=("ad_accounts", "campaigns", "ad_sets", "ads", "insights_daily"),
        windowed=("insights_daily",),
        reader="connectors.meta_ads.entry:build_reader",
        emulator="sandbox.meta:MetaEmulator",
        schedule="20 */2 * * *",
        settings=(
            Setting(
                "AOS_META_GRAPH_URL", "https://graph.facebook.com", "Meta Graph API (Marketing API)"
            ),
        ),
    ),
}


def get(name: str) -> ProviderEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownProvider(
            f"provider {name!r} has no connector (available: {', '.join(names())})"
        ) from None


def names() -> list[str]:
    return sorted(REGISTRY)


def register(entry: ProviderEntry) -> None:
    """Add (or replace) a provider at run time (a plug-in, or a test's toy provider)."""
    REGISTRY[entry.name] = entry


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def settings() -> Iterator[Setting]:
    """Every provider setting once (providers may share one, e.g. the Google token URL)."""
    seen: set[str] = set()
    for name in names():
        for setting in REGISTRY[name].settings:
            if setting.env not in seen:
                seen.add(setting.env)
                yield setting
