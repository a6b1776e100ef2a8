"""``aos-sync connect-server``: the ASGI app where people connect accounts through OAuth.

* ``GET /connect/{provider}/start?request=<signed connect link>``: who is asking comes only from
  the link (``aos-sync connect link``, or a front end that authenticated the person), so the
  service needs no login system of its own. It answers with a page naming the agency, who
  asked, the provider, the client and what will be read, and a "Continue" button: whoever
  opens a link sees which agency their account would join before anything happens.
* ``POST /connect/{provider}/start`` (that button): binds the browser with a ``Secure;
  HttpOnly; SameSite=Lax`` cookie and redirects to the provider's consent screen. A post from
  another site (``Origin`` / ``Sec-Fetch-Site``) is refused, so no page can skip the first one.
* ``GET /connect/{provider}/callback``: the provider's redirect back; ends on a page saying what
  was connected and to which agency, or why nothing was.

Pages (:mod:`deployments.connect_pages`) never show a token, a code or a secret, are not cached,
not framed, and do not send their URL (a callback's holds the code) as a referrer. Serve it over
HTTPS (the cookie is ``Secure``); ``--ssl-certfile/--ssl-keyfile`` do that without a front end.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors import oauth, registry
from deployments.connect_pages import HEADERS, Button, render, stylesheet_route
from deployments.connect_service import Connected, ConnectRefused, ConnectService, LinkSummary

__all__ = ["COOKIE", "ConnectServer", "create_app", "prefect_secret", "service_from_env"]

COOKIE = "aos_connect"
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_MAX_FORM = 8192  # bytes: the form holds one signed link


def page(title: str, text: str, status: int = 200) -> HTMLResponse:
    """A page of one sentence (refusals and plain notices)."""
    return render(title, text, tone="error" if status >= 400 else "info", status=status)


def landing(summary: LinkSummary, token: str) -> HTMLResponse:
    """What a connect link will do, with the button that goes on to the provider."""
    facts: list[tuple[str, str | tuple[str, ...]]] = [
        ("Agency", summary.agency),
        ("Asked by", summary.principal),
        ("Provider", summary.provider),
        ("Client", summary.client or "the whole agency (no client)"),
    ]
    if summary.integration:
        facts.append(("Reconnects", summary.integration))
    facts += [
        ("What will be read", summary.reads),
        ("Permissions asked", summary.scopes),
    ]
    return render(
        f"Connect {summary.provider} to {summary.agency}",
        f"{summary.principal} asks you to connect a {summary.provider} account to the agency "
        f"{summary.agency} in AudienceOS Sync. Continue only if that is what you expect: the "
        "account you pick next will be read on that agency's behalf.",
        facts=facts,
        notes=(
            "Access is read-only. You can disconnect at any time; this link works once and "
            "expires soon.",
        ),
        button=Button(f"Continue to {summary.provider}", "start", (("request", token),)),
    )


def connected_page(result: Connected) -> HTMLResponse:
    title = registry.get(result.provider).title
    facts: list[tuple[str, str | tuple[str, ...]]] = [
        ("Agency", result.agency),
        ("Account", result.account),
        ("Integration", f"{result.name} (#{result.integration_id})"),
    ]
    if result.accounts:
        facts.append(("Reaches", result.accounts))
    return render(
        f"{title} connected to {result.agency}",
        describe(result),
        facts=facts,
        notes=("You can close this tab.",),
        tone="ok",
    )


def _same_site(request: Request, base: str) -> bool:
    """A browser's POST from our own page: ``Origin`` (when sent) is ours and ``Sec-Fetch-Site``
    (when sent) is not cross-site. Clients that send neither are not browsers on a page."""
    origin = request.headers.get("origin")
    ours = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    if origin is not None and origin != ours:
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def create_app(service: ConnectService, base_url: str) -> Starlette:
    """The app; ``base_url`` is where browsers reach it (redirect URIs are built from it)."""
    base = base_url.rstrip("/")

    def known(request: Request) -> str | None:
        provider = str(request.path_params["provider"])
        return provider if provider in oauth.CLIENTS else None

    async def show(request: Request) -> Response:
        provider = known(request)
        if provider is None:
            return page("Unknown provider", "There is no such connection.", 404)
        token = request.query_params.get("request", "")
        try:
            summary = service.summarize(service.read_link(provider, token))
        except ConnectRefused as exc:
            return page("Not connected", str(exc), exc.status)
        return landing(summary, token)

    async def start(request: Request) -> Response:
        provider = known(request)
        if provider is None:
            return page("Unknown provider", "There is no such connection.", 404)
        if not _same_site(request, base):
            return page("Not connected", "Start from the connect link's own page.", 403)
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            return page("Not connected", "The request is too large.", 413)
        form = parse_qs(raw.decode("ascii", "replace"))
        browser = request.cookies.get(COOKIE, "")
        if not _COOKIE_VALUE.fullmatch(browser):
            browser = secrets.token_urlsafe(32)
        try:
            claims = service.read_link(provider, (form.get("request") or [""])[0])
            url = service.begin(
                claims, browser=browser, redirect_uri=f"{base}/connect/{provider}/callback"
            )
        except ConnectRefused as exc:
            return page("Not connected", str(exc), exc.status)
        except oauth.NotConfigured as exc:
            return page("Not configured", str(exc), 503)
        response = RedirectResponse(url, status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            browser,
            max_age=600,
            path=f"/connect/{provider}/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(request: Request) -> Response:
        provider = known(request)
        if provider is None:
            return page("Unknown provider", "There is no such connection.", 404)
        try:
            result = service.complete(
                provider, dict(request.query_params), browser=request.cookies.get(COOKIE, "")
            )
        except ConnectRefused as exc:
            return page("Not connected", str(exc), exc.status)
        except oauth.NotConfigured as exc:
            return page("Not configured", str(exc), 503)
        if not isinstance(result, Connected):
            return RedirectResponse(result.url, status_code=302, headers=HEADERS)
        return connected_page(result)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/connect/{provider}/start", show, methods=["GET"]),
            Route("/connect/{provider}/start", start, methods=["POST"]),
            Route("/connect/{provider}/callback", callback),
            Route("/healthz", health),
            stylesheet_route(),
        ]
    )


def describe(result: Connected) -> str:
    what = registry.get(result.provider).title
    verb = "is now connected as" if result.created else "is connected again as"
    if result.previous_status and result.previous_status != "connected":
        verb = f"was {result.previous_status} and is connected again as"
    reach = f"; it reaches {len(result.accounts)} account(s)" if result.accounts else ""
    joined = f" of the agency {result.agency}" if result.agency else ""
    return (
        f"{what} account {result.account} {verb} integration {result.integration_id} "
        f"({result.name!r}){joined}{reach}. Its first sync can start now."
    )


# -- wiring from settings -------------------------------------------------------------------
@functools.cache
def prefect_secret(name: str) -> str | None:
    """A connect setting from the Prefect Secret block named like the variable
    (``AOS_SLACK_CLIENT_SECRET`` -> ``aos-slack-client-secret``), when a Prefect API is set."""
    if not os.environ.get("PREFECT_API_URL"):
        return None  # no server: do not start a temporary one for a lookup
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name.lower().replace("_", "-")).get()  # type: ignore[union-attr]
    except Exception:  # no such block, or the API is unreachable: the setting is unset
        return None
    return str(value) if value else None


def service_from_env(engine: sa.Engine | None = None) -> tuple[ConnectService, str]:
    """The service as configured (``engine``: the project database by default)."""
    from db.engine import default_vault, get_engine
    from db.grants import ENV_KEY, signing_key_from_env

    key = signing_key_from_env()
    if key is None:
        raise oauth.NotConfigured(f"{ENV_KEY} is not set: connect links and states are signed")
    source = oauth.SettingsSource(lookup=prefect_secret)
    base = source.require(oauth.CONNECT_BASE_URL_ENV, "the public address of this service")
    return ConnectService(engine or get_engine(), key, default_vault(), source), base


class ConnectServer:
    """The app under uvicorn on a socket of its own, in a thread (the CLI and tests)."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # the access log would print the callback's code
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self.server = uvicorn.Server(config)
        self.scheme = "https" if ssl_certfile else "http"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def run(self) -> None:
        """In the foreground, until interrupted."""
        self.server.run(sockets=[self.sock])

    def start(self) -> ConnectServer:
        self._thread = threading.Thread(target=self.run, name="connect-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the connect server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
