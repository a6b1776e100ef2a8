"""``sync_gmail``: one mailbox integration into gmail_labels / gmail_messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from flows.provider_sync import run_provider_sync

__all__ = ["sync_gmail"]


@flow(name="sync_gmail")
def sync_gmail(
    integration_id: int,
    requested_by: str | None = None,
    full_refresh: bool = False,
    since: date | None = None,
    run_grant: str | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """Sync one Gmail mailbox: History API increments, full resync when the history id expired.
    ``full_refresh`` or ``since`` make it a backfill, which needs the backfill permission."""
    return run_provider_sync(
        "gmail",
        integration_id,
        requested_by=requested_by,
        full_refresh=full_refresh,
        since=since,
        run_grant=run_grant,
        trigger=trigger,
    )
