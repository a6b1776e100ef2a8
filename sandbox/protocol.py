"""Request/response types and the protocol every provider emulator implements.

Kept apart from the server so an emulator can be unit-tested by calling ``handle`` with a
:class:`Request`, without a socket, and so the server knows nothing about any provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.faults import Fault

__all__ = ["Provider", "Request", "Response", "json_response"]


@dataclass
class Request:
    """One parsed HTTP request; ``params`` merges the query string and a form or JSON body."""

    verb: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    params: dict[str, Any]
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A compact JSON response (compact separators: emulators must not be the bottleneck)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status, body, merged)


class Provider(Protocol):
    """What the generic server needs from an emulator."""

    name: str

    def api_method(self, request: Request) -> str:
        """The provider's method name for this request (used by faults, quotas and the log)."""
        ...

    def handle(self, request: Request, method: str) -> Response:
        ...

    def fault_response(self, fault: Fault) -> Response:
        """The provider-shaped answer for an HTTP-level fault ("429", "500", "503")."""
        ...

    def revoke_request_token(self, request: Request) -> None:
        """Revoke the credential this request carries (the "revoked" fault)."""
        ...

    def env(self, base_url: str) -> dict[str, str]:
        """``AOS_*`` settings pointing the project at this emulator."""
        ...
