"""Run grants: a provable principal for a manual flow run (docs/rbac.md, "Who is asking").

Anyone who can reach the Prefect API can start a run with any ``requested_by``. A run grant is
a short-lived statement "principal P may do action A to integration I until T", signed with
HMAC-SHA256 under a key only the deployment holds (``AOS_RUN_GRANT_KEY``). The CLI or the web
app mints it after authenticating the person; the flow verifies it before :func:`db.rbac.authorize`.

Token: ``base64url(payload JSON) "." base64url(HMAC-SHA256(key, first part))``, no padding.
The signature covers the encoded bytes exactly as sent, so nothing is re-serialised before
checking, and it is checked before any field of the payload is believed.

A grant proves *who* is asking, not that they may: authorize still decides, from the database.

A grant is **single use**. Its payload carries a random nonce (``n``), and the flow records the
nonce in ``run_grant_use`` (:func:`consume_run_grant`, called by ``tasks.sync.authorize_run`` in
a transaction of its own) on *every* presentation whose signature verifies, before expiry,
integration, action or principal are looked at. Prefect stores every flow run's parameters, the
grant among them, where anyone with API access can read them, refused runs included; so a grant
is spent by the first run it reaches, whether that run is then accepted or refused, and what a
reader of the API finds is always spent. Version 1 grants (before nonces) still verify during the
rollout, so workers can be upgraded before the minting side: their nonce is derived from the
signed payload, which makes each distinct v1 token single use as well.

Every refusal here is an :class:`InvalidRunGrant`, a :class:`~db.rbac.PermissionDenied`: a flow's
caller catches one exception type for "not allowed", whichever step said no.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db.rbac import Action, PermissionDenied, Principal
from db.schema import run_grant_use

__all__ = [
    "DEFAULT_TTL",
    "ENV_KEY",
    "PRUNE_GRACE",
    "InvalidRunGrant",
    "Resolved",
    "RunGrant",
    "Spend",
    "consume_run_grant",
    "mint_run_grant",
    "read_run_grant",
    "resolve_principal",
    "resolve_run",
    "signing_key_from_env",
    "verify_run_grant",
]

ENV_KEY = "AOS_RUN_GRANT_KEY"
DEFAULT_TTL = timedelta(minutes=15)
MIN_KEY_BYTES = 16
_VERSION = 2
_ACCEPTED_VERSIONS = (1, 2)
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: ``run_grant_use`` rows are deleted this long after their grant expired, not at once: a worker
#: whose clock runs behind the database's still refuses a replay of a just-expired grant.
PRUNE_GRACE = timedelta(hours=1)
_PRUNE_BATCH = 500


class InvalidRunGrant(PermissionDenied):
    """The run's principal could not be accepted; ``reason`` is a short phrase.

    A :class:`PermissionDenied` so that flows' callers catch one type for every refusal.
    ``principal`` is the grant's subject when its signature checked out (an expired, replayed or
    misdirected grant), else ``None``; ``grant`` says whether the refusal is about a run grant
    (the message then says so) or about the principal asked for without one."""

    def __init__(
        self,
        reason: str,
        *,
        grant: bool = True,
        principal: Principal | None = None,
        action: Action | None = None,
        integration_id: int | None = None,
    ) -> None:
        prefix = "invalid run grant: " if grant else ""
        super().__init__(
            principal, action, integration_id, reason, f"permission denied: {prefix}{reason}"
        )
        self.reason = reason


@dataclass(frozen=True)
class RunGrant:
    """A grant whose signature holds: its claims as signed (``read_run_grant`` returns one only
    once expiry, integration and action match the run as well)."""

    principal: Principal  # verified=True
    integration_id: int
    action: Action
    nonce: str
    issued_at: datetime
    expires_at: datetime
    version: int


@dataclass(frozen=True)
class Resolved:
    """Who a run acts for, and the grant that proved it (to be consumed), if any."""

    principal: Principal
    grant: RunGrant | None


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
    """Sign "``principal`` may ask for ``action`` on ``integration_id`` for ``ttl``, once".

    The nonce (128 random bits) makes every minted grant distinct, so single use is per grant,
    not per (principal, integration, action, second)."""
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
        "n": secrets.token_urlsafe(16),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_sign(key, body)}"


#: Called with a grant as soon as its signature verifies (:func:`consume_run_grant`, bound to an
#: engine); raises :class:`InvalidRunGrant` to refuse it.
Spend = Callable[[RunGrant], None]


def read_run_grant(
    key: bytes,
    token: str,
    *,
    integration_id: int,
    action: str,
    now: datetime | None = None,
    spend: Spend | None = None,
) -> RunGrant:
    """The checked claims of ``token``, or :class:`InvalidRunGrant` saying why not.

    ``spend``, when given, is called as soon as the signature and the payload's shape hold,
    before expiry, integration and action are checked: a grant presented to the wrong run is
    used up all the same, since that run's stored parameters now show it to anyone. Without
    ``spend`` nothing is recorded (verification only)."""
    _check_key(key)
    act = Action(action)
    parts = token.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise InvalidRunGrant("malformed token (expected '<payload>.<signature>')", action=act)
    body, signature = parts
    if not hmac.compare_digest(_sign(key, body), signature):
        raise InvalidRunGrant("bad signature (minted with another key, or altered)", action=act)
    try:
        payload = json.loads(_b64decode(body))
        principal = Principal.parse(payload["sub"])
        granted_integration, granted_action = int(payload["int"]), Action(str(payload["act"]))
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
        issued = datetime.fromtimestamp(int(payload.get("iat", 0)), UTC)
        version = payload.get("v")
        nonce = payload.get("n")
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, binascii.Error) as exc:
        raise InvalidRunGrant(f"malformed payload ({exc})", action=act) from None
    if type(version) is not int or version not in _ACCEPTED_VERSIONS:
        raise InvalidRunGrant(f"unsupported version {version!r}", action=act)
    if version == 1:
        # Minted before nonces: the signed payload itself is what may be used once.
        nonce = "v1-" + hashlib.sha256(body.encode("ascii")).hexdigest()
    elif not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise InvalidRunGrant("malformed payload (no usable nonce 'n')", action=act)
    verified = replace(principal, verified=True)
    signed = RunGrant(
        verified, granted_integration, granted_action, nonce, issued, expires, int(version)
    )
    if spend is not None:
        spend(signed)

    def refused(reason: str) -> InvalidRunGrant:  # signed, so its subject is known
        return InvalidRunGrant(
            reason, principal=verified, action=act, integration_id=int(integration_id)
        )

    if _now(now) >= expires:
        raise refused(f"expired at {expires.isoformat()}")
    if granted_integration != int(integration_id):
        raise refused(
            f"wrong integration (granted for {granted_integration}, "
            f"this run is for {integration_id})"
        )
    if granted_action != act:
        raise refused(
            f"wrong action (granted for {str(granted_action)!r}, this run wants {str(act)!r})"
        )
    return signed


def verify_run_grant(
    key: bytes, token: str, *, integration_id: int, action: str, now: datetime | None = None
) -> Principal:
    """The grant's principal with ``verified=True``, or :class:`InvalidRunGrant` saying why.

    Verification only (see :func:`read_run_grant`): nothing is recorded."""
    return read_run_grant(
        key, token, integration_id=integration_id, action=action, now=now
    ).principal


def consume_run_grant(engine: sa.Engine, grant: RunGrant) -> None:
    """Record ``grant`` as used, or raise :class:`InvalidRunGrant` ("already used").

    ``INSERT .. ON CONFLICT DO NOTHING`` on the nonce is the whole check, so two runs racing
    with one grant cannot both win: the second waits for the first's row and then finds it.
    The transaction is this function's own and commits before it returns, so the use stands
    whatever the run does next (fails, is rolled back, is retried). Rows of grants that
    expired more than :data:`PRUNE_GRACE` ago are pruned on the way (``SKIP LOCKED``, bounded):
    a spent grant that old is refused by its expiry anyway.
    """
    with engine.begin() as conn:
        stale = (
            sa.select(run_grant_use.c.nonce)
            .where(run_grant_use.c.expires_at < sa.func.now() - PRUNE_GRACE)
            .limit(_PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        conn.execute(
            run_grant_use.delete().where(run_grant_use.c.nonce.in_(stale.scalar_subquery()))
        )
        recorded = conn.execute(
            insert(run_grant_use)
            .values(
                nonce=grant.nonce,
                principal=str(grant.principal),
                integration_id=grant.integration_id,
                action=str(grant.action),
                expires_at=grant.expires_at,
            )
            .on_conflict_do_nothing(index_elements=[run_grant_use.c.nonce])
            .returning(run_grant_use.c.nonce)
        ).scalar()
    if recorded is None:
        raise InvalidRunGrant(
            "already used (a run grant is good for one run; mint a new one)",
            principal=grant.principal,
            action=grant.action,
            integration_id=grant.integration_id,
        )


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


def resolve_run(
    requested_by: str | None,
    run_grant: str | None,
    *,
    integration_id: int,
    action: str,
    key: bytes | None,
    spend: Spend | None = None,
) -> Resolved:
    """Who a flow run acts for, with the grant that proves it.

    * A run grant, when given, must verify (so a key must be configured) and, if
      ``requested_by`` is given too, name the same principal. Once its signature holds it is
      passed to ``spend`` before anything else is checked (see :func:`read_run_grant`), so a
      grant refused here for its expiry, integration, action or principal is spent too.
    * ``scheduler:<agency_id>`` is accepted for ``sync`` only, unverified: it can only replay
      the schedule (authorize limits it to incremental syncs of connected integrations).
    * With a key configured, a bare user ``requested_by`` is refused; without one (the demo) it
      is accepted with ``verified=False`` and the run ledger records that.
    """
    act = Action(action)
    if run_grant:
        if key is None:
            raise InvalidRunGrant(
                f"a run grant was given but {ENV_KEY} is not configured, so it cannot be checked",
                action=act,
                integration_id=integration_id,
            )
        grant = read_run_grant(
            key, run_grant, integration_id=integration_id, action=act, spend=spend
        )
        if requested_by and _parse(requested_by, act, integration_id) != replace(
            grant.principal, verified=False
        ):
            raise InvalidRunGrant(
                f"requested_by {requested_by!r} does not match the grant's "
                f"principal {str(grant.principal)!r}",
                principal=grant.principal,
                action=act,
                integration_id=integration_id,
            )
        return Resolved(grant.principal, grant)
    if not requested_by:
        raise InvalidRunGrant(
            f"no principal: pass requested_by (and a run grant when {ENV_KEY} is configured)",
            grant=False,
            action=act,
            integration_id=integration_id,
        )
    principal = _parse(requested_by, act, integration_id)
    if principal.kind == "scheduler":
        if act != Action.SYNC:
            raise InvalidRunGrant(
                f"the scheduler principal may only run '{Action.SYNC}', not {str(act)!r}",
                grant=False,
                principal=principal,
                action=act,
                integration_id=integration_id,
            )
        return Resolved(principal, None)
    if key is not None:
        raise InvalidRunGrant(
            f"requested_by {requested_by!r} alone is not proof of identity "
            f"while {ENV_KEY} is configured; mint a run grant for "
            f"{str(act)!r} on integration {integration_id} and pass it",
            grant=False,
            principal=principal,
            action=act,
            integration_id=integration_id,
        )
    return Resolved(principal, None)


def resolve_principal(
    requested_by: str | None,
    run_grant: str | None,
    *,
    integration_id: int,
    action: str,
    key: bytes | None,
) -> Principal:
    """:func:`resolve_run`'s principal: verification only, the grant is not consumed.

    A flow must use :func:`resolve_run` and :func:`consume_run_grant` (as
    ``tasks.sync.authorize_run`` does); this is for callers that only need to know who."""
    return resolve_run(
        requested_by, run_grant, integration_id=integration_id, action=action, key=key
    ).principal


def _parse(requested_by: str, action: Action, integration_id: int) -> Principal:
    try:
        return Principal.parse(requested_by)
    except ValueError as exc:
        raise InvalidRunGrant(
            str(exc), grant=False, action=action, integration_id=integration_id
        ) from None
