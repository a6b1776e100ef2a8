"""``aos-sync serve``: run the deployments of prefect.yaml in this process."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from db.engine import aos_home

__all__ = ["register"]


def cmd_serve(a: argparse.Namespace) -> Any:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's runner keeps scratch files in <tmp>/runner_storage; a folder of our own keeps
    # users of one machine from colliding there (another user's folder is not writable).
    if not os.environ.get("TMPDIR"):
        from db.embedded import make_private_home

        scratch = make_private_home(make_private_home(aos_home()) / "tmp")
        tempfile.tempdir = str(scratch)
        os.environ["TMPDIR"] = str(scratch)
    from deployments.serve import serve_all

    serve_all(limit=a.limit)
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="run every deployment of prefect.yaml in this process "
        "(schedules included); needs PREFECT_API_URL for the UI to see it",
    )
    p.add_argument("--limit", type=int, help="at most this many concurrent runs")
    p.set_defaults(func=cmd_serve)
