"""The shape every provider flow shares: authorize -> lock -> ledger -> credentials -> work ->
summary. A sync's work is one task per stream; a backfill's is one task per stream per chunk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from db import runs, tenancy
from db.engine import get_engine
from db.rbac import Action
from tasks.providers import get_provider
from tasks.sync import (
    ReauthRequired,
    authorize_run,
    publish_summary,
    refresh_credentials,
    sync_stream,
)

__all__ = ["Work", "guarded_run", "provider_slot", "run_provider_sync", "run_stream_tasks"]

# The work of a run: fills ``streams`` (name -> counts) and ``errors``; may raise.
Work = Callable[[dict[str, Any], list[str]], None]


@contextlib.contextmanager
def provider_slot(provider: str) -> Iterator[None]:
    """Hold one slot of the ``aos-provider-<provider>`` global concurrency limit.

    Many workers of a pool then still respect one provider's quota. Enabled with
    ``AOS_PROVIDER_LIMITS=1`` (create the limits first: ``prefect gcl create
    aos-provider-slack --limit 4``); off by default, where a single process runs everything.
    """
    if os.environ.get("AOS_PROVIDER_LIMITS", "") not in {"1", "true"}:
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(f"aos-provider-{provider}", occupy=1, strict=True):
        yield


def guarded_run(
    provider: str | None,
    integration_id: int,
    *,
    action: Action,
    requested_by: str | None,
    run_grant: str | None,
    trigger: str,
    params: dict[str, Any],
    work: Work,
) -> dict[str, Any]:
    """Everything around the work of a run. Returns a summary (counts, no secrets); raises
    ``PermissionDenied`` before touching anything, or a clear error when the work failed.

    Authorization comes first, before the integration is even looked up: whatever the flow
    says about an integration (its provider, its status, that it exists) is said only to a
    principal allowed to act on it. ``provider`` is the flow's provider, checked against the
    integration's after that; ``None`` (a backfill) takes the integration's own."""
    logger = get_run_logger()
    eng = get_engine()
    who = authorize_run(integration_id, requested_by, action.value, run_grant)
    with eng.connect() as conn:
        integ = tenancy.get_integration(conn, integration_id)
    if provider is not None and integ.provider != provider:
        raise ValueError(
            f"integration {integration_id} is a {integ.provider} integration, not {provider}"
        )
    provider = integ.provider
    if integ.status != "connected":
        raise RuntimeError(
            f"integration {integration_id} is {integ.status}"
            + (f" ({integ.status_reason})" if integ.status_reason else "")
            + "; reconnect it before syncing"
        )
    try:
        with runs.integration_lock(eng, integration_id), provider_slot(provider):
            run_id = runs.start_run(
                eng,
                integration_id,
                trigger=trigger,
                principal=who["principal"],
                principal_verified=who["verified"],
                flow_run_id=flow_run.id,
                params=params,
            )
            streams: dict[str, Any] = {}
            errors: list[str] = []
            try:
                refresh_credentials(integration_id, provider, who["principal"])
                work(streams, errors)
            except Exception as exc:
                errors.append(str(exc))
            status = "failed" if errors else "succeeded"
            error = "; ".join(errors) or None
            publish_summary(run_id, integration_id, provider, status, streams, error)
    except runs.SyncLocked as exc:  # only the lock raises this: nothing was touched
        logger.warning(str(exc))
        return {"integration_id": integration_id, "status": "skipped", "reason": str(exc)}
    if error:
        logger.error("run of integration %s failed: %s", integration_id, error)
        raise RuntimeError(f"sync of integration {integration_id} failed: {error}")
    return {
        "integration_id": integration_id,
        "run_id": run_id,
        "status": status,
        "streams": streams,
    }


def run_stream_tasks(
    integration_id: int,
    stream_names: tuple[str, ...],
    streams: dict[str, Any],
    errors: list[str],
    *,
    label: str = "{stream}",
    **task_args: Any,
) -> None:
    """One ``sync-stream`` task per stream, its counts stored under ``label``. A failed stream
    does not stop the next one, but a credentials failure does (the rest would fail alike)."""
    for stream in stream_names:
        try:
            streams[label.format(stream=stream)] = sync_stream(integration_id, stream, **task_args)
        except ReauthRequired as exc:
            errors.append(f"{stream}: {exc}")
            return
        except Exception as exc:
            errors.append(f"{stream}: {exc}")


def run_provider_sync(
    provider: str,
    integration_id: int,
    *,
    requested_by: str | None,
    full_refresh: bool,
    since: date | None,
    run_grant: str | None,
    trigger: str,
) -> dict[str, Any]:
    """An incremental sync (or, with ``full_refresh`` / ``since``, a backfill-class rerun)."""
    action = Action.BACKFILL if (full_refresh or since) else Action.SYNC

    def work(streams: dict[str, Any], errors: list[str]) -> None:
        run_stream_tasks(
            integration_id,
            get_provider(provider).streams,
            streams,
            errors,
            full_refresh=full_refresh,
            since=since,
        )

    return guarded_run(
        provider,
        integration_id,
        action=action,
        requested_by=requested_by,
        run_grant=run_grant,
        trigger=trigger,
        params={"full_refresh": full_refresh, "since": since.isoformat() if since else None},
        work=work,
    )
