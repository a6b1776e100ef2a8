"""The verbs of a sync run: authorize, refresh credentials, sync one stream, record the run.

Each task is one retriable unit. Tokens are read from the vault inside the task that needs them
and never travel as parameters or results; results hold counts only.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from connectors import registry
from connectors.common import (
    AuthError,
    CheckUnavailable,
    Page,
    PermanentError,
    Secret,
    StreamReader,
    TokenRenewal,
)
from connectors.kit.holds import PROJECT
from connectors.kit.reader import Window
from db import readers, schema, state, tenancy
from db.engine import default_vault, get_engine
from db.grants import InvalidRunGrant, consume_run_grant, resolve_run, signing_key_from_env
from db.holds import ProviderHolds
from db.loader import LoadError, TableLoader, Tenant
from db.quota import ProjectQuota
from db.rbac import Action, PermissionDenied, authorize, record_refusal
from tasks.modes import INCREMENTAL, RunMode, window_stream
from tasks.progress import TICK, Tick, publish

__all__ = [
    "ReauthRequired",
    "RunMode",
    "authorize_run",
    "refresh_credentials",
    "sync_stream",
    "watch_token",
    "window_stream",
]

PROGRESS_EVERY_S = 5.0
# Days before the expiry of a token that cannot be refreshed (Meta) at which runs warn.
TOKEN_WARNING_DAYS = (14, 7, 1)
_EXPIRY_NOTE = "access token expires"  # marks a status reason this module wrote


class ReauthRequired(RuntimeError):
    """The provider rejected the integration's credentials; a person must reconnect it."""


def _mark_needs_reauth(integration_id: int, reason: str) -> ReauthRequired:
    with get_engine().begin() as conn:
        tenancy.set_integration_status(conn, integration_id, "needs_reauth", reason=reason)
    return ReauthRequired(
        f"integration {integration_id} needs re-authorisation: {reason}. It is marked "
        "needs_reauth; store fresh credentials with `aos-sync integration reconnect --integration "
        f"{integration_id} --credentials-file PATH` to resume."
    )


def _retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed task unless a retry cannot fix it: credentials the provider refused, a
    refusal it will repeat (a missing scope, say), or rows the table cannot take."""
    try:
        state.result()
    except (ReauthRequired, PermanentError, PermissionError, PermissionDenied, LoadError):
        return False
    except Exception:
        return True
    return False


def _mark_error(integration_id: int, exc: PermanentError) -> None:
    """The provider refuses every partition of a stream for good: a person must act (grant a
    scope, fix the configuration). The scheduler leaves the integration alone until then."""
    with get_engine().begin() as conn:
        tenancy.set_integration_status(conn, integration_id, "error", reason=str(exc)[:500])


@task(name="authorize")
def authorize_run(
    integration_id: int, requested_by: str | None, action: str, run_grant: str | None = None
) -> dict[str, Any]:
    """Prove who is asking, spend their run grant, then check the RBAC matrix.

    Every refusal raises :class:`~db.rbac.PermissionDenied` (a bad, expired, replayed or
    misdirected grant as its subclass ``InvalidRunGrant``) and leaves an ``audit_event`` row
    committed before the raise. A grant is consumed (``run_grant_use``, its own transaction) as
    soon as its signature verifies, before its expiry, integration, action and principal are
    compared with this run's: Prefect stores this run's parameters, refused or not, so a grant
    read back from them must already be spent. Two runs presenting one grant cannot both get
    past that point. A grant is spent even if a later check or the matrix says no: it was
    presented, and a retry needs a new one anyway.
    """
    act = Action(action)
    eng = get_engine()
    try:
        resolved = resolve_run(
            requested_by,
            run_grant,
            integration_id=integration_id,
            action=act,
            key=signing_key_from_env(),
            spend=functools.partial(consume_run_grant, eng),
        )
    except InvalidRunGrant as exc:
        signed = exc.principal if exc.principal and exc.principal.verified else None
        given = requested_by or (str(signed) if signed else None)
        if given is None and run_grant:
            given = "(unverified run grant)"
        detail: dict[str, Any] = {"run_grant": bool(run_grant)}
        if signed is not None:  # the signature held: this subject really was granted something
            detail["grant_subject"] = str(signed)
        record_refusal(eng, given, act, integration_id, exc.reason, detail=detail)
        raise
    decision = authorize(eng, resolved.principal, act, integration_id)
    principal = resolved.principal
    return {"principal": str(principal), "verified": principal.verified, "role": decision.role}


@task(name="refresh-credentials", retries=2, retry_delay_seconds=2, retry_condition_fn=_retryable)
def refresh_credentials(integration_id: int, provider: str, principal: str = "system") -> str:
    """Refresh the access token when it expires within 5 minutes (row-locked, see db.vault)."""
    spec = registry.get(provider)
    vault = default_vault()
    eng = get_engine()
    with eng.connect() as conn:
        bundle = vault.get(conn, integration_id)
    if not spec.can_refresh(bundle):
        return "no-expiry"
    before = bundle.get("access_token")
    try:
        fresh = vault.refresh_if_needed(eng, integration_id, spec.refresher, principal=principal)
    except AuthError as exc:
        raise _mark_needs_reauth(integration_id, str(exc)) from None
    return "refreshed" if fresh.get("access_token") != before else "fresh"


def expiry_warning(title: str, expires: datetime | None, now: datetime) -> str | None:
    """The warning for a token expiring at ``expires`` (``None``: never), once it is within
    the widest of :data:`TOKEN_WARNING_DAYS`; it names the narrowest threshold crossed."""
    if expires is None:
        return None
    left = expires - now
    crossed = [d for d in TOKEN_WARNING_DAYS if left <= timedelta(days=d)]
    if not crossed:
        return None
    days = max(math.ceil(left / timedelta(days=1)), 0)  # a token of 5 days: "in 5 days"
    when = expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{title} {_EXPIRY_NOTE} in {days} day{'s' if days != 1 else ''} ({when}; "
        f"{min(crossed)}-day warning): reconnect the integration before then"
    )


@task(name="watch-token", retries=2, retry_delay_seconds=2, retry_condition_fn=_retryable)
def watch_token(integration_id: int, provider: str) -> list[str]:
    """For a provider whose tokens cannot be refreshed (registry ``token_check``), ask when
    the token expires: within :data:`TOKEN_WARNING_DAYS` the run warns and the integration's
    status reason says so (it stays ``connected``); a token the provider calls invalid marks
    it ``needs_reauth``. Returns the run's warnings."""
    spec = registry.get(provider)
    check = spec.token_checker
    if check is None:
        return []
    eng = get_engine()
    with eng.connect() as conn:
        bundle = default_vault().get(conn, integration_id)
        integ = tenancy.get_integration(conn, integration_id)
    try:
        expires = check(bundle)
    except AuthError as exc:
        raise _mark_needs_reauth(integration_id, str(exc)) from None
    except CheckUnavailable as exc:  # nothing known to be wrong: warn, sync anyway
        note = f"{spec.title}: {exc}"
        _logger().warning("integration %s: %s", integration_id, note)
        return [note]
    if expires is not None and bundle.expires_at != expires:
        # Kept with the credential, where `aos-sync status` and the health artifact read it.
        with eng.begin() as conn:
            default_vault().put(conn, integration_id, dict(bundle), expires_at=expires)
    warning = expiry_warning(spec.title, expires, datetime.now(UTC))
    ours = _EXPIRY_NOTE in (integ.status_reason or "")
    if warning != integ.status_reason and (warning is not None or ours):
        with eng.begin() as conn:
            tenancy.set_integration_status(conn, integration_id, integ.status, reason=warning)
    if warning is None:
        return []
    _logger().warning("integration %s: %s", integration_id, warning)
    return [warning]


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger under Prefect; a plain one when a task function is called directly
    (benchmarks, ``task.fn()`` in tests)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("aos_sync.tasks")


def _with_progress(
    pages: Iterable[Page], label: str, stats: Any, *, provider: str, integration: int, stream: str
) -> Iterator[Page]:
    """Log progress every few seconds so long runs are visibly alive (at the command line too
    where there is no live board: ``TICK``), and publish a :class:`~tasks.progress.Tick` on
    every page and at the end for the live board; ``label`` names the integration and the
    stream."""
    logger = _logger()
    rows, last = 0, time.monotonic()

    def tick(state: Any = "reading") -> Tick:
        return Tick(provider, integration, stream, rows, stats.requests, stats.rate_limited, state)

    publish(tick())
    try:
        for page in pages:
            rows += len(page.records)
            publish(tick())
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                logger.info(
                    "%s: %s rows fetched, %s requests, %s rate-limited so far",
                    label,
                    f"{rows:,}",
                    stats.requests,
                    stats.rate_limited,
                    extra=TICK,
                )
                last = now
            yield page
    except BaseException:
        publish(tick("failed"))
        raise
    publish(tick("done"))


class _WindowedReader(Protocol):
    """A reader whose windowed streams take the run's window (every connector built on the
    kit's read loop; ``StreamReader`` itself names only the two-argument form)."""

    def read(
        self, stream: str, state: Mapping[str, Mapping[str, Any]], window: Window | None = None
    ) -> Iterator[Page]: ...


def _read(
    reader: StreamReader,
    stream: str,
    saved: Mapping[str, Mapping[str, Any]],
    window: Window | None,
) -> Iterator[Page]:
    """The reader's pages; the window is passed only when there is one, so a reader without
    windowed streams (``windowed=()`` in the registry) is called as the protocol says."""
    if window is None:
        return reader.read(stream, saved)
    return cast(_WindowedReader, reader).read(stream, saved, window)


def _renamed(pages: Iterable[Page], stream: str) -> Iterator[Page]:
    for page in pages:
        yield dataclasses.replace(page, stream=stream)


def _quota_budget(
    provider: registry.ProviderEntry, integ: tenancy.Integration, bundle: Mapping[str, Any]
) -> ProjectQuota | None:
    """The provider's shared per-project quota as this integration's budget (or none)."""
    if provider.quota is None:
        return None
    limit, min_share = provider.quota.values()
    return ProjectQuota(
        get_engine(),
        provider=provider.name,
        project=provider.quota.project(bundle),
        agency_id=integ.agency_id,
        integration_id=integ.id,
        daily_limit=limit,
        min_share=min_share,
    )


def _holds(
    provider: registry.ProviderEntry, integ: tenancy.Integration, bundle: Mapping[str, Any]
) -> ProviderHolds | None:
    """Where the provider's pauses and quota stops are kept for every worker (or none); the
    connector's ``PROJECT`` is the project of the shared quota, when there is one."""
    if not provider.holds:
        return None
    names = {PROJECT: provider.quota.project(bundle)} if provider.quota else {}
    return ProviderHolds(get_engine(), provider.name, integ.agency_id, integ.id, names)


def _token_renewal(
    provider: registry.ProviderEntry, integration_id: int, bundle: Mapping[str, Any]
) -> TokenRenewal | None:
    """What the reader asks for a fresh access token when the provider refuses the one it
    has mid-run (a run may outlive a Google token's hour): the vault refreshes it under the
    credential's row lock, with the refresher the run's start uses, so however many readers
    were refused the same token, one refresh happens and all get its token. A refused refresh
    raises :class:`AuthError` through the reader (``sync_stream`` marks ``needs_reauth``)."""
    refresher = provider.refresher
    if not provider.renews_tokens or refresher is None or not provider.can_refresh(bundle):
        return None

    def renew(refused: Secret) -> Secret:
        fresh = default_vault().refresh_if_needed(
            get_engine(), integration_id, refresher, refused=refused.reveal(), principal="system"
        )
        _logger().info(
            "integration %s: %s refused the access token mid-run; continuing with a fresh one",
            integration_id,
            provider.title,
        )
        return Secret(str(fresh["access_token"]))

    return renew


@task(name="sync-stream", retries=2, retry_delay_seconds=3, retry_condition_fn=_retryable)
def sync_stream(integration_id: int, stream: str, mode: RunMode = INCREMENTAL) -> dict[str, Any]:
    """Read one stream from the provider and load it; cursors commit with their rows, so a
    retry (or the next run) resumes from the last committed page.

    ``mode`` (``tasks/modes.py``) is the only thing that differs between an incremental run,
    a ``since`` run, a full refresh and a backfill chunk: it picks the cursors the reader gets
    and the window it is told. The integration's settings reach the connector unchanged."""
    eng = get_engine()
    state_stream = mode.state_stream(stream)
    with eng.begin() as conn:
        integ = tenancy.get_integration(conn, integration_id)
        bundle = default_vault().get(conn, integration_id)
    provider = registry.get(integ.provider)
    window = mode.window(stream, provider.windowed)
    budget = _quota_budget(provider, integ, bundle)
    holds = _holds(provider, integ, bundle)
    renew = _token_renewal(provider, integration_id, bundle)
    token = Secret(str(bundle["access_token"]))
    reader = provider.build_reader(token, integ.config, budget, renew=renew, holds=holds)
    spec = reader.streams[stream]
    tables = sorted({s.table for s in reader.streams.values()})
    target = readers.attach(eng, integ.agency_id, integ.id, tables)
    with target.connect() as conn:
        saved = state.load_state(conn, integration_id, state_stream)
    client_map: dict[str, int] = {}
    if spec.client_match and integ.client_id is None:
        with eng.connect() as conn:
            client_map = tenancy.client_attribution_map(conn, integ.agency_id, spec.client_match)
    tenant = Tenant(
        agency_id=integ.agency_id,
        integration_id=integ.id,
        client_id=integ.client_id,
        client_map=client_map,
        client_field=spec.client_field,
    )
    loader = TableLoader(target, schema.agency_metadata.tables[spec.table], tenant)
    started = time.monotonic()
    try:
        pages = _read(reader, stream, mode.cursors(saved), window)
        if state_stream != stream:
            pages = _renamed(pages, state_stream)
        label = f"{integ.provider} integration {integ.id} {state_stream}"
        progress = _with_progress(
            pages,
            label,
            reader.stats,
            provider=integ.provider,
            integration=integ.id,
            stream=state_stream,
        )
        counts = loader.load(progress)
    except AuthError as exc:
        raise _mark_needs_reauth(integration_id, str(exc)) from None
    except PermanentError as exc:
        _mark_error(integration_id, exc)
        raise
    stats = reader.stats.as_dict()
    result = {
        "stream": stream,
        "fetched": stats["records"],
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "deleted": counts.deleted,
        "rejected": counts.rejected,
        "requests": stats["requests"],
        "rate_limited": stats["rate_limited"],
        "skipped": stats["skipped"],
        "warnings": stats["warnings"],
        "seconds": round(time.monotonic() - started, 2),
    }
    if budget is not None:  # operations used by this stream and left for the integration
        result.update(budget.status())
    _logger().info(
        "%s: %s fetched, %s inserted, %s updated, %s deleted, %s set aside, %s requests"
        " (%s rate-limited)",
        label,
        result["fetched"],
        result["inserted"],
        result["updated"],
        result["deleted"],
        result["rejected"],
        result["requests"],
        result["rate_limited"],
    )
    return result
