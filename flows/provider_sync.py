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
from db.rbac import Action, PermissionDenied
from tasks.modes import RunMode
from tasks.run import RunRecord, check_integration, open_run, own_flow_run, tag_run
from tasks.sync import (
    ReauthRequired,
    authorize_run,
    refresh_credentials,
    sync_stream,
    watch_token,
)

__all__ = [
    "REFUSED",
    "Work",
    "guarded_run",
    "run_provider_sync",
    "run_stream_tasks",
    "started_by",
]

#: The name of the (Cancelled) state a refused run ends in: a refusal is not a failure of the
#: system, so the dashboard stays green, and the UI still says why the run did nothing.
REFUSED = "Refused"

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
) -> Any:
    """Everything around the work of a run; returns a summary (counts, no secrets) or raises
    one of the typed exceptions listed in :mod:`tasks.run`.

    A refusal (:class:`~db.rbac.PermissionDenied`) of a flow run of its own ends it in the
    Cancelled state :data:`REFUSED`, with the refusal as its message: returned here, it is what
    Prefect records, and a direct caller still gets the exception raised. Authorization is
    not a task run of its own, so the refusal is logged once (the run's final state), not by
    a failed task, its retry handler and the flow again.

    Authorization comes first, before the integration is even looked up: whatever the flow
    says about an integration (its provider, its status, that it exists) is said only to a
    principal allowed to act on it. ``provider`` is the flow's provider; ``None`` (a backfill)
    takes the integration's own."""
    try:
        who = authorize_run.fn(integration_id, requested_by, action.value, run_grant)
    except PermissionDenied as exc:
        if not own_flow_run():
            raise
        return _refused(exc, integration_id, provider)
    target = check_integration(integration_id, provider)
    tag_run(target["provider"], target["agency_id"])
    with open_run(integration_id, target["provider"], who, trigger, params) as run:
        # A config the connector refuses fails the run here, once, before any request.
        registry.get(target["provider"]).check_config(target["config"])
        refresh_credentials(integration_id, target["provider"], who["principal"])
        run.warnings.extend(watch_token(integration_id, target["provider"]))
        work(run)
    return run.outcome()


def _refused(exc: PermissionDenied, integration_id: int, provider: str | None) -> Any:
    """The Cancelled state :data:`REFUSED`, the run tagged with its provider and agency like
    any other (for operators filtering the UI; the caller learns nothing from it)."""
    from prefect.states import Cancelled

    from db import tenancy
    from db.engine import get_engine

    with contextlib.suppress(tenancy.NotFound), get_engine().connect() as conn:
        integ = tenancy.get_integration(conn, integration_id)
        tag_run(provider or integ.provider, integ.agency_id)
    return Cancelled(name=REFUSED, message=str(exc), data=exc)


def run_stream_tasks(
    run: RunRecord, stream_names: tuple[str, ...], mode: RunMode, *, label: str = "{stream}"
) -> None:
    """One ``sync-stream`` task per stream in ``mode``, its counts stored under ``label`` and
    its task run named after it (``sync-stream-messages``). A failed stream does not stop the
    next one, but a credentials failure does (the rest would fail alike)."""
    for stream in stream_names:
        name = label.format(stream=stream)
        task = sync_stream.with_options(task_run_name=f"sync-stream-{name}")
        try:
            run.streams[name] = task(run.integration_id, stream, mode)
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
