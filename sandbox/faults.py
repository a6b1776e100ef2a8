"""Fault injection, by script ("the next 3 history calls") or by rate ("10% of all calls").

Faults are decided *before* the emulator handles a request, so a faulted request changes no
upstream state (except ``revoked``, whose point is to change it). Rates draw from one seeded
RNG so a failing run can be replayed with the same seed and the same request order.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "PART_FAULT_KINDS", "Fault", "FaultInjector"]

FAULT_KINDS = frozenset({"429", "500", "503", "slow", "reset", "truncated", "revoked"})
# Kinds that make sense for one part of a batch request (a part has a status line and a
# body of its own, but no connection to reset or truncate).
PART_FAULT_KINDS = frozenset({"429", "500", "503", "slow", "revoked"})


@dataclass
class Fault:
    """One fault rule. ``times=None`` with a ``rate`` means "for ever, at that rate"."""

    id: int
    provider: str
    kind: str
    method: str | None = None
    times: int | None = 1
    rate: float | None = None
    retry_after: int = 1
    seconds: float = 2.0
    hits: int = field(default=0)

    def matches(self, provider: str, method: str) -> bool:
        return self.provider == provider and self.method in (None, method)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "method": self.method,
            "times": self.times,
            "rate": self.rate,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "hits": self.hits,
        }


class FaultInjector:
    """The fault rules of one sandbox, shared by all its servers (thread-safe)."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[Fault] = []
        self._rng = random.Random(f"faults:{seed}")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(
        self,
        provider: str,
        *,
        kind: str,
        method: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        retry_after: int = 1,
        seconds: float = 2.0,
    ) -> Fault:
        """Add a rule. Without ``rate`` it fires on the next ``times`` (default 1) matches.

        ``retry_after`` (for "429") is sent verbatim, it is the test's script and not a quota,
        so it is not time-scaled. ``seconds`` is the delay of a "slow" fault.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if rate is None and times is None:
            times = 1
        rule = Fault(
            id=next(self._ids),
            provider=provider,
            kind=kind,
            method=method,
            times=times,
            rate=rate,
            retry_after=retry_after,
            seconds=seconds,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self, provider: str | None = None) -> None:
        with self._lock:
            self._rules = [
                r for r in self._rules if provider is not None and r.provider != provider
            ]

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.id != fault_id]

    def rules(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    def pick(
        self, provider: str, method: str, kinds: Collection[str] | None = None
    ) -> Fault | None:
        """The fault to apply to this request, if any (first matching rule wins).

        ``kinds`` restricts the candidates (batch parts only take :data:`PART_FAULT_KINDS`);
        rules of other kinds are left untouched for the next whole request.
        """
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(provider, method):
                    continue
                if kinds is not None and rule.kind not in kinds:
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                rule.hits += 1
                return rule
        return None

    def __len__(self) -> int:
        return len(self.rules())
