"""The credential vault against a real PostgreSQL: encryption, key handling, locked refresh."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import stat
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import sqlalchemy as sa

from db import schema
from db.vault import CredentialMissing, Keyring, TokenBundle, Vault, VaultError

KEY_A = Keyring.generate_key("a")
KEY_B = Keyring.generate_key("b")
SECRETS = ("xoxb-SECRET-access", "xoxe-SECRET-refresh", "SECRET-client")
BUNDLE = {
    "access_token": SECRETS[0],
    "refresh_token": SECRETS[1],
    "client_id": "client-123",
    "client_secret": SECRETS[2],
}
cred = schema.integration_credential


def _b64(entry: str) -> str:
    return entry.split(":", 1)[1]


def _assert_no_secrets(text: str) -> None:
    for secret in (*SECRETS, _b64(KEY_A), _b64(KEY_B)):
        assert secret not in text


def _integrations(engine: sa.Engine) -> tuple[int, int]:
    with engine.begin() as conn:
        agency_id = conn.execute(
            sa.insert(schema.agency)
            .values(name=f"agency-{uuid.uuid4().hex[:8]}")
            .returning(schema.agency.c.id)
        ).scalar_one()
        first, second = (
            conn.execute(
                sa.insert(schema.integration)
                .values(agency_id=agency_id, provider="slack", name=f"slack-{n}")
                .returning(schema.integration.c.id)
            ).scalar_one()
            for n in (1, 2)
        )
    return first, second


@pytest.fixture
def ids(engine: sa.Engine) -> tuple[int, int]:
    return _integrations(engine)


def _put(
    engine: sa.Engine,
    vault: Vault,
    integration_id: int,
    expires_in: timedelta,
    bundle: dict[str, Any] = BUNDLE,
) -> None:
    with engine.begin() as conn:
        vault.put(conn, integration_id, bundle, datetime.now(UTC) + expires_in)


def _row(engine: sa.Engine, integration_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(cred).where(cred.c.integration_id == integration_id)).one()


def _audits(engine: sa.Engine, integration_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(schema.audit_event)
                .where(schema.audit_event.c.integration_id == integration_id)
                .order_by(schema.audit_event.c.id)
            ).all()
        )


# --- encryption ------------------------------------------------------------------------------
def test_round_trip_and_version(engine: sa.Engine, ids: tuple[int, int]) -> None:
    vault = Vault(Keyring.parse(KEY_A))
    expires = datetime.now(UTC) + timedelta(hours=1)
    with engine.begin() as conn:
        assert vault.put(conn, ids[0], BUNDLE, expires) == 1
        got = vault.get(conn, ids[0])
        assert vault.put(conn, ids[0], {**BUNDLE, "access_token": "new"}, expires) == 2
        assert vault.get(conn, ids[0])["access_token"] == "new"
    assert {k: got[k] for k in BUNDLE} == BUNDLE
    assert got.expires_at == expires and got["expires_at"] == expires.isoformat()
    assert _row(engine, ids[0]).key_id == "a"


def test_missing_credential_names_the_integration(engine: sa.Engine, ids: tuple[int, int]) -> None:
    with engine.connect() as conn, pytest.raises(CredentialMissing, match=str(ids[1])):
        Vault(Keyring.parse(KEY_A)).get(conn, ids[1])


def test_table_holds_no_plaintext(engine: sa.Engine, ids: tuple[int, int]) -> None:
    _put(engine, Vault(Keyring.parse(KEY_A)), ids[0], timedelta(hours=1))
    row = _row(engine, ids[0])
    stored = bytes(row.nonce) + bytes(row.ciphertext)
    assert len(row.nonce) == 12
    for plain in (*SECRETS, "access_token", "client-123"):
        assert plain.encode() not in stored


def test_wrong_key_under_same_kid_fails_cleanly(engine: sa.Engine, ids: tuple[int, int]) -> None:
    _put(engine, Vault(Keyring.parse(KEY_A)), ids[0], timedelta(hours=1))
    impostor = Vault(Keyring.parse("a:" + _b64(KEY_B)))
    with engine.connect() as conn, pytest.raises(VaultError) as err:
        impostor.get(conn, ids[0])
    assert str(ids[0]) in str(err.value) and "'a'" in str(err.value)
    _assert_no_secrets(repr(err.value) + "".join(traceback.format_exception(err.value)))


def test_ciphertext_moved_to_another_integration_fails(
    engine: sa.Engine, ids: tuple[int, int]
) -> None:
    vault = Vault(Keyring.parse(KEY_A))
    _put(engine, vault, ids[0], timedelta(hours=1))
    src = _row(engine, ids[0])
    with engine.begin() as conn:
        conn.execute(
            sa.insert(cred).values(
                integration_id=ids[1],
                agency_id=src.agency_id,
                key_id=src.key_id,
                nonce=src.nonce,
                ciphertext=src.ciphertext,
                expires_at=src.expires_at,
            )
        )
        with pytest.raises(VaultError, match=f"integration {ids[1]} ") as err:
            vault.get(conn, ids[1])
        assert vault.get(conn, ids[0])["access_token"] == SECRETS[0]
    _assert_no_secrets(str(err.value))


def test_unknown_key_id_is_named(engine: sa.Engine, ids: tuple[int, int]) -> None:
    _put(engine, Vault(Keyring.parse(KEY_A)), ids[0], timedelta(hours=1))
    with engine.connect() as conn, pytest.raises(VaultError, match="unknown key id 'a'") as err:
        Vault(Keyring.parse(KEY_B)).get(conn, ids[0])
    _assert_no_secrets(str(err.value))


def test_rotation_reencrypts_under_active_key(fresh_engine: sa.Engine) -> None:
    first, second = _integrations(fresh_engine)
    third, _ = _integrations(fresh_engine)
    old = Vault(Keyring.parse(KEY_A))
    for integration_id in (first, second, third):
        _put(fresh_engine, old, integration_id, timedelta(hours=1))
    before = _row(fresh_engine, first)

    assert Vault(Keyring.parse(f"{KEY_B},{KEY_A}")).rotate(fresh_engine, batch_size=2) == 3

    with fresh_engine.connect() as conn:
        assert set(conn.execute(sa.select(cred.c.key_id)).scalars()) == {"b"}
        only_b = Vault(Keyring.parse(KEY_B))
        for integration_id in (first, second, third):
            assert only_b.get(conn, integration_id)["refresh_token"] == SECRETS[1]
    after = _row(fresh_engine, first)
    assert after.ciphertext != before.ciphertext and after.expires_at == before.expires_at
    assert Vault(Keyring.parse(f"{KEY_B},{KEY_A}")).rotate(fresh_engine) == 0


# --- no leaks --------------------------------------------------------------------------------
def test_token_bundle_masks_values(caplog: pytest.LogCaptureFixture) -> None:
    bundle = TokenBundle(BUNDLE, datetime(2030, 1, 1, tzinfo=UTC))
    caplog.set_level(logging.INFO)
    logging.getLogger("test").info("bundle %s %r", bundle, bundle)
    for text in (repr(bundle), str(bundle), f"{bundle}", caplog.text, repr([bundle])):
        _assert_no_secrets(text)
    assert repr(bundle) == (
        "TokenBundle(access_token='****', refresh_token='****', "
        "client_id='****', client_secret='****')"
    )
    assert bundle.get("access_token") == SECRETS[0]
    assert bundle.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        bundle["access_token"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        pickle.dumps(bundle)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("no-colon-here", "entry 1 is not"),
        ("a:not base64!!", "entry 1 .*'a'.* not valid base64"),
        ("a:" + base64.b64encode(b"x" * 16).decode(), "must be 32 bytes"),
        (f"{KEY_A},{KEY_A}", "'a' appears twice"),
        ("bad kid:" + _b64(KEY_A), "invalid key id"),
    ],
    # Fixed ids: the values hold generated keys, which must not name a test (nor differ
    # between the processes of a parallel run).
    ids=["empty", "no-colon", "not-base64", "short-key", "twice", "bad-kid"],
)
def test_keyring_rejects_malformed_values(value: str, message: str) -> None:
    with pytest.raises(VaultError, match=message) as err:
        Keyring.parse(value)
    _assert_no_secrets(str(err.value))


def test_keyring_first_key_is_active_and_env_is_required() -> None:
    ring = Keyring.from_env({"AOS_ENCRYPTION_KEY": f" {KEY_B} , {KEY_A} "})
    assert ring.active_kid == "b"
    _assert_no_secrets(repr(ring))
    with pytest.raises(VaultError, match="AOS_ENCRYPTION_KEY is not set"):
        Keyring.from_env({})


def test_dev_key_file_is_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="db.vault")
    first = Keyring.from_env({}, home=tmp_path)
    key_file = tmp_path / "encryption.keys"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    content = key_file.read_text()
    second = Keyring.from_env({}, home=tmp_path)
    assert key_file.read_text() == content and second.active_kid == first.active_kid
    sealed = first.aead(first.active_kid, 1).encrypt(b"\0" * 12, b"hello", b"ad")
    assert second.aead(second.active_kid, 1).decrypt(b"\0" * 12, sealed, b"ad") == b"hello"
    warnings = [r for r in caplog.records if "development key" in r.getMessage()]
    assert len(warnings) == 1 and _b64(content.strip()) not in caplog.text
    assert list(tmp_path.iterdir()) == [key_file]
    Keyring.from_env({"AOS_ENCRYPTION_KEY": KEY_A}, home=tmp_path / "prod")
    assert not (tmp_path / "prod").exists()


# --- refresh ---------------------------------------------------------------------------------
@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, dict[str, Any]]]:
    """A slow OAuth token endpoint that rotates refresh tokens and rejects a reused one."""
    state: dict[str, Any] = {"calls": 0, "n": 1, "refresh": SECRETS[1]}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            time.sleep(0.3)
            body: dict[str, Any]
            with lock:
                state["calls"] += 1
                if form.get("refresh_token") != [state["refresh"]]:
                    status, body = 400, {"error": "invalid_grant"}
                else:
                    state["n"] += 1
                    state["refresh"] = f"refresh-{state['n']}"
                    status, body = (
                        200,
                        {
                            "access_token": f"access-{state['n']}",
                            "refresh_token": state["refresh"],
                            "expires_in": 3600,
                        },
                    )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", state
    finally:
        server.shutdown()
        server.server_close()


def _post_refresh(url: str, refresh_token: str) -> httpx.Response:
    return httpx.post(
        url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "client-123",
        },
        trust_env=False,
        timeout=10,
    )


def test_concurrent_refresh_calls_token_endpoint_once(
    engine: sa.Engine, ids: tuple[int, int], token_endpoint: tuple[str, dict[str, Any]]
) -> None:
    url, state = token_endpoint
    vault = Vault(Keyring.parse(KEY_A))
    _put(engine, vault, ids[0], -timedelta(minutes=1))

    def refresher(bundle: TokenBundle) -> tuple[dict[str, Any], datetime]:
        response = _post_refresh(url, bundle["refresh_token"])
        response.raise_for_status()
        body = response.json()
        return (
            {"access_token": body["access_token"], "refresh_token": body["refresh_token"]},
            datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
        )

    start = threading.Barrier(2)
    results: list[TokenBundle] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(vault.refresh_if_needed(engine, ids[0], refresher))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)

    assert errors == [] and state["calls"] == 1
    assert [r["access_token"] for r in results] == ["access-2", "access-2"]
    with engine.connect() as conn:
        stored = vault.get(conn, ids[0])
    assert stored["refresh_token"] == "refresh-2" and stored["client_secret"] == SECRETS[2]
    assert _row(engine, ids[0]).version == 2
    # The old refresh token is dead now: a second refresh with it would have broken the integration.
    reused = _post_refresh(url, SECRETS[1])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    audits = _audits(engine, ids[0])
    assert [(a.action, a.outcome) for a in audits] == [("credentials.refresh", "ok")]
    _assert_no_secrets(json.dumps(audits[0].detail))


def test_refresher_failure_changes_nothing_and_is_audited(
    engine: sa.Engine, ids: tuple[int, int]
) -> None:
    vault = Vault(Keyring.parse(KEY_A))
    _put(engine, vault, ids[0], -timedelta(minutes=1))
    before = _row(engine, ids[0])

    def refresher(bundle: TokenBundle) -> tuple[dict[str, Any], datetime]:
        raise RuntimeError(f"token endpoint said no to {bundle['refresh_token']}")

    with pytest.raises(RuntimeError):
        vault.refresh_if_needed(engine, ids[0], refresher)
    assert _row(engine, ids[0]) == before
    audits = _audits(engine, ids[0])
    assert [(a.action, a.outcome, a.detail["error"]) for a in audits] == [
        ("credentials.refresh", "failed", "RuntimeError")
    ]
    _assert_no_secrets(json.dumps(audits[0].detail))


def test_fresh_credential_is_not_refreshed_unless_forced(
    engine: sa.Engine, ids: tuple[int, int]
) -> None:
    vault = Vault(Keyring.parse(KEY_A))
    _put(engine, vault, ids[0], timedelta(hours=1))
    calls: list[TokenBundle] = []

    def refresher(bundle: TokenBundle) -> tuple[dict[str, Any], datetime]:
        calls.append(bundle)
        return {"access_token": "forced"}, datetime.now(UTC) + timedelta(hours=2)

    assert vault.refresh_if_needed(engine, ids[0], refresher)["access_token"] == SECRETS[0]
    assert calls == [] and _audits(engine, ids[0]) == []
    # Inside the margin counts as expiring.
    got = vault.refresh_if_needed(engine, ids[0], refresher, margin=timedelta(hours=2))
    assert len(calls) == 1 and got["access_token"] == "forced"
    got = vault.refresh_if_needed(engine, ids[0], refresher, force=True)
    assert len(calls) == 2 and got["refresh_token"] == SECRETS[1]  # kept when not rotated
    assert _row(engine, ids[0]).version == 3
