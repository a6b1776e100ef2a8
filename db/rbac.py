"""Who may do what to which integration: the one decision every flow makes before it starts.

:func:`authorize` implements the matrix written out in ``docs/rbac.md``. It runs
before any token is decrypted or any row written, and it never trusts what the principal says
about itself beyond its name: the agency and role come from the database.

Every denial is audited, and that audit row must outlive the caller's failure. So, given an
:class:`~sqlalchemy.Engine`, :func:`authorize` writes it in a transaction of its own that commits
before :class:`PermissionDenied` is raised. Given a ``Connection``, it writes on that connection
and the caller's commit or rollback decides; pass the Engine unless you commit either way.
Refusals that happen before the matrix can be consulted (a bad run grant, a malformed principal)
are audited the same way by :func:`record_refusal`.

A denial says nothing about an integration (or agency) the principal cannot reach: a missing
integration, another agency's integration and an unknown user all read the same, naming only
what the caller supplied. Otherwise the message would be an oracle for which ids exist, what
they are called and which provider they belong to. The audit row keeps the precise reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from db.schema import agency, app_user, client, integration, member_client_access, role, user_role
from db.tenancy import record_audit

__all__ = [
    "OUTSIDER_MISSING",
    "SENSITIVE",
    "Action",
    "Decision",
    "PermissionDenied",
    "Principal",
    "authorize",
    "record_refusal",
]


class Action(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    ROTATE_CREDENTIALS = "rotate_credentials"
    SYNC = "sync"
    BACKFILL = "backfill"
    READ = "read"
    MANAGE_ACCESS = "manage_access"


#: Allowed uses of these are audited too: they change what is connected, who sees what, or
#: rewrite history. Incremental syncs and reads are recorded by the run ledger / RLS instead.
SENSITIVE = frozenset(
    {
        Action.CONNECT,
        Action.DISCONNECT,
        Action.ROTATE_CREDENTIALS,
        Action.BACKFILL,
        Action.MANAGE_ACCESS,
    }
)

_VERB = {
    Action.CONNECT: "connect",
    Action.DISCONNECT: "disconnect",
    Action.ROTATE_CREDENTIALS: "rotate credentials of",
    Action.SYNC: "sync",
    Action.BACKFILL: "backfill",
    Action.READ: "read data of",
    Action.MANAGE_ACCESS: "manage access to",
}
_EMAIL = re.compile(r"[^@\s:]+@[^@\s]+")
_SCHEDULER = re.compile(r"scheduler:(\d+)")
_BIGINT_MAX = 2**63 - 1
#: What an outsider is told it lacks, whatever the real reason (no such integration, another
#: agency's, unknown user): one text, so the answer is no oracle for what exists.
OUTSIDER_MISSING = (
    "an integration of the principal's own agency "
    "(there is none with that id, or the principal has no agency)"
)
#: How much of a principal "as given" an audit row keeps: enough to recognise it, bounded so a
#: caller cannot write arbitrary amounts into the audit log.
AUDIT_PRINCIPAL_CHARS = 200
AUDIT_REASON_CHARS = 500  # a reason may quote the caller's input


@dataclass(frozen=True)
class Principal:
    """A user (by email) or an agency's scheduler. ``verified`` says whether a signed run grant
    proved the identity (see :mod:`db.grants`); it is recorded, not used to decide."""

    kind: str
    email: str | None
    agency_id: int | None
    verified: bool = False

    @classmethod
    def user(cls, email: str, verified: bool = False) -> Principal:
        return cls("user", email.strip().lower(), None, verified)

    @classmethod
    def scheduler(cls, agency_id: int) -> Principal:
        return cls("scheduler", None, int(agency_id))

    @classmethod
    def parse(cls, text: str) -> Principal:
        """``"scheduler:7"`` or an email address; anything else is a ``ValueError``."""
        text = text.strip()
        if m := _SCHEDULER.fullmatch(text):
            return cls.scheduler(int(m.group(1)))
        if _EMAIL.fullmatch(text):
            return cls.user(text)
        raise ValueError(f"not a principal: {text!r} (an email or 'scheduler:<agency_id>')")

    def __str__(self) -> str:
        return f"scheduler:{self.agency_id}" if self.kind == "scheduler" else str(self.email)


class PermissionDenied(Exception):
    """Raised by :func:`authorize` (and, as :class:`db.grants.InvalidRunGrant`, when the
    principal itself cannot be accepted); the message names the principal, the action and what
    was missing, so the person reading a failed flow run knows which grant to ask for.

    ``principal`` and ``action`` are ``None`` when the refusal came before they were known
    (an unparseable principal, a forged grant)."""

    def __init__(
        self,
        principal: Principal | None,
        action: Action | None,
        integration_id: int | None,
        missing: str,
        message: str,
    ) -> None:
        super().__init__(message)
        self.principal = principal
        self.action = action
        self.integration_id = integration_id
        self.missing = missing

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect may pickle a failed task's exception; the default reduce would call
        # ``cls(message)`` and fail on the keyword-rich constructors of this family.
        return (_restore_exception, (type(self), self.args, dict(self.__dict__)))


def _restore_exception(
    cls: type[PermissionDenied], args: tuple[Any, ...], state: dict[str, Any]
) -> PermissionDenied:
    exc = Exception.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


@dataclass(frozen=True)
class Decision:
    allowed: bool
    role: str | None
    principal: Principal
    reason: str
    agency_id: int | None = None
    integration_id: int | None = None


@dataclass
class _Target:
    """What the action is aimed at: one integration, or (no integration yet) an agency."""

    agency_id: int | None
    label: str
    integration: Any = None  # the integration row with the client's name, when there is one
    opaque: str = ""  # how an outsider sees it: only the id it supplied


@dataclass
class _Verdict:
    role: str | None
    missing: str | None  # None = allowed
    reason: str = ""
    who: str = ""  # how the denial message names the principal, e.g. "member bob@acme.test"
    outsider: bool = False  # the principal is not of the target's agency (or either is unknown)


def _load_target(conn: sa.Connection, integration_id: int | None, agency_id: int | None) -> _Target:
    if integration_id is not None:
        opaque = f"integration {integration_id}"
        if not 0 < integration_id <= _BIGINT_MAX:  # no such row; the query would not even run
            return _Target(None, opaque, opaque=opaque)
        row = conn.execute(
            sa.select(
                integration.c.id,
                integration.c.agency_id,
                integration.c.client_id,
                integration.c.provider,
                integration.c.name,
                integration.c.status,
                client.c.name.label("client_name"),
            )
            .outerjoin(client, client.c.id == integration.c.client_id)
            .where(integration.c.id == integration_id)
        ).first()
        if row is None:
            return _Target(None, opaque, opaque=opaque)
        if agency_id is not None and agency_id != row.agency_id:
            raise ValueError(
                f"integration {integration_id} belongs to agency {row.agency_id}, not {agency_id}"
            )
        label = f"integration {row.id} ({row.provider} {row.name!r})"
        return _Target(row.agency_id, label, row, opaque=opaque)
    if agency_id is None:
        raise ValueError("authorize needs an integration_id or an agency_id")
    opaque = f"agency {agency_id}"
    name = None
    if 0 < agency_id <= _BIGINT_MAX:
        name = conn.execute(sa.select(agency.c.name).where(agency.c.id == agency_id)).scalar()
    if name is None:
        return _Target(None, opaque, opaque=opaque)
    return _Target(agency_id, f"agency {agency_id} ({name!r})", opaque=opaque)


def _client_permission(conn: sa.Connection, user_id: int, client_id: int) -> str | None:
    return conn.execute(
        sa.select(member_client_access.c.permission).where(
            member_client_access.c.user_id == user_id, member_client_access.c.client_id == client_id
        )
    ).scalar()


#: The lowest role that may do the action on any integration of its agency ...
_ROLE_BAR = {
    Action.CONNECT: "admin",
    Action.DISCONNECT: "admin",
    Action.ROTATE_CREDENTIALS: "admin",
    Action.MANAGE_ACCESS: "owner",
    Action.SYNC: "manager",
    Action.BACKFILL: "admin",
    Action.READ: "manager",
}
#: ... and, below that bar, the lowest role for which a client grant stands in, with the
#: permissions that count. Only integrations of a client can be reached this way.
_GRANT_PATH = {
    Action.SYNC: ("member", ("write",)),
    Action.READ: ("member", ("read", "write")),
    Action.BACKFILL: ("manager", ("write",)),
}


def _decide_user(
    conn: sa.Connection, principal: Principal, action: Action, target: _Target
) -> _Verdict:
    user = conn.execute(
        sa.select(app_user.c.id, app_user.c.agency_id, role.c.name, role.c.level)
        .select_from(app_user.outerjoin(user_role).outerjoin(role))
        .where(app_user.c.email == principal.email)
    ).first()
    if user is None:
        return _Verdict(
            None, f"a user account (no user {principal.email!r})", who=str(principal), outsider=True
        )
    who = f"{user.name} {principal}" if user.name else str(principal)
    if user.agency_id != target.agency_id:
        return _Verdict(
            user.name, f"membership in agency {target.agency_id}", who=who, outsider=True
        )
    if user.name is None:
        return _Verdict(None, f"a role in agency {target.agency_id}", who=who)
    levels = {name: level for name, level in conn.execute(sa.select(role.c.name, role.c.level))}
    bar = _ROLE_BAR[action]
    if user.level >= levels[bar]:
        return _Verdict(user.name, None, f"role {user.name}", who=who)
    needs_role = "role owner" if bar == "owner" else f"role {bar} or higher"
    path = _GRANT_PATH.get(action)
    if path is None or user.level < levels[path[0]]:
        return _Verdict(user.name, needs_role, who=who)
    row = target.integration
    if row is None:
        return _Verdict(user.name, f"{needs_role} to {_VERB[action]} a whole agency", who=who)
    if row.client_id is None:
        return _Verdict(
            user.name,
            f"{needs_role} (an agency-wide integration is not reachable through a client grant)",
            who=who,
        )
    permission = _client_permission(conn, user.id, row.client_id)
    if permission not in path[1]:
        wanted = " or ".join(path[1])
        return _Verdict(user.name, f"{wanted} access to {_client_label(target)}", who=who)
    return _Verdict(
        user.name,
        None,
        f"role {user.name} with {permission} access to {_client_label(target)}",
        who=who,
    )


def _client_label(target: _Target) -> str:
    return f"client {target.integration.client_name!r} (id {target.integration.client_id})"


def _decide_scheduler(principal: Principal, action: Action, target: _Target) -> _Verdict:
    """The scheduler only replays what an admin already set up: incremental syncs of its own
    agency's connected integrations. Anything else needs a person."""
    who = str(principal)
    if principal.agency_id != target.agency_id:
        return _Verdict(
            "scheduler", f"membership in agency {target.agency_id}", who=who, outsider=True
        )
    if action != Action.SYNC or target.integration is None:
        return _Verdict(
            "scheduler",
            "a user principal (the scheduler may only run incremental syncs of an integration)",
            who=who,
        )
    if target.integration.status != "connected":
        return _Verdict(
            "scheduler",
            f"integration status 'connected' (it is {target.integration.status!r})",
            who=who,
        )
    return _Verdict(
        "scheduler", None, "scheduled incremental sync of a connected integration", who=who
    )


def _decide(
    conn: sa.Connection,
    principal: Principal,
    action: Action,
    integration_id: int | None,
    agency_id: int | None,
) -> tuple[_Target, _Verdict]:
    target = _load_target(conn, integration_id, agency_id)
    if target.agency_id is None:
        return target, _Verdict(
            None,
            f"an existing target ({target.label} does not exist)",
            who=str(principal),
            outsider=True,
        )
    if principal.kind == "scheduler":
        return target, _decide_scheduler(principal, action, target)
    return target, _decide_user(conn, principal, action, target)


def authorize(
    bind: sa.Engine | sa.Connection,
    principal: Principal | str,
    action: Action | str,
    integration_id: int | None = None,
    *,
    agency_id: int | None = None,
) -> Decision:
    """Allow ``principal`` to do ``action`` to an integration (or, for connecting a new
    integration / managing access, to an agency), or raise :class:`PermissionDenied`.

    Denials and allowed :data:`SENSITIVE` actions are audited; see the module docstring for
    why an Engine is the better ``bind``. A principal given as text that does not parse is a
    denial too (audited as ``authorize.refused``), not a ``ValueError``: it is the caller's
    input, and every refusal of a caller is on record.
    """
    action = Action(action)
    if isinstance(principal, str):
        given = principal
        try:
            principal = Principal.parse(given)
        except ValueError as exc:
            record_refusal(bind, given, action, integration_id, str(exc), agency_id=agency_id)
            raise PermissionDenied(
                None, action, integration_id, str(exc), f"permission denied: {exc}"
            ) from None
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            target, verdict = _decide(conn, principal, action, integration_id, agency_id)
    else:
        target, verdict = _decide(bind, principal, action, integration_id, agency_id)
    audit_id = target.integration.id if target.integration is not None else integration_id
    if verdict.missing is not None or action in SENSITIVE:
        if isinstance(bind, sa.Engine):
            with bind.begin() as conn:  # commits now, whatever the caller does next
                _audit(conn, principal, action, target, audit_id, verdict)
        else:
            _audit(bind, principal, action, target, audit_id, verdict)
    if verdict.missing is not None:
        missing, label, who = verdict.missing, target.label, verdict.who
        if verdict.outsider:
            # Only what the caller supplied: the principal's text and the target's id.
            label, who = target.opaque, str(principal)
            missing = (
                OUTSIDER_MISSING if integration_id is not None else f"membership in {target.opaque}"
            )
        message = f"permission denied: {who} may not {_VERB[action]} {label}: needs {missing}"
        raise PermissionDenied(principal, action, audit_id, missing, message)
    return Decision(
        allowed=True,
        role=verdict.role,
        principal=principal,
        reason=verdict.reason,
        agency_id=target.agency_id,
        integration_id=audit_id,
    )


def _audit(
    conn: sa.Connection,
    principal: Principal,
    action: Action,
    target: _Target,
    integration_id: int | None,
    verdict: _Verdict,
) -> None:
    """The precise reason goes here even when the caller was told less: operators need it."""
    outcome = "allowed" if verdict.missing is None else "denied"
    detail: dict[str, Any] = {
        "action": str(action),
        "role": verdict.role,
        "verified": principal.verified,
    }
    if verdict.missing is not None:
        detail["missing"] = verdict.missing
    record_audit(
        conn,
        principal=_as_given(str(principal)),
        action=f"authorize.{outcome}",
        outcome=outcome,
        agency_id=target.agency_id,
        integration_id=_bigint_or_none(integration_id),
        detail=detail,
    )


def _bigint_or_none(value: int | None) -> int | None:
    return value if value is not None and -_BIGINT_MAX <= value <= _BIGINT_MAX else None


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_given(text: str | None) -> str:
    """A principal exactly as the caller sent it, bounded (it may be anything at all)."""
    return "(none)" if text is None else _bounded(text, AUDIT_PRINCIPAL_CHARS)


def record_refusal(
    bind: sa.Engine | sa.Connection,
    principal: str | None,
    action: Action | str,
    integration_id: int | None,
    reason: str,
    *,
    agency_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a refusal that came before :func:`authorize` could decide: an invalid, expired,
    replayed or forged run grant, a principal that does not parse, a scheduler asking for more
    than a sync. One ``audit_event`` row: action ``authorize.refused``, outcome ``denied``, the
    principal as given (truncated), the integration id and the reason.

    The row carries the integration's agency when the integration exists, so the agency whose
    integration was asked for sees the attempt; the caller is told nothing of it. Given an
    Engine the row commits at once (the caller is about to fail); given a Connection it is the
    caller's transaction, as with :func:`authorize`.
    """
    target_id = _bigint_or_none(integration_id)

    def write(conn: sa.Connection) -> None:
        owner = agency_id
        if target_id is not None and target_id > 0:
            owner = conn.execute(
                sa.select(integration.c.agency_id).where(integration.c.id == target_id)
            ).scalar()
        if owner is not None and not (
            0 < owner <= _BIGINT_MAX
            and conn.execute(sa.select(agency.c.id).where(agency.c.id == owner)).first()
        ):
            owner = None  # an agency id the caller made up: no row to hang the event on
        record_audit(
            conn,
            principal=_as_given(principal),
            action="authorize.refused",
            outcome="denied",
            agency_id=owner,
            integration_id=target_id,
            detail={
                "action": str(action),
                "reason": _bounded(reason, AUDIT_REASON_CHARS),
                "verified": False,
                **(detail or {}),
            },
        )

    if isinstance(bind, sa.Engine):
        with bind.begin() as conn:
            write(conn)
    else:
        write(bind)
