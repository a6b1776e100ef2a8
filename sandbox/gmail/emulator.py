"""The Gmail API v1 emulator: routing, OAuth, per-user quota, batch, and the mailbox registry.

One server answers the REST paths under ``/gmail/v1/``, the multipart ``/batch/gmail/v1``
endpoint (``/batch`` too: the bundled discovery document's ``batchPath``) and Google's token
endpoint ``/token``. Errors are Google's JSON errors; the per-user quota is counted in
Gmail's units over a one-(provider-)second window and answered like Gmail (429
``rateLimitExceeded`` by default, or 403 ``userRateLimitExceeded``), batch parts included.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sandbox.clock import FixedWindowLimiter, TimeScale
from sandbox.faults import Fault
from sandbox.gmail.batch import MAX_PARTS, BatchFormatError, parse_batch, render_batch
from sandbox.gmail.errors import (
    GmailError,
    bad_request,
    internal,
    not_found,
    quota_exceeded,
    unauthenticated,
    unavailable,
)
from sandbox.gmail.mailbox import GmailMailbox
from sandbox.gmail.methods import QUOTA_UNITS, route
from sandbox.google_oauth import ACCESS_TOKEN_TTL, GoogleOAuth, TokenError, handle_http, oauth_env
from sandbox.protocol import Request, Response, json_response

__all__ = ["DEFAULT_DOMAINS", "SIZES", "GmailEmulator"]

DEFAULT_DOMAINS = ("globex.com", "initech.com", "example.org")
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
TOKEN_METHOD, BATCH_METHOD = "oauth2.token", "batch"
_BATCH_PATHS = ("/batch/gmail/v1", "/batch")

# Preset mailboxes for ``python -m sandbox serve --size``: (email, kwargs) pairs.
SIZES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "tiny": [("ops@acme-agency.test", {"messages": 50})],
    "small": [("ops@acme-agency.test", {"messages": 500})],
    "demo": [
        ("ops@acme-agency.test", {"messages": 2_000}),
        ("sales@acme-agency.test", {"messages": 800, "domains": ("hooli.com", "umbrella.org")}),
    ],
    "large": [("ops@acme-agency.test", {"messages": 20_000, "quota": False})],
    "huge": [("ops@acme-agency.test", {"messages": 100_000, "quota": False})],
}


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


class GmailEmulator:
    """All emulated mailboxes behind one base URL (``sb.env["AOS_GMAIL_API_URL"]``)."""

    name = "gmail"

    def __init__(
        self,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        oauth: GoogleOAuth | None = None,
        access_token_ttl: float = ACCESS_TOKEN_TTL,
    ) -> None:
        self.seed = seed
        self.scale = TimeScale(time_scale)
        self.limiter = FixedWindowLimiter(self.scale)
        self.oauth = oauth or GoogleOAuth(
            seed, time_scale=time_scale, access_token_ttl=access_token_ttl
        )
        self.mailboxes: dict[str, GmailMailbox] = {}
        self.base_url: str | None = None
        self._lock = threading.Lock()

    # -- mailboxes ---------------------------------------------------------------------
    def add_mailbox(
        self,
        email: str = "ops@acme-agency.test",
        *,
        messages: int = 500,
        threads_ratio: float = 0.3,
        domains: tuple[str, ...] = DEFAULT_DOMAINS,
        start: datetime | None = None,
        span_days: float = 60,
        quota: bool | int = True,
        quota_status: int = 429,
        history_retention: int | timedelta | None = None,
    ) -> GmailMailbox:
        """A mailbox that granted our app ``gmail.readonly``.

        ``threads_ratio`` is threads per message (0.3: about 3 messages a thread; 1.0: no
        replies). ``quota``: True for Gmail's 250 units/user/second, an int for another
        budget, False for none. ``history_retention``: keep that many history records (int)
        or that much provider time (timedelta); None keeps all until ``expire_history()``.
        """
        if not 0 < threads_ratio <= 1:
            raise ValueError("threads_ratio must be in (0, 1]")
        with self._lock:
            if email.lower() in self.mailboxes:
                raise ValueError(f"mailbox {email} exists")
            mailbox = GmailMailbox(
                oauth=self.oauth,
                seed=self.seed,
                email=email.lower(),
                messages=messages,
                threads_ratio=threads_ratio,
                domains=domains,
                start=start,
                span_days=span_days,
                quota=quota,
                quota_status=quota_status,
                history_retention=history_retention,
                time_scale=self.scale.factor,
                token_uri=self.token_uri,
            )
            self.mailboxes[mailbox.email] = mailbox
        return mailbox

    def mailbox(self, email: str) -> GmailMailbox:
        return self.mailboxes[email.lower()]

    def populate(self, size: str) -> list[GmailMailbox]:
        """Add the preset mailboxes of ``size`` (see :data:`SIZES`)."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return [self.add_mailbox(email, **kwargs) for email, kwargs in SIZES[size]]

    def token_uri(self) -> str:
        return f"{self.base_url}/token" if self.base_url else GOOGLE_TOKEN_URL

    # -- Provider protocol -------------------------------------------------------------
    def bind(self, base_url: str) -> None:
        """Called by the sandbox once the server listens (credentials carry ``token_uri``)."""
        self.base_url = base_url

    def env(self, base_url: str) -> dict[str, str]:
        self.base_url = base_url
        return {"AOS_GMAIL_API_URL": f"{base_url}/", "AOS_GOOGLE_TOKEN_URL": f"{base_url}/token"}

    def oauth_env(self, base_url: str) -> dict[str, str]:
        """The connect service's Google settings (consent, revoke, userinfo) for this server."""
        return oauth_env(base_url, self.oauth)

    def api_method(self, request: Request) -> str:
        if request.path == "/token":
            return TOKEN_METHOD
        if request.path in _BATCH_PATHS:
            return BATCH_METHOD
        found = route(request.path)
        return found[0] if found else request.path

    def fault_response(self, fault: Fault) -> Response:
        if fault.kind == "429":
            return quota_exceeded(429, fault.retry_after).response()
        return (internal() if fault.kind == "500" else unavailable()).response()

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        """``no_content_id``: the batch is served, its answer's parts carry no Content-ID
        (on any other method the request is simply served)."""
        if fault.kind == "no_content_id" and method == BATCH_METHOD:
            try:
                return self._batch(request, content_ids=False)
            except GmailError as exc:
                return exc.response()
        return self.handle(request, method)

    def revoke_request_token(self, request: Request) -> None:
        token = _bearer(request) or str(request.params.get("refresh_token") or "")
        self.oauth.revoke_token(token)

    def handle(self, request: Request, method: str) -> Response:
        if (consent := handle_http(self.oauth, request)) is not None:
            return consent
        try:
            if method == TOKEN_METHOD:
                return self._token(request)
            if method == BATCH_METHOD:
                return self._batch(request)
            return self._api(request)
        except GmailError as exc:
            return exc.response()

    # -- endpoints ---------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        if request.verb != "POST":
            raise not_found()
        try:
            return json_response(
                self.oauth.token_endpoint(request.params, request.headers),
                headers={"Cache-Control": "no-cache, no-store, max-age=0"},
            )
        except TokenError as exc:
            return json_response(exc.payload(), status=exc.status)

    def _api(self, request: Request) -> Response:
        found = route(request.path)
        if found is None or request.verb != "GET":
            raise not_found()
        method, handler, user, args = found
        token = _bearer(request)
        if not token:
            raise unauthenticated(missing=True)
        subject = self.oauth.authenticate(token)
        mailbox = self.mailboxes.get(subject or "")
        if mailbox is None:
            raise unauthenticated()
        if user != "me" and user.lower() != mailbox.email:
            raise GmailError(403, "Delegation denied for " + mailbox.email, "forbidden")
        if mailbox.quota_units is not None:
            decision = self.limiter.hit(
                mailbox.email, mailbox.quota_units, 1.0, cost=QUOTA_UNITS[method]
            )
            if not decision.allowed:
                raise quota_exceeded(mailbox.quota_status, decision.retry_after)
        return json_response(handler(mailbox, request, args))

    def _batch(self, outer: Request, *, content_ids: bool = True) -> Response:
        if outer.verb != "POST":
            raise not_found()
        try:
            parts = parse_batch(outer)
        except BatchFormatError as exc:
            raise bad_request(str(exc)) from exc
        if len(parts) > MAX_PARTS:
            raise bad_request(
                f"Too many requests in batch ({len(parts)}); the limit is {MAX_PARTS}."
            )
        answers = []
        for part in parts:
            if self.api_method(part.request) == BATCH_METHOD:
                answers.append((part.content_id, bad_request("Nested batch").response()))
            elif outer.subrequest is not None:
                answers.append((part.content_id, outer.subrequest(part.request)))
            else:
                method = self.api_method(part.request)
                answers.append((part.content_id, self.handle(part.request, method)))
        return render_batch(answers, content_ids=content_ids)
