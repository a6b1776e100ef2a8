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

Plain lines, no colours or cursor movement, where the terminal is not one (a pipe, a log
collector, ``TERM=dumb``). At a terminal, below those lines, a live board of one line per
integration (:class:`Board`: the streams read so far, rows, requests, rate-limited answers,
redrawn in place from ``tasks.progress`` ticks) takes the place of the "still working" lines,
and stays on screen as the run's last word. ``-v`` restores everything (Prefect's lines, SDK
loggers, tracebacks).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from tasks.progress import ATTRIBUTE, TICK_ATTRIBUTE, Tick, listening

__all__ = ["Board", "log_file", "run_output"]

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
    def __init__(self, board: bool = False) -> None:
        super().__init__()
        self.board = board  # a live board shows what the "still working" lines would

    def filter(self, record: logging.LogRecord) -> bool:
        if self.board and getattr(record, TICK_ATTRIBUTE, False):
            return False
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


class Board:
    """The live board: one line per integration at the bottom of a terminal, redrawn in place
    (at most every ``interval`` seconds while streams read, at once when one ends). It is also
    the stream the console handler writes to, so a printed line goes above the board: the
    board is erased, the line written, the board drawn again. Lines are cut to the terminal's
    width, since a wrapped line would throw off the count of lines to erase."""

    def __init__(self, out: TextIO, interval: float = 0.2) -> None:
        self.out = out
        self.interval = interval
        self._ticks: dict[tuple[str, int], dict[str, Tick]] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.RLock()

    # -- the console handler's stream ----------------------------------------------------
    def write(self, text: str) -> int:
        with self._lock:
            self._erase()
            self.out.write(text)
            self._draw()
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    # -- ticks -----------------------------------------------------------------------------
    def update(self, tick: Tick) -> None:
        with self._lock:
            streams = self._ticks.setdefault((tick.provider, tick.integration), {})
            streams[tick.stream] = tick
            now = time.monotonic()
            if tick.state != "reading" or now - self._last >= self.interval:
                self._erase()
                self._draw()
                self._last = now

    def lines(self) -> list[str]:
        """The board's lines as they stand."""
        out = []
        for (provider, integration), streams in self._ticks.items():
            ticks = list(streams.values())
            states = {t.state for t in ticks}
            state = "failed" if "failed" in states else "reading" if "reading" in states else "done"
            shown = ", ".join(
                f"{t.stream} {t.rows:,}" + ("" if t.state == "done" else f" ({t.state})")
                for t in ticks
            )
            requests = sum(t.requests for t in ticks)
            waits = sum(t.rate_limited for t in ticks)
            rate = f", {waits:,} rate-limited" if waits else ""
            out.append(
                f"  {provider} integration {integration} {state}: {requests:,} requests{rate}"
                f" | rows {shown}"
            )
        return out

    def close(self) -> None:
        """Leave the final board on screen, as plain lines."""
        with self._lock:
            self._erase()
            self._draw()
            self._drawn = 0
            self.out.flush()

    def _erase(self) -> None:
        if self._drawn:  # to the start of the board's first line, then clear to the end
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size().columns - 1)
        lines = [line[:width] for line in self.lines()]
        for line in lines:
            self.out.write(line + "\n")
        self._drawn = len(lines)
        self.out.flush()


def _live(out: TextIO) -> bool:
    """A terminal that understands cursor movement."""
    return out.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


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
    board = Board(sys.stderr) if _live(sys.stderr) else None
    console: logging.StreamHandler[TextIO] = logging.StreamHandler(board or sys.stderr)  # type: ignore[arg-type]
    console.addFilter(_ForPeople(board=board is not None))
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
        with listening(board.update) if board else contextlib.nullcontext():
            yield path
    finally:
        if board:
            board.close()
        for handler in added:
            root.removeHandler(handler)
            handler.close()
        for handler in replaced:
            root.addHandler(handler)
