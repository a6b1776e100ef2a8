"""Connect tests: the emulators in a sandbox, the connect service over HTTPS on 127.0.0.1, real
PostgreSQL, and an httpx client that follows redirects and keeps cookies playing the browser."""

from __future__ import annotations

import base64
import contextlib
import html
import os
import re
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from db import engine as db_engine
from db import schema
from db.connect_tokens import mint_link
from deployments.connect_app import ConnectServer, create_app, service_from_env
from tests.flows.conftest import World, seeded_world

GRANT_KEY = b"connect-test-key-0123456789abcdef"
TOKEN_SHAPES = re.compile(
    r"(xox[bpe][-.][A-Za-z0-9.-]+|ya29\.[A-Za-z0-9_-]+|1//0[A-Za-z0-9_-]+|EAAB[0-9a-f]+)"
)


@pytest.fixture(scope="session")
def tls_files() -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (the binding cookie is ``Secure``)."""
    from sandbox.google_ads.emulator import local_tls

    cert_path, key_pem, _ = local_tls()
    fd, key_path = tempfile.mkstemp(prefix="aos-connect-", suffix=".key")
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    return cert_path, key_path


@dataclass
class ConnectWorld(World):
    server: ConnectServer | None = None
    cert: str = ""
    browsers: list[httpx.Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        assert self.server is not None
        return self.server.url

    def browser(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=self.cert)
        client = httpx.Client(verify=context, follow_redirects=True, timeout=30)
        self.browsers.append(client)
        return client

    def link(
        self,
        provider: str,
        who: str = "owner",
        *,
        client: str | None = None,
        integration: int | None = None,
    ) -> str:
        token = mint_link(
            GRANT_KEY,
            provider=provider,
            agency_id=self.agency_id,
            principal=self.users.get(who, who),
            client_id=self.clients[client] if client else None,
            integration_id=integration,
        )
        return f"{self.base}/connect/{provider}/start?request={token}"

    def open_link(self, browser: httpx.Client, url: str, **kw: Any) -> httpx.Response:
        """A person opening a connect link: its page, then (when it has one) its "Continue"
        button, following what comes next unless ``follow_redirects=False`` is passed."""
        landing = browser.get(url)
        form = continue_form(landing)
        if form is None:
            return landing
        action, fields = form
        return browser.post(landing.url.join(action), data=fields, **kw)

    def to_provider(self, browser: httpx.Client, provider: str, **kw: Any) -> httpx.Response:
        """Start, stopping at the provider's consent screen (the redirect to it)."""
        answer = self.open_link(browser, self.link(provider, **kw), follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return answer

    def callback_url(self, browser: httpx.Client, authorize_url: str) -> str:
        """Let the provider answer, stopping before the callback is delivered."""
        answer = browser.get(authorize_url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def sync(self, provider: str, iid: int, who: str = "owner") -> dict[str, Any]:
        """The integration's Prefect flow, with a run grant (the signing key is configured)."""
        from db.grants import mint_run_grant
        from flows import flow_for

        grant = mint_run_grant(GRANT_KEY, self.users[who], iid, "sync")
        result: dict[str, Any] = flow_for(provider)(
            integration_id=iid, requested_by=self.users[who], run_grant=grant
        )
        return result

    def integrations_of(self, provider: str) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(schema.integration).where(
                    schema.integration.c.agency_id == self.agency_id,
                    schema.integration.c.provider == provider,
                )
            ).all()

    def bundle(self, iid: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return dict(db_engine.default_vault().get(conn, iid))

    def audits(self, action: str) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(schema.audit_event)
                .where(schema.audit_event.c.action == action)
                .order_by(schema.audit_event.c.id)
            ).all()

    def states(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.connect_state)).scalar()
            )

    def database_text(self) -> str:
        """Every row of every table but the vault's, as text (to grep for tokens)."""
        out = []
        with self.engine.connect() as conn:
            for table in schema.metadata.sorted_tables:
                if table.name == "integration_credential":
                    continue
                whole_rows = f'SELECT t::text FROM "{table.name}" AS t'  # noqa: S608 (our tables)
                rows = conn.execute(sa.text(whole_rows)).scalars()
                out.extend(rows)
        return "\n".join(out)


def continue_form(page: httpx.Response) -> tuple[str, dict[str, str]] | None:
    """The landing page's form (its action and hidden fields), read as a browser would."""
    found = re.search(r'<form method="post" action="([^"]*)">(.*?)</form>', page.text, re.S)
    if page.status_code != 200 or found is None:
        return None
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', found[2])
    return html.unescape(found[1]), {html.unescape(k): html.unescape(v) for k, v in fields}


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def configure(monkeypatch: pytest.MonkeyPatch, sb: Any) -> None:
    """The connect settings an operator would set, here from the emulators' apps."""
    monkeypatch.setenv("AOS_RUN_GRANT_KEY", base64.b64encode(GRANT_KEY).decode())
    if "slack" in sb.emulators:
        monkeypatch.setenv("AOS_SLACK_CLIENT_ID", sb.slack.app.client_id)
        monkeypatch.setenv("AOS_SLACK_CLIENT_SECRET", sb.slack.app.client_secret)
    google = sb.emulators.get("gmail") or sb.emulators.get("google_ads")
    if google is not None:  # one OAuth client for every Google product
        monkeypatch.setenv("AOS_GOOGLE_CLIENT_ID", google.oauth.client_id)
        monkeypatch.setenv("AOS_GOOGLE_CLIENT_SECRET", google.oauth.client_secret)
    if "meta_ads" in sb.emulators:
        meta = sb.emulators["meta_ads"]
        monkeypatch.setenv("AOS_META_CLIENT_ID", meta.app_id)
        monkeypatch.setenv("AOS_META_CLIENT_SECRET", meta.app_secret)


def register_redirects(sb: Any, base: str) -> None:
    """What an operator registers with each provider's app: the service's callback URLs."""
    knobs = {
        "slack": lambda: sb.slack.consent.knobs,
        "gmail": lambda: sb.gmail.oauth.consent,
        "google_ads": lambda: sb.emulators["google_ads"].oauth.consent,
        "meta_ads": lambda: sb.emulators["meta_ads"].oauth.knobs,
    }
    for provider, get in knobs.items():
        if provider in sb.emulators:
            get().registered.add(f"{base}/connect/{provider}/callback")


@contextlib.contextmanager
def connect_world(
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    tls_files: tuple[str, str],
    providers: tuple[str, ...],
) -> Iterator[ConnectWorld]:
    cert, key = tls_files
    with seeded_world(
        ConnectWorld, engine, monkeypatch, providers=providers, time_scale=60, seed=31
    ) as w:
        from cli import context

        context.engine.cache_clear()  # the CLI's engine: this test's database
        configure(monkeypatch, w.sandbox)
        server = ConnectServer(lambda *a: None, "127.0.0.1", 0)  # reserve the port first
        base = f"https://127.0.0.1:{server.port}"
        server.sock.close()
        monkeypatch.setenv("AOS_CONNECT_BASE_URL", base)
        register_redirects(w.sandbox, base)
        service, base = service_from_env()
        w.server = ConnectServer(
            create_app(service, base), "127.0.0.1", server.port, ssl_certfile=cert, ssl_keyfile=key
        ).start()
        w.cert = cert
        try:
            yield w
        finally:
            for browser in w.browsers:
                browser.close()
            w.server.stop()
            context.engine.cache_clear()


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tls_files: tuple[str, str]
) -> Iterator[ConnectWorld]:
    with connect_world(fresh_engine, monkeypatch, tls_files, ("slack", "gmail", "meta_ads")) as w:
        yield w
