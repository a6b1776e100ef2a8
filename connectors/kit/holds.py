"""Provider pauses and quota stops that outlive the reader that was told.

A provider sometimes says "not before then": Meta pauses a throttled ad account (codes 4, 17,
32, 613, 80000-80014, or usage headers at their limit), Google Ads refuses a project whose
daily operations quota is spent, with the delay until it frees up. That word is about the
account or the project, not about one stream's reader: it holds across streams, runs, workers
and integrations, for as long as the provider said. A reader that forgets it spends a call
to learn it again, and gets refused again.

So a connector takes a :class:`Holds` from whoever builds it. It asks :meth:`Holds.get`
before it spends anything on a scope (at a stream's start, before each account) and skips
what is held; it calls :meth:`Holds.put` when the provider says pause or stop. The task layer
hands it the control database's ledger (``db.holds.ProviderHolds``), which every worker
reads; without one, :class:`LocalHolds` keeps them in memory for the readers that share the
object (tests, benchmarks).

A scope is the provider's own unit of throttling, named by the connector: an ad account (and
the app it is read through) for Meta; :data:`PROJECT`, the OAuth client's Cloud project the
integration draws on, for Google Ads -- a name only the task layer can resolve, as it does
for the operations ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["PROJECT", "Hold", "Holds", "LocalHold", "LocalHolds", "hold_note"]

#: The scope of the integration's OAuth client project (``SharedQuota.project_field``).
PROJECT = "project"


class Hold(Protocol):
    """A pause or stop in force: nothing goes to ``scope`` before ``until`` (UTC), which was
    ``left`` seconds away when the hold was read (the store's clock, so every worker agrees)."""

    @property
    def scope(self) -> str: ...
    @property
    def until(self) -> datetime: ...
    @property
    def left(self) -> float: ...
    @property
    def reason(self) -> str: ...


def hold_note(hold: Hold, *, reason: bool = True) -> str:
    """``until 2026-05-04 14:05:09 UTC (reason)``, for warnings."""
    until = f"until {hold.until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"{until} ({hold.reason})" if reason else until


class Holds(Protocol):
    """Where a connector keeps what providers said about pauses and stops."""

    def get(self, scope: str) -> Hold | None:
        """The hold in force on ``scope`` now (``None``: nothing holds it)."""
        ...

    def put(self, scope: str, seconds: float, reason: str) -> Hold:
        """Hold ``scope`` for ``seconds`` from now, because of ``reason`` (the provider's
        words, never a credential). A hold only grows: the later of this and any hold already
        there stays. Returns the hold in force."""
        ...


@dataclass(frozen=True)
class LocalHold:
    scope: str
    until: datetime
    left: float
    reason: str


class LocalHolds:
    """Holds in memory, for the readers that share this object; ``clock`` is monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._holds: dict[str, tuple[float, str]] = {}  # scope -> (clock time, reason)
        self._lock = threading.Lock()

    def get(self, scope: str) -> Hold | None:
        with self._lock:
            until, reason = self._holds.get(scope, (0.0, ""))
            left = until - self._clock()
        if left <= 0:
            return None
        return LocalHold(scope, datetime.now(UTC) + timedelta(seconds=left), left, reason)

    def put(self, scope: str, seconds: float, reason: str) -> Hold:
        with self._lock:
            until = self._clock() + max(seconds, 0.0)
            if until > self._holds.get(scope, (0.0, ""))[0]:
                self._holds[scope] = (until, reason)
        hold = self.get(scope)
        return hold if hold is not None else LocalHold(scope, datetime.now(UTC), 0.0, reason)
