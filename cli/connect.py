"""``aos-sync connect-server``, ``aos-sync connect link`` and ``aos-sync connect <provider>``.

* ``connect-server`` runs the connect service (``deployments/connect_app.py``).
* ``connect link`` mints the signed start URL for a person the operator has authenticated
  (whoever holds ``AOS_RUN_GRANT_KEY`` vouches for them, as with ``grant mint``).
* ``connect <provider>`` is the operator path without the service: it prints the provider's
  authorization URL, listens on a loopback redirect (``127.0.0.1``, a random port) like other
  command-line OAuth clients, and stores the result exactly as the service does. The state is
  bound to this process instead of a browser cookie, and the listener answers only the state it
  handed out: any local process can reach a loopback port, so a callback carrying another state
  (or none) gets an error page and the command keeps waiting for the real one.
"""

from __future__ import annotations

import argparse
import hmac
import secrets
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cli.context import engine, integration_ref, vault
from cli.output import CliError, whole_number
from connectors import oauth
from db import tenancy
from db.connect_tokens import STATE_TTL, ConnectClaims

__all__ = ["connect_via_loopback", "register"]


def _target(a: argparse.Namespace, provider: str) -> tuple[int, int | None, int | None]:
    with engine().connect() as conn:
        agency = tenancy.find_agency(conn, a.agency).id
        client = tenancy.find_client(conn, agency, a.client) if a.client else None
        integration = getattr(a, "integration", None)
        if integration is not None:
            integ = tenancy.get_integration(conn, integration)
            if integ.agency_id != agency or integ.provider != provider:
                raise CliError(f"integration {integration} is not a {provider} one of {a.agency}")
    return agency, client, integration


def cmd_connect_server(a: argparse.Namespace) -> Any:
    from deployments.connect_app import ConnectServer, create_app, service_from_env

    service, base = service_from_env(engine())  # the embedded database is migrated first
    server = ConnectServer(
        create_app(service, base),
        a.host,
        a.port,
        ssl_certfile=a.ssl_certfile,
        ssl_keyfile=a.ssl_keyfile,
    )
    print(f"connect service on {server.url} (public address {base})", file=sys.stderr)
    server.run()
    return None


def cmd_connect_link(a: argparse.Namespace) -> Any:
    from db.connect_tokens import mint_link
    from db.grants import ENV_KEY, signing_key_from_env

    key = signing_key_from_env()
    if key is None:
        raise CliError(f"{ENV_KEY} is not set: the connect service verifies links with it")
    base = oauth.SettingsSource().require(oauth.CONNECT_BASE_URL_ENV, "the connect service")
    if not 1 <= a.minutes <= 60:
        raise CliError("--minutes must be between 1 and 60")
    agency, client, integration = _target(a, a.provider)
    token = mint_link(
        key,
        provider=a.provider,
        agency_id=agency,
        principal=a.as_.strip().lower(),
        client_id=client,
        integration_id=integration,
        ttl=timedelta(minutes=a.minutes),
    )
    return {
        "url": f"{base.rstrip('/')}/connect/{a.provider}/start?request={token}",
        "valid_for": f"{a.minutes} min; open it in the browser of {a.as_}",
    }


def connect_via_loopback(
    provider: str,
    *,
    agency_id: int,
    principal: str,
    client_id: int | None = None,
    integration_id: int | None = None,
    on_url: Callable[[str], None],
    timeout: float = 300.0,
    port: int = 0,
) -> dict[str, Any]:
    """The loopback flow (see the module docstring); ``on_url`` shows the authorization URL."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    from db.grants import signing_key_from_env
    from deployments.connect_app import ConnectServer, connected_page, page, prefect_secret
    from deployments.connect_pages import stylesheet_route
    from deployments.connect_service import Connected, ConnectRefused, ConnectService

    key = signing_key_from_env() or secrets.token_bytes(32)  # states live in this process only
    source = oauth.SettingsSource(lookup=prefect_secret)
    service = ConnectService(engine(), key, vault(), source)
    bound = secrets.token_urlsafe(32)  # the "browser": this process
    done = threading.Event()
    outcome: dict[str, Any] = {}
    expected: list[str] = []  # the state of each authorization URL shown (a reprompt adds one)

    def expect(url: str) -> str:
        expected.extend(parse_qs(urlsplit(url).query).get("state", [])[:1])
        return url

    def ours(state: str) -> bool:
        return any(hmac.compare_digest(state.encode(), e.encode()) for e in expected)

    async def callback(request: Request) -> Response:
        if done.is_set():
            return page("Already done", "This sign-in has finished; close this tab.", 410)
        if not ours(request.query_params.get("state", "")):
            # Not the answer to our URL (a guess, a stale tab, another local process): ignored.
            return page(
                "Not this sign-in",
                "This answer does not belong to the sign-in the command is waiting for; "
                "nothing was changed.",
                400,
            )
        try:
            result = service.complete(provider, dict(request.query_params), browser=bound)
        except ConnectRefused as exc:
            outcome["error"] = str(exc)
            done.set()
            return page("Not connected", str(exc), exc.status)
        if not isinstance(result, Connected):
            return RedirectResponse(expect(result.url), status_code=302)
        outcome["result"] = result
        done.set()
        return connected_page(result)

    app = Starlette(routes=[Route("/callback", callback), stylesheet_route()])
    server = ConnectServer(app, "127.0.0.1", port)
    server.start()
    try:
        claims = ConnectClaims(
            provider,
            agency_id,
            client_id,
            integration_id,
            principal,
            "",
            datetime.now(UTC) + STATE_TTL,
        )
        try:
            url = expect(
                service.begin(claims, browser=bound, redirect_uri=f"{server.url}/callback")
            )
        except ConnectRefused as exc:
            raise CliError(str(exc)) from None
        on_url(url)
        if not done.wait(timeout):
            raise CliError(f"no answer from the browser within {timeout:.0f} s; nothing connected")
    finally:
        server.stop()
    if "error" in outcome:
        raise CliError(outcome["error"])
    result = outcome["result"]
    return {
        "integration_id": result.integration_id,
        "name": result.name,
        "provider": provider,
        "account": result.account,
        "created": result.created,
        "accounts": len(result.accounts),
    }


def cmd_connect_provider(a: argparse.Namespace) -> Any:
    agency, client, integration = _target(a, a.provider)

    def show(url: str) -> None:
        print(
            "Open this address in a browser signed in to the account to connect:", file=sys.stderr
        )
        print(url, file=sys.stderr, flush=True)

    return connect_via_loopback(
        a.provider,
        agency_id=agency,
        principal=a.as_.strip().lower(),
        client_id=client,
        integration_id=integration,
        on_url=show,
        timeout=a.timeout,
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("connect-server", help="serve the OAuth connect endpoints")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=whole_number, default=8765)
    p.add_argument("--ssl-certfile", help="serve HTTPS (the binding cookie is Secure)")
    p.add_argument("--ssl-keyfile")
    p.set_defaults(func=cmd_connect_server)

    connect = sub.add_parser(
        "connect", help="connect an account through OAuth (or mint a connect link)"
    ).add_subparsers(dest="sub", required=True)
    p = connect.add_parser("link", help="a signed start URL for the connect service")
    p.add_argument("--provider", required=True, choices=sorted(oauth.CLIENTS))
    _common(p)
    p.add_argument("--minutes", type=int, default=15, help="lifetime (1-60, default 15)")
    p.set_defaults(func=cmd_connect_link)
    for provider in sorted(oauth.CLIENTS):
        p = connect.add_parser(
            provider, help=f"connect {provider}: print the URL, wait on a loopback redirect"
        )
        _common(p)
        p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
        p.set_defaults(func=cmd_connect_provider, provider=provider)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agency", required=True, help="agency name or id")
    p.add_argument("--client", help="client name or id (omit for agency-wide)")
    p.add_argument(
        "--integration",
        type=integration_ref,
        metavar="ID|NAME",
        help="reconnect this integration (same account)",
    )
    p.add_argument("--as", dest="as_", required=True, metavar="EMAIL", help="the acting user")
