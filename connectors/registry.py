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

from connectors.common import Secret, StreamReader, TokenRenewal

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
    levels: Mapping[int, str] = field(default_factory=dict)  # a limit's name (access level)

    def project(self, bundle: Mapping[str, Any]) -> str:
        """The project a token bundle draws on."""
        return str(bundle.get(self.project_field) or "default")

    def values(self) -> tuple[int, int]:
        """(operations per rolling 24 h, the share any integration may always use)."""
        found = []
        for setting in (self.limit, self.min_share):
            raw = (os.environ.get(setting.env) or "").strip() or setting.default
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(
                    f"{setting.env}={raw[:40]!r} is not a whole number of at least 1: set it "
                    f"to the {setting.meaning} (default {setting.default})"
                )
            found.append(int(raw))
        return found[0], found[1]

    def describe(self) -> str:
        """The configured limit as ``aos-sync status`` shows it, with its access level when
        it is one's and the setting: ``2,880 ops/24h (Explorer; AOS_GOOGLE_ADS_...)``."""
        limit = self.values()[0]
        level = self.levels.get(limit)
        return f"{limit:,} ops/24h ({f'{level}; ' if level else ''}{self.limit.env})"


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
    ``holds``: the reader takes ``holds=`` (``connectors.kit.holds``), where the pauses and
    quota stops its provider announces are kept for every worker to see.
    ``rate_limit`` (``"module:attr"``, called with an integration's config, or ``None`` for
    the deployment's default) describes the provider limit runs are paced to, for
    ``aos-sync status`` (a ``quota`` describes itself). ``renews_tokens``: the reader takes
    ``renew=`` (a
    :data:`~connectors.common.TokenRenewal`) and asks it for a fresh access token when the
    provider refuses the one it has mid-run (Google's live about an hour, runs may last
    longer); the task layer gives it one that refreshes through ``token_refresh``.
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
    holds: bool = False
    rate_limit: str | None = None
    renews_tokens: bool = False
    config_check: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"provider name {self.name!r} must be a lower-case identifier")
        stray = set(self.windowed) - set(self.streams)
        if stray:
            raise ValueError(f"{self.name}: windowed streams {sorted(stray)} are not streams")
        if self.renews_tokens and self.token_refresh is None:
            raise ValueError(f"{self.name}: renews_tokens needs a token_refresh")

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
        self,
        token: Secret,
        settings: Mapping[str, Any],
        budget: Any = None,
        renew: TokenRenewal | None = None,
        holds: Any = None,
    ) -> StreamReader:
        """The reader; ``budget`` (the ``quota`` budget, when the entry declares one) is
        passed on as a third argument, ``renew`` (when the entry ``renews_tokens``) and
        ``holds`` (when the entry declares ``holds``) by name."""
        build = _load(self.reader)
        args = (token, settings) if budget is None else (token, settings, budget)
        named: dict[str, Any] = {}
        if renew is not None and self.renews_tokens:
            named["renew"] = renew
        if holds is not None:
            named["holds"] = holds
        reader: StreamReader = build(*args, **named)
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

    def limit(self, config: Mapping[str, Any] | None = None) -> str | None:
        """The provider limit an integration with ``config`` (``None``: any integration
        without its own) works under, as ``aos-sync status`` shows it; ``None`` when the
        provider declares none. Raises ``ValueError`` naming a setting that is wrong."""
        if self.quota is not None:
            return self.quota.describe()
        if self.rate_limit is not None:
            return str(_load(self.rate_limit)(config))
        return None

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

# The daily operations of the Google Cloud project's API access level
# (developers.google.com/google-ads/api/docs/api-policy/access-levels): Explorer access, which
# a project is granted first (automated review) and which new customers run on, allows 2,880
# operations a day against production accounts; Basic 15,000; Standard is unlimited (set a
# number above any day's use).
_GOOGLE_ADS_QUOTA = SharedQuota(
    Setting(
        "AOS_GOOGLE_ADS_DAILY_OPERATIONS",
        "2880",
        "Google Ads operations per rolling 24 h of the OAuth client's Cloud project, shared "
        "by every integration: its access level's (Explorer 2880, Basic 15000)",
    ),
    Setting(
        "AOS_GOOGLE_ADS_MIN_SHARE",
        "100",
        "Google Ads operations any one integration may always use per 24 h",
    ),
    levels={2_880: "Explorer", 15_000: "Basic"},
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
        settings=(
            Setting("AOS_SLACK_API_URL", "https://slack.com/api/", "Slack Web API base"),
            Setting(
                "AOS_SLACK_TIER",
                "non_marketplace_2025",
                "Slack rate tier of the app's installs where an integration's config names "
                "none: non_marketplace_2025 (an app outside the Slack Marketplace), tier3 "
                "(Marketplace-approved, or internal to one workspace), unlimited",
            ),
        ),
        rate_limit="connectors.slack.config:describe_limit",
    ),
    "gmail": ProviderEntry(
        name="gmail",
        title="Gmail",
        streams=("labels", "messages"),
        windowed=("messages",),
        reader="connectors.gmail.entry:build_reader",
        token_refresh="connectors.google_auth:refresh_google_token",
        renews_tokens=True,
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
        holds=True,
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
        renews_tokens=True,
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
        holds=True,
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
