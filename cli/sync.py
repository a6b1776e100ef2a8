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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cli.context import integration_ref
from cli.output import CliError, iso_date, not_future, whole_number
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


@contextlib.contextmanager
def _refusals_as_errors(verbose: int = 0) -> Iterator[None]:
    """The flow raises the refusal or failure itself (a typed exception a program can catch);
    at the CLI it is a message for the person, without the exception's class name in front.
    Meanwhile the terminal shows progress and warnings only (``cli/console.py``)."""
    from cli.console import run_output
    from flows.provider_sync import started_by

    quiet = _NoRefusalTraceback()
    loggers = [logging.getLogger(name) for name in _RUN_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        with run_output(verbose), started_by("cli"):
            yield
    except _expected() as exc:
        raise CliError(str(exc)) from None
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def prefect_env() -> str | None:
    """Before Prefect is imported: no telemetry, neither the server's nor the client's (a
    closed network would only log connection errors, and its first-run notice is three lines
    of noise at a terminal; ``DO_NOT_TRACK=0`` turns the client's back on), and the project's
    local Prefect server unless one is configured. Returns the local server's UI address when
    that is the one in use."""
    from db.engine import aos_home
    from deployments.local_server import use_local_prefect

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    return use_local_prefect(aos_home() / "prefect")


def _check_before_run(integration_id: int, email: str, provider: str | None = None) -> None:
    """What can be known without a run: the integration exists and is of ``provider``, and
    ``--as`` names a user. A mistake found here creates no Prefect run. Whether the user may
    act is still the flow's to decide (and audit)."""
    from cli.context import engine
    from db import tenancy

    with engine().connect() as conn:
        try:
            integ = tenancy.get_integration(conn, integration_id)
        except tenancy.NotFound:
            raise CliError(
                f"no integration {integration_id} (see `aos-sync integration list`)"
            ) from None
        if provider is not None and integ.provider != provider:
            raise CliError(
                f"integration {integration_id} ({integ.name}) is a {integ.provider} "
                f"integration, not {provider}: run `aos-sync sync {integ.provider}`"
            )
        if not email.startswith("scheduler:"):
            try:
                tenancy.find_user(conn, email)
            except tenancy.NotFound:
                raise CliError(
                    f"--as {email}: no user has that email (`aos-sync user add` adds one)"
                ) from None


def cmd_sync(a: argparse.Namespace) -> Any:
    integration_id = a.integration  # a name is resolved by cli.main, before Prefect starts
    not_future(a.since, "--since")
    _check_before_run(integration_id, a.as_, a.provider)
    prefect_env()
    from flows import flow_for

    flow = flow_for(a.provider)
    with _refusals_as_errors(a.verbose):
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
    from cli.context import resolve_agency

    agency_id = resolve_agency(a.agency)
    prefect_env()
    from cli.output import emit
    from flows import sync_all
    from tasks.run import DispatchFailed

    with _refusals_as_errors(a.verbose):
        try:
            return sync_all(provider=a.only, agency_id=agency_id)
        except DispatchFailed as exc:
            emit(exc.outcomes, as_json=a.json)  # every integration's outcome, then the error
            raise


def _window(a: argparse.Namespace) -> tuple[date, date]:
    """``[start, end)`` from ``--start``/``--end`` or ``--days`` (the last N days, today
    included: what a freshly connected account, or the sandbox, holds)."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    if (a.start is None) == (a.days is None):
        raise CliError("give --start YYYY-MM-DD or --days N (the last N days), not both")
    end = a.end or tomorrow
    start = a.start if a.start is not None else end - timedelta(days=a.days)
    return start, end


def cmd_backfill(a: argparse.Namespace) -> Any:
    integration_id = a.integration
    a.start, a.end = _window(a)
    if a.end <= a.start:
        raise CliError(
            f"--end {a.end} is not after --start {a.start}; the window is [start, end), "
            "so end is the day after the last day to read"
        )
    not_future(a.start, "--start")
    _check_before_run(integration_id, a.as_)
    prefect_env()
    from flows import backfill

    with _refusals_as_errors(a.verbose):
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
    p.add_argument("--agency", metavar="ID|NAME", help="one agency")
    p.set_defaults(func=cmd_sync_all)

    p = sub.add_parser("backfill", help="re-read a date window of one integration, in chunks")
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
    p.add_argument("--start", type=iso_date, metavar="YYYY-MM-DD", help="first day")
    p.add_argument(
        "--end",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the day after the last one (exclusive; default: tomorrow, so today is read)",
    )
    p.add_argument(
        "--days",
        type=whole_number,
        metavar="N",
        help="instead of --start: the N days before --end (default: the last N days)",
    )
    p.add_argument("--chunk-days", type=whole_number, default=7)
    p.add_argument(
        "--as", dest="as_", metavar="EMAIL", required=True, help="acting user (backfill permission)"
    )
    p.set_defaults(func=cmd_backfill)
