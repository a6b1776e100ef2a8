"""``sync_slack``: one Slack workspace integration into slack_users / slack_channels /
slack_messages (replies included, see docs/data-dictionary.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from flows.provider_sync import run_provider_sync

__all__ = ["sync_slack"]


@flow(name="sync_slack")
def sync_slack(
    integration_id: int,
    requested_by: str | None = None,
    full_refresh: bool = False,
    since: date | None = None,
    run_grant: str | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """Sync one Slack integration. ``requested_by`` is the acting user (or ``scheduler:<agency>``);
    ``full_refresh`` or ``since`` make it a backfill, which needs the backfill permission."""
    return run_provider_sync(
        "slack",
        integration_id,
        requested_by=requested_by,
        full_refresh=full_refresh,
        since=since,
        run_grant=run_grant,
        trigger=trigger,
    )
