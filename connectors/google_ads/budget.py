"""The operations budget a run draws on before every query.

Google Ads counts operations (one query, paged or streamed, is one) against the daily quota
of the OAuth client's Cloud project, which every integration connected through that client
shares. Whoever builds the connector hands it an :class:`OperationBudget`; the task layer
gives it the database ledger (``db.quota.ProjectQuota``: per project, rolling 24 hours, a
fair share per integration), so several workers and tenants draw on one account of the
quota. Without one the connector spends unmetered (:class:`Unmetered`: tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["OperationBudget", "Unmetered"]


class OperationBudget(Protocol):
    """Operations reserved before they are spent."""

    def reserve(self, operations: int = 1) -> bool:
        """Book ``operations`` now; ``False`` when this integration may not spend them (its
        share of the project's quota is used up): the run then stops cleanly."""
        ...

    def status(self) -> Mapping[str, int]:
        """Counters for the run summary: ``operations_used`` (by this reader) and
        ``operations_left`` (what this integration may still spend today)."""
        ...


class Unmetered:
    """A budget that never says no; it only counts."""

    def __init__(self) -> None:
        self.used = 0

    def reserve(self, operations: int = 1) -> bool:
        self.used += operations
        return True

    def status(self) -> Mapping[str, int]:
        return {"operations_used": self.used}
