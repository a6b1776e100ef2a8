"""What a stream made of partitions does when some of them fail (Slack channels, Gmail labels).

Kept apart from the read loop because only readers of partitioned listings need it; the rule
is the same for every provider, so it lives in the kit.
"""

from __future__ import annotations

from connectors.common import (
    AuthError,
    ConnectorError,
    PermanentError,
    RunStats,
    TransientError,
)

__all__ = ["PartitionFailures"]


class PartitionFailures:
    """How a stream made of partitions (Slack channels, Gmail labels) treats one that fails.

    One partition failing -- a channel the token lacks a scope for, a label Gmail keeps
    erroring on -- must not cost the others their run: :meth:`failed` records it in
    ``stats.skipped`` and ``stats.warnings`` and the stream goes on. A stream in which nothing
    worked is no success though: :meth:`finish` raises when partitions failed and none
    succeeded (a :class:`PermanentError` when every failure was permanent, so the task layer
    does not retry it, else a :class:`TransientError`). Transient failures in a row are an
    outage, not a partition problem, so the ``max_consecutive_transient``-th one raises at once
    rather than spending every remaining partition's retries. :class:`AuthError` concerns the
    whole integration and is re-raised as is.
    """

    def __init__(self, what: str, stats: RunStats, *, max_consecutive_transient: int = 3) -> None:
        self.what = what
        self.stats = stats
        self.max_consecutive_transient = max_consecutive_transient
        self.succeeded_count = 0
        self.failures: list[tuple[str, ConnectorError]] = []
        self._transient_in_a_row = 0

    def succeeded(self) -> None:
        self.succeeded_count += 1
        self._transient_in_a_row = 0

    def failed(self, partition: str, error: ConnectorError) -> None:
        """Record ``partition`` as skipped because of ``error``; raise when the stream is done."""
        if isinstance(error, AuthError):
            raise error
        self.failures.append((partition, error))
        self.stats.skipped.append(f"{partition}: {error}")
        self.stats.warnings.append(f"{self.what}: {partition} skipped: {error}")
        if isinstance(error, PermanentError):
            self._transient_in_a_row = 0
            return
        self._transient_in_a_row += 1
        if self._transient_in_a_row >= self.max_consecutive_transient:
            raise TransientError(
                f"{self.what}: {self._transient_in_a_row} partitions in a row failed "
                f"(last: {partition}: {error}); giving up on the stream for this attempt",
                provider=getattr(error, "provider", ""),
                method=getattr(error, "method", ""),
            ) from error

    def finish(self) -> None:
        """Raise when partitions failed and none succeeded (the stream did nothing useful)."""
        if not self.failures or self.succeeded_count:
            return
        listed = "; ".join(f"{p}: {e}" for p, e in self.failures[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        message = f"{self.what}: every partition failed: {listed}{more}"
        errors = [e for _, e in self.failures]
        if all(isinstance(e, PermanentError) for e in errors):
            first = errors[0]
            assert isinstance(first, PermanentError)
            raise PermanentError(
                message,
                provider=first.provider,
                method=first.method,
                code=first.code,
                detail={"failures": [{"partition": p, "error": str(e)} for p, e in self.failures]},
            )
        raise TransientError(message, provider=getattr(errors[-1], "provider", ""))
