"""``aos-sync sandbox serve``: the provider emulators, for trying the project without accounts."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_sandbox_serve(a: argparse.Namespace) -> Any:
    from sandbox.cli import serve

    serve(a)
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from sandbox.cli import add_serve_arguments

    sandbox = sub.add_parser("sandbox", help="the provider emulators on 127.0.0.1")
    commands = sandbox.add_subparsers(dest="sub", required=True)
    serve = commands.add_parser(
        "serve", help="start the emulators, print the AOS_* settings, wait for Ctrl-C"
    )
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_sandbox_serve)
