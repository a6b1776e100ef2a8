"""Run grants: signed, short-lived proof of who asked for a manual run (no database needed;
single use against PostgreSQL is tests/security/test_run_grants.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from db.grants import (
    ENV_KEY,
    InvalidRunGrant,
    RunGrant,
    mint_run_grant,
    read_run_grant,
    resolve_principal,
    resolve_run,
    signing_key_from_env,
    verify_run_grant,
)
from db.rbac import Action, PermissionDenied, Principal

KEY = b"k" * 32
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(key: bytes, payload: object) -> str:
    """A token signed correctly over an arbitrary payload (to reach the checks after HMAC)."""
    body = _b64(json.dumps(payload).encode())
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def test_round_trip_gives_a_verified_principal() -> None:
    token = mint_run_grant(KEY, "Bob@Acme.test", 12, "backfill", now=T0)
    principal = verify_run_grant(
        KEY, token, integration_id=12, action="backfill", now=T0 + timedelta(minutes=14)
    )
    assert principal == Principal("user", "bob@acme.test", None, verified=True)
    assert "=" not in token and token.count(".") == 1


def test_payload_is_readable_and_bounded() -> None:
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", ttl=timedelta(minutes=5), now=T0)
    body = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert body["sub"] == "bob@acme.test" and body["int"] == 12 and body["act"] == "sync"
    assert body["exp"] - body["iat"] == 300
    assert body["v"] == 2 and len(body["n"]) >= 22  # 128 random bits, URL-safe base64


def test_every_grant_has_its_own_nonce() -> None:
    """Single use is per grant: two grants with the same claims in the same second differ."""
    one, two = (mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0) for _ in range(2))
    assert one != two
    read = [read_run_grant(KEY, t, integration_id=12, action="sync", now=T0) for t in (one, two)]
    assert read[0].nonce != read[1].nonce
    assert (read[0].version, read[0].action, read[0].integration_id) == (2, Action.SYNC, 12)
    assert read[0].expires_at == T0 + timedelta(minutes=15)


def test_version_1_grants_verify_with_a_nonce_derived_from_the_payload() -> None:
    """Grants minted before nonces keep working through a rollout, and are single use too:
    the same token always yields the same nonce, a different token a different one."""
    claims = {"v": 1, "sub": "bob@acme.test", "int": 12, "act": "sync", "iat": 0}
    old = _forge(KEY, {**claims, "exp": int((T0 + timedelta(minutes=5)).timestamp())})
    other = _forge(KEY, {**claims, "exp": int((T0 + timedelta(minutes=6)).timestamp())})
    first, again, different = (
        read_run_grant(KEY, t, integration_id=12, action="sync", now=T0) for t in (old, old, other)
    )
    assert first.version == 1 and first.nonce.startswith("v1-")
    assert first.nonce == again.nonce != different.nonce
    assert first.principal == Principal("user", "bob@acme.test", None, verified=True)


@pytest.mark.parametrize(
    ("version", "nonce", "match"),
    [
        (2, None, "no usable nonce"),
        (2, "short", "no usable nonce"),
        (2, "not/url+safe" * 3, "no usable nonce"),
        (3, "n" * 22, "unsupported version 3"),
        (True, "n" * 22, "unsupported version True"),
        ("2", "n" * 22, "unsupported version '2'"),
    ],
)
def test_version_and_nonce_are_checked(version: object, nonce: str | None, match: str) -> None:
    payload = {"v": version, "sub": "bob@acme.test", "int": 12, "act": "sync", "exp": 2**33}
    if nonce is not None:
        payload["n"] = nonce
    with pytest.raises(InvalidRunGrant, match=match):
        verify_run_grant(KEY, _forge(KEY, payload), integration_id=12, action="sync", now=T0)


def test_refusals_are_permission_denied_and_survive_pickling() -> None:
    """Flows' callers catch one type for every refusal; Prefect may pickle a failed task's
    exception, which must come back with its fields (a plain Exception reduce would not)."""
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0)
    with pytest.raises(PermissionDenied) as caught:
        verify_run_grant(KEY, token, integration_id=13, action="sync", now=T0)
    refusal = caught.value
    assert isinstance(refusal, InvalidRunGrant)
    assert str(refusal).startswith("permission denied: invalid run grant: wrong integration")
    assert refusal.principal == Principal("user", "bob@acme.test", None, verified=True)
    copy = pickle.loads(pickle.dumps(refusal))
    assert type(copy) is InvalidRunGrant and str(copy) == str(refusal)
    assert (copy.reason, copy.principal, copy.action, copy.integration_id) == (
        refusal.reason,
        refusal.principal,
        Action.SYNC,
        13,
    )
    denied = PermissionDenied(Principal.user("a@b.test"), Action.SYNC, 1, "x", "permission denied")
    assert pickle.loads(pickle.dumps(denied)).missing == "x"


@pytest.mark.parametrize("tamper", ["payload", "signature", "key"])
def test_tampering_is_a_bad_signature(tamper: str) -> None:
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0)
    body, sig = token.split(".")
    key = KEY
    if tamper == "payload":
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["sub"] = "owner@acme.test"
        token = _b64(json.dumps(claims).encode()) + "." + sig
    elif tamper == "signature":
        token = body + "." + _b64(b"\0" * 32)
    else:
        key = b"x" * 32
    with pytest.raises(InvalidRunGrant, match="bad signature"):
        verify_run_grant(key, token, integration_id=12, action="sync", now=T0)


def test_expired() -> None:
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0)
    with pytest.raises(InvalidRunGrant, match="expired"):
        verify_run_grant(
            KEY, token, integration_id=12, action="sync", now=T0 + timedelta(minutes=15)
        )


def test_wrong_integration_and_wrong_action() -> None:
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0)
    with pytest.raises(
        InvalidRunGrant, match="wrong integration \\(granted for 12, this run is for 13"
    ):
        verify_run_grant(KEY, token, integration_id=13, action="sync", now=T0)
    with pytest.raises(InvalidRunGrant, match="wrong action \\(granted for 'sync'"):
        verify_run_grant(KEY, token, integration_id=12, action="backfill", now=T0)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", ".sig", "body."])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidRunGrant, match="malformed token"):
        verify_run_grant(KEY, token, integration_id=12, action="sync", now=T0)


@pytest.mark.parametrize(
    "payload",
    [
        "not an object",
        {"v": 1, "int": 12, "act": "sync", "exp": 0},
        {"v": 1, "sub": "nobody", "int": 12, "act": "sync", "exp": 9_999_999_999},
    ],
)
def test_signed_but_malformed_payloads(payload: object) -> None:
    with pytest.raises(InvalidRunGrant, match="malformed payload"):
        verify_run_grant(KEY, _forge(KEY, payload), integration_id=12, action="sync", now=T0)


def test_keys_and_clocks_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        mint_run_grant(b"short", "bob@acme.test", 1, "sync")
    with pytest.raises(ValueError, match="timezone-aware"):
        mint_run_grant(KEY, "bob@acme.test", 1, "sync", now=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="not a principal"):
        mint_run_grant(KEY, "bob", 1, "sync")


def test_signing_key_from_env() -> None:
    raw = bytes(range(200, 232))
    assert signing_key_from_env({}) is None
    assert signing_key_from_env({ENV_KEY: "  "}) is None
    assert signing_key_from_env({ENV_KEY: base64.b64encode(raw).decode()}) == raw
    assert signing_key_from_env({ENV_KEY: _b64(raw)}) == raw
    with pytest.raises(ValueError, match="not base64"):
        signing_key_from_env({ENV_KEY: "not base64!!"})
    with pytest.raises(ValueError, match="at least 16 bytes"):
        signing_key_from_env({ENV_KEY: base64.b64encode(b"tiny").decode()})


# --- resolve_principal ------------------------------------------------------------------------


def _resolve(
    requested_by: str | None, grant: str | None, key: bytes | None, action: str = "sync"
) -> Principal:
    return resolve_principal(requested_by, grant, integration_id=12, action=action, key=key)


def test_with_a_key_a_bare_requested_by_is_refused() -> None:
    with pytest.raises(InvalidRunGrant, match="'bob@acme.test' alone is not proof") as caught:
        _resolve("bob@acme.test", None, KEY)
    assert "mint a run grant" in str(caught.value)


def test_with_a_key_a_valid_grant_is_accepted() -> None:
    grant = mint_run_grant(KEY, "bob@acme.test", 12, "backfill")
    expected = Principal("user", "bob@acme.test", None, verified=True)
    assert _resolve(None, grant, KEY, "backfill") == expected
    resolved = resolve_run(None, grant, integration_id=12, action="backfill", key=KEY)
    assert resolved.principal == expected and resolved.grant is not None  # to be consumed
    assert resolve_run("scheduler:7", None, integration_id=12, action="sync", key=KEY).grant is None
    assert _resolve("BOB@acme.test", grant, KEY, "backfill") == expected
    with pytest.raises(InvalidRunGrant, match="does not match the grant's principal"):
        _resolve("eve@acme.test", grant, KEY, "backfill")
    with pytest.raises(InvalidRunGrant, match="wrong action"):
        _resolve(None, grant, KEY, "sync")


def test_without_a_key_requested_by_is_accepted_unverified() -> None:
    assert _resolve("bob@acme.test", None, None) == Principal("user", "bob@acme.test", None)
    with pytest.raises(InvalidRunGrant, match="cannot be checked"):
        _resolve("bob@acme.test", "some.token", None)


@pytest.mark.parametrize("key", [KEY, None])
def test_scheduler_is_accepted_for_sync_only(key: bytes | None) -> None:
    assert _resolve("scheduler:7", None, key) == Principal.scheduler(7)
    with pytest.raises(InvalidRunGrant, match="scheduler principal may only run 'sync'"):
        _resolve("scheduler:7", None, key, "backfill")


@pytest.mark.parametrize("requested_by", [None, "", "bob"])
def test_no_usable_principal(requested_by: str | None) -> None:
    with pytest.raises(InvalidRunGrant, match="no principal|not a principal"):
        _resolve(requested_by, None, None)


def test_spend_is_called_before_expiry_integration_and_action() -> None:
    """A signed grant reaches ``spend`` whatever is wrong with it afterwards; a bad signature
    does not."""
    token = mint_run_grant(KEY, "bob@acme.test", 12, "sync", now=T0)
    for integration_id, action, now in (
        (13, "sync", T0),
        (12, "backfill", T0),
        (12, "sync", T0 + timedelta(hours=1)),
    ):
        spent: list[RunGrant] = []
        with pytest.raises(InvalidRunGrant):
            read_run_grant(
                KEY,
                token,
                integration_id=integration_id,
                action=action,
                now=now,
                spend=spent.append,
            )
        [grant] = spent
        assert (grant.integration_id, grant.action) == (12, Action.SYNC)
    spent = []
    with pytest.raises(InvalidRunGrant, match="bad signature"):
        read_run_grant(b"x" * 32, token, integration_id=12, action="sync", spend=spent.append)
    assert spent == []
