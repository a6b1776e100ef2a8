"""Time scaling and quota windows.

A provider quota such as "1 request per minute" cannot be tested in real minutes. A sandbox
runs with ``time_scale`` (60 means one real second stands for one provider minute): quota
windows shrink by that factor and every ``Retry-After`` is scaled down with it (rounded up,
never below one second, because HTTP cannot say less). Data timestamps are *not* scaled: a
message posted now carries the real wall-clock time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["FixedWindowLimiter", "RateDecision", "TimeScale"]


@dataclass(frozen=True)
class TimeScale:
    """Converts provider seconds to real seconds."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError("time_scale must be positive")

    def real_seconds(self, provider_seconds: float) -> float:
        return provider_seconds / self.factor

    def retry_after(self, real_seconds: float) -> int:
        """A ``Retry-After`` header value for a wait of ``real_seconds`` (ceil, at least 1)."""
        return max(1, math.ceil(real_seconds - 1e-9))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0


class FixedWindowLimiter:
    """Fixed-window counters keyed by anything hashable (e.g. ``(team, app, method)``).

    Slack documents per-minute tiers that tolerate bursts, which a fixed window models closely
    enough; the window starts with the first request of a key, so tests are not at the mercy
    of wall-clock minute boundaries.
    """

    def __init__(self, scale: TimeScale, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._scale = scale
        self._clock = clock
        self._windows: dict[Hashable, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(
        self, key: Hashable, limit: int, window_seconds: float = 60.0, cost: int = 1
    ) -> RateDecision:
        """Count one request of ``cost`` units against ``limit`` per ``window_seconds``
        provider seconds (``cost`` > 1 models quotas counted in units, such as Gmail's)."""
        now = self._clock()
        length = self._scale.real_seconds(window_seconds)
        with self._lock:
            started, used = self._windows.get(key, (now, 0))
            if now - started >= length:
                started, used = now, 0
            if used + cost > limit:
                return RateDecision(False, self._scale.retry_after(started + length - now))
            self._windows[key] = (started, used + cost)
            return RateDecision(True)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
