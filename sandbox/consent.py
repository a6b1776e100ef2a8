"""What every emulated consent screen shares: the test user's answer and the redirect back.

A real consent screen is a person clicking "Allow". Here the answer is a knob set by the test
(:class:`ConsentKnobs`): who is signed in, whether they click "Deny", which of the requested
scopes they untick. The screen then redirects the browser to the app's ``redirect_uri`` with
``code`` and ``state`` (or ``error=access_denied``), as the providers do.

A ``redirect_uri`` is accepted when it is registered for the app (``registered``) or a loopback
address (``http://127.0.0.1:<any port>/...``), which is what Google allows for installed apps
and what a command-line client listens on. An unacceptable one gets an error page and no
redirect: sending a code to an unknown address is exactly what a provider must never do.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from sandbox.protocol import Response

__all__ = ["CODE_TTL", "ConsentKnobs", "PendingCode", "error_page", "loopback", "redirect"]

CODE_TTL = 600.0  # seconds an authorization code may wait to be exchanged


@dataclass
class ConsentKnobs:
    """The signed-in test user's answer to the next consent screens.

    ``user``: who is signed in (an email, a Slack team id, a Meta business id; each emulator
    says); ``deny``: click "Deny"; ``withhold``: scopes left unticked (a partial grant)."""

    user: str | None = None
    deny: bool = False
    withhold: set[str] = field(default_factory=set)
    registered: set[str] = field(default_factory=set)  # redirect URIs registered for the app
    screens: int = 0  # consent screens shown (any answer)

    def accepts(self, redirect_uri: str) -> bool:
        return redirect_uri in self.registered or loopback(redirect_uri)


@dataclass
class PendingCode:
    """An authorization code waiting for its exchange."""

    subject: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str = ""
    method: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    expires_at: float = field(default_factory=lambda: time.time() + CODE_TTL)


class CodeBook:
    """One-use authorization codes (thread-safe)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._codes: dict[str, PendingCode] = {}
        self._lock = threading.Lock()

    def issue(self, pending: PendingCode) -> str:
        code = self._prefix + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = pending
        return code

    def redeem(self, code: str) -> PendingCode | None:
        """The code's grant, once; an unknown, used or expired code is None."""
        with self._lock:
            pending = self._codes.pop(code, None)
        if pending is None or pending.expires_at < time.time():
            return None
        return pending


def loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def redirect(uri: str, params: dict[str, str]) -> Response:
    """``302`` to ``uri`` with ``params`` added to its query."""
    joiner = "&" if urlsplit(uri).query else "?"
    return Response(
        302,
        b"",
        {"Location": uri + joiner + urlencode(params), "Cache-Control": "no-store"},
    )


def error_page(status: int, title: str, text: str) -> Response:
    """What a provider shows instead of redirecting (bad client, unregistered redirect)."""
    body = (
        f"<!doctype html><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    )
    return Response(status, body.encode(), {"Content-Type": "text/html; charset=utf-8"})
