"""Client-side pacing per (workspace token, API method).

Slack counts requests per app, per workspace, per method in one-minute windows. Pacing on our
side keeps 429s rare; the retry handler still honours ``Retry-After`` when one happens anyway.
A limiter only waits inside :meth:`SlidingWindowLimiter.acquire`, which the transport calls
right before it sends a request, so a run that needs no request never sleeps.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``max_calls`` calls in any window of ``window`` seconds.

    A sliding window is stricter than Slack's per-minute counting, so bursts up to the limit
    are allowed without ever crossing it. With ``max_calls == 1`` it spaces calls evenly.
    The window is padded by ``SAFETY`` so network jitter (the server stamps a request when it
    arrives, not when we sent it) cannot land two calls in one server window.
    """

    SAFETY = 1.05

    def __init__(
        self,
        max_calls: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_calls = max_calls
        self.window = window * self.SAFETY
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more call fits in the window; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.window:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return waited
                delay = self.window - (now - self._calls[0])
                self._sleep(delay)
                waited += delay


_registry: dict[tuple[str, str, int, float], SlidingWindowLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(token: str, method: str, max_calls: int, window: float) -> SlidingWindowLimiter:
    """The process-wide limiter for this token and method.

    Shared so two connectors for the same workspace in one worker do not each spend the full
    quota. Keyed by a hash: the token itself is never stored here.
    """
    token_key = hashlib.sha256(token.encode()).hexdigest()[:16]
    key = (token_key, method, max_calls, window)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = SlidingWindowLimiter(max_calls, window)
        return limiter
