"""``sync_all``: every connected integration, each through its provider's flow.

Runs act as each agency's scheduler principal, so they may only run incremental syncs of
connected integrations. One integration failing (or needing re-auth) does not stop the others;
the artifact lists every integration with its outcome.

Two ways to fan out:

* in-process (default): one ``sync-integration`` task per integration on a thread pool of
  ``AOS_DISPATCH_CONCURRENCY`` workers (default 4), each running the provider flow's body
  (its authorize / credentials / stream / ledger tasks nest under it);
* through a work pool (``via_deployments=True``, or ``AOS_DISPATCH_VIA_DEPLOYMENTS=1``): one
  ``run_deployment`` per integration, so every worker of the pool shares the load. Provider
  quotas then hold across workers through Prefect global concurrency limits named
  ``aos-provider-<provider>`` (see ``flows.provider_sync.provider_slot`` and
  docs/operations.md).
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner

from db.runs import SyncLocked
from tasks.progress import SHOW
from tasks.run import (
    DispatchFailed,
    publish_dispatch,
    syncable_integrations,
    wait_for_flow_runs,
)

__all__ = ["DispatchFailed", "sync_all"]

DEFAULT_CONCURRENCY = int(os.environ.get("AOS_DISPATCH_CONCURRENCY", "4"))


def _outcome(
    integ: Any, result: dict[str, Any] | None, error: BaseException | str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "integration": integ.id,
        "agency": integ.agency_id,
        "provider": integ.provider,
        "name": integ.name,
    }
    if error is not None:
        return {**row, "outcome": "failed", "rows": 0, "error": str(error).splitlines()[0][:300]}
    streams = (result or {}).get("streams", {})
    return {
        **row,
        "outcome": (result or {}).get("status", "unknown"),
        "rows": sum(s.get("inserted", 0) + s.get("updated", 0) for s in streams.values()),
        "requests": sum(s.get("requests", 0) for s in streams.values()),
        "rate_limited": sum(s.get("rate_limited", 0) for s in streams.values()),
        "error": (result or {}).get("reason"),
    }


@task(name="sync-integration")
def sync_integration(integration_id: int, provider: str, agency_id: int) -> dict[str, Any]:
    """One integration's provider sync, as the agency's scheduler.

    It runs the provider flow's body inside this task rather than as a subflow: its tasks
    (authorize, refresh-credentials, sync-stream, record-run) nest under this task run, the
    ledger row and artifact are the same, and the run costs no subflow. Creating a subflow
    from a pool thread waited ~1 s per integration on Prefect's event loop
    (``bench/dispatch.py``). Manual and deployment runs still run the provider flow itself."""
    from flows.providers import flow_for

    return flow_for(provider).fn(
        integration_id=integration_id, requested_by=f"scheduler:{agency_id}"
    )


def _in_process(targets: list[Any]) -> list[dict[str, Any]]:
    logger = get_run_logger()
    futures = [
        (
            i,
            sync_integration.with_options(task_run_name=f"sync-{i.provider}-{i.id}").submit(
                i.id, i.provider, i.agency_id
            ),
        )
        for i in targets
    ]
    outcomes = []
    for n, (integ, future) in enumerate(futures, 1):
        try:
            row = _outcome(integ, future.result(), None)
        except SyncLocked as exc:  # another run has it: nothing was touched
            row = {**_outcome(integ, None, exc), "outcome": "skipped"}
        except Exception as exc:  # one failure must not stop the others
            row = _outcome(integ, None, exc)
        logger.info(
            "[%d/%d] %s integration %d (%s): %s",
            n,
            len(targets),
            integ.provider,
            integ.id,
            integ.name,
            _said(row),
            extra=SHOW,
        )
        outcomes.append(row)
    return outcomes


def _said(row: dict[str, Any]) -> str:
    """An outcome in a few words: rows written, requests and rate-limited answers, or why not."""
    if row["outcome"] != "succeeded":
        return row["outcome"] + (f" - {row['error']}" if row["error"] else "")
    waits = f", {row['rate_limited']:,} rate-limited" if row.get("rate_limited") else ""
    return f"succeeded, {row['rows']:,} rows written, {row.get('requests', 0):,} requests{waits}"


def _via_deployments(targets: list[Any], poll_seconds: float = 2.0) -> list[dict[str, Any]]:
    """Start one deployment run per integration, then wait for all of them."""
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    runs = []
    for integ in targets:
        run = run_deployment(
            name=f"sync_{integ.provider}/sync-{integ.provider.replace('_', '-')}",
            parameters={
                "integration_id": integ.id,
                "requested_by": f"scheduler:{integ.agency_id}",
            },
            timeout=0,
            as_subflow=True,
        )
        runs.append((integ, run.id))  # type: ignore[union-attr]  # sync context: a FlowRun
    logger.info("started %d deployment runs; waiting for the work pool", len(runs))
    states = wait_for_flow_runs([str(run_id) for _, run_id in runs], poll_seconds)
    outcomes = []
    for integ, run_id in runs:
        state = states[str(run_id)]
        if state.is_completed():
            outcomes.append(_outcome(integ, state.result(raise_on_failure=False) or {}, None))
        else:
            outcomes.append(_outcome(integ, None, state.message or state.name))
    return outcomes


def _dispatch_run_name() -> str:
    """``sync-all-<provider>-<UTC day it was scheduled for>`` (``every-provider`` without
    one), and the agency when it is one agency's: a list of runs says what each one did."""
    from datetime import UTC, datetime

    from prefect.runtime import flow_run

    params = flow_run.parameters
    scheduled = flow_run.scheduled_start_time or datetime.now(UTC)
    name = f"sync-all-{str(params.get('provider') or 'every-provider').replace('_', '-')}"
    if params.get("agency_id") is not None:
        name += f"-agency-{params['agency_id']}"
    return f"{name}-{scheduled.astimezone(UTC).date().isoformat()}"


@flow(
    name="sync_all",
    task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_CONCURRENCY),  # type: ignore[arg-type]
    flow_run_name=_dispatch_run_name,
)
def sync_all(
    provider: str | None = None,
    agency_id: int | None = None,
    via_deployments: bool | None = None,
    integration_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Sync every connected integration (optionally of one provider / one agency).

    ``integration_ids`` narrows it to those integrations (of ``provider`` / ``agency_id`` when
    given); ``None`` means all. The demo passes the ids of the integrations it created, so a
    real account connected to the same database is never sent to the sandbox it points the
    project at. An empty list syncs nothing.

    The artifact lists every integration in scope, with its outcome: ``succeeded``,
    ``failed``, or ``skipped`` with the reason (another run holds it, or it needs re-auth, has
    failed or is disabled and waits for a person). When any integration failed, the run ends
    Failed (:class:`DispatchFailed`, carrying every outcome).

    Args:
        provider: Only this provider's integrations (slack, gmail, ...); empty: every provider.
        agency_id: Only this agency's integrations; empty: every agency.
        via_deployments: Run each integration as a run of its provider's deployment (work
            pool) instead of in this flow run; empty: the AOS_DISPATCH_VIA_DEPLOYMENTS setting.
        integration_ids: Only these integrations; empty: all connected ones in scope.
    """
    logger = get_run_logger()
    targets, waiting = syncable_integrations(provider, agency_id, integration_ids)
    if via_deployments is None:
        via_deployments = os.environ.get("AOS_DISPATCH_VIA_DEPLOYMENTS", "") in {"1", "true"}
    logger.info(
        "syncing %d integration(s) %s; %d waiting for a person",
        len(targets),
        "through the work pool" if via_deployments else "in-process",
        len(waiting),
        extra=SHOW,
    )
    outcomes = _via_deployments(targets) if via_deployments else _in_process(targets)
    outcomes += [
        {
            **_outcome(i, None, None),
            "outcome": "skipped",
            "error": f"{i.status}" + (f": {i.status_reason}" if i.status_reason else ""),
        }
        for i in waiting
    ]
    publish_dispatch(outcomes)
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    if failed:
        raise DispatchFailed(outcomes)
    return outcomes
