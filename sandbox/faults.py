"""Fault injection, by script ("the next 3 history calls") or by rate ("10% of all calls").

Faults are decided *before* the emulator handles a request. Kinds the server applies to any
provider (:data:`FAULT_KINDS`):

* ``429`` / ``500`` / ``503`` -- the provider's own error answer, nothing handled;
* ``slow`` (``seconds``), ``reset`` (RST, no answer), ``revoked`` (the token dies first);
* ``truncated`` -- the connection drops half-way through the body (``Content-Length`` says
  more: the client sees an incomplete read);
* ``truncated_body`` -- a complete HTTP answer whose body was cut in half (``Content-Length``
  matches what is sent, as when a gateway buffered a partial upstream answer): only parsing
  the body can tell. For a batch part, the part's own body is cut.

Kinds only one provider knows (:data:`PROVIDER_FAULT_KINDS`) are answered by its emulator's
``faulted_response``: Gmail ``no_content_id`` (a batch answer whose parts carry no
``Content-ID``; a real shape), Slack ``missing_scope`` (``ok: false`` with ``needed`` and
``provided``; ``options`` may set both), ``warning`` (an ``ok: true`` answer carrying
``warning`` and ``response_metadata.warnings``; ``options["warning"]`` names it) and
``bad_text`` (every message text of the answer gains a NUL and a lone UTF-16 surrogate).

``match`` narrows a rule to requests whose parameters equal it (``{"channel": "C123"}``: one
channel's history); its key ``path`` matches the request path (one Gmail label or message,
whose id is in the path, even inside a batch). A faulted request changes no upstream state, except ``revoked`` (whose
point is to change it) and the kinds that alter a real answer (``truncated_body``,
``no_content_id``, ``warning``, ``bad_text``: the request was served). Rates draw from one
seeded RNG so a failing run can be replayed with the same seed and the same request order.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "PART_FAULT_KINDS", "PROVIDER_FAULT_KINDS", "Fault", "FaultInjector"]

FAULT_KINDS = frozenset(
    {"429", "500", "503", "slow", "reset", "truncated", "truncated_body", "revoked"}
)
# Kinds that make sense for one part of a batch request (a part has a status line and a
# body of its own, but no connection to reset or truncate).
PART_FAULT_KINDS = frozenset({"429", "500", "503", "slow", "revoked", "truncated_body"})
# Kinds one provider's emulator answers itself (``Provider.faulted_response``).
PROVIDER_FAULT_KINDS: dict[str, frozenset[str]] = {
    "gmail": frozenset({"no_content_id"}),
    "slack": frozenset({"missing_scope", "warning", "bad_text"}),
}


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
    match: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    hits: int = field(default=0)

    def matches(
        self,
        provider: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        path: str = "",
    ) -> bool:
        if self.provider != provider or self.method not in (None, method):
            return False
        given = {**(params or {}), "path": path} if "path" in self.match else params or {}
        return all(str(given.get(name, "")) == value for name, value in self.match.items())

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
            "match": dict(self.match),
            "options": dict(self.options),
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
        match: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Fault:
        """Add a rule. Without ``rate`` it fires on the next ``times`` (default 1) matches.

        ``retry_after`` (for "429") is sent verbatim, it is the test's script and not a quota,
        so it is not time-scaled. ``seconds`` is the delay of a "slow" fault. ``match`` limits
        the rule to requests carrying these parameter values; ``options`` are kind-specific
        (see the module docstring).
        """
        known = FAULT_KINDS | PROVIDER_FAULT_KINDS.get(provider, frozenset())
        if kind not in known:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(known)}")
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
            match={str(k): str(v) for k, v in (match or {}).items()},
            options=dict(options or {}),
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
        self,
        provider: str,
        method: str,
        kinds: Collection[str] | None = None,
        params: Mapping[str, Any] | None = None,
        path: str = "",
    ) -> Fault | None:
        """The fault to apply to this request, if any (first matching rule wins).

        ``kinds`` restricts the candidates (batch parts only take :data:`PART_FAULT_KINDS`);
        rules of other kinds are left untouched for the next whole request. ``params`` are the
        request's, and ``path`` its path, for rules with a ``match``.
        """
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(provider, method, params, path):
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
