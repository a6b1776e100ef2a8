"""Client-side pacing: one sliding-window limiter, shared per provider account in a process.

Providers count requests (Slack: per app, workspace and method, per minute) or quota units
(Gmail: per mailbox, per second) over a window. Pacing on our side keeps their "slow down"
answers rare; the retry loop still honours them when one comes anyway.

Scope, decided once for every provider: **one limiter per (provider, account, bucket) per
process**, from :func:`shared_limiter`. Two connectors reading the same account in one worker
(a sync and a backfill chunk, two streams run at once) then spend one allowance instead of
each spending all of it. The account is keyed by a hash of the credential that identifies it
(a Slack workspace token, a Gmail mailbox token): the credential itself is never kept here. A
refreshed token starts a fresh window; the ``SAFETY`` margin and the provider's own
``Retry-After`` absorb that. Workers on other machines are kept apart by Prefect's
per-provider concurrency limits, not here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_SHARED", "SlidingWindowLimiter", "shared_limiter"]

MAX_SHARED: Final = 1024  # accounts whose limiters a process keeps (least recently used go)


class SlidingWindowLimiter:
    """At most ``capacity`` units in any window of ``window`` seconds; thread-safe.

    A sliding window is stricter than a provider's fixed per-minute or per-second count, so
    bursts up to the capacity are allowed without ever crossing it; with one unit per call and
    ``capacity == 1`` it spaces calls evenly. The provider counts a request when it handles
    it, somewhere between our send and its answer, so :meth:`settle` re-stamps the calling
    thread's last spend when the answer arrives, and the window is padded by ``SAFETY`` for
    the rest of the jitter. A spend bigger than the whole capacity (a Gmail batch) is sent
    into an empty window. ``capacity=None`` means no limit: :meth:`acquire` never waits.

    Waiting happens outside the lock, so a sleeping caller does not hold up :meth:`settle`
    of the others; every waiter re-checks the window before it spends.
    """

    SAFETY = 1.05

    def __init__(
        self,
        capacity: float | None,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity = capacity
        self.window = window * self.SAFETY
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[list[float]] = deque()  # [stamp, units], oldest first
        self._lock = threading.Lock()
        self._last = threading.local()

    def acquire(self, units: float = 1.0) -> float:
        """Wait until ``units`` fit in the window, then spend them; returns seconds waited."""
        if not self.capacity:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                delay = self._try_spend(units)
            if delay is None:
                return waited
            self._sleep(delay)
            waited += delay

    def _try_spend(self, units: float) -> float | None:
        """Spend ``units`` now and return ``None``, or return how long to wait first."""
        assert self.capacity is not None
        now = self._clock()
        while self._spent and now - self._spent[0][0] >= self.window:
            self._spent.popleft()
        used = sum(spent for _, spent in self._spent)
        if not self._spent or used + units <= self.capacity:
            entry = [now, units]
            self._spent.append(entry)
            self._last.entry = entry
            return None
        excess, freed, delay = used + units - self.capacity, 0.0, self.window
        for stamp, spent in self._spent:
            freed += spent
            delay = self.window - (now - stamp)
            if freed >= excess:
                break
        return max(delay, 0.001)

    def settle(self) -> None:
        """The answer to this thread's last spend arrived: count its units from now."""
        entry = getattr(self._last, "entry", None)
        if not self.capacity or entry is None:
            return
        self._last.entry = None
        with self._lock:
            # By identity: another spend may hold equal numbers.
            index = next((i for i, e in enumerate(self._spent) if e is entry), None)
            if index is None:  # already out of the window
                return
            del self._spent[index]
            entry[0] = self._clock()
            self._spent.append(entry)  # the newest stamp: the deque stays in order


_shared: OrderedDict[tuple[str, str, str, float, float], SlidingWindowLimiter] = OrderedDict()
_shared_lock = threading.Lock()


def shared_limiter(
    provider: str, account: str, bucket: str, capacity: float, window: float
) -> SlidingWindowLimiter:
    """The process-wide limiter of ``bucket`` (a method, or ``"quota"``) for one account.

    ``account`` is the credential or id that identifies the account; only a hash of it is
    kept. The limiter is created on first use and kept for the :data:`MAX_SHARED` most
    recently used accounts.
    """
    account_key = hashlib.sha256(account.encode()).hexdigest()[:16]
    key = (provider, account_key, bucket, capacity, window)
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = SlidingWindowLimiter(capacity, window)
        _shared.move_to_end(key)
        while len(_shared) > MAX_SHARED:
            _shared.popitem(last=False)
        return limiter
