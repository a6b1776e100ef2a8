"""The emulators' consent side holds the provider's own guarantees, so the connect flow's tests
mean something: a stolen Google code is useless without the PKCE verifier, a code works once
and only with its redirect URI, and a revoked token stops working."""

from __future__ import annotations

import html
import re

import httpx

from connectors.oauth.base import pkce_pair
from sandbox import Sandbox

REDIRECT = "http://127.0.0.1:9/callback"


def _code(sb: Sandbox, challenge: str) -> str:
    google = sb.gmail.oauth
    answer = httpx.get(
        sb.env["AOS_GOOGLE_AUTHORIZE_URL"],
        params={
            "client_id": google.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid email https://www.googleapis.com/auth/gmail.readonly",
            "state": "s1",
            "access_type": "offline",
            "prompt": "consent",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["location"])
    assert location.params["state"] == "s1"
    return location.params["code"]


def _exchange(sb: Sandbox, code: str, verifier: str, redirect: str = REDIRECT) -> httpx.Response:
    google = sb.gmail.oauth
    return httpx.post(
        sb.env["AOS_GOOGLE_TOKEN_URL"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
            "code_verifier": verifier,
        },
    )


def test_google_codes_need_their_verifier_their_redirect_and_work_once() -> None:
    with Sandbox(providers=("gmail",), seed=5) as sb:
        sb.gmail.add_mailbox("ops@northwind.test", messages=1)
        sb.gmail.oauth.consent.user = "ops@northwind.test"
        verifier, challenge = pkce_pair()

        stolen = _code(sb, challenge)
        refused = _exchange(sb, stolen, "an-attackers-guess-" + "x" * 40)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

        code = _code(sb, challenge)
        assert _exchange(sb, code, verifier, "http://127.0.0.1:9/other").status_code == 400
        code = _code(sb, challenge)
        granted = _exchange(sb, code, verifier)
        assert granted.status_code == 200 and granted.json()["refresh_token"]
        assert _exchange(sb, code, verifier).json()["error"] == "invalid_grant"  # once only

        token = granted.json()["access_token"]
        who = httpx.get(
            sb.env["AOS_GOOGLE_USERINFO_URL"], headers={"Authorization": f"Bearer {token}"}
        )
        assert who.json()["email"] == "ops@northwind.test"
        assert httpx.post(sb.env["AOS_GOOGLE_REVOKE_URL"], data={"token": token}).status_code == 200
        again = httpx.get(
            sb.env["AOS_GOOGLE_USERINFO_URL"], headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 401
        assert sb.gmail.oauth.revoked == ["ops@northwind.test"]


def test_an_unregistered_redirect_never_receives_a_code() -> None:
    with Sandbox(providers=("slack",), seed=5) as sb:
        ws = sb.slack.add_workspace(users=2, channels=1)
        sb.slack.consent.knobs.user = ws.team_id
        answer = httpx.get(
            sb.env["AOS_SLACK_AUTHORIZE_URL"],
            params={
                "client_id": sb.slack.app.client_id,
                "scope": "channels:read",
                "redirect_uri": "https://evil.example/cb",
                "state": "s",
            },
        )
        assert answer.status_code == 400 and "location" not in answer.headers


def _choose(page: httpx.Response, account: str | None) -> httpx.Response:
    """A person on the emulated consent screen: "Allow as ``account``" (``None``: "Deny")."""
    fields = dict(
        (html.unescape(k), html.unescape(v))
        for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)
    )
    fields.update({"sandbox_account": account} if account else {"sandbox_deny": "1"})
    # the form's action is empty: the same address, its query replaced by the form's fields
    return httpx.get(str(page.url.copy_with(query=None)), params=fields)


def test_with_no_test_user_each_screen_asks_the_person_and_can_grant() -> None:
    """A sandbox a person started has no knobs set: the screen lists the emulator's accounts
    and grants as the one clicked, or answers ``access_denied`` to "Deny"."""
    with Sandbox(providers=("slack", "gmail", "meta_ads"), seed=5) as sb:
        ws = sb.slack.add_workspace(name="Northwind <&>", users=2, channels=1)
        sb.gmail.add_mailbox("ops@northwind.test", messages=1)
        business = sb.emulators["meta_ads"].add_business("Northwind Media", campaigns=1, days=2)
        screens = {
            "slack": (
                sb.env["AOS_SLACK_AUTHORIZE_URL"],
                {"client_id": sb.env["AOS_SLACK_CLIENT_ID"], "scope": "channels:read"},
                ws.team_id,
                "Northwind &lt;&amp;&gt;",
            ),
            "gmail": (
                sb.env["AOS_GOOGLE_AUTHORIZE_URL"],
                {
                    "client_id": sb.env["AOS_GOOGLE_CLIENT_ID"],
                    "scope": "openid email",
                    "response_type": "code",
                },
                "ops@northwind.test",
                "ops@northwind.test",
            ),
            "meta": (
                sb.env["AOS_META_DIALOG_URL"],
                {"client_id": sb.env["AOS_META_CLIENT_ID"], "scope": "ads_read"},
                business.id,
                "Northwind Media",
            ),
        }
        for name, (url, params, account, label) in screens.items():
            params = {**params, "redirect_uri": REDIRECT, "state": "s-" + name}
            page = httpx.get(url, params=params)
            assert page.status_code == 200, (name, page.text)
            assert f"Allow as {label}" in page.text, name
            granted = _choose(page, account)
            assert granted.status_code == 302, (name, granted.text)
            back = httpx.URL(granted.headers["location"]).params
            assert back["state"] == "s-" + name and back["code"], name
            denied = httpx.URL(_choose(page, None).headers["location"]).params
            assert denied["error"] == "access_denied" and "code" not in denied, name


def test_meta_login_for_business_grants_a_configuration_whole() -> None:
    """Facebook Login for Business: ``config_id`` names a configuration of the app, which
    replaces ``scope`` and is granted whole or not at all ("All permissions that your app asks
    for during login must be granted by your app user or your app won't be granted any
    permissions"). A configuration of system-user tokens needs ``response_type=code`` with
    ``override_default_response_type=true`` and gives a business integration system user's
    token that never expires, which ``fb_exchange_token`` (for user tokens) refuses."""
    with Sandbox(providers=("meta_ads",), seed=5) as sb:
        meta = sb.emulators["meta_ads"]
        business = meta.add_business("Northwind Media", campaigns=1, days=2)
        meta.oauth.knobs.user = business.id
        config = meta.oauth.add_configuration("SYSTEM_USER", ("ads_read", "business_management"))
        ask = {
            "client_id": meta.app_id,
            "redirect_uri": REDIRECT,
            "state": "s",
            "response_type": "code",
            "override_default_response_type": "true",
            "config_id": config.config_id,
            "scope": "ads_management",  # not what a configuration grants
        }
        dialog = sb.env["AOS_META_DIALOG_URL"]
        for wrong in ({"config_id": "123"}, {"override_default_response_type": "false"}):
            page = httpx.get(dialog, params={**ask, **wrong})
            assert page.status_code == 400 and "location" not in page.headers, wrong
        meta.oauth.knobs.withhold = {"ads_read"}
        denied = httpx.URL(httpx.get(dialog, params=ask).headers["location"]).params
        assert denied["error"] == "access_denied" and "code" not in denied
        meta.oauth.knobs.withhold = set()
        code = httpx.URL(httpx.get(dialog, params=ask).headers["location"]).params["code"]
        graph = sb.env["AOS_META_GRAPH_URL"] + "/v26.0/"
        token = httpx.get(
            graph + "oauth/access_token",
            params={
                "client_id": meta.app_id,
                "client_secret": meta.app_secret,
                "redirect_uri": REDIRECT,
                "code": code,
            },
        ).json()
        assert "expires_in" not in token
        app_token = f"{meta.app_id}|{meta.app_secret}"
        data = httpx.get(
            graph + "debug_token",
            params={"input_token": token["access_token"], "access_token": app_token},
        ).json()["data"]
        assert data["type"] == "SYSTEM_USER" and data["expires_at"] == 0
        assert sorted(data["scopes"]) == ["ads_read", "business_management"]
        exchanged = httpx.get(
            graph + "oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": meta.app_id,
                "client_secret": meta.app_secret,
                "fb_exchange_token": token["access_token"],
            },
        )
        assert exchanged.status_code == 400 and exchanged.json()["error"]["code"] == 100
