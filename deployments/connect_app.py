"""``aos-sync connect-server``: the ASGI app where people connect accounts through OAuth.

* ``GET /connect/{provider}/start?request=<signed connect link>``: who is asking comes only from
  the link (``aos-sync connect link``, or a front end that authenticated the person), so the
  service needs no login system of its own. It binds the browser with a ``Secure; HttpOnly;
  SameSite=Lax`` cookie and redirects to the provider's consent screen.
* ``GET /connect/{provider}/callback``: the provider's redirect back; ends on a page saying what
  was connected, or why nothing was.

Pages never show a token, a code or a secret; the callback page tells the browser not to send
its URL (which holds the code) as a referrer and not to cache it. Serve it over HTTPS (the
cookie is ``Secure``); ``--ssl-certfile/--ssl-keyfile`` do that without a front end.
"""

from __future__ import annotations

import functools
import html
import os
import re
import secrets
import socket
import threading
import time
from typing import Any

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors import oauth
from deployments.connect_service import Connected, ConnectRefused, ConnectService

__all__ = ["COOKIE", "ConnectServer", "create_app", "prefect_secret", "service_from_env"]

COOKIE = "aos_connect"
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_NO_LEAK = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_TITLES = {
    "slack": "Slack",
    "gmail": "Gmail",
    "google_ads": "Google Ads",
    "meta_ads": "Meta Ads",
}


def page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (
        "<!doctype html><meta charset=utf-8><title>AudienceOS: "
        f"{html.escape(title)}</title><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    )
    return HTMLResponse(body, status_code=status, headers=_NO_LEAK)


def create_app(service: ConnectService, base_url: str) -> Starlette:
    """The app; ``base_url`` is where browsers reach it (redirect URIs are built from it)."""
    base = base_url.rstrip("/")

    def known(request: Request) -> str | None:
        provider = str(request.path_params["provider"])
        return provider if provider in oauth.CLIENTS else None

    async def start(request: Request) -> Response:
        provider = known(request)
        if provider is None:
            return page("Unknown provider", "There is no such connection.", 404)
        browser = request.cookies.get(COOKIE, "")
        if not _COOKIE_VALUE.fullmatch(browser):
            browser = secrets.token_urlsafe(32)
        try:
            claims = service.read_link(provider, request.query_params.get("request", ""))
            url = service.begin(
                claims, browser=browser, redirect_uri=f"{base}/connect/{provider}/callback"
            )
        except ConnectRefused as exc:
            return page("Not connected", str(exc), exc.status)
        except oauth.NotConfigured as exc:
            return page("Not configured", str(exc), 503)
        response = RedirectResponse(url, status_code=302, headers=_NO_LEAK)
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
            return RedirectResponse(result.url, status_code=302, headers=_NO_LEAK)
        return page("Connected", describe(result))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/connect/{provider}/start", start),
            Route("/connect/{provider}/callback", callback),
            Route("/healthz", health),
        ]
    )


def describe(result: Connected) -> str:
    what = _TITLES.get(result.provider, result.provider)
    verb = "is now connected as" if result.created else "is connected again as"
    if result.previous_status and result.previous_status != "connected":
        verb = f"was {result.previous_status} and is connected again as"
    reach = f"; it reaches {len(result.accounts)} account(s)" if result.accounts else ""
    return (
        f"{what} account {result.account} {verb} integration {result.integration_id} "
        f"({result.name!r}){reach}. Its first sync can start now."
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
