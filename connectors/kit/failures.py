"""One vocabulary for what went wrong with a provider call, whatever the SDK said it with.

Slack answers ``ok: false`` or an HTTP status, google-api-python-client raises ``HttpError``,
google-ads raises ``GoogleAdsException`` around a gRPC status, facebook-business raises
``FacebookRequestError``. A provider's transport turns each of these into a :class:`Failure`
of one of four kinds, and the kit's retry loop (``connectors.kit.transport``) acts on the kind
alone, so every provider retries, waits and gives up the same way:

* ``TRANSIENT``: the provider may answer later (5xx, resets, timeouts, bodies that do not
  parse or lack fields the provider always sends); retried with exponential backoff and
  jitter, then :class:`~connectors.common.TransientError`;
* ``RATE_LIMITED``: the provider asked us to slow down (429, Gmail's 403
  ``userRateLimitExceeded``, gRPC ``RESOURCE_EXHAUSTED``); waited out using its hint
  (``Retry-After``, ``retry_delay``) and counted in ``RunStats.rate_limited``;
* ``AUTH``: the credentials are refused; the :class:`~connectors.common.AuthError` it carries
  is raised at once (the task layer marks the integration ``needs_reauth``);
* ``PERMANENT``: the same request will be refused again; the
  :class:`~connectors.common.PermanentError` it carries is raised at once.

``ambiguous`` marks failures after which the request may have taken effect (the connection
dropped after sending, the answer was unreadable): a call that must not run twice (a
rotating-token refresh) is not retried after one of those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from connectors.common import AuthError, PermanentError

__all__ = ["Failure", "Kind", "retry_after_seconds"]


class Kind(Enum):
    """What the retry loop does with a failure (see the module docstring)."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Failure:
    """One classified failure of one attempt.

    ``description`` is short and safe to show (a status, an error code, an exception class
    name: never a response body, which may quote credentials). ``refusal`` is the exception
    raised for ``AUTH`` and ``PERMANENT`` failures; it is ``None`` exactly when the failure
    may be retried.
    """

    kind: Kind
    description: str
    retry_after: float = 0.0
    ambiguous: bool = False
    refusal: PermanentError | None = None

    @classmethod
    def transient(
        cls, description: str, *, retry_after: float = 0.0, ambiguous: bool = False
    ) -> Failure:
        return cls(Kind.TRANSIENT, description, retry_after=retry_after, ambiguous=ambiguous)

    @classmethod
    def rate_limited(cls, description: str, retry_after: float = 0.0) -> Failure:
        return cls(Kind.RATE_LIMITED, description, retry_after=retry_after)

    @classmethod
    def refused(cls, error: PermanentError) -> Failure:
        """A refusal: ``AUTH`` when ``error`` is an :class:`AuthError`, else ``PERMANENT``."""
        kind = Kind.AUTH if isinstance(error, AuthError) else Kind.PERMANENT
        return cls(kind, str(error), refusal=error)


def retry_after_seconds(headers: Mapping[str, Any] | None, default: float = 0.0) -> float:
    """The ``Retry-After`` header of an answer in seconds (any case of the name; a list value
    is read by its first item; fractions allowed: a time-scaled sandbox sends them).

    ``default`` when the header is absent or is not a number (HTTP dates are not used by the
    providers here). Never negative.
    """
    value: Any = next(
        (v for k, v in (headers or {}).items() if str(k).lower() == "retry-after"), None
    )
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return default
