"""Request/response types and the protocol every provider emulator implements.

Kept apart from the server so an emulator can be unit-tested by calling ``handle`` with a
:class:`Request`, without a socket, and so the server knows nothing about any provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

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
    raw_query: str = ""  # the undecoded query string, for parameters that repeat
    # Set by the server: runs one inner request of a batch (e.g. a part of Gmail's
    # multipart ``/batch``) through fault injection, the provider and the request log, as if
    # it had arrived on its own. Emulators without batch endpoints never touch it.
    subrequest: Callable[[Request], Response] | None = field(default=None, repr=False)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def query_list(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (``labelIds=A&labelIds=B``), in order;
        ``params`` and ``query`` keep only the last one."""
        return [v for k, v in parse_qsl(self.raw_query, keep_blank_values=True) if k == name]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response (compact separators: emulators must not be the bottleneck).

    Text goes out as UTF-8, except when it holds a lone UTF-16 surrogate (half an emoji, as a
    Slack message can): UTF-8 cannot carry one, so the body is ASCII with ``\\ud83d``-style
    escapes, which is how such a string travels in JSON."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        body = text.encode()
    except UnicodeEncodeError:
        body = json.dumps(payload, separators=(",", ":")).encode()
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status, body, merged)


class Provider(Protocol):
    """What the generic server needs from an emulator."""

    name: str

    def api_method(self, request: Request) -> str:
        """The provider's method name for this request (used by faults, quotas and the log)."""
        ...

    def handle(self, request: Request, method: str) -> Response: ...

    def fault_response(self, fault: Fault) -> Response:
        """The provider-shaped answer for an HTTP-level fault ("429", "500", "503")."""
        ...

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        """The answer to a request carrying one of this provider's own fault kinds
        (:data:`~sandbox.faults.PROVIDER_FAULT_KINDS`); it may serve the request and alter
        the answer, or refuse it without touching any state."""
        ...

    def revoke_request_token(self, request: Request) -> None:
        """Revoke the credential this request carries (the "revoked" fault)."""
        ...

    def env(self, base_url: str) -> dict[str, str]:
        """``AOS_*`` settings pointing the project at this emulator."""
        ...
