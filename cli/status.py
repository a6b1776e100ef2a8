"""``aos-sync status``: which integrations are healthy, stale or failing, for people and alerts.

Exits 1 (after printing the table) when any integration is failing or stale, so a cron job or
monitoring probe can alert on it without parsing the output.

The table fits :data:`WIDTH` columns: one line per integration with its health and, when it
has one, its problem (the status reason or the last error, cut to fit), then one line per
provider listed with the limit its runs are paced to by default (a Google Ads project's daily
operations, Slack's rate tier) and the setting that says so. ``--wide`` prints every column,
each integration's own ``limit`` among them; ``--json`` and ``--integration`` print the full
error.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cli.context import engine, integration_ref, resolve_agency
from cli.output import CliError, emit
from connectors import registry
from db.health import integration_health
from db.schema import integration

__all__ = ["WIDTH", "register"]

WIDTH = 100
NARROW = ("integration", "provider", "name", "health", "age", "problem")
NAME_WIDTH = 24


def _narrow(row: dict[str, Any]) -> dict[str, Any]:
    status = row["status"] if row["status"] != "connected" else None
    held = f"held: {row['hold']}" if row.get("hold") else None
    problem = " - ".join(p for p in (status, row["last_error"], held) if p) or None
    cut = {
        k: v if not isinstance(v, str) or len(v) <= NAME_WIDTH else v[: NAME_WIDTH - 3] + "..."
        for k, v in row.items()
        if k == "name"
    }
    return {**{k: row[k] for k in NARROW if k in row}, **cut, "problem": problem}


def _limit(provider: str, config: Mapping[str, Any] | None) -> str | None:
    """The provider limit an integration with ``config`` (``None``: the default) runs under,
    or what is wrong with the setting that says it."""
    try:
        return registry.get(provider).limit(config)
    except ValueError as exc:
        return f"misconfigured: {exc}"


def _limit_lines(providers: set[str]) -> list[str]:
    lines = []
    for provider in sorted(providers):
        text = _limit(provider, None)
        if text is not None:
            line = f"{registry.get(provider).title} limit: {text}"
            lines.append(line if len(line) <= WIDTH else line[: WIDTH - 3] + "...")
    return lines


def cmd_status(a: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    intervals = {name: registry.get(name).interval for name in registry.names()}
    agency_id = resolve_agency(a.agency)
    with engine().connect() as conn:
        health = integration_health(
            conn, now, intervals, stale_after=a.stale_after, agency_id=agency_id
        )
        if a.integration is not None:
            health = [h for h in health if h.integration_id == a.integration]
            if not health:
                raise CliError(f"no integration {a.integration} (see `aos-sync integration list`)")
        listed = [h.integration_id for h in health]
        configs = dict(
            conn.execute(
                sa.select(integration.c.id, integration.c.config).where(
                    integration.c.id.in_(listed)
                )
            ).all()
        )
    rows = [
        {**h.as_row(now), "limit": _limit(h.provider, configs.get(h.integration_id) or {})}
        for h in health
    ]
    if a.json:
        emit(rows, as_json=True)
    elif a.integration is not None:
        emit(rows[0], as_json=False)  # one integration: every field, the full error
    elif a.wide:
        emit(rows, as_json=False)
    else:
        emit([_narrow(r) for r in rows], as_json=False, max_width=WIDTH)
        for line in _limit_lines({h.provider for h in health}):
            print(line)
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
    p.add_argument("--agency", metavar="ID|NAME", help="one agency")
    p.add_argument(
        "--integration",
        type=integration_ref,
        metavar="ID|NAME",
        help="one integration, every field (the full last error)",
    )
    p.add_argument(
        "--wide", action="store_true", help=f"every column (the default fits {WIDTH} columns)"
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=3.0,
        metavar="N",
        help="stale when the last success is older than N schedule intervals (default 3)",
    )
    p.set_defaults(func=cmd_status)
