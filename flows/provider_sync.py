"""The shape every provider flow shares: authorize -> check -> lock + ledger -> credentials ->
work -> summary. A sync's work is one task per stream; a backfill's is one task per stream per
chunk. Only wiring lives here; the verbs are in ``tasks/``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from connectors import registry
from db.rbac import Action
from tasks.modes import RunMode
from tasks.run import RunRecord, check_integration, open_run, tag_run
from tasks.sync import ReauthRequired, authorize_run, refresh_credentials, sync_stream

__all__ = ["Work", "guarded_run", "run_provider_sync", "run_stream_tasks"]

# The work of a run: fills the record's streams and failures.
Work = Callable[[RunRecord], None]


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
    """Everything around the work of a run; returns a summary (counts, no secrets) or raises
    one of the typed exceptions listed in :mod:`tasks.run`.

    Authorization comes first, before the integration is even looked up: whatever the flow
    says about an integration (its provider, its status, that it exists) is said only to a
    principal allowed to act on it. ``provider`` is the flow's provider; ``None`` (a backfill)
    takes the integration's own."""
    who = authorize_run(integration_id, requested_by, action.value, run_grant)
    target = check_integration(integration_id, provider)
    tag_run(target["provider"], target["agency_id"])
    with open_run(integration_id, target["provider"], who, trigger, params) as run:
        refresh_credentials(integration_id, target["provider"], who["principal"])
        work(run)
    return run.outcome()


def run_stream_tasks(
    run: RunRecord, stream_names: tuple[str, ...], mode: RunMode, *, label: str = "{stream}"
) -> None:
    """One ``sync-stream`` task per stream in ``mode``, its counts stored under ``label``. A
    failed stream does not stop the next one, but a credentials failure does (the rest would
    fail alike)."""
    for stream in stream_names:
        name = label.format(stream=stream)
        try:
            run.streams[name] = sync_stream(run.integration_id, stream, mode)
        except ReauthRequired as exc:
            run.fail(name, exc)
            return
        except Exception as exc:
            run.fail(name, exc)


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
    """An incremental sync (or, with ``full_refresh`` / ``since``, a backfill-class rerun);
    what each mode reads is defined once, in ``tasks/modes.py``."""
    mode = RunMode.requested(full_refresh=full_refresh, since=since)
    action = Action.BACKFILL if mode.rereads else Action.SYNC

    def work(run: RunRecord) -> None:
        run_stream_tasks(run, registry.get(provider).streams, mode)

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
