"""Integration health for operators: what ``aos-sync status`` and the dispatcher's report show.

One row per integration: its status and reason, its last run and last successful run, how late
it is against its schedule, the error of its last failed run, when its token expires and, for
a provider whose quota is shared per OAuth project (Google Ads), the operations it used in the
last 24 hours (``provider_quota_use``), and the provider's pause or quota stop that holds it
now, if any (``provider_hold``: the one that ends last, and how many there are). An
integration is **failing** when a person must act (``needs_reauth``, ``error``) or its last run
failed, and **stale** when its last success is older than ``stale_after`` schedule intervals
(or it never succeeded and was connected longer than that). Disabled integrations are neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from db.schema import (
    agency,
    client,
    integration,
    integration_credential,
    provider_hold,
    provider_quota_use,
    sync_run,
)

__all__ = ["Health", "integration_health"]


@dataclass(frozen=True)
class Health:
    integration_id: int
    provider: str
    name: str
    agency: str
    client: str | None
    status: str
    status_reason: str | None
    last_run_at: datetime | None
    last_run_status: str | None
    last_success_at: datetime | None
    last_error: str | None
    token_expires_at: datetime | None
    quota_used_24h: int | None  # operations of a shared provider quota (None: not one)
    hold: str | None  # "scope until ... UTC: reason" of the provider hold ending last
    interval: timedelta | None
    lag: timedelta | None  # how much later than its schedule the data is
    failing: bool
    stale: bool

    def as_row(self, now: datetime) -> dict[str, Any]:
        age = now - self.last_success_at if self.last_success_at else None
        return {
            "integration": self.integration_id,
            "provider": self.provider,
            "name": self.name,
            "agency": self.agency,
            "client": self.client,
            "status": self.status + (f" ({self.status_reason})" if self.status_reason else ""),
            "last_success": self.last_success_at,
            "age": _human(age),
            "lag": _human(self.lag),
            "last_error": self.last_error or None,
            "token_expires": self.token_expires_at,
            "quota_24h": self.quota_used_24h,
            "hold": self.hold,
            "health": "failing" if self.failing else "stale" if self.stale else "ok",
        }


def _human(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def _hold(
    scope: str | None, until: datetime | None, reason: str | None, n: int | None
) -> str | None:
    if scope is None or until is None:
        return None
    more = f" (+{n - 1} more)" if n and n > 1 else ""
    return f"{scope} until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC{more}: {reason}"


def integration_health(
    conn: sa.Connection,
    now: datetime,
    intervals: Mapping[str, timedelta],
    *,
    stale_after: float = 3.0,
    agency_id: int | None = None,
) -> list[Health]:
    """Health of every integration (of one agency); ``intervals``: provider -> how often its
    schedule runs (a provider without one is never stale)."""
    last = (
        sa.select(sync_run.c.started_at, sync_run.c.status, sync_run.c.error)
        .where(
            sync_run.c.agency_id == integration.c.agency_id,
            sync_run.c.integration_id == integration.c.id,
        )
        .order_by(sync_run.c.started_at.desc())
        .limit(1)
        .lateral("last")
    )
    success = (
        sa.select(sa.func.max(sync_run.c.finished_at).label("at"))
        .where(
            sync_run.c.agency_id == integration.c.agency_id,
            sync_run.c.integration_id == integration.c.id,
            sync_run.c.status == "succeeded",
        )
        .lateral("success")
    )
    quota = (
        sa.select(sa.func.sum(provider_quota_use.c.operations).label("used"))
        .where(
            provider_quota_use.c.agency_id == integration.c.agency_id,
            provider_quota_use.c.integration_id == integration.c.id,
            provider_quota_use.c.used_at > now - timedelta(hours=24),
        )
        .lateral("quota")
    )
    hold = (
        sa.select(
            provider_hold.c.scope,
            provider_hold.c.until,
            provider_hold.c.reason,
            sa.func.count().over().label("holds"),
        )
        .where(provider_hold.c.integration_id == integration.c.id, provider_hold.c.until > now)
        .order_by(provider_hold.c.until.desc())
        .limit(1)
        .lateral("hold")
    )
    query = (
        sa.select(
            integration.c.id,
            integration.c.provider,
            integration.c.name,
            integration.c.status,
            integration.c.status_reason,
            integration.c.created_at,
            agency.c.name.label("agency"),
            client.c.name.label("client"),
            last.c.started_at,
            last.c.status.label("run_status"),
            last.c.error,
            success.c.at.label("success_at"),
            integration_credential.c.expires_at,
            quota.c.used.label("quota_used"),
            hold.c.scope.label("hold_scope"),
            hold.c.until.label("hold_until"),
            hold.c.reason.label("hold_reason"),
            hold.c.holds,
        )
        .join(agency, agency.c.id == integration.c.agency_id)
        .outerjoin(
            client,
            sa.and_(
                client.c.agency_id == integration.c.agency_id,
                client.c.id == integration.c.client_id,
            ),
        )
        .outerjoin(last, sa.true())
        .outerjoin(success, sa.true())
        .outerjoin(quota, sa.true())
        .outerjoin(hold, sa.true())
        .outerjoin(
            integration_credential, integration_credential.c.integration_id == integration.c.id
        )
        .order_by(integration.c.agency_id, integration.c.id)
    )
    if agency_id is not None:
        query = query.where(integration.c.agency_id == agency_id)
    out = []
    for r in conn.execute(query):
        interval = intervals.get(r.provider)
        since = r.success_at or r.created_at
        lag = None
        stale = False
        if interval is not None and r.status == "connected":
            lag = max(now - since - interval, timedelta(0))
            stale = now - since > interval * stale_after
        failing = r.status in ("needs_reauth", "error") or (
            r.status == "connected" and r.run_status == "failed"
        )
        out.append(
            Health(
                integration_id=r.id,
                provider=r.provider,
                name=r.name,
                agency=r.agency,
                client=r.client,
                status=r.status,
                status_reason=r.status_reason,
                last_run_at=r.started_at,
                last_run_status=r.run_status,
                last_success_at=r.success_at,
                last_error=r.error if r.run_status == "failed" else None,
                token_expires_at=r.expires_at,
                quota_used_24h=None if r.quota_used is None else int(r.quota_used),
                hold=_hold(r.hold_scope, r.hold_until, r.hold_reason, r.holds),
                interval=interval,
                lag=lag,
                failing=failing,
                stale=stale,
            )
        )
    return out
