"""Google Ads: start -> consent -> callback -> an integration keyed by the Google login, its
accessible customers identified over the real google-ads client (gRPC, local TLS), that syncs
right away; disconnect revokes the grant."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cli.main import main
from connectors import registry
from tests.connect.conftest import ConnectWorld, connect_world


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tls_files: tuple[str, str]
) -> Iterator[ConnectWorld]:
    with connect_world(fresh_engine, monkeypatch, tls_files, ("google_ads",)) as w:
        yield w


def test_connect_google_ads_then_sync_then_disconnect(
    world: ConnectWorld, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ads = world.sandbox.emulators["google_ads"]
    manager = ads.populate("tiny")
    login = "ads@northwind.test"
    ads.add_login(login, manager)
    ads.oauth.consent.user = login

    page = world.open_link(world.browser(), world.link("google_ads"))
    assert page.status_code == 200, page.text
    [row] = world.integrations_of("google_ads")
    assert (row.external_account_id, row.status) == (login, "connected")
    bundle = world.bundle(row.id)
    assert bundle["refresh_token"] and bundle["client_id"] == ads.oauth.client_id
    [audit] = world.audits("integration.connect")
    assert audit.detail["accounts"] == [str(manager.id)]
    assert "https://www.googleapis.com/auth/adwords" in audit.detail["scopes"]
    for secret in (bundle["access_token"], bundle["refresh_token"], bundle["client_secret"]):
        assert secret not in world.database_text() and secret not in page.text

    assert "google_ads" in registry.REGISTRY
    result = world.sync("google_ads", row.id)
    assert result["status"] == "succeeded", result
    assert sum(s.get("inserted", 0) for s in result["streams"].values()) > 0

    args = ["--json", "integration", "disconnect", "--integration", str(row.id), "--as"]
    assert main([*args, world.users["owner"]]) == 0
    assert json.loads(capsys.readouterr().out)["revocation"] == "revoked"
    assert ads.oauth.revoked == [login]
    assert ads.oauth.authenticate(bundle["access_token"]) is None


def test_a_login_without_ads_accounts_is_refused(world: ConnectWorld) -> None:
    ads = world.sandbox.emulators["google_ads"]
    ads.add_login("nobody@northwind.test")
    ads.oauth.consent.user = "nobody@northwind.test"
    page = world.open_link(world.browser(), world.link("google_ads"))
    assert page.status_code == 400 and "has access to no Google Ads account" in page.text
    assert world.integrations_of("google_ads") == []
