"""The emulators' consent side holds the provider's own guarantees, so the connect flow's tests
mean something: a stolen Google code is useless without the PKCE verifier, a code works once
and only with its redirect URI, and a revoked token stops working."""

from __future__ import annotations

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
