"""``aos-sync serve``: run the deployments of prefect.yaml in this process, against the
project's local Prefect server (like ``sync``, ``backfill`` and ``demo``) unless
``PREFECT_API_URL`` names another; Ctrl-C stops serving (exit 130, no traceback)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from typing import Any

from db.engine import aos_home

__all__ = ["register"]


def cmd_serve(a: argparse.Namespace) -> Any:
    from cli.sync import prefect_env

    prefect_env()  # the local server, before Prefect is imported
    # Prefect's runner keeps scratch files in <tmp>/runner_storage; a folder of our own keeps
    # users of one machine from colliding there (another user's folder is not writable).
    if not os.environ.get("TMPDIR"):
        from db.embedded import make_private_home

        scratch = make_private_home(make_private_home(aos_home()) / "tmp")
        tempfile.tempdir = str(scratch)
        os.environ["TMPDIR"] = str(scratch)
    from deployments.serve import serve_all

    # Serving ends only when interrupted: Prefect's runner catches Ctrl-C itself, pauses the
    # deployments (the next ``serve`` resumes them) and returns; an interrupt outside it raises.
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        serve_all(limit=a.limit)
    print("stopped serving", file=sys.stderr)
    raise SystemExit(130)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="run every deployment of prefect.yaml in this process (schedules included), "
        "on the project's local Prefect server unless PREFECT_API_URL is set",
    )
    p.add_argument("--limit", type=int, help="at most this many concurrent runs")
    p.set_defaults(func=cmd_serve)
