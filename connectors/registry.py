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
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.common import Secret, StreamReader

__all__ = [
    "REGISTRY",
    "InvalidConfig",
    "ProviderEntry",
    "SharedQuota",
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


class InvalidConfig(ValueError):
    """An integration's config that its connector refuses (one line: what and how to fix)."""


@dataclass(frozen=True)
class Setting:
    """An ``AOS_*`` environment variable of a provider (its default is the real endpoint)."""

    env: str
    default: str
    meaning: str


@dataclass(frozen=True)
class SharedQuota:
    """A daily operations quota the provider counts per OAuth client project, which every
    integration connected through that client shares: the task layer keeps it in the
    database (``db.quota``) and hands the reader a budget. ``project_field`` is the token
    bundle field naming the project (the OAuth client id)."""

    limit: Setting
    min_share: Setting
    project_field: str = "client_id"

    def values(self) -> tuple[int, int]:
        """(operations per rolling 24 h, the share any integration may always use)."""
        return tuple(  # type: ignore[return-value]
            int(os.environ.get(s.env) or s.default) for s in (self.limit, self.min_share)
        )


@dataclass(frozen=True)
class ProviderEntry:
    """One provider.

    ``streams`` are synced in this order; ``windowed`` are the ones a date window applies to
    (``since``, backfills). ``reader(token, settings)`` builds the connector (settings: the
    integration's config with per-run overrides). ``token_refresh(client_id, client_secret,
    refresh_token)`` returns the provider's new token fields; ``None`` when tokens do not
    expire or cannot be refreshed. ``token_check(token bundle)`` asks the provider when a
    token that cannot be refreshed expires (``None``: never), raising ``AuthError`` when it
    is no longer valid; runs warn ahead of the expiry (``tasks.sync.watch_token``).
    ``emulator(seed, time_scale)`` builds its sandbox emulator.
    ``schedule`` is the cron of its ``sync-all-<slug>`` deployment. ``quota``: a shared
    per-project quota the reader draws on (its settings belong in ``settings`` too).
    ``config_check(config)`` raises ``ValueError`` for an integration config the connector
    cannot run with; it is asked when a config is set and before every run."""

    name: str
    title: str
    streams: tuple[str, ...]
    windowed: tuple[str, ...]
    reader: str
    emulator: str
    schedule: str
    token_refresh: str | None = None
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    token_check: str | None = None
    quota: SharedQuota | None = None
    config_check: str | None = None

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

    def build_reader(
        self, token: Secret, settings: Mapping[str, Any], budget: Any = None
    ) -> StreamReader:
        """The reader; ``budget`` (the ``quota`` budget, when the entry declares one) is
        passed on as a third argument."""
        build = _load(self.reader)
        reader: StreamReader = (
            build(token, settings) if budget is None else build(token, settings, budget)
        )
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

    @property
    def token_checker(self) -> Callable[[Mapping[str, Any]], datetime | None] | None:
        if self.token_check is None:
            return None
        check: Callable[[Mapping[str, Any]], datetime | None] = _load(self.token_check)
        return check

    def can_refresh(self, bundle: Mapping[str, Any]) -> bool:
        return self.token_refresh is not None and bool(bundle.get("refresh_token"))

    def check_config(self, config: Mapping[str, Any] | None) -> None:
        """Raise :class:`InvalidConfig` when the connector refuses ``config``."""
        if self.config_check is None:
            return
        try:
            _load(self.config_check)(dict(config or {}))
        except (TypeError, ValueError) as exc:
            raise InvalidConfig(f"{self.title} config: {exc}") from None

    def make_emulator(self, seed: int, time_scale: float) -> Any:
        """The sandbox emulator (tests, benchmarks and the demo only)."""
        return _load(self.emulator)(seed=seed, time_scale=time_scale)


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


_GOOGLE_TOKEN = Setting(
    "AOS_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", "Google OAuth token endpoint"
)

_GOOGLE_ADS_QUOTA = SharedQuota(
    Setting(
        "AOS_GOOGLE_ADS_DAILY_OPERATIONS",
        "15000",
        "Google Ads operations per rolling 24 h of the OAuth client's project (Basic access)",
    ),
    Setting(
        "AOS_GOOGLE_ADS_MIN_SHARE",
        "100",
        "Google Ads operations any one integration may always use per 24 h",
    ),
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
        streams=(
            "ad_accounts",
            "campaigns",
            "ad_sets",
            "ads",
            "insights_daily",
            "insights_breakdown",
        ),
        windowed=("insights_daily", "insights_breakdown"),
        reader="connectors.meta_ads.entry:build_reader",
        token_check="connectors.meta_ads.entry:token_expiry",
        config_check="connectors.meta_ads.entry:check_config",
        emulator="sandbox.meta:MetaEmulator",
        schedule="20 */2 * * *",
        settings=(
            Setting(
                "AOS_META_GRAPH_URL", "https://graph.facebook.com", "Meta Graph API (Marketing API)"
            ),
            # The connect flow's app: debug_token and appsecret_proof at sync time too.
            Setting("AOS_META_CLIENT_ID", "", "Meta App ID (the token check needs it)"),
            Setting("AOS_META_CLIENT_SECRET", "", "Meta App Secret (appsecret_proof)"),
        ),
    ),
    "google_ads": ProviderEntry(
        name="google_ads",
        title="Google Ads",
        streams=(
            "customers",
            "campaigns",
            "ad_groups",
            "ads",
            "campaign_daily",
            "ad_group_daily",
            "ad_daily",
        ),
        windowed=("campaign_daily", "ad_group_daily", "ad_daily"),
        reader="connectors.google_ads.entry:build_reader",
        token_refresh="connectors.google_auth:refresh_google_token",
        emulator="sandbox.google_ads:GoogleAdsEmulator",
        schedule="40 */2 * * *",
        settings=(
            Setting(
                "AOS_GOOGLE_ADS_API_ENDPOINT",
                "googleads.googleapis.com",
                "Google Ads API gRPC endpoint (host[:port], TLS)",
            ),
            Setting(
                "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
                "",
                "TLS roots gRPC trusts (empty: the system's); the sandbox sets its own",
            ),
            _GOOGLE_TOKEN,
            _GOOGLE_ADS_QUOTA.limit,
            _GOOGLE_ADS_QUOTA.min_share,
        ),
        quota=_GOOGLE_ADS_QUOTA,
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
