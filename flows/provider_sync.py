"""The shape every provider flow shares: authorize -> check -> lock + ledger -> credentials ->
work -> summary. A sync's work is one task per stream; a backfill's is one task per stream per
chunk. Only wiring lives here; the verbs are in ``tasks/``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import date
from typing import Any

from connectors import registry
from db.rbac import Action
from tasks.modes import RunMode
from tasks.run import RunRecord, check_integration, open_run, tag_run
from tasks.sync import (
    ReauthRequired,
    authorize_run,
    refresh_credentials,
    sync_stream,
    watch_token,
)

__all__ = ["Work", "guarded_run", "run_provider_sync", "run_stream_tasks", "started_by"]

# Set by the command line around the runs it starts (``started_by("cli")``); flows do not take
# the trigger as a parameter, so the Prefect "Run" form never offers it.
_STARTED_BY: ContextVar[str | None] = ContextVar("aos_started_by", default=None)


@contextlib.contextmanager
def started_by(trigger: str) -> Iterator[None]:
    """Runs started inside this block are recorded with ``trigger`` in the ledger."""
    token = _STARTED_BY.set(trigger)
    try:
        yield
    finally:
        _STARTED_BY.reset(token)


def run_trigger(requested_by: str | None) -> str:
    """What started a run: the scheduler principal's runs are ``schedule``; runs the command
    line starts are ``cli``; anything else (the Prefect UI, the API, Python) is ``manual``."""
    if requested_by and requested_by.startswith("scheduler:"):
        return "schedule"
    return _STARTED_BY.get() or "manual"


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
        run.warnings.extend(watch_token(integration_id, target["provider"]))
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
        trigger=run_trigger(requested_by),
        params={"full_refresh": full_refresh, "since": since.isoformat() if since else None},
        work=work,
    )
