"""``aos-sync serve``: run the deployments of prefect.yaml in this process."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["register"]


def cmd_serve(a: argparse.Namespace) -> Any:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from deployments.serve import serve_all

    serve_all(limit=a.limit)
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run every deployment of prefect.yaml in this process "
                       "(schedules included); needs PREFECT_API_URL for the UI to see it")
    p.add_argument("--limit", type=int, help="at most this many concurrent runs")
    p.set_defaults(func=cmd_serve)
