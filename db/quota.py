"""A provider quota that belongs to an OAuth client project, shared fairly by every tenant.

Google Ads counts operations (one query is one) per Cloud project of the OAuth client, over
a rolling 24 hours, and every integration connected through that client draws on the same
quota. ``provider_quota_use`` is our account of it: one row per reservation, written *before*
the query is sent, so concurrent workers of any number of processes see each other's use.

Fair share, decided under a transaction-scoped advisory lock per (provider, project):

* the project may not use more than ``daily_limit`` in the window;
* an integration may not use more than ``max(min_share, daily_limit // (n + 2))`` of it,
  where ``n`` is the number of *other* integrations that used the project in the window (the
  two more are itself and a newcomer not seen yet), so one large agency can never take it
  all: a first large sync leaves half, two leave a third each;
* the project's last ``min_share`` operations are kept for an integration that has used
  less than ``min_share``, so a newcomer always gets at least that much while anything is
  left, however many large agencies came first.

A refusal is an answer, not an error: :meth:`ProjectQuota.reserve` returns ``False`` and the
connector ends its run cleanly; the next run (when use has rolled out of the window) resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from db import locks

__all__ = ["ProjectQuota"]

_USE = sa.text(
    "SELECT coalesce(sum(operations), 0),"
    " coalesce(sum(operations) FILTER (WHERE integration_id = :integration), 0),"
    " count(DISTINCT integration_id) FILTER (WHERE integration_id <> :integration)"
    " FROM provider_quota_use WHERE provider = :provider AND project = :project"
    " AND used_at > now() - make_interval(secs => :window)"
)
_BOOK = sa.text(
    "INSERT INTO provider_quota_use (provider, project, agency_id, integration_id, operations)"
    " VALUES (:provider, :project, :agency, :integration, :operations)"
)
_PRUNE = sa.text(
    "DELETE FROM provider_quota_use WHERE provider = :provider AND project = :project"
    " AND used_at < now() - make_interval(secs => :window * 2)"
)


@dataclass
class ProjectQuota:
    """One integration's view of its project's quota (see the module docstring).

    ``used`` counts what this object reserved (one reader: one stream of one run)."""

    engine: sa.Engine
    provider: str
    project: str
    agency_id: int
    integration_id: int
    daily_limit: int
    min_share: int
    window: timedelta = timedelta(hours=24)
    used: int = 0
    _pruned: bool = field(default=False, repr=False)

    def _params(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "project": self.project,
            "integration": self.integration_id,
            "agency": self.agency_id,
            "window": self.window.total_seconds(),
        }

    def _share(self, others: int) -> int:
        return max(self.min_share, self.daily_limit // (others + 2))

    def reserve(self, operations: int = 1) -> bool:
        """Book ``operations`` now if both the project and this integration's share allow."""
        params = {**self._params(), "operations": operations}
        with self.engine.begin() as conn:
            locks.xact_lock(conn, f"quota:{self.provider}:{self.project}")
            if not self._pruned:
                conn.execute(_PRUNE, params)
                self._pruned = True
            total, mine, others = conn.execute(_USE, params).one()
            if total + operations > self.daily_limit:
                return False
            if mine + operations > self._share(int(others)):
                return False
            if mine + operations > self.min_share and (
                total + operations > self.daily_limit - self.min_share
            ):
                return False  # the project's last min_share wait for one still below it
            conn.execute(_BOOK, params)
        self.used += operations
        return True

    def status(self) -> dict[str, int]:
        """``operations_used`` by this object and ``operations_left`` for the integration
        now (the smaller of its share's rest and the project's rest)."""
        with self.engine.connect() as conn:
            total, mine, others = conn.execute(_USE, self._params()).one()
        left = min(self.daily_limit - int(total), self._share(int(others)) - int(mine))
        return {"operations_used": self.used, "operations_left": max(left, 0)}
