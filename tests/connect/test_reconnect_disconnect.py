"""Reconnecting (same account: same integration, history intact; another account: refused,
nothing changed), Google's missing refresh token, disconnecting, and the loopback CLI flow."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cli.main import main
from db import agencydb, schema, tenancy
from tests.connect.conftest import ConnectWorld
from tests.connect.test_connect_flows import START, seed_account


def count(world: ConnectWorld, table: sa.Table, iid: int) -> int:
    synced = table.metadata is schema.agency_metadata  # in the agency's own database
    engine = agencydb.engine_for(world.engine, world.agency_id) if synced else world.engine
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.integration_id == iid)
            ).scalar()
        )


def connect(world: ConnectWorld, provider: str, **kw: object) -> httpx.Response:
    return world.open_link(world.browser(), world.link(provider, **kw))  # type: ignore[arg-type]


def test_reconnecting_from_needs_reauth_keeps_the_integration_and_its_history(
    world: ConnectWorld, prefect_harness: None
) -> None:
    seed_account(world, "slack")
    assert connect(world, "slack").status_code == 200
    [row] = world.integrations_of("slack")
    assert world.sync("slack", row.id)["status"] == "succeeded"
    messages, runs = (
        count(world, schema.slack_messages, row.id),
        count(world, schema.sync_run, row.id),
    )
    assert messages > 0 and runs == 1
    with world.engine.begin() as conn:
        tenancy.set_integration_status(conn, row.id, "needs_reauth", "token_revoked")
    old = world.bundle(row.id)["access_token"]

    page = connect(world, "slack")
    assert page.status_code == 200 and "was needs_reauth and is connected again" in page.text
    [again] = world.integrations_of("slack")
    assert (again.id, again.status, again.status_reason) == (row.id, "connected", None)
    assert world.bundle(row.id)["access_token"] != old
    assert count(world, schema.slack_messages, row.id) == messages
    assert count(world, schema.sync_run, row.id) == runs
    assert world.sync("slack", row.id)["status"] == "succeeded"


def test_another_account_is_never_attached_to_an_integration(world: ConnectWorld) -> None:
    first = seed_account(world, "slack")
    assert connect(world, "slack").status_code == 200
    [row] = world.integrations_of("slack")
    before = world.bundle(row.id)
    other = world.sandbox.slack.add_workspace(name="Initech", users=2, channels=1, start=START)
    world.sandbox.slack.consent.knobs.user = other.team_id

    page = connect(world, "slack", integration=row.id)  # "reconnect integration X" ...
    assert page.status_code == 409  # ... signed in to another workspace
    assert f"belong to slack account {other.team_id}" in page.text
    assert f"connected to {first}" in page.text and "nothing was changed" in page.text
    [same] = world.integrations_of("slack")
    assert same.external_account_id == first and world.bundle(row.id) == before
    assert [a for a in world.audits("connect.refused") if a.detail["reason"] == "account_refused"]

    # without naming an integration, the other workspace becomes an integration of its own
    assert connect(world, "slack").status_code == 200
    accounts = {r.external_account_id: r.id for r in world.integrations_of("slack")}
    assert accounts[first] == row.id and set(accounts) == {first, other.team_id}
    assert world.bundle(row.id) == before


def test_integration_reconnect_refuses_another_accounts_credentials(
    world: ConnectWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_account(world, "slack")
    assert connect(world, "slack").status_code == 200
    [row] = world.integrations_of("slack")
    before = world.bundle(row.id)
    with world.engine.begin() as conn:
        tenancy.set_integration_status(conn, row.id, "needs_reauth", "token_revoked")
    other = world.sandbox.slack.add_workspace(name="Hooli", users=2, channels=1, start=START)
    pasted = tmp_path / "other.json"
    pasted.write_text(json.dumps(other.credentials))
    args = ["integration", "reconnect", "--integration", str(row.id), "--credentials-file"]

    assert main([*args, str(pasted), "--as", world.users["admin"]]) == 1
    err = capsys.readouterr().err
    assert f"belong to slack account {other.team_id}" in err and "nothing was changed" in err
    [same] = world.integrations_of("slack")
    assert same.status == "needs_reauth" and world.bundle(row.id) == before

    own = tmp_path / "own.json"
    own.write_text(json.dumps({"access_token": before["access_token"]}))
    assert main([*args, str(own), "--as", world.users["admin"]]) == 0
    [back] = world.integrations_of("slack")
    assert back.status == "connected"
    assert main([*args, str(own), "--as", world.users["member"]]) == 1  # RBAC
    assert "may not rotate credentials" in capsys.readouterr().err


def test_google_without_a_refresh_token_prompts_for_consent_again(world: ConnectWorld) -> None:
    seed_account(world, "gmail")
    google = world.sandbox.gmail.oauth
    google.omit_refresh_tokens = 1
    screens = google.consent.screens
    page = connect(world, "gmail")
    assert page.status_code == 200, page.text
    assert google.consent.screens == screens + 2  # the second one with prompt=consent again
    [row] = world.integrations_of("gmail")
    assert world.bundle(row.id)["refresh_token"]
    assert world.audits("connect.retry")

    google.omit_refresh_tokens = 2  # no refresh token even then: stop, store nothing new
    before = world.bundle(row.id)
    page = connect(world, "gmail")
    assert page.status_code == 400 and "without a refresh token" in page.text
    assert world.bundle(row.id) == before


@pytest.mark.parametrize("provider", ["slack", "gmail", "meta_ads"])
def test_disconnect_revokes_destroys_and_disables(
    world: ConnectWorld, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account = seed_account(world, provider)
    assert connect(world, provider).status_code == 200
    [row] = world.integrations_of(provider)
    token = world.bundle(row.id)["access_token"]
    args = ["--json", "integration", "disconnect", "--integration", str(row.id), "--as"]

    assert main([*args, world.users["member"]]) == 1
    assert "may not disconnect" in capsys.readouterr().err
    assert main([*args, world.users["admin"]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["revocation"] == "revoked" and out["credential_destroyed"] is True

    sb = world.sandbox
    if provider == "slack":
        assert sb.slack.consent.revoked == [account]
        answer = httpx.post(
            sb.env["AOS_SLACK_API_URL"] + "auth.test", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert answer == {"ok": False, "error": "token_revoked"}
    elif provider == "gmail":
        assert sb.gmail.oauth.revoked == [account]
        answer = httpx.get(
            sb.env["AOS_GMAIL_API_URL"] + "gmail/v1/users/me/labels",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 401
    else:
        meta = sb.emulators["meta_ads"]
        assert meta.oauth.revoked == [account]
        answer = httpx.get(
            sb.env["AOS_META_GRAPH_URL"] + "/v26.0/me", params={"access_token": token}
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 190
    [after] = world.integrations_of(provider)
    assert after.status == "disabled" and "disconnected by admin@acme.test" in after.status_reason
    assert count(world, schema.integration_credential, row.id) == 0
    [audit] = world.audits("integration.disconnect")
    assert audit.detail["revocation"] == "revoked" and token not in json.dumps(audit.detail)


def test_a_later_sync_is_refused_cleanly_and_purge_deletes_the_rows(
    world: ConnectWorld, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from tasks.run import IntegrationUnavailable

    seed_account(world, "slack")
    assert connect(world, "slack").status_code == 200
    [row] = world.integrations_of("slack")
    assert world.sync("slack", row.id)["status"] == "succeeded"
    assert count(world, schema.slack_messages, row.id) > 0
    args = ["integration", "disconnect", "--integration", str(row.id), "--as"]
    assert main([*args, world.users["owner"], "--purge"]) == 0
    capsys.readouterr()
    for table in (schema.slack_messages, schema.slack_channels, schema.sync_state):
        assert count(world, table, row.id) == 0
    assert count(world, schema.sync_run, row.id) == 1  # the ledger is history: kept
    with pytest.raises(IntegrationUnavailable, match="is disabled .*reconnect it before syncing"):
        world.sync("slack", row.id)


def test_the_command_line_connects_through_a_loopback_redirect(world: ConnectWorld) -> None:
    from cli.connect import connect_via_loopback

    team = seed_account(world, "slack")
    seen: list[str] = []
    pages: list[httpx.Response] = []

    def open_in_browser(url: str) -> None:  # the person clicking the printed URL
        seen.append(url)
        thread = threading.Thread(
            target=lambda: pages.append(httpx.get(url, follow_redirects=True))
        )
        thread.start()

    result = connect_via_loopback(
        "slack",
        agency_id=world.agency_id,
        principal=world.users["admin"],
        on_url=open_in_browser,
        timeout=30,
    )
    assert seen and seen[0].startswith(world.sandbox.env["AOS_SLACK_AUTHORIZE_URL"])
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in seen[0]
    assert result["account"] and result["created"] is True
    [row] = world.integrations_of("slack")
    assert row.external_account_id == team and row.id == result["integration_id"]


def test_the_loopback_ignores_answers_that_are_not_its_own(world: ConnectWorld) -> None:
    """Any local process can reach the loopback port. Before the browser answers, another one
    sends callbacks with no state, a made-up state and an ``access_denied``: each gets an error
    page, the command keeps waiting, and the real answer still connects the account."""
    from cli.connect import connect_via_loopback

    team = seed_account(world, "slack")
    forged: list[httpx.Response] = []

    def attacker_then_browser(url: str) -> None:
        callback = httpx.URL(url).params["redirect_uri"]
        for params in (
            {},
            {"state": "a-guess", "code": "x"},
            {"state": "a-guess.c2ln", "error": "access_denied"},
            {"error": "access_denied"},
        ):
            forged.append(httpx.get(callback, params=params))
        threading.Thread(target=lambda: httpx.get(url, follow_redirects=True)).start()

    result = connect_via_loopback(
        "slack",
        agency_id=world.agency_id,
        principal=world.users["admin"],
        on_url=attacker_then_browser,
        timeout=30,
    )
    assert [r.status_code for r in forged] == [400] * 4
    assert all("does not belong to the sign-in" in r.text for r in forged)
    assert result["created"] is True
    [row] = world.integrations_of("slack")
    assert row.external_account_id == team and row.id == result["integration_id"]
