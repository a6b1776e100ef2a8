"""The provider kit: what every connector shares, so a provider package holds only its own.

* ``failures`` -- the four kinds of failure (transient, rate-limited, auth, permanent);
* ``transport`` -- the retry loop, request budget, counting and base URL (:class:`Transport`);
* ``limiter`` -- one sliding-window limiter, shared per provider account in a process;
* ``paging`` -- the token paginator with loop detection, used by every paged call;
* ``reader`` -- the read loop that turns a declared stream into checked, counted pages;
* ``partitions`` -- what a stream of partitions does when some of them fail.

No Prefect and no database imports (see ``docs/connectors.md`` for how a provider plugs in).
"""

from __future__ import annotations

from .failures import Failure, Kind, retry_after_seconds
from .limiter import SlidingWindowLimiter, shared_limiter
from .paging import PaginationLoop, TokenPaginator
from .partitions import PartitionFailures
from .reader import ReadLoop, RecordShape, StreamFunction, declare_streams
from .transport import BudgetExhausted, RetryPolicy, Transport

__all__ = [
    "BudgetExhausted",
    "Failure",
    "Kind",
    "PaginationLoop",
    "PartitionFailures",
    "ReadLoop",
    "RecordShape",
    "RetryPolicy",
    "SlidingWindowLimiter",
    "StreamFunction",
    "TokenPaginator",
    "Transport",
    "declare_streams",
    "retry_after_seconds",
    "shared_limiter",
]
