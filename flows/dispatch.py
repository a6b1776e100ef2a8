"""``sync_all``: every connected integration, each through its provider's flow.

Runs act as each agency's scheduler principal, so they may only run incremental syncs of
connected integrations. One integration failing (or needing re-auth) does not stop the others;
the artifact lists every integration with its outcome.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from db import tenancy
from db.engine import get_engine

__all__ = ["sync_all"]


@flow(name="sync_all")
def sync_all(provider: str | None = None, agency_id: int | None = None) -> list[dict[str, Any]]:
    """Sync every connected integration (optionally of one provider / one agency)."""
    from flows import FLOWS

    logger = get_run_logger()
    with get_engine().connect() as conn:
        targets = [i for i in tenancy.list_integrations(conn, agency_id=agency_id,
                                                       provider=provider, status="connected")
                   if i.provider in FLOWS]
    logger.info("syncing %d integration(s)", len(targets))
    outcomes: list[dict[str, Any]] = []
    for n, integ in enumerate(targets, 1):
        logger.info("[%d/%d] %s integration %d (%s)", n, len(targets), integ.provider, integ.id,
                    integ.name)
        row: dict[str, Any] = {"integration": integ.id, "agency": integ.agency_id,
                               "provider": integ.provider, "name": integ.name}
        try:
            result = FLOWS[integ.provider](
                integration_id=integ.id, requested_by=f"scheduler:{integ.agency_id}",
                trigger="schedule")
            streams = result.get("streams", {})
            row.update(outcome=result["status"],
                       rows=sum(s.get("inserted", 0) + s.get("updated", 0) for s in streams.values()),
                       error=result.get("reason"))
        except Exception as exc:  # one failure must not stop the others
            row.update(outcome="failed", rows=0, error=str(exc).splitlines()[0][:300])
            logger.error("integration %d failed: %s", integ.id, row["error"])
        outcomes.append(row)
    create_table_artifact(key="sync-all", table=outcomes or [{"outcome": "nothing to sync"}],
                          description="sync_all: one row per integration")
    return outcomes
