"""The Slack Web API emulator: routing, authentication, rate tiers, and the workspace registry.

Slack answers almost everything with HTTP 200 and ``{"ok": false, "error": ...}``; only rate
limits are HTTP 429 with ``Retry-After``. The emulator does the same, so the project's error
handling is exercised by the real slack-sdk exactly as in production.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from sandbox.clock import FixedWindowLimiter, TimeScale
from sandbox.faults import Fault
from sandbox.ids import derive_key, make_id
from sandbox.protocol import Request, Response, json_response
from sandbox.slack.methods import METHODS, SlackError
from sandbox.slack.oauth import (
    AUTHORIZE_PATH,
    BOT_SCOPES,
    OAuthError,
    SlackApp,
    SlackConsent,
    TokenStore,
    oauth_v2_access,
)
from sandbox.slack.workspace import SlackWorkspace

__all__ = ["SIZES", "SlackEmulator"]

# Preset workspaces for ``python -m sandbox serve --size``: (name, kwargs) pairs.
SIZES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "tiny": [("Acme", {"users": 5, "channels": 3, "messages_per_channel": 20})],
    "small": [
        ("Acme", {"users": 20, "channels": 5, "messages_per_channel": 200}),
        ("Globex", {"users": 8, "channels": 5, "messages_per_channel": 50, "rotating": True}),
    ],
    "demo": [
        ("Acme Agency", {"users": 25, "channels": 10, "messages_per_channel": 500}),
        (
            "Globex Clients",
            {"users": 12, "channels": 6, "messages_per_channel": 300, "rotating": True},
        ),
        (
            "Initech",
            {
                "users": 10,
                "channels": 5,
                "messages_per_channel": 200,
                "tier": "non_marketplace_2025",
            },
        ),
    ],
    "large": [
        (
            "Bigco",
            {"users": 200, "channels": 20, "messages_per_channel": 10_000, "tier": "unlimited"},
        )
    ],
    "huge": [
        (
            "Hugeco",
            {"users": 500, "channels": 10, "messages_per_channel": 100_000, "tier": "unlimited"},
        )
    ],
}


# The scope each method needs on a public channel (``missing_scope`` faults name it).
_NEEDED_SCOPES = {
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "conversations.join": "channels:join",
    "conversations.list": "channels:read",
    "conversations.info": "channels:read",
    "users.list": "users:read",
    "team.info": "team:read",
}


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return str(request.params.get("token", ""))


class SlackEmulator:
    """All emulated Slack workspaces behind one ``/api/`` base URL.

    ``tier`` is the standing of the emulated app: the rate tier its installs are on unless a
    workspace is given its own. It is ``tier3``, a Marketplace-approved (or internal) app's,
    so the sandbox's own syncs are quick; a workspace added with
    ``tier="non_marketplace_2025"`` answers as an install of a new app distributed outside
    the Marketplace does. :meth:`env` tells the project which (``AOS_SLACK_TIER``), as an
    operator of a real deployment sets it for their app."""

    name = "slack"
    tier = "tier3"

    def __init__(self, *, seed: int = 0, time_scale: float = 1.0) -> None:
        self.seed = seed
        self.scale = TimeScale(time_scale)
        self.limiter = FixedWindowLimiter(self.scale)
        self.tokens = TokenStore()
        key = derive_key(seed, "slack-app")
        self.app = SlackApp(
            app_id=make_id("A", seed, "app", length=10),
            client_id=f"{key % 10**12}.{(key >> 20) % 10**13}",
            client_secret=f"{derive_key(seed, 'secret'):016x}{derive_key(seed, 'secret2'):016x}",
        )
        self.workspaces: dict[str, SlackWorkspace] = {}
        self.consent = SlackConsent(self.app, self.tokens)  # install screen, auth.revoke
        self._lock = threading.Lock()

    # -- workspaces --------------------------------------------------------------------
    def add_workspace(
        self,
        name: str = "Acme",
        *,
        users: int = 20,
        channels: int = 5,
        messages_per_channel: int = 200,
        thread_ratio: float = 0.1,
        replies_per_thread: int = 3,
        tier: str | None = None,
        rotating: bool = False,
        start: datetime | None = None,
        span_days: float = 90,
    ) -> SlackWorkspace:
        """A new workspace with our app installed, on ``tier`` (default: the app's). Messages
        span ``span_days`` ending now (or starting at ``start`` when given, which makes
        timestamps reproducible)."""
        with self._lock:
            workspace = SlackWorkspace(
                app=self.app,
                tokens=self.tokens,
                seed=self.seed,
                ordinal=len(self.workspaces),
                name=name,
                users=users,
                channels=channels,
                messages_per_channel=messages_per_channel,
                thread_ratio=thread_ratio,
                replies_per_thread=replies_per_thread,
                tier=tier or self.tier,
                rotating=rotating,
                start=start,
                span_days=span_days,
            )
            self.workspaces[workspace.team_id] = workspace
        return workspace

    def workspace(self, team_id: str) -> SlackWorkspace:
        return self.workspaces[team_id]

    def populate(self, size: str) -> list[SlackWorkspace]:
        """Add the preset workspaces of ``size`` (see :data:`SIZES`)."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return [self.add_workspace(name, **kwargs) for name, kwargs in SIZES[size]]

    # -- Provider protocol -------------------------------------------------------------
    def env(self, base_url: str) -> dict[str, str]:
        return {"AOS_SLACK_API_URL": f"{base_url}/api/", "AOS_SLACK_TIER": self.tier}

    def oauth_env(self, base_url: str) -> dict[str, str]:
        """The connect settings of this emulator's Slack app: its install screen, client id
        and client secret (what an operator copies from the app's Basic Information page)."""
        return {
            "AOS_SLACK_AUTHORIZE_URL": base_url + AUTHORIZE_PATH,
            "AOS_SLACK_CLIENT_ID": self.app.client_id,
            "AOS_SLACK_CLIENT_SECRET": self.app.client_secret,
        }

    def api_method(self, request: Request) -> str:
        return (
            request.path.removeprefix("/api/").strip("/")
            if request.path.startswith("/api/")
            else request.path
        )

    def fault_response(self, fault: Fault) -> Response:
        if fault.kind == "429":
            return self._rate_limited(fault.retry_after)
        error = "fatal_error" if fault.kind == "500" else "service_unavailable"
        return json_response({"ok": False, "error": error}, status=int(fault.kind))

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        """Slack's own fault kinds (see ``sandbox.faults``), in Slack's wire shapes."""
        if fault.kind == "missing_scope":
            return self._missing_scope(fault, request, method)
        response = self.handle(request, method)
        try:
            payload = json.loads(response.body)
        except ValueError:
            return response
        if not isinstance(payload, dict) or not payload.get("ok"):
            return response
        if fault.kind == "warning":
            default = (
                "already_in_channel" if method == "conversations.join" else "superfluous_charset"
            )
            warning = str(fault.options.get("warning") or default)
            payload["warning"] = warning
            metadata = payload.setdefault("response_metadata", {})
            metadata["warnings"] = [*metadata.get("warnings", ()), warning]
        elif fault.kind == "bad_text":
            # A NUL and half a surrogate pair, as Slack sends them (JSON \u0000 and \ud83d).
            for message in payload.get("messages") or ():
                if isinstance(message.get("text"), str):
                    message["text"] += str(fault.options.get("append", " \x00 \ud83d"))
        return json_response(payload, response.status, response.headers)

    def _missing_scope(self, fault: Fault, request: Request, method: str) -> Response:
        """``ok: false`` / ``missing_scope`` naming the ``needed`` scope and the ``provided``
        ones, plus the ``X-OAuth-Scopes`` / ``X-Accepted-OAuth-Scopes`` headers Slack sends.
        Nothing is served. By default the needed scope is the one the method would use on
        that channel (``groups:history`` for a private channel's history)."""
        needed = str(fault.options.get("needed") or "")
        if not needed:
            needed = _NEEDED_SCOPES.get(method, "channels:read")
            channel_id = str(request.params.get("channel") or "")
            private = any(
                channel_id in ws.channels and ws.channels[channel_id].is_private
                for ws in self.workspaces.values()
            )
            if private and needed.startswith("channels:"):
                needed = "groups:" + needed.removeprefix("channels:")
        provided = str(
            fault.options.get("provided")
            or ",".join(s for s in BOT_SCOPES.split(",") if s not in needed.split(","))
        )
        return json_response(
            {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided},
            headers={"X-OAuth-Scopes": provided, "X-Accepted-OAuth-Scopes": needed},
        )

    def revoke_request_token(self, request: Request) -> None:
        self.tokens.revoke(_bearer(request))

    def handle(self, request: Request, method: str) -> Response:
        if method == "oauth.v2.access":
            return self._oauth(request)
        if request.path == AUTHORIZE_PATH:
            return self.consent.authorize(request.params, self.workspaces)
        if method == "auth.revoke":
            return json_response(self.consent.revoke(_bearer(request)))
        handler = METHODS.get(method)
        if handler is None:
            return json_response({"ok": False, "error": "unknown_method"})
        token = _bearer(request)
        record = self.tokens.get(token) if token else None
        if record is None:
            return json_response(
                {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
            )
        problem = record.check()
        if problem is not None:
            return json_response({"ok": False, "error": problem})
        workspace = self.workspaces[record.team_id]
        per_minute, page_cap = workspace.rate_limit(method)
        if per_minute is not None:
            decision = self.limiter.hit((workspace.team_id, self.app.app_id, method), per_minute)
            if not decision.allowed:
                return self._rate_limited(decision.retry_after)
        try:
            payload = handler(workspace, request.params, page_cap)
        except SlackError as exc:
            payload = {"ok": False, "error": exc.code}
        return json_response(payload, headers={"X-OAuth-Scopes": BOT_SCOPES})

    def _rate_limited(self, retry_after: int) -> Response:
        return json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def _oauth(self, request: Request) -> Response:
        def redeem(code: str) -> dict[str, Any] | None:
            installed = self.consent.exchange(
                code, request.params, lambda team: self.workspaces[team].redeem()
            )
            if installed is not None:
                return installed
            record = self.tokens.consume(code, "code") if code else None
            return None if record is None else self.workspaces[record.team_id].redeem()

        def rotate(refresh_token: str) -> dict[str, Any] | None:
            record = self.tokens.consume(refresh_token, "refresh") if refresh_token else None
            return None if record is None else self.workspaces[record.team_id].rotate()

        try:
            payload = oauth_v2_access(
                self.app, request.params, request.headers, redeem_code=redeem, rotate=rotate
            )
        except OAuthError as exc:
            payload = {"ok": False, "error": str(exc)}
        return json_response(payload)
