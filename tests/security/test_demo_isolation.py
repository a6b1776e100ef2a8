"""``aos-sync demo`` touches only what it created.

The finding: the demo points every ``AOS_*_API_URL`` at its emulators and then ran
``sync_all()`` over *every* connected integration, so a real account connected to the same
database had its real token sent to the local emulator, was refused there, and was marked
``needs_reauth``. Here the demo runs for real (``run_demo("tiny")`` as ``tests/test_demo.py``
runs it: the Slack emulator over real sockets, real PostgreSQL, the session's Prefect server),
with two real integrations already connected (one in a demo agency, one in another agency),
and with a recording proxy on 127.0.0.1 between the project and the demo's emulator: it keeps
every request (line, headers, body) the demo sends. None may carry a real secret.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

import sandbox
from cli import context
from cli.demo import DEMO_AGENCIES, SANDBOX_MARK, run_demo
from cli.output import CliError
from db import engine as db_engine
from db import tenancy

pytestmark = pytest.mark.slow  # the demo, for real, in each test

DEMO_AGENCY = DEMO_AGENCIES[0][0]  # "Northwind Agency"
REAL = {
    "demo agency": {
        "access_token": "xoxe.xoxb-1-REALnorthwindACCESS0123456789",
        "refresh_token": "xoxe-1-REALnorthwindREFRESH0123456789",
        "client_id": "1111.2222",
        "client_secret": "REALnorthwindCLIENTSECRET",
        # Past its expiry: a sync of it would begin by refreshing, sending the refresh token.
        "expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    },
    "other agency": {"access_token": "xoxb-REALotherAGENCYtoken0123456789"},
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: str
    body: bytes

    def text(self) -> str:
        return f"{self.method} {self.path}\n{self.headers}\n" + self.body.decode("latin-1")


class _Proxy(BaseHTTPRequestHandler):
    """Records the request, forwards it to the emulator, relays the answer."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(Recorded(self.command, self.path, str(self.headers), body))
        upstream = http.client.HTTPConnection(self.server.upstream_host, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = _relay


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.upstream_host = urlsplit(upstream).netloc
        self.seen: list[Recorded] = []


class RecordedSandbox(sandbox.Sandbox):
    """The demo's sandbox, reached through the recorder: ``env`` names the proxy's port."""

    instances: list[RecordedSandbox] = []

    def start(self) -> RecordedSandbox:
        super().start()
        self.proxy = _ProxyServer(self.base_url("slack"))
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        RecordedSandbox.instances.append(self)
        return self

    def stop(self) -> None:
        self.proxy.shutdown()
        self.proxy.server_close()
        super().stop()

    @property
    def env(self) -> dict[str, str]:
        host, port = self.proxy.server_address[:2]
        mine = self.base_url("slack")
        return {k: v.replace(mine, f"http://{host}:{port}") for k, v in super().env.items()}


@pytest.fixture
def demo_env(
    fresh_engine: sa.Engine,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[sa.Engine]:
    monkeypatch.setenv("AOS_HOME", str(tmp_path))  # the demo's analyst password file goes here
    monkeypatch.setenv("AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ENCRYPTION_KEY", "demo:" + "B" * 43 + "=")
    from connectors import registry

    for name in registry.names():  # nothing points at a provider but the demo's sandbox
        for setting in registry.get(name).settings:
            monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setattr(sandbox, "Sandbox", RecordedSandbox)
    RecordedSandbox.instances.clear()
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()
    try:
        yield fresh_engine
    finally:
        db_engine.get_engine.cache_clear()
        context.engine.cache_clear()


def _seed_real(engine: sa.Engine, demo_agency_name: str) -> dict[str, int]:
    """Two real, connected Slack integrations with known secrets."""
    vault = db_engine.default_vault()
    with engine.begin() as conn:
        demo_agency = tenancy.create_agency(conn, demo_agency_name)
        other = tenancy.create_agency(conn, "Real Customer Co")
        ids = {
            "demo agency": tenancy.add_integration(
                conn, demo_agency, "slack", "Northwind Real Slack", external_account_id="T0REAL1"
            ),
            "other agency": tenancy.add_integration(
                conn, other, "slack", "Real Slack", external_account_id="T0REAL2"
            ),
        }
        for key, iid in ids.items():
            vault.put(conn, iid, dict(REAL[key]))
    return ids


def _snapshot(engine: sa.Engine, ids: dict[str, int]) -> dict[str, Any]:
    """Everything the demo must leave alone about the real integrations."""
    vault = db_engine.default_vault()
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for key, iid in ids.items():
            integ = tenancy.get_integration(conn, iid)
            cred = conn.execute(
                sa.text(
                    "SELECT key_id, nonce, ciphertext, version, updated_at "
                    "FROM integration_credential WHERE integration_id = :i"
                ),
                {"i": iid},
            ).one()
            out[key] = {
                "status": (integ.status, integ.status_reason),
                "config": integ.config,
                "bundle": dict(vault.get(conn, iid)),
                "row": tuple(cred),
                "runs": conn.execute(
                    sa.text("SELECT count(*) FROM sync_run WHERE integration_id = :i"), {"i": iid}
                ).scalar(),
                "audit": conn.execute(
                    sa.text("SELECT count(*) FROM audit_event WHERE integration_id = :i"),
                    {"i": iid},
                ).scalar(),
            }
    return out


def _secrets() -> list[str]:
    return [
        v
        for bundle in REAL.values()
        for k, v in bundle.items()
        if k in {"access_token", "refresh_token", "client_secret"}
    ]


def test_demo_leaves_real_integrations_alone(demo_env: sa.Engine) -> None:
    engine = demo_env
    real = _seed_real(engine, DEMO_AGENCY)
    before = _snapshot(engine, real)

    result = run_demo("tiny")

    [sb] = RecordedSandbox.instances
    seen = sb.proxy.seen
    leaked = [r.method + " " + r.path for r in seen for s in _secrets() if s in r.text()]
    assert leaked == [], f"real secrets were sent to the demo's emulator: {leaked}"
    assert _snapshot(engine, real) == before

    # The demo's own integrations synced; its Slack ones through the recorder, with their
    # sandbox tokens (the real integrations here are Slack ones).
    assert result["integrations"] == 16 and result["failed"] == 0, result
    assert {o["outcome"] for o in result["outcomes"]} == {"succeeded"}
    demo_ids = {o["integration"] for o in result["outcomes"]}
    assert not demo_ids & set(real.values())
    vault = db_engine.default_vault()
    with engine.connect() as conn:
        demo = [tenancy.get_integration(conn, i) for i in sorted(demo_ids)]
        tokens = {str(vault.get(conn, i.id)["access_token"]) for i in demo if i.provider == "slack"}
        runs = dict(
            conn.execute(
                sa.text(
                    "SELECT integration_id, status FROM sync_run WHERE integration_id = ANY(:ids)"
                ),
                {"ids": sorted(demo_ids)},
            ).all()
        )
    assert all(i.config.get(SANDBOX_MARK) is True and i.status == "connected" for i in demo)
    assert runs == dict.fromkeys(demo_ids, "succeeded")
    assert len(tokens) == 6
    assert all(any(t in r.text() for r in seen) for t in tokens), "the recorder saw the demo"


def test_demo_refuses_to_take_over_a_same_named_real_integration(demo_env: sa.Engine) -> None:
    """A real integration named like one the demo creates: refused, credentials untouched,
    and nothing at all reaches the emulator."""
    engine = demo_env
    real = _seed_real(engine, DEMO_AGENCY)
    client_name = DEMO_AGENCIES[0][2][0]  # "Contoso": the demo names its workspace "Contoso Slack"
    with engine.begin() as conn:
        agency = tenancy.find_agency(conn, DEMO_AGENCY).id
        real["same name"] = tenancy.add_integration(conn, agency, "slack", f"{client_name} Slack")
        db_engine.default_vault().put(conn, real["same name"], dict(REAL["other agency"]))
        agencies_before = conn.execute(sa.text("SELECT count(*) FROM agency")).scalar()
    before = _snapshot(engine, real)

    with pytest.raises(CliError, match=f"'{client_name} Slack'.*did not create"):
        run_demo("tiny")

    [sb] = RecordedSandbox.instances
    assert sb.proxy.seen == []
    assert _snapshot(engine, real) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sync_run")).scalar() == 0
        # The seeding was one transaction: the other demo agency was not left half made.
        assert conn.execute(sa.text("SELECT count(*) FROM agency")).scalar() == agencies_before
