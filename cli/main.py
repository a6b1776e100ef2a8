"""``aos-sync``: admin, sync, sandbox and demo commands.

Every command prints a table (or JSON with ``--json``) and exits 0; on error it prints one line
``error: ...`` to stderr and exits 1. Secrets never appear in output, except an analyst's new
password, shown once by ``aos-sync analyst create``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from cli.output import Parser, emit
from connectors import logsafe

__all__ = ["main"]


def cmd_db_upgrade(a: argparse.Namespace) -> Any:
    """Migrate the control database, move rows of the shared layout into each agency's own
    database (resumable), and migrate every agency database (``db/relayout.py``)."""
    from db.engine import get_engine
    from db.relayout import upgrade_installation

    eng = get_engine()
    done = upgrade_installation(eng, progress=lambda m: print(m, file=sys.stderr, flush=True))
    return {
        "database": eng.url.render_as_string(hide_password=True),
        "migrated": "head",
        "agencies": done["agencies"],
        "rows_moved": sum(v["rows"] for v in done["moved"].values()),
    }


def cmd_db_stop(a: argparse.Namespace) -> Any:
    """Stop what the project runs on this machine: the embedded PostgreSQL and the local
    Prefect server (``deployments/local_server.py``); ``--purge`` also deletes the embedded
    cluster's data (wherever it lives, also outside ``AOS_HOME``)."""
    from db.engine import aos_home, embedded
    from deployments.local_server import LocalPrefect

    pg = embedded()
    result: dict[str, Any] = {"stopped": pg.stop()}
    if a.purge:
        result["purged"] = pg.purge()
    result["prefect_stopped"] = LocalPrefect(aos_home() / "prefect").stop()
    return result


def cmd_db_status(a: argparse.Namespace) -> Any:
    from db.engine import embedded

    if not os.environ.get("AOS_DATABASE_URL"):
        return embedded().status()
    return {"database": "AOS_DATABASE_URL (external server)"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="aos-sync", description="AudienceOS Sync: provider data into PostgreSQL, per agency."
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="debug logging; -vv also logs the HTTP SDKs' requests and responses (secrets masked)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database: upgrade, status, stop").add_subparsers(
        dest="sub", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("status", help="where the database is").set_defaults(func=cmd_db_status)
    stop = db.add_parser("stop", help="stop the embedded PostgreSQL and the local Prefect server")
    stop.add_argument(
        "--purge", action="store_true", help="also delete the embedded cluster and its data"
    )
    stop.set_defaults(func=cmd_db_stop)

    from cli import admin

    admin.register(sub)
    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Commands whose modules pull in Prefect or the sandbox: imported only when present."""
    import importlib

    for name in (
        "cli.sync",
        "cli.status",
        "cli.sandbox",
        "cli.demo",
        "cli.serve",
        "cli.export",
        "cli.connect",
    ):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if isinstance(getattr(args, "integration", None), str):  # a name (cli.context)
            from cli.context import resolve_integration

            args.integration = resolve_integration(args.integration)
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(f"error: {logsafe.redact(_one_line(exc))}", file=sys.stderr)
        return 1
    if result is not None:
        emit(result, as_json=args.json)
    return 0


def _setup_logging(verbosity: int) -> None:
    """``-v``: DEBUG for everything but the wire-level SDK loggers (capped at INFO); ``-vv``:
    them too. Whatever the level, every record is redacted before a handler sees it
    (``connectors.logsafe``): a verbose run must not print the tokens it sends and receives."""
    logging.basicConfig(
        level=logging.DEBUG if verbosity else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logsafe.install(wire_debug=verbosity >= 2)


def _one_line(exc: BaseException) -> str:
    """The first line of the message, never the exception's class name (``-v`` shows the
    traceback)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "unexpected failure; run again with -v for details"


if __name__ == "__main__":
    sys.exit(main())
