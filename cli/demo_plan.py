"""What the demo seeds in the sandbox for one agency, provider by provider.

:func:`plan_agency` creates the agency's accounts in the emulators and returns its clients
(with the attribution keys that tie the agency-wide accounts' rows to them) and the
integrations to create: per agency, Slack (an agency-wide workspace with a channel per client,
and a workspace per client), a Gmail mailbox (mail attributed by the clients' domains), a Meta
business (an owned ad account and the first client's) plus the second client's own ad account,
and a Google Ads manager tree (its first enabled client account is the first client's) plus
the second client's own account. The sandbox is deterministic, so the same seed and day give
the same accounts on every run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["ADS_SIZES", "DAYS", "SANDBOX_MARK", "SIZES", "DemoClient", "Planned", "plan_agency"]

SIZES = {
    "tiny": dict(users=4, channels=3, messages_per_channel=25),
    "default": dict(users=12, channels=5, messages_per_channel=300),
}
#: Ads per account: campaigns x ad sets (ad groups) x ads.
ADS_SIZES = {
    "tiny": dict(campaigns=1, adsets_per_campaign=1, ads_per_adset=2),
    "default": dict(campaigns=2, adsets_per_campaign=2, ads_per_adset=3),
}
DAYS = 30  # days of history in every emulator (the ads ones: ADS_HISTORY_DAYS)
#: Days of ads history, a day fewer: the ads integrations' first sync reads DAYS back from
#: the account's today, which is already tomorrow in UTC for some, and must reach the first
#: day (a longer first read would make Meta's a slower async report run).
ADS_HISTORY_DAYS = DAYS - 1
#: The key in ``integration.config`` that says "created by the demo, credentials are fake".
SANDBOX_MARK = "sandbox"


@dataclass
class Planned:
    """One integration the demo wants: its provider, name, client (``None``: agency-wide),
    external account, fake credentials and config."""

    provider: str
    name: str
    client: str | None
    external_id: str
    credentials: dict[str, Any]
    config: dict[str, Any]


@dataclass
class DemoClient:
    name: str
    email_domains: list[str]
    slack_channel_ids: list[str]
    ad_account_ids: list[str]


@dataclass
class _Agency:
    """What every provider's plan needs to know about the agency being seeded."""

    sandbox: Any
    name: str
    slug: str
    clients: list[DemoClient]
    size: str
    today: datetime
    mark: dict[str, Any]


def plan_agency(
    sandbox: Any,
    name: str,
    slug: str,
    client_names: tuple[str, ...],
    size: str,
    providers: Collection[str] | None = None,
) -> tuple[list[DemoClient], list[Planned]]:
    """The agency's clients and integrations (see the module docstring), of every provider or
    of ``providers`` only."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clients = [DemoClient(c, [f"{c.lower()}.example"], [], []) for c in client_names]
    agency = _Agency(sandbox, name, slug, clients, size, today, {SANDBOX_MARK: True})
    plans = {"slack": _slack, "gmail": _gmail, "meta_ads": _meta, "google_ads": _google_ads}
    return clients, [
        plan
        for provider, planned in plans.items()
        if providers is None or provider in providers
        for plan in planned(agency)
    ]


def _slack(a: _Agency) -> list[Planned]:
    """An agency-wide workspace (its rows attributed by channel) and one per client."""
    shape = {**SIZES[a.size], "start": a.today - timedelta(days=DAYS), "span_days": DAYS}
    shape["thread_ratio"] = 0.1
    config = {"auto_join": True, "rate_scale": a.sandbox.time_scale, **a.mark}
    shared = a.sandbox.slack.add_workspace(name=f"{a.name} (agency-wide)", **shape)
    plans = [Planned("slack", f"{a.name} Slack", None, shared.team_id, shared.credentials, config)]
    for i, client in enumerate(a.clients):
        client.slack_channel_ids.append(shared.channel_ids[i])
        ws = a.sandbox.slack.add_workspace(name=f"{client.name} workspace", **shape)
        plans.append(
            Planned(
                "slack", f"{client.name} Slack", client.name, ws.team_id, ws.credentials, config
            )
        )
    return plans


def _gmail(a: _Agency) -> list[Planned]:
    """The agency's mailbox; its mail is attributed by the clients' domains."""
    start = a.today - timedelta(days=DAYS)
    mailbox = a.sandbox.gmail.add_mailbox(
        f"ops@{a.slug}.test",
        messages=SIZES[a.size]["messages_per_channel"],
        domains=(*(d for c in a.clients for d in c.email_domains), "example.org"),
        start=start,
        span_days=DAYS,
    )
    config = {"start_date": start.date().isoformat(), **a.mark}
    return [Planned("gmail", f"{a.name} Gmail", None, mailbox.email, mailbox.credentials, config)]


def _meta(a: _Agency) -> list[Planned]:
    """The agency's business (its own ad account and the first client's) and the second
    client's own account."""
    shape = ADS_SIZES[a.size]
    config = {"initial_days": DAYS, "rate_scale": a.sandbox.time_scale, **a.mark}
    meta = a.sandbox.meta_ads
    days = ADS_HISTORY_DAYS
    business = meta.add_business(f"{a.name} business", owned=1, clients=1, days=days, **shape)
    a.clients[0].ad_account_ids.append(business.clients[0].account_id)
    own = meta.add_business(f"{a.clients[1].name} ads", owned=1, clients=0, days=days, **shape)
    return [
        Planned("meta_ads", f"{a.name} Meta", None, business.id, business.credentials, config),
        Planned(
            "meta_ads",
            f"{a.clients[1].name} Meta",
            a.clients[1].name,
            own.id,
            own.credentials,
            config,
        ),
    ]


def _google_ads(a: _Agency) -> list[Planned]:
    """The agency's manager tree (its first enabled client account is the first client's)
    and the second client's own account (Search, Display and Performance Max, which has no
    ads), each reached by a login of its own."""
    shape = ADS_SIZES[a.size]
    ads = a.sandbox.google_ads
    history = (a.today - timedelta(days=ADS_HISTORY_DAYS)).date()
    manager = ads.add_manager_tree(
        f"{a.name} MCC",
        clients=2,
        campaigns=shape["campaigns"],
        ad_groups=shape["adsets_per_campaign"],
        ads_per_group=shape["ads_per_adset"],
        history_start=history,
    )
    leaves = [
        acc
        for acc, _ in manager.descendants()
        if not acc.manager and acc.status == "ENABLED" and not acc.hidden and not acc.test_account
    ]
    a.clients[0].ad_account_ids.append(str(leaves[0].id))
    login = ads.add_login(f"ads@{a.slug}.test", manager)
    direct = ads.add_account(f"{a.clients[1].name} Direct", history_start=history)
    for channel in ("SEARCH", "DISPLAY", "PERFORMANCE_MAX"):
        direct.add_campaign(channel=channel)
    own = ads.add_login(f"ads@{a.clients[1].name.lower()}.example", direct)
    config = {"initial_days": DAYS, **a.mark}
    return [
        Planned(
            "google_ads", f"{a.name} Google Ads", None, login.email, ads.credentials(login), config
        ),
        Planned(
            "google_ads",
            f"{a.clients[1].name} Google Ads",
            a.clients[1].name,
            own.email,
            ads.credentials(own),
            config,
        ),
    ]
