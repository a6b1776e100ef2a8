"""What every emulated consent screen shares: the test user's answer and the redirect back.

A real consent screen is a person clicking "Allow". Here the answer is a knob set by the test
(:class:`ConsentKnobs`): who is signed in, whether they click "Deny", which of the requested
scopes they untick. The screen then redirects the browser to the app's ``redirect_uri`` with
``code`` and ``state`` (or ``error=access_denied``), as the providers do.

With no test user set (a sandbox a person started, ``aos-sync sandbox start``), the screen is
shown instead (:func:`consent_page`): the emulator's accounts, an "Allow" button for each and a
"Deny" button. Each button repeats the authorization request with the person's answer added
(``sandbox_account`` or ``sandbox_deny``), and the emulator answers it as it answers the knobs.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.protocol import Response

__all__ = [
    "CODE_TTL",
    "ConsentKnobs",
    "PendingCode",
    "consent_page",
    "error_page",
    "loopback",
    "redirect",
]

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

    def answer(self, params: Mapping[str, Any]) -> tuple[bool, str | None]:
        """``(deny, user)`` for this request: the knobs when a test set them, else what the
        person clicked on :func:`consent_page` (``user`` ``None``: nothing clicked yet)."""
        if self.deny or params.get("sandbox_deny"):
            return True, None
        return False, self.user or (str(params.get("sandbox_account") or "") or None)


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


def consent_page(
    app: str,
    params: Mapping[str, Any],
    accounts: Sequence[tuple[str, str]],
    scopes: Sequence[str],
) -> Response:
    """The consent screen a person sees: ``accounts`` (``(id, label)``) to allow as, or deny.
    The form repeats the request (a ``GET`` of this same page's address, its empty ``action``,
    with every parameter) plus the answer."""
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(str(k))}" value="{e(str(v))}">'
        for k, v in params.items()
        if not str(k).startswith("sandbox_")
    )
    choices = (
        "".join(
            f'<li><button name="sandbox_account" value="{e(ident)}">Allow as {e(label)}</button></li>'
            for ident, label in accounts
        )
        or "<li>No account exists in this emulator yet.</li>"
    )
    body = (
        "<!doctype html><meta charset=utf-8><title>Sign in - sandbox</title>"
        "<style>body{font:16px system-ui,sans-serif;max-width:520px;margin:48px auto;"
        "color:#222}ul{list-style:none;padding:0}li{margin:8px 0}button{font:inherit;"
        "padding:8px 14px;border-radius:6px;border:1px solid #889;background:#f4f5fa;"
        "cursor:pointer}.deny{background:#fff}</style>"
        f"<h1>{e(app)} wants to access your account</h1>"
        f"<p>It asks for: {e(', '.join(scopes) or '(no scopes)')}</p>"
        f'<form method="get" action="">{hidden}<ul>{choices}</ul>'
        '<button class="deny" name="sandbox_deny" value="1">Deny</button></form>'
        "<p><small>Sandbox emulator: no real account is involved.</small></p>"
    )
    return Response(
        200,
        body.encode(),
        {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
    )
