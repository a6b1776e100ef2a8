"""Everything around a run's work: the target check, the lock, the ledger, the summary, backfill
chunk bookkeeping, and what a failed run raises. Flows only wire these (``flows/``).

A run's failures reach whoever called the flow as typed exceptions they can catch:
:class:`~db.rbac.PermissionDenied` (refused before anything was touched),
:class:`IntegrationUnavailable` (not ``connected``), :class:`~db.runs.SyncLocked` (another run
holds the integration), :class:`~tasks.sync.ReauthRequired` (the provider refused the
credentials; the integration is marked ``needs_reauth``) and :class:`SyncFailed` (streams
failed; the ledger row and artifact say which, and why).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from connectors import registry
from db import runs, state, tenancy
from db.engine import agency_engine, get_engine
from db.health import integration_health

__all__ = [
    "DispatchFailed",
    "IntegrationUnavailable",
    "RunRecord",
    "SyncFailed",
    "check_integration",
    "chunks_done",
    "close_run",
    "open_run",
    "own_flow_run",
    "publish_dispatch",
    "publish_summary",
    "record_chunk",
    "syncable_integrations",
    "tag_run",
    "wait_for_flow_runs",
]

BACKFILL_PROGRESS = "backfill"  # sync_state stream that records finished backfill chunks


class IntegrationUnavailable(RuntimeError):
    """The integration is not ``connected`` (needs re-auth, failed, or disabled)."""


class DispatchFailed(RuntimeError):
    """Integrations of a ``sync_all`` run failed; ``outcomes`` has every integration's row."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        failed = [o for o in outcomes if o["outcome"] == "failed"]
        names = ", ".join(f"{o['integration']} ({o['error']})" for o in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} of {len(outcomes)} integrations failed: {names}{more}")
        self.outcomes = outcomes

    def __reduce__(self) -> Any:
        return (DispatchFailed, (self.outcomes,))


class SyncFailed(RuntimeError):
    """Streams of the run failed; ``errors`` maps each failed stream to its message."""

    def __init__(self, integration_id: int, errors: dict[str, str]) -> None:
        summary = "; ".join(f"{stream}: {message}" for stream, message in errors.items())
        super().__init__(f"sync of integration {integration_id} failed: {summary}")
        self.integration_id = integration_id
        self.errors = errors

    def __reduce__(self) -> Any:  # Prefect may pickle a flow's exception
        return (SyncFailed, (self.integration_id, self.errors))


@task(name="check-integration")
def check_integration(integration_id: int, provider: str | None) -> dict[str, Any]:
    """After authorize (never before: it would tell a stranger what the integration is), the
    integration's provider, agency, status and config. ``provider`` is the flow's, or ``None``
    for a flow that serves every provider (backfill)."""
    with get_engine().connect() as conn:
        integ = tenancy.get_integration(conn, integration_id)
    if provider is not None and integ.provider != provider:
        raise ValueError(
            f"integration {integration_id} is a {integ.provider} integration, not {provider}"
        )
    registry.get(integ.provider)  # a provider without a connector is refused here, clearly
    if integ.status != "connected":
        raise IntegrationUnavailable(
            f"integration {integration_id} is {integ.status}"
            + (f" ({integ.status_reason})" if integ.status_reason else "")
            + "; reconnect it before syncing"
        )
    return {"provider": integ.provider, "agency_id": integ.agency_id, "config": integ.config}


def own_flow_run() -> bool:
    """Whether this code runs in a flow run of its own, not inside a task (``sync_all`` runs
    each integration's flow body inside a ``sync-integration`` task)."""
    from prefect.runtime import task_run

    return flow_run.id is not None and task_run.id is None


def tag_run(provider: str, agency_id: int) -> None:
    """Tag the flow run with its provider and agency, so an operator can filter runs in the UI
    (the caller is told nothing by it), only for a flow run of its own: inside ``sync_all``
    the run is the dispatcher's."""
    from prefect.client.orchestration import get_client

    if not own_flow_run():
        return
    tags = sorted({*flow_run.tags, provider, f"agency:{agency_id}"})
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, tags=tags)  # type: ignore[arg-type]


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


@dataclass
class RunRecord:
    """What a run's work reports: counts per stream (label -> counts), failures, and
    warnings about the integration itself (a token about to expire)."""

    integration_id: int
    provider: str
    run_id: int
    streams: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    causes: list[BaseException] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, label: str, exc: BaseException) -> None:
        self.errors[label] = str(exc)
        self.causes.append(exc)

    @property
    def status(self) -> str:
        return "failed" if self.errors else "succeeded"

    def outcome(self) -> dict[str, Any]:
        """The flow's result, or the typed exception of a failed run."""
        from tasks.sync import ReauthRequired

        if self.errors:
            reauth = [c for c in self.causes if isinstance(c, ReauthRequired)]
            if reauth:
                raise reauth[0]
            raise SyncFailed(self.integration_id, self.errors) from self.causes[0]
        outcome = {
            "integration_id": self.integration_id,
            "run_id": self.run_id,
            "status": self.status,
            "streams": self.streams,
        }
        if self.warnings:
            outcome["warnings"] = list(self.warnings)
        return outcome


@contextlib.contextmanager
def open_run(
    integration_id: int, provider: str, who: dict[str, Any], trigger: str, params: dict[str, Any]
) -> Iterator[RunRecord]:
    """Lock the integration (or raise ``SyncLocked``: nothing is touched), open its ledger row,
    and whatever happens inside, close the row and publish the summary."""
    eng = get_engine()
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
        record = RunRecord(integration_id, provider, run_id)
        try:
            yield record
        except Exception as exc:  # a failure outside the streams (credentials, say)
            record.fail("run", exc)
        finally:
            error = "; ".join(f"{k}: {v}" for k, v in record.errors.items()) or None
            publish_summary(
                run_id,
                integration_id,
                provider,
                record.status,
                record.streams,
                error,
                warnings=record.warnings,
            )


@task(name="record-run")
def close_run(
    run_id: int, integration_id: int, status: str, streams: dict[str, Any], error: str | None
) -> None:
    """Close the ledger row."""
    runs.finish_run(
        get_engine(),
        run_id,
        integration_id=integration_id,
        status=status,
        streams=streams,
        error=error,
    )


def publish_summary(
    run_id: int,
    integration_id: int,
    provider: str,
    status: str,
    streams: dict[str, Any],
    error: str | None,
    warnings: list[str] | None = None,
) -> None:
    """Close the ledger row, then attach a table artifact summarising each stream (and the
    run's warnings about the integration, in its description). The artifact is made here, in
    the flow run (not in a task run), so it is the flow run's own: the first thing its
    Artifacts tab shows. Inside ``sync_all`` it belongs to the integration's task run."""
    close_run(run_id, integration_id, status, streams, error)
    table = [
        {"stream": name, **{k: v for k, v in s.items() if k not in {"stream", "warnings"}}}
        for name, s in streams.items()
    ]
    create_table_artifact(
        key=f"{provider.replace('_', '-')}-sync-integration-{integration_id}",
        table=table or [{"stream": "-", "status": status}],
        description=f"{provider} sync of integration {integration_id}: {status}"
        + (f" - {error}" if error else "")
        + "".join(f" - warning: {w}" for w in warnings or ()),
    )


@task(name="syncable-integrations")
def syncable_integrations(
    provider: str | None, agency_id: int | None, integration_ids: list[int] | None
) -> tuple[list[tenancy.Integration], list[tenancy.Integration]]:
    """(connected integrations to sync, the others in scope that wait for a person), among
    integrations with a connector, of one provider / agency, or these ids."""
    wanted = None if integration_ids is None else {int(i) for i in integration_ids}
    with get_engine().connect() as conn:
        scope = [
            i
            for i in tenancy.list_integrations(conn, agency_id=agency_id, provider=provider)
            if i.provider in registry.REGISTRY and (wanted is None or i.id in wanted)
        ]
    if wanted is not None and len(scope) < len(wanted):
        get_run_logger().warning(
            "not syncing integration(s) %s: no such %s integration",
            sorted(wanted - {i.id for i in scope}),
            provider or "syncable",
        )
    return [i for i in scope if i.status == "connected"], [
        i for i in scope if i.status != "connected"
    ]


def publish_dispatch(outcomes: list[dict[str, Any]]) -> None:
    """The run's outcome per integration, and the health of every integration after it (the
    same as ``aos-sync status``), as artifacts of the dispatcher's flow run itself (made in
    the flow, not in a task run, so they are the first cards of the run's Artifacts tab)."""
    create_table_artifact(
        key="sync-all",
        table=outcomes or [{"outcome": "nothing to sync"}],
        description="sync_all: one row per integration",
    )
    now = datetime.now(UTC)
    intervals = {name: registry.get(name).interval for name in registry.names()}
    with get_engine().connect() as conn:
        rows = [h.as_row(now) for h in integration_health(conn, now, intervals)]
    columns = ["integration", "provider", "name", "agency", "status", "age", "lag", "health"]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows),
    ]
    bad = sum(1 for r in rows if r["health"] != "ok")
    create_markdown_artifact(
        key="integration-health",
        markdown=f"# Integration health\n\n{bad} of {len(rows)} need attention.\n\n"
        + "\n".join(lines),
        description="aos-sync status, as of the end of this sync_all run",
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "/").replace("\n", " ")


@task(name="wait-for-flow-runs")
def wait_for_flow_runs(run_ids: list[str], poll_seconds: float = 2.0) -> dict[str, Any]:
    """Wait until every flow run has a final state; returns run id -> state."""
    import time

    from prefect.client.orchestration import get_client

    pending, states = set(run_ids), {}
    with get_client(sync_client=True) as client:
        while pending:
            for run_id in sorted(pending):
                state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
                if state is not None and state.is_final():
                    states[run_id] = state
                    pending.discard(run_id)
            if pending:
                time.sleep(poll_seconds)
    return states


def _agency_engine_of(integration_id: int) -> Any:
    with get_engine().connect() as conn:
        agency_id = tenancy.get_integration(conn, integration_id).agency_id
    return agency_engine(agency_id)


@task(name="chunks-done")
def chunks_done(integration_id: int, window: str) -> list[str]:
    """The finished chunks of a backfill window (a rerun of the window skips them)."""
    with _agency_engine_of(integration_id).connect() as conn:
        saved = state.load_state(conn, integration_id, BACKFILL_PROGRESS).get(window, {})
    return list(saved.get("done", []))


@task(name="record-chunk")
def record_chunk(integration_id: int, window: str, chunk: str) -> None:
    """Mark a chunk of a window as finished (after all its rows and cursors committed)."""
    with _agency_engine_of(integration_id).begin() as conn:
        done = state.load_state(conn, integration_id, BACKFILL_PROGRESS).get(window, {})
        finished = sorted({*done.get("done", []), chunk})
        state.save_state(conn, integration_id, BACKFILL_PROGRESS, window, {"done": finished})
