"""Every refusal of the connect flow performs the attack or the failure for real: refused with a
clear page, audited, nothing stored."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from db import schema, tenancy
from db.connect import save_state
from db.connect_tokens import ConnectClaims, sign_state
from tests.connect.conftest import GRANT_KEY, ConnectWorld, state_of
from tests.connect.test_connect_flows import seed_account


def refused(world: ConnectWorld, reason: str) -> list[object]:
    return [a for a in world.audits("connect.refused") if a.detail["reason"] == reason]


def nothing_stored(world: ConnectWorld) -> None:
    with world.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.integration)).scalar() == 0
        )
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(schema.integration_credential)
            ).scalar()
            == 0
        )


def test_deny_ends_cleanly(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    world.sandbox.slack.consent.knobs.deny = True
    page = world.open_link(world.browser(), world.link("slack"))
    assert page.status_code == 400
    assert "access was not granted (access_denied); nothing was connected" in page.text
    nothing_stored(world)
    assert refused(world, "consent_denied")


def test_a_partial_google_grant_stores_nothing_and_names_the_missing_scope(
    world: ConnectWorld,
) -> None:
    email = seed_account(world, "gmail")
    # the seeded mailbox had granted the scope before: remove that grant, or Google's
    # include_granted_scopes would rightly add it back to the new one
    world.sandbox.gmail.mailbox(email).revoke_refresh_token()
    world.sandbox.gmail.oauth.consent.withhold = {"https://www.googleapis.com/auth/gmail.readonly"}
    page = world.open_link(world.browser(), world.link("gmail"))
    assert page.status_code == 400
    assert "missing the permission(s) https://www.googleapis.com/auth/gmail.readonly" in page.text
    nothing_stored(world)
    [row] = refused(world, "scopes_missing")
    assert "gmail.readonly" in row.detail["detail"]  # type: ignore[attr-defined]


def test_a_partial_meta_grant_is_refused_too(world: ConnectWorld) -> None:
    seed_account(world, "meta_ads")
    world.sandbox.emulators["meta_ads"].oauth.knobs.withhold = {"ads_read"}
    page = world.open_link(world.browser(), world.link("meta_ads"))
    assert page.status_code == 400 and "missing the permission(s) ads_read" in page.text
    nothing_stored(world)


def test_a_forged_state_is_refused(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    callback = world.callback_url(browser, world.to_provider(browser, "slack").headers["location"])
    state = state_of(callback)
    body, _, signature = state.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["ag"] = 999  # point it at another agency, keep the old signature
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    page = browser.get(callback.replace(state, f"{forged_body}.{signature}"))
    assert page.status_code == 400 and "bad signature" in page.text
    other_key = sign_state(
        b"another-deployments-key-000000000",
        ConnectClaims(
            "slack",
            world.agency_id,
            None,
            None,
            world.users["owner"],
            "n" * 32,
            datetime.now(UTC) + timedelta(minutes=5),
        ),
    )
    page = browser.get(callback.replace(state, other_key))
    assert page.status_code == 400 and "bad signature" in page.text
    nothing_stored(world)
    assert len(refused(world, "state_refused")) == 2


def test_an_expired_state_is_refused(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    callback = world.callback_url(browser, world.to_provider(browser, "slack").headers["location"])
    cookie = next(iter(browser.cookies.jar)).value
    old = ConnectClaims(
        "slack",
        world.agency_id,
        None,
        None,
        world.users["owner"],
        "expired-nonce-0123456789abcdef",
        datetime.now(UTC) - timedelta(seconds=1),
    )
    with world.engine.begin() as conn:
        save_state(conn, old, browser=cookie, redirect_uri="x", code_verifier=None)
    page = browser.get(callback.replace(state_of(callback), sign_state(GRANT_KEY, old)))
    assert page.status_code == 400 and "expired at" in page.text
    nothing_stored(world)
    assert refused(world, "state_refused")


def test_a_replayed_state_is_refused(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    callback = world.callback_url(browser, world.to_provider(browser, "slack").headers["location"])
    assert browser.get(callback).status_code == 200
    [row] = world.integrations_of("slack")
    before = world.bundle(row.id)
    again = browser.get(callback)
    assert again.status_code == 400 and "already used" in again.text
    assert world.bundle(row.id) == before and len(world.integrations_of("slack")) == 1
    assert refused(world, "replayed")


def test_a_state_from_another_browser_is_refused_and_stays_good_for_its_own(
    world: ConnectWorld,
) -> None:
    seed_account(world, "slack")
    victim = world.browser()
    callback = world.callback_url(victim, world.to_provider(victim, "slack").headers["location"])
    attacker = world.browser()
    page = attacker.get(callback)
    assert page.status_code == 400 and "started in another browser" in page.text
    nothing_stored(world)
    assert refused(world, "other_browser")
    assert victim.get(callback).status_code == 200  # not spent by the attempt


def test_a_state_for_another_provider_is_refused(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    callback = world.callback_url(browser, world.to_provider(browser, "slack").headers["location"])
    page = browser.get(callback.replace("/connect/slack/", "/connect/gmail/"))
    assert page.status_code == 400 and "started for another provider" in page.text
    nothing_stored(world)
    [audit] = refused(world, "state_refused")
    assert audit.detail["provider"] == "gmail"  # type: ignore[attr-defined]


def test_a_member_cannot_connect(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    screens = world.sandbox.slack.consent.knobs.screens
    page = world.open_link(world.browser(), world.link("slack", "member"))
    assert page.status_code == 403
    assert "member@acme.test may not connect" in page.text and "role admin or higher" in page.text
    assert world.sandbox.slack.consent.knobs.screens == screens  # never sent to the provider
    assert world.states() == 0
    nothing_stored(world)
    denied = world.audits("authorize.denied")
    assert denied and denied[-1].principal == "member@acme.test"


def test_rbac_is_checked_again_at_the_callback(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    callback = world.callback_url(
        browser, world.to_provider(browser, "slack", who="admin").headers["location"]
    )
    with world.engine.begin() as conn:
        admin = tenancy.find_user(conn, world.users["admin"])
        tenancy.set_role(conn, admin.id, "member")
    page = browser.get(callback)
    assert page.status_code == 403 and "may not connect" in page.text
    nothing_stored(world)


def test_a_tampered_or_missing_link_is_refused(world: ConnectWorld) -> None:
    link = world.link("slack")
    page = world.browser().get(link[:-3] + "AAA")
    assert page.status_code == 400 and "not valid: bad signature" in page.text
    page = world.browser().get(link.replace("/connect/slack/", "/connect/gmail/"))
    assert page.status_code == 400 and "is for slack" in page.text
    assert world.states() == 0
    assert httpx.URL(link).params["request"]  # a link carries no provider secret
    assert "client_secret" not in link
