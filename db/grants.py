"""Run grants: a provable principal for a manual flow run (DESIGN §5 "Who is asking").

Anyone who can reach the Prefect API can start a run with any ``requested_by``. A run grant is
a short-lived statement "principal P may do action A to integration I until T", signed with
HMAC-SHA256 under a key only the deployment holds (``AOS_RUN_GRANT_KEY``). The CLI or the web
app mints it after authenticating the person; the flow verifies it before :func:`db.rbac.authorize`.

Token: ``base64url(payload JSON) "." base64url(HMAC-SHA256(key, first part))``, no padding.
The signature covers the encoded bytes exactly as sent, so nothing is re-serialised before
checking, and it is checked before any field of the payload is believed.

A grant proves *who* is asking, not that they may: authorize still decides, from the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from db.rbac import Action, Principal

__all__ = [
    "DEFAULT_TTL",
    "ENV_KEY",
    "InvalidRunGrant",
    "mint_run_grant",
    "resolve_principal",
    "signing_key_from_env",
    "verify_run_grant",
]

ENV_KEY = "AOS_RUN_GRANT_KEY"
DEFAULT_TTL = timedelta(minutes=15)
MIN_KEY_BYTES = 16
_VERSION = 1


class InvalidRunGrant(Exception):
    """The run's principal could not be accepted; ``reason`` is a short phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid run grant: {reason}")
        self.reason = reason


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"run grant key must be at least {MIN_KEY_BYTES} bytes")


def _sign(key: bytes, body: str) -> str:
    return _b64encode(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def mint_run_grant(
    key: bytes,
    principal: str,
    integration_id: int,
    action: str,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> str:
    """Sign "``principal`` may ask for ``action`` on ``integration_id`` for ``ttl``"."""
    _check_key(key)
    parsed = Principal.parse(principal)  # refuse to sign something no flow could parse
    issued = _now(now)
    payload = {
        "v": _VERSION,
        "sub": str(parsed),
        "int": int(integration_id),
        "act": str(Action(action)),
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_sign(key, body)}"


def verify_run_grant(
    key: bytes, token: str, *, integration_id: int, action: str, now: datetime | None = None
) -> Principal:
    """The grant's principal with ``verified=True``, or :class:`InvalidRunGrant` saying why."""
    _check_key(key)
    parts = token.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise InvalidRunGrant("malformed token (expected '<payload>.<signature>')")
    body, signature = parts
    if not hmac.compare_digest(_sign(key, body), signature):
        raise InvalidRunGrant("bad signature (minted with another key, or altered)")
    try:
        payload = json.loads(_b64decode(body))
        principal = Principal.parse(payload["sub"])
        granted_integration, granted_action = int(payload["int"]), str(payload["act"])
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidRunGrant(f"malformed payload ({exc})") from None
    if payload.get("v") != _VERSION:
        raise InvalidRunGrant(f"unsupported version {payload.get('v')!r}")
    if _now(now) >= expires:
        raise InvalidRunGrant(f"expired at {expires.isoformat()}")
    if granted_integration != int(integration_id):
        raise InvalidRunGrant(
            f"wrong integration (granted for {granted_integration}, "
            f"this run is for {integration_id})"
        )
    if granted_action != str(Action(action)):
        raise InvalidRunGrant(
            f"wrong action (granted for {granted_action!r}, this run wants {str(Action(action))!r})"
        )
    return replace(principal, verified=True)


def signing_key_from_env(env: Mapping[str, str] = os.environ) -> bytes | None:
    """The key from ``AOS_RUN_GRANT_KEY`` (standard or URL-safe base64), ``None`` when unset.

    A set but unusable value is an error, not ``None``: silently falling back to unverified
    principals would turn a typo into an open door.
    """
    text = env.get(ENV_KEY, "").strip()
    if not text:
        return None
    try:
        key = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise ValueError(f"{ENV_KEY} is not base64") from None
    _check_key(key)
    return key


def resolve_principal(
    requested_by: str | None,
    run_grant: str | None,
    *,
    integration_id: int,
    action: str,
    key: bytes | None,
) -> Principal:
    """Who a flow run acts for.

    * A run grant, when given, must verify (so a key must be configured) and, if
      ``requested_by`` is given too, name the same principal.
    * ``scheduler:<agency_id>`` is accepted for ``sync`` only, unverified: it can only replay
      the schedule (authorize limits it to incremental syncs of connected integrations).
    * With a key configured, a bare user ``requested_by`` is refused; without one (the demo) it
      is accepted with ``verified=False`` and the run ledger records that.
    """
    act = Action(action)
    if run_grant:
        if key is None:
            raise InvalidRunGrant(
                f"a run grant was given but {ENV_KEY} is not configured, so it cannot be checked"
            )
        principal = verify_run_grant(key, run_grant, integration_id=integration_id, action=act)
        if requested_by and _parse(requested_by) != replace(principal, verified=False):
            raise InvalidRunGrant(
                f"requested_by {requested_by!r} does not match the grant's "
                f"principal {str(principal)!r}"
            )
        return principal
    if not requested_by:
        raise InvalidRunGrant(
            f"no principal: pass requested_by (and a run grant when {ENV_KEY} is configured)"
        )
    principal = _parse(requested_by)
    if principal.kind == "scheduler":
        if act != Action.SYNC:
            raise InvalidRunGrant(
                f"the scheduler principal may only run '{Action.SYNC}', not {str(act)!r}"
            )
        return principal
    if key is not None:
        raise InvalidRunGrant(
            f"requested_by {requested_by!r} alone is not proof of identity "
            f"while {ENV_KEY} is configured; mint a run grant for "
            f"{str(act)!r} on integration {integration_id} and pass it"
        )
    return principal


def _parse(requested_by: str) -> Principal:
    try:
        return Principal.parse(requested_by)
    except ValueError as exc:
        raise InvalidRunGrant(str(exc)) from None
