"""What a command that runs flows prints, and where everything else goes.

A sync logs a great deal: Prefect announces every task run (``Finished in state
Completed()``, 170 of them in the demo), each stream logs its counts, a provider SDK logs
every failed connection (``ERROR slack_sdk ... Connection refused``) and a failed task its
traceback. All of it still reaches the Prefect UI (the API log handler is left alone) and the
log file (:func:`log_file`, ``AOS_HOME/logs/aos-sync.log``); the terminal gets only:

* lines the project marks for people (``tasks.progress.SHOW``): one per integration of a
  ``sync_all`` run, backfill chunks, the ticks of a long stream;
* warnings (and worse) logged by the project's own code;
* one ``warning:`` line per retry of a task, naming the stream and the integration, instead
  of Prefect's retry line;
* Prefect's ``View at URL`` line of the run.

Plain lines, no colours or cursor movement, so a log collector or a pipe reads the same as a
person. ``-v`` restores everything (Prefect's lines, SDK loggers, tracebacks).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

from tasks.progress import ATTRIBUTE

__all__ = ["log_file", "run_output"]

ROOT = Path(__file__).resolve().parent.parent
_RETRY = "Task run failed with"


def log_file() -> Path:
    from db.engine import aos_home

    return aos_home() / "logs" / "aos-sync.log"


def _ours(record: logging.LogRecord) -> bool:
    """Logged by the project's code (a run logger's record carries its caller's path)."""
    path = record.pathname
    return path.startswith(str(ROOT)) and "site-packages" not in path


def _is_retry(record: logging.LogRecord) -> bool:
    return (
        record.name == "prefect.task_runs"
        and isinstance(record.msg, str)
        and record.msg.startswith(_RETRY)
        and "Retry" in record.msg
        and not record.msg.endswith("exhausted")
    )


class _ForPeople(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, ATTRIBUTE, False) or _is_retry(record):
            return True
        if record.name == "prefect.flow_runs" and str(record.msg).startswith("View at "):
            return True
        return record.levelno >= logging.WARNING and _ours(record)


def _integration_of_task() -> str:
    """``integration N`` of the task run being retried (its parameters say which)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    params = getattr(ctx, "parameters", None) or {}
    integration = params.get("integration_id")
    return f"integration {integration} " if integration is not None else ""


class _Plain(logging.Formatter):
    """The message alone (``warning: `` in front of a warning), never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        if _is_retry(record) and len(record.args or ()) == 5:
            _, exc, attempt, attempts, when = record.args  # type: ignore[misc]
            task_run = getattr(record, "task_run_name", "task")
            reason = str(getattr(exc, "args", [exc])[0] if getattr(exc, "args", None) else exc)
            return (
                f"warning: {_integration_of_task()}{task_run}: {reason.splitlines()[0][:200]}; "
                f"retry {attempt}/{attempts} {str(when).replace(' second(s) from now', ' s from now')}"
            )
        text = record.getMessage()
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


class _File(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(run)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        run = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", None)
        record.run = f" [{run}]" if run else ""
        return super().format(record)


def _api_handler(handler: logging.Handler) -> bool:
    return type(handler).__name__ in {"APILogHandler", "WorkerAPILogHandler"}


@contextlib.contextmanager
def run_output(verbose: int = 0) -> Iterator[Path | None]:
    """For the duration: the terminal gets the lines of the module docstring, the log file
    everything at INFO and above. Yields the log file (``None`` when it cannot be written)."""
    if verbose:
        yield None
        return
    # Prefect's background workers say "Still processing items" while they drain at exit,
    # after this block has handed the terminal back: noise to a person, kept out for good.
    for worker in ("EventsWorker", "APILogWorker"):
        logging.getLogger(worker).setLevel(logging.ERROR)
    root = logging.getLogger()
    replaced = [h for h in root.handlers if not _api_handler(h)]
    console = logging.StreamHandler(sys.stderr)
    console.addFilter(_ForPeople())
    console.setFormatter(_Plain())
    added: list[logging.Handler] = [console]
    path: Path | None = log_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # type: ignore[union-attr]
        to_file = logging.handlers.RotatingFileHandler(
            path,  # type: ignore[arg-type]
            maxBytes=5_000_000,
            backupCount=3,
            encoding="utf-8",
        )
    except OSError:
        path = None
    else:
        to_file.setLevel(logging.INFO)
        to_file.setFormatter(_File())
        added.append(to_file)
    for handler in replaced:
        root.removeHandler(handler)
    for handler in added:
        root.addHandler(handler)
    try:
        yield path
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
        for handler in replaced:
            root.addHandler(handler)
