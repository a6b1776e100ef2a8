"""Start -> consent -> callback -> an integration that syncs right away, for Slack, Gmail and Meta;
its tokens only in the vault. Over real sockets: the connect service (HTTPS), the emulators,
real PostgreSQL and real Prefect."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from db import schema
from tests.connect.conftest import TOKEN_SHAPES, ConnectWorld

START = datetime.now(UTC) - timedelta(days=3)


def seed_account(world: ConnectWorld, provider: str) -> str:
    """An account at the provider and the test user signed in to it; returns its id."""
    sb = world.sandbox
    if provider == "slack":
        ws = sb.slack.add_workspace(
            name="Northwind", users=4, channels=2, messages_per_channel=5, start=START, span_days=2
        )
        sb.slack.consent.knobs.user = ws.team_id
        return ws.team_id
    if provider == "gmail":
        mailbox = sb.gmail.add_mailbox("ops@northwind.test", messages=12)
        sb.gmail.oauth.consent.user = mailbox.email
        return mailbox.email
    meta = sb.emulators["meta_ads"]
    business = meta.add_business("Northwind", owned=1, clients=1, campaigns=1, days=5)
    meta.oauth.knobs.user = business.id
    return meta.oauth.person(business.id)


def secrets_in(bundle: dict[str, object]) -> list[str]:
    return [
        str(v)
        for k, v in bundle.items()
        if k in ("access_token", "refresh_token", "client_secret", "user_access_token")
    ]


@pytest.mark.parametrize("provider", ["slack", "gmail", "meta_ads"])
def test_connect_then_sync_right_away(
    world: ConnectWorld,
    provider: str,
    prefect_harness: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    account = seed_account(world, provider)
    browser = world.browser()
    page = world.open_link(browser, world.link(provider))
    assert page.status_code == 200, page.text
    assert "Connected" in page.text and account in page.text or "is now connected" in page.text
    [row] = world.integrations_of(provider)
    assert (row.external_account_id, row.status, row.client_id) == (account, "connected", None)
    bundle = world.bundle(row.id)
    assert bundle["access_token"]
    if provider == "gmail":
        assert (
            bundle["refresh_token"] and bundle["client_id"] == world.sandbox.gmail.oauth.client_id
        )

    # the cookie that bound the state is Secure, HttpOnly and SameSite=Lax
    start = world.to_provider(world.browser(), provider)
    cookie = start.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie

    if provider == "meta_ads":  # the sandbox runs Meta's time 60x: report runs polled to match
        with world.engine.begin() as conn:
            conn.execute(
                schema.integration.update()
                .where(schema.integration.c.id == row.id)
                .values(
                    config={
                        **(row.config or {}),
                        "rate_scale": world.sandbox.time_scale,
                        "poll_interval": 0.02,
                        "max_poll_interval": 0.1,
                    }
                )
            )
    result = world.sync(provider, row.id)
    assert result["status"] == "succeeded", result
    assert sum(s.get("inserted", 0) for s in result["streams"].values()) > 0

    # tokens only in the vault: not in any other table, the audit log, the pages or the logs
    text = world.database_text() + page.text + caplog.text
    for secret in secrets_in(bundle):
        assert secret not in text
    assert not TOKEN_SHAPES.findall(world.database_text())
    [audit] = [a for a in world.audits("integration.connect") if a.integration_id == row.id]
    assert audit.detail["external_account_id"] == account and audit.detail["created"] is True


def test_the_operator_link_command_mints_a_working_start_url(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    team = seed_account(world, "slack")
    code = main(
        [
            "--json",
            "connect",
            "link",
            "--provider",
            "slack",
            "--agency",
            "Acme",
            "--as",
            world.users["admin"],
            "--client",
            "globex",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    import json

    url = json.loads(out)["url"]
    assert url.startswith(f"{world.base}/connect/slack/start?request=")
    page = world.open_link(world.browser(), url)
    assert page.status_code == 200, page.text
    [row] = world.integrations_of("slack")
    assert (row.external_account_id, row.client_id) == (team, world.clients["globex"])


def test_google_asks_for_offline_access_with_pkce(world: ConnectWorld) -> None:
    seed_account(world, "gmail")
    answer = world.to_provider(world.browser(), "gmail")
    query = httpx.URL(answer.headers["location"]).params
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert "https://www.googleapis.com/auth/gmail.readonly" in query["scope"].split()
    with world.engine.connect() as conn:
        verifier = conn.execute(sa.select(schema.connect_state.c.code_verifier)).scalar()
    assert verifier and verifier not in answer.headers["location"]


def test_the_connect_server_command_serves_the_endpoints(world: ConnectWorld) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "AOS_CONNECT_BASE_URL": f"http://127.0.0.1:{port}"}
    command = [str(Path(sys.executable).parent / "aos-sync"), "connect-server", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        seed_account(world, "slack")
        link = world.link("slack").replace(world.base, f"http://127.0.0.1:{port}")
        landing = httpx.get(link)
        assert landing.status_code == 200 and "Continue to Slack" in landing.text
        answer = httpx.post(
            link.partition("?")[0], data={"request": httpx.URL(link).params["request"]}
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(world.sandbox.env["AOS_SLACK_AUTHORIZE_URL"])
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert server.stderr is not None and "connect service on" in server.stderr.read()


@pytest.mark.parametrize("token_type", ["SYSTEM_USER", "USER"])
def test_meta_connects_through_a_login_for_business_configuration(
    world: ConnectWorld, prefect_harness: None, monkeypatch: pytest.MonkeyPatch, token_type: str
) -> None:
    """With ``AOS_META_CONFIG_ID`` set (Facebook Login for Business), the login dialog is asked
    for that configuration instead of scopes (``config_id``, with ``response_type=code`` and
    ``override_default_response_type=true``, which system-user configurations require). A
    configuration of system-user tokens gives a business integration system user's token:
    it never expires, so it is stored as it is (no expiry, no user-token exchange) and the
    integration is that system user's. One of user tokens goes on as Facebook Login does.
    Either way the integration syncs through the SDK right away."""
    meta = world.sandbox.emulators["meta_ads"]
    config = meta.oauth.add_configuration(token_type)
    monkeypatch.setenv("AOS_META_CONFIG_ID", config.config_id)
    person = seed_account(world, "meta_ads")
    business = next(b for b in meta.businesses.values() if b.name == "Northwind")
    query = httpx.URL(world.to_provider(world.browser(), "meta_ads").headers["location"]).params
    assert query["config_id"] == config.config_id and "scope" not in query
    assert query["response_type"] == "code" and query["override_default_response_type"] == "true"

    world.sandbox.log.clear()
    page = world.open_link(world.browser(), world.link("meta_ads"))
    assert page.status_code == 200, page.text
    [row] = world.integrations_of("meta_ads")
    bundle = world.bundle(row.id)
    record = meta.tokens[bundle["access_token"]]
    exchanges = world.sandbox.log.count(method="oauth.access_token")
    if token_type == "SYSTEM_USER":
        assert record.kind == "SYSTEM_USER" and record.expires_at is None
        assert "expires_at" not in bundle and exchanges == 1  # the code's, nothing more
        assert row.external_account_id == meta.oauth.system_user(business.id)
    else:
        assert record.kind == "USER" and bundle["expires_at"] and exchanges == 2
        assert row.external_account_id == person
    for _ in range(len(business.accounts) * 4):  # the first sync's report runs: done at once
        meta.script_next_report(("Job Completed", 100))
    result = world.sync("meta_ads", row.id)
    assert result["status"] == "succeeded", result
    assert result["streams"]["insights_daily"]["inserted"] > 0
