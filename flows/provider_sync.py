"""The shape every provider flow shares: authorize -> lock -> credentials -> streams -> ledger."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from db import runs, tenancy
from db.engine import get_engine
from db.rbac import Action
from tasks.providers import get_provider
from tasks.sync import authorize_run, publish_summary, refresh_credentials, sync_stream

__all__ = ["run_provider_sync"]


def run_provider_sync(provider: str, integration_id: int, *, requested_by: str | None,
                      full_refresh: bool, since: date | None, run_grant: str | None,
                      trigger: str) -> dict[str, Any]:
    """Run one integration's sync. Returns a summary (counts, no secrets); raises on failure."""
    logger = get_run_logger()
    eng = get_engine()
    with eng.connect() as conn:
        integ = tenancy.get_integration(conn, integration_id)
    if integ.provider != provider:
        raise ValueError(f"integration {integration_id} is a {integ.provider} integration, "
                         f"not {provider}; use sync_{integ.provider}")
    action = Action.BACKFILL if (full_refresh or since) else Action.SYNC
    who = authorize_run(integration_id, requested_by, action.value, run_grant)
    if integ.status != "connected":
        raise RuntimeError(f"integration {integration_id} is {integ.status}"
                           + (f" ({integ.status_reason})" if integ.status_reason else "")
                           + "; reconnect it before syncing")
    try:
        with runs.integration_lock(eng, integration_id):
            return _locked_run(provider, integration_id, who, full_refresh, since, trigger)
    except runs.SyncLocked as exc:  # only the lock raises this: nothing was touched
        logger.warning(str(exc))
        return {"integration_id": integration_id, "status": "skipped", "reason": str(exc)}


def _locked_run(provider: str, integration_id: int, who: dict[str, Any], full_refresh: bool,
                since: date | None, trigger: str) -> dict[str, Any]:
    logger = get_run_logger()
    run_id = runs.start_run(
        get_engine(), integration_id, trigger=trigger, principal=who["principal"],
        principal_verified=who["verified"], flow_run_id=flow_run.id,
        params={"full_refresh": full_refresh, "since": since.isoformat() if since else None},
    )
    streams: dict[str, Any] = {}
    errors: list[str] = []
    try:
        refresh_credentials(integration_id, provider, who["principal"])
        for stream in get_provider(provider).streams:
            try:
                streams[stream] = sync_stream(integration_id, stream, full_refresh, since)
            except Exception as exc:
                errors.append(f"{stream}: {exc}")
                if _is_auth_failure(exc):
                    break  # the other streams would fail the same way
    except Exception as exc:
        errors.append(str(exc))
    status = "failed" if errors else "succeeded"
    error = "; ".join(errors) or None
    publish_summary(run_id, integration_id, provider, status, streams, error)
    if errors:
        logger.error("sync of integration %s failed: %s", integration_id, error)
        raise RuntimeError(f"sync of integration {integration_id} failed: {error}")
    return {"integration_id": integration_id, "run_id": run_id, "status": status,
            "streams": streams}


def _is_auth_failure(exc: BaseException) -> bool:
    from tasks.sync import ReauthRequired

    return isinstance(exc, ReauthRequired)
