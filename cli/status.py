"""``aos-sync status``: which integrations are healthy, stale or failing, for people and alerts.

Exits 1 (after printing the table) when any integration is failing or stale, so a cron job or
monitoring probe can alert on it without parsing the output.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cli.context import engine
from cli.output import CliError, emit
from connectors import registry
from db.health import integration_health

__all__ = ["register"]


def cmd_status(a: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    intervals = {name: registry.get(name).interval for name in registry.names()}
    with engine().connect() as conn:
        health = integration_health(
            conn, now, intervals, stale_after=a.stale_after, agency_id=a.agency
        )
    emit([h.as_row(now) for h in health], as_json=a.json)
    bad = [h for h in health if h.failing or h.stale]
    if bad:
        failing = [h.integration_id for h in bad if h.failing]
        stale = [h.integration_id for h in bad if not h.failing]
        parts = [f"failing: {failing}" if failing else "", f"stale: {stale}" if stale else ""]
        raise CliError(
            f"{len(bad)} integration(s) need attention ({'; '.join(p for p in parts if p)})"
        )
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status", help="health of every integration; exits 1 when any is failing or stale"
    )
    p.add_argument("--agency", type=int, help="one agency id")
    p.add_argument(
        "--stale-after",
        type=float,
        default=3.0,
        metavar="N",
        help="stale when the last success is older than N schedule intervals (default 3)",
    )
    p.set_defaults(func=cmd_status)
