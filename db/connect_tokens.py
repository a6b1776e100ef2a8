"""Signed connect links and OAuth states, under the run-grant key (``AOS_RUN_GRANT_KEY``).

Two kinds of token, both ``base64url(payload JSON) "." base64url(HMAC-SHA256)`` like run
grants (:mod:`db.grants`), each signed with its own key derived from the deployment's key, so
neither a run grant, a link nor a state can stand in for another:

* a **connect link** says "principal P may start connecting provider X for agency A (client C,
  or integration I to reconnect) until T"; ``aos-sync connect link`` (or the web app, after
  authenticating the person) mints it, and ``GET /connect/{provider}/start`` believes nothing
  else about who is asking;
* an **OAuth state** is what travels through the provider and back: the same claims, a nonce
  and an expiry of at most :data:`STATE_TTL`. The nonce is the key of the server-side
  ``connect_state`` row that holds the PKCE verifier and makes the state single use.

The signature is checked before any claim is believed; the caller checks expiry and the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "LINK_TTL",
    "STATE_TTL",
    "BadToken",
    "ConnectClaims",
    "mint_link",
    "mint_state",
    "read_link",
    "read_state",
    "sign_state",
]

LINK_TTL = timedelta(minutes=15)
MAX_LINK_TTL = timedelta(minutes=60)
STATE_TTL = timedelta(minutes=10)


class BadToken(ValueError):
    """A link or state that does not verify; ``reason`` is a short phrase for the page and
    the audit row (``claims`` are set when the signature was good, e.g. an expired one)."""

    def __init__(self, reason: str, claims: ConnectClaims | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims


@dataclass(frozen=True)
class ConnectClaims:
    provider: str
    agency_id: int
    client_id: int | None
    integration_id: int | None
    principal: str
    nonce: str
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(key: bytes, purpose: str) -> bytes:
    return hmac.new(key, b"aos-sync connect " + purpose.encode(), hashlib.sha256).digest()


def _mint(key: bytes, purpose: str, claims: ConnectClaims) -> str:
    payload = {
        "typ": purpose,
        "prv": claims.provider,
        "ag": claims.agency_id,
        "cl": claims.client_id,
        "int": claims.integration_id,
        "sub": claims.principal,
        "n": claims.nonce,
        "exp": int(claims.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(_key(key, purpose), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def _read(key: bytes, purpose: str, token: str, now: datetime | None) -> ConnectClaims:
    parts = (token or "").strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise BadToken("malformed")
    body, signature = parts
    wanted = _b64(hmac.new(_key(key, purpose), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(wanted, signature):
        raise BadToken("bad signature (forged, altered, or signed with another key)")
    try:
        data: dict[str, Any] = json.loads(_unb64(body))
        if data.get("typ") != purpose:
            raise ValueError("wrong type")
        claims = ConnectClaims(
            provider=str(data["prv"]),
            agency_id=int(data["ag"]),
            client_id=None if data.get("cl") is None else int(data["cl"]),
            integration_id=None if data.get("int") is None else int(data["int"]),
            principal=str(data["sub"]),
            nonce=str(data["n"]),
            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
        raise BadToken("malformed") from None
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise BadToken(f"expired at {claims.expires_at.isoformat()}", claims)
    return claims


def mint_link(
    key: bytes,
    *,
    provider: str,
    agency_id: int,
    principal: str,
    client_id: int | None = None,
    integration_id: int | None = None,
    ttl: timedelta = LINK_TTL,
    now: datetime | None = None,
) -> str:
    if not timedelta(0) < ttl <= MAX_LINK_TTL:
        raise ValueError(f"a connect link lives at most {MAX_LINK_TTL}")
    issued = now or datetime.now(UTC)
    claims = ConnectClaims(
        provider,
        agency_id,
        client_id,
        integration_id,
        principal,
        secrets.token_urlsafe(12),
        issued + ttl,
    )
    return _mint(key, "link", claims)


def read_link(key: bytes, token: str, now: datetime | None = None) -> ConnectClaims:
    return _read(key, "link", token, now)


def mint_state(link: ConnectClaims, now: datetime | None = None) -> ConnectClaims:
    """New claims for one consent screen: the link's, a fresh nonce, at most 10 minutes."""
    issued = now or datetime.now(UTC)
    return ConnectClaims(
        link.provider,
        link.agency_id,
        link.client_id,
        link.integration_id,
        link.principal,
        secrets.token_urlsafe(24),
        issued + STATE_TTL,
    )


def sign_state(key: bytes, claims: ConnectClaims) -> str:
    return _mint(key, "state", claims)


def read_state(key: bytes, token: str, now: datetime | None = None) -> ConnectClaims:
    return _read(key, "state", token, now)
