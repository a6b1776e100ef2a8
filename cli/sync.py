"""``aos-sync sync <provider>``: run one integration's flow now, in this process.

A refusal (``db.rbac.PermissionDenied``, a bad run grant included) is printed as one
``error: permission denied: ...`` line, exit status 1, like any other error of the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from cli.context import integration_ref
from cli.output import CliError, iso_date, whole_number
from connectors import registry

__all__ = ["register"]


_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def _expected() -> tuple[type[BaseException], ...]:
    """The typed outcomes of a run a person is told about in one sentence (see tasks/run.py)."""
    from db.rbac import PermissionDenied
    from db.runs import SyncLocked
    from tasks.run import DispatchFailed, IntegrationUnavailable, SyncFailed
    from tasks.sync import ReauthRequired

    return (
        PermissionDenied,
        SyncLocked,
        IntegrationUnavailable,
        SyncFailed,
        ReauthRequired,
        DispatchFailed,
    )


class _NoRefusalTraceback(logging.Filter):
    """Prefect logs a failed task or flow with its traceback. For a refusal or a known failure
    that is two screens of engine frames around one sentence; keep the sentence (the run's log
    still says what happened), drop the frames."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The record may already carry its traceback as text only (connectors.logsafe renders
        # and redacts it when the record is made); the exception being handled is still here.
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if isinstance(exc, _expected()):
            record.exc_info = None
            record.exc_text = None
        return True


class _ConsoleSaysItOnce(logging.Filter):
    """On the terminal only (a handler filter: the run's log in Prefect keeps every record):
    Prefect's lines announcing that a task or flow ended on a refusal or a known failure
    (``Finished in state Failed('... ReauthRequired: ...')``) would repeat, with the class name, the sentence the
    command prints last as ``error: ...``; they are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        text = record.getMessage()
        return not (isinstance(exc, _expected()) or any(c.__name__ in text for c in _expected()))


def _console_handlers() -> list[logging.Handler]:
    """The handlers that print Prefect's run logs here (not the one shipping them to the API)."""
    found: list[logging.Handler] = []
    for name in ("prefect", *_RUN_LOGGERS, ""):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ != "APILogHandler" and handler not in found:
                found.append(handler)
    return found


@contextlib.contextmanager
def _refusals_as_errors() -> Iterator[None]:
    """The flow raises the refusal or failure itself (a typed exception a program can catch);
    at the CLI it is a message for the person, without the exception's class name in front."""
    from flows.provider_sync import started_by

    quiet = _NoRefusalTraceback()
    loggers = [logging.getLogger(name) for name in _RUN_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    once = _ConsoleSaysItOnce()
    handlers = _console_handlers()
    for handler in handlers:
        handler.addFilter(once)
    try:
        with started_by("cli"):
            yield
    except _expected() as exc:
        raise CliError(str(exc)) from None
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
        for handler in handlers:
            handler.removeFilter(once)


def _prefect_env() -> None:
    """Before Prefect is imported: no telemetry (a closed network would only log connection
    errors), and the project's local Prefect server unless one is configured."""
    from db.engine import aos_home
    from deployments.local_server import use_local_prefect

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    use_local_prefect(aos_home() / "prefect")


def cmd_sync(a: argparse.Namespace) -> Any:
    integration_id = a.integration  # a name is resolved by cli.main, before Prefect starts
    _prefect_env()
    from flows import flow_for

    flow = flow_for(a.provider)
    with _refusals_as_errors():
        result = flow(
            integration_id=integration_id,
            requested_by=a.as_,
            full_refresh=a.full_refresh,
            since=a.since,
            run_grant=os.environ.get("AOS_RUN_GRANT"),
        )
    return [
        {"stream": name, **{k: v for k, v in s.items() if k in _COLUMNS}}
        for name, s in result["streams"].items()
    ]


def cmd_sync_all(a: argparse.Namespace) -> Any:
    _prefect_env()
    from cli.output import emit
    from flows import sync_all
    from tasks.run import DispatchFailed

    with _refusals_as_errors():
        try:
            return sync_all(provider=a.only, agency_id=a.agency)
        except DispatchFailed as exc:
            emit(exc.outcomes, as_json=a.json)  # every integration's outcome, then the error
            raise


def cmd_backfill(a: argparse.Namespace) -> Any:
    integration_id = a.integration
    _prefect_env()
    from flows import backfill

    with _refusals_as_errors():
        result = backfill(
            integration_id=integration_id,
            start=a.start,
            end=a.end,
            requested_by=a.as_,
            chunk_days=a.chunk_days,
            run_grant=os.environ.get("AOS_RUN_GRANT"),
        )
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
    "rejected",
    "requests",
    "rate_limited",
    "skipped",
    "seconds",
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sync = sub.add_parser("sync", help="run a provider sync now").add_subparsers(
        dest="provider", required=True
    )
    for provider in registry.names():
        p = sync.add_parser(provider, help=f"sync one {provider} integration")
        p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
        p.add_argument(
            "--as",
            dest="as_",
            metavar="EMAIL",
            required=True,
            help="acting user (with AOS_RUN_GRANT_KEY set, AOS_RUN_GRANT must hold a "
            "run grant minted for this user; a grant is good for one run)",
        )
        p.add_argument(
            "--full-refresh",
            action="store_true",
            help="forget cursors and re-read everything (backfill permission)",
        )
        p.add_argument(
            "--since",
            type=iso_date,
            metavar="YYYY-MM-DD",
            help="re-read from this date (backfill permission)",
        )
        p.set_defaults(func=cmd_sync)

    p = sync.add_parser("all", help="every connected integration, as each agency's scheduler")
    p.add_argument("--only", choices=registry.names(), help="one provider")
    p.add_argument("--agency", type=whole_number, help="one agency id")
    p.set_defaults(func=cmd_sync_all)

    p = sub.add_parser("backfill", help="re-read a date window of one integration, in chunks")
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
    p.add_argument("--start", type=iso_date, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--end", type=iso_date, required=True, metavar="YYYY-MM-DD", help="exclusive")
    p.add_argument("--chunk-days", type=whole_number, default=7)
    p.add_argument(
        "--as", dest="as_", metavar="EMAIL", required=True, help="acting user (backfill permission)"
    )
    p.set_defaults(func=cmd_backfill)
