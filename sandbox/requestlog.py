"""The request log: what each emulator was asked, with secrets removed.

Tests assert on call counts ("history was fetched 3 times") and on the absence of secrets, so
every parameter that could carry a credential is redacted *before* it is stored: the log is
safe to print, to dump as JSON over the admin surface, and to attach to a failing test.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["REDACTED", "LogEntry", "RequestLog", "redact_params"]

REDACTED = "REDACTED"
_SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "code",
        "authorization",
        "password",
        "key",
        "api_key",
        "developer_token",
        "appsecret_proof",
    }
)
# Values that look like a credential whatever parameter they travel in.
_SECRET_VALUE = re.compile(r"(xox[a-z]?[.-]|xoxe|ya29\.|1//|EAA[A-Za-z0-9])")


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with credential-bearing values replaced by :data:`REDACTED`."""
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if name.lower() in _SECRET_KEYS or (isinstance(value, str) and _SECRET_VALUE.search(value)):
            clean[name] = REDACTED
        else:
            clean[name] = value
    return clean


@dataclass(frozen=True)
class LogEntry:
    """One request as the emulator saw it (``method`` is the provider's API method name)."""

    provider: str
    method: str
    path: str
    params: dict[str, Any]
    status: int
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "params": self.params,
            "status": self.status,
            "at": self.at.isoformat(),
            "fault": self.fault,
        }


class RequestLog:
    """A thread-safe, list-like log shared by every server of one sandbox."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self, *, provider: str | None = None, method: str | None = None) -> list[LogEntry]:
        """A snapshot, optionally filtered by provider and API method."""
        with self._lock:
            snapshot = list(self._entries)
        return [
            e
            for e in snapshot
            if (provider is None or e.provider == provider)
            and (method is None or e.method == method)
        ]

    def count(self, *, provider: str | None = None, method: str | None = None) -> int:
        return len(self.entries(provider=provider, method=method))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries())

    def __getitem__(self, index: int) -> LogEntry:
        with self._lock:
            return self._entries[index]

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} entries)"
