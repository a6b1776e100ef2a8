"""``aos-sync sync <provider>``: run one integration's flow now, in this process."""

from __future__ import annotations

import argparse
import os
from datetime import date
from typing import Any

__all__ = ["register"]


def _prefect_env() -> None:
    # A closed network: Prefect's telemetry would only log connection errors.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def cmd_sync(a: argparse.Namespace) -> Any:
    _prefect_env()
    from flows import FLOWS

    flow = FLOWS[a.provider]
    result = flow(
        integration_id=a.integration,
        requested_by=a.as_,
        full_refresh=a.full_refresh,
        since=a.since,
        run_grant=os.environ.get("AOS_RUN_GRANT"),
        trigger="cli",
    )
    if result.get("status") == "skipped":
        return {"status": "skipped", "reason": result["reason"]}
    return [
        {"stream": name, **{k: v for k, v in s.items() if k in _COLUMNS}}
        for name, s in result["streams"].items()
    ]


def cmd_sync_all(a: argparse.Namespace) -> Any:
    _prefect_env()
    from flows import sync_all

    return sync_all(provider=a.only, agency_id=a.agency)


def cmd_backfill(a: argparse.Namespace) -> Any:
    _prefect_env()
    from flows import backfill

    result = backfill(
        integration_id=a.integration,
        start=a.start,
        end=a.end,
        requested_by=a.as_,
        chunk_days=a.chunk_days,
        run_grant=os.environ.get("AOS_RUN_GRANT"),
    )
    if result.get("status") == "skipped":
        return {"status": "skipped", "reason": result["reason"]}
    return [
        {"chunk": name, **{k: v for k, v in s.items() if k in _COLUMNS}}
        for name, s in result["streams"].items()
    ]


_COLUMNS = (
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "deleted",
    "requests",
    "rate_limited",
    "skipped",
    "seconds",
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sync = sub.add_parser("sync", help="run a provider sync now").add_subparsers(
        dest="provider", required=True
    )
    for provider in ("slack", "gmail"):
        p = sync.add_parser(provider, help=f"sync one {provider} integration")
        p.add_argument("--integration", type=int, required=True)
        p.add_argument(
            "--as",
            dest="as_",
            metavar="EMAIL",
            help="acting user (with AOS_RUN_GRANT_KEY set, AOS_RUN_GRANT must hold a "
            "run grant minted for this user)",
        )
        p.add_argument(
            "--full-refresh",
            action="store_true",
            help="forget cursors and re-read everything (backfill permission)",
        )
        p.add_argument(
            "--since",
            type=date.fromisoformat,
            metavar="YYYY-MM-DD",
            help="re-read from this date (backfill permission)",
        )
        p.set_defaults(func=cmd_sync)

    p = sync.add_parser("all", help="every connected integration, as each agency's scheduler")
    p.add_argument("--only", choices=["slack", "gmail"], help="one provider")
    p.add_argument("--agency", type=int, help="one agency id")
    p.set_defaults(func=cmd_sync_all)

    p = sub.add_parser("backfill", help="re-read a date window of one integration, in chunks")
    p.add_argument("--integration", type=int, required=True)
    p.add_argument("--start", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    p.add_argument(
        "--end", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD", help="exclusive"
    )
    p.add_argument("--chunk-days", type=int, default=7)
    p.add_argument("--as", dest="as_", metavar="EMAIL", help="acting user (backfill permission)")
    p.set_defaults(func=cmd_backfill)
