"""``sync_<provider>``: one flow per entry of the provider registry, all of the same shape.

Each is ``authorize -> lock -> ledger -> credentials -> one sync-stream task per stream ->
summary`` (``flows.provider_sync``). They are made from the registry, so a new provider gets its
flow, its place in ``sync_all`` and its command-line choice without code here; the module-level
names (``sync_slack``, ``sync_gmail``, ...) are what ``prefect.yaml`` deployments point at.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import Flow, flow

from connectors import registry
from flows.provider_sync import run_provider_sync

__all__ = ["flow_for", "provider_flows"]

_FLOWS: dict[str, Flow[..., dict[str, Any]]] = {}


def _make(entry: registry.ProviderEntry) -> Flow[..., dict[str, Any]]:
    provider = entry.name

    def sync(
        integration_id: int,
        requested_by: str,
        full_refresh: bool = False,
        since: date | None = None,
        run_grant: str | None = None,
    ) -> dict[str, Any]:
        return run_provider_sync(
            provider,
            integration_id,
            requested_by=requested_by,
            full_refresh=full_refresh,
            since=since,
            run_grant=run_grant,
        )

    sync.__name__ = sync.__qualname__ = entry.flow_name
    sync.__doc__ = f"""Sync one {entry.title} integration (streams: {", ".join(entry.streams)}).

    Args:
        integration_id: The integration to sync (see `aos-sync integration list`).
        requested_by: Who asks (required): a user's email, or `scheduler:<agency id>` for
            scheduled runs. With AOS_RUN_GRANT_KEY configured a user also needs `run_grant`.
        full_refresh: Forget the cursors, re-read everything and soft-delete what is gone
            upstream (needs the backfill permission).
        since: Re-read from this date (YYYY-MM-DD) on top of the cursors; soft-deletes
            nothing older (needs the backfill permission).
        run_grant: A single-use run grant proving `requested_by` (`aos-sync grant mint`).

    What started the run (schedule, manual, cli) is recorded in the ledger; it is worked out
    from the run itself, not asked for.
    """
    return flow(
        name=entry.flow_name,
        description=f"Sync one {entry.title} integration.",
        flow_run_name=f"{entry.slug}-integration-{{integration_id}}",
    )(sync)


def flow_for(provider: str) -> Flow[..., dict[str, Any]]:
    """The flow of a registered provider (made on first use, so a provider registered at run
    time, e.g. a test's toy one, gets one too)."""
    entry = registry.get(provider)
    if provider not in _FLOWS:
        _FLOWS[provider] = _make(entry)
    return _FLOWS[provider]


def provider_flows() -> dict[str, Flow[..., dict[str, Any]]]:
    return {name: flow_for(name) for name in registry.names()}


for _name in registry.names():
    globals()[f"sync_{_name}"] = flow_for(_name)
