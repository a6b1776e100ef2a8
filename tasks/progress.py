"""What a person at the command line sees of a run while it runs.

Two channels:

* Log lines. Every line a run logs goes to the Prefect UI (and, from the command line, to the
  log file in ``AOS_HOME/logs``). The command line prints only warnings and the lines marked
  with :data:`SHOW`: one line per integration of a ``sync_all`` run, backfill chunks, and the
  "still working" ticks of a long stream (marked :data:`TICK` too). Prefect's own chatter
  (``Finished in state Completed()``, one per task run) stays in the UI and the file
  (``cli/console.py``).
* :class:`Tick` events, published in-process on every page a stream loads and when it ends.
  Nothing listens in a worker; at a terminal the command line draws them as a live board, one
  line per integration (rows, requests, rate-limited answers), in place of the ticks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["ATTRIBUTE", "SHOW", "TICK", "TICK_ATTRIBUTE", "Tick", "listening", "publish"]

ATTRIBUTE: Final = "aos_show"
TICK_ATTRIBUTE: Final = "aos_tick"
#: ``logger.info(..., extra=SHOW)``: print this line at the command line too.
SHOW: Final[dict[str, Any]] = {ATTRIBUTE: True}
#: A "still working" line: printed where there is no live board (a pipe, a log collector).
TICK: Final[dict[str, Any]] = {ATTRIBUTE: True, TICK_ATTRIBUTE: True}


@dataclass(frozen=True)
class Tick:
    """Where one stream of one integration stands: counts so far, or at its end."""

    provider: str
    integration: int
    stream: str
    rows: int
    requests: int
    rate_limited: int
    state: Literal["reading", "done", "failed"] = "reading"


_listeners: list[Callable[[Tick], None]] = []
_guard = threading.Lock()


def publish(tick: Tick) -> None:
    """Hand ``tick`` to every listener of this process (none in a worker: nearly free)."""
    for listener in tuple(_listeners):
        listener(tick)


@contextlib.contextmanager
def listening(listener: Callable[[Tick], None]) -> Iterator[None]:
    """``listener`` receives every :class:`Tick` published meanwhile, from any thread."""
    with _guard:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _guard:
            _listeners.remove(listener)
