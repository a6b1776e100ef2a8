"""``aos-sync sandbox serve``: the provider emulators, for trying the project without accounts."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_sandbox(a: argparse.Namespace) -> Any:
    from sandbox.cli import serve_main

    serve_main(a.rest)
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sandbox", help="run the provider emulators (see `sandbox serve --help`)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="e.g. serve --providers slack")
    p.set_defaults(func=cmd_sandbox)
