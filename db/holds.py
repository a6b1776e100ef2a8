"""Provider pauses and quota stops, kept where every worker sees them (``provider_hold``).

What a connector's ``Holds`` (``connectors/kit/holds.py``) is, backed by the control
database (it fits that protocol by shape; ``db`` imports no connector code): when a
provider says "not before then" (a throttled Meta ad account, a Google Ads project whose
daily quota is spent), the hold is written here, and every reader of every stream, run,
worker and integration reads it before spending a call on that account or project.

Rows are (provider, scope, integration): the integration that was told, and every one that
met the hold since (so ``aos-sync status`` can show each integration what holds it). A
scope's hold is the latest ``until`` of its rows, and a row only grows (``greatest``), so
concurrent writers need no lock. Times are the database's: ``until`` is ``now()`` plus what
the provider said, and what is left is measured against ``now()`` too, so workers whose
clocks disagree still agree on when a hold ends. Rows whose hold has ended are deleted by
the next write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["ProviderHold", "ProviderHolds"]

REASON_CHARS = 500

_GET = sa.text(
    "SELECT until, reason, extract(epoch FROM until - now()) AS seconds_left, integration_id"
    " FROM provider_hold WHERE provider = :provider AND scope = :scope AND until > now()"
    " ORDER BY until DESC LIMIT 1"
)
# A row only grows: a later until brings its reason and the time it was set.
_PUT = (
    "INSERT INTO provider_hold (provider, scope, integration_id, agency_id, until, reason)"
    " VALUES (:provider, :scope, :integration, :agency, {until}, :reason)"
    " ON CONFLICT (provider, scope, integration_id) DO UPDATE SET"
    " until = excluded.until, reason = excluded.reason, set_at = now()"
    " WHERE excluded.until > provider_hold.until"
)
_TOLD = sa.text(_PUT.format(until="now() + make_interval(secs => :seconds)"))
_MET = sa.text(_PUT.format(until=":until"))
_PRUNE = sa.text("DELETE FROM provider_hold WHERE until < now()")


@dataclass(frozen=True)
class ProviderHold:
    """A hold in force on ``scope`` until ``until``, ``left`` seconds from when it was read."""

    scope: str
    until: datetime
    left: float
    reason: str


@dataclass
class ProviderHolds:
    """One integration's view of its provider's holds (see the module docstring).

    ``names``: scopes a connector names by their role, resolved here (the Google Ads
    connector's ``"project"`` is the OAuth client's Cloud project the integration draws on,
    the key ``db.quota.ProjectQuota`` uses); any other scope is stored as named."""

    engine: sa.Engine
    provider: str
    agency_id: int
    integration_id: int
    names: Mapping[str, str] = field(default_factory=dict)

    def _params(self, scope: str) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "scope": self.names.get(scope, scope),
            "integration": self.integration_id,
            "agency": self.agency_id,
        }

    def get(self, scope: str) -> ProviderHold | None:
        """The hold in force on ``scope``; one set by another integration is noted as met by
        this one too."""
        params = self._params(scope)
        with self.engine.begin() as conn:
            row = conn.execute(_GET, params).one_or_none()
            if row is None:
                return None
            if row.integration_id != self.integration_id:
                conn.execute(_MET, {**params, "until": row.until, "reason": row.reason})
        return ProviderHold(scope, row.until, float(row.seconds_left), row.reason)

    def put(self, scope: str, seconds: float, reason: str) -> ProviderHold:
        """Hold ``scope`` for ``seconds`` more (a hold only grows); the hold in force."""
        params = {
            **self._params(scope),
            "seconds": max(float(seconds), 0.0),
            "reason": reason[:REASON_CHARS],
        }
        with self.engine.begin() as conn:
            conn.execute(_PRUNE)
            conn.execute(_TOLD, params)
            row = conn.execute(_GET, params).one_or_none()
        if row is None:  # a hold of no time at all has already ended
            return ProviderHold(scope, datetime.now(UTC), 0.0, reason)
        return ProviderHold(scope, row.until, float(row.seconds_left), row.reason)
