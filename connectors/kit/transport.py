"""The transport base: request-level retries, one failure classification, a request budget.

A provider's transport subclasses :class:`Transport` and supplies three small hooks:

* :meth:`Transport.classify` -- the provider's exception -> :class:`Failure` (or ``None`` for
  exceptions that are not about the provider: those propagate untouched);
* :meth:`Transport.unusable` -- why a *successful* answer cannot be used (truncated, missing a
  field the provider always sends); such an answer is retried, never read as "no rows";
* :meth:`Transport.limiter` -- the shared limiter and units a request of a method spends.

Everything else is here, once for every provider: the attempt loop of :meth:`Transport.request`
(budget check, pacing, counting, backoff with jitter or the provider's ``Retry-After``), what
each kind of failure does, the :class:`~connectors.common.TransientError` when retries are
spent, :class:`BudgetExhausted`, the base URL setting, and the renewal of an access token the
provider refused (:meth:`Transport.renewing`: a transport built with a ``token`` and a
:data:`~connectors.common.TokenRenewal` asks for a fresh token once per call and sends the call
again; a subclass supplies :meth:`Transport.use_token`).

Counting: one attempt is one request in ``RunStats.requests`` (a batch of ``n`` parts is ``n``).
That is exact only when the SDK does not retry behind our back, so every provider switches
its SDK's own retries off (slack-sdk: no retry handlers; googleapiclient: ``num_retries=0``;
google-ads: ``retry=None``) and lets this loop do them.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from connectors.common import RunStats, Secret, TokenRefused, TokenRenewal, TransientError

from .failures import Failure, Kind
from .limiter import SlidingWindowLimiter

__all__ = ["BudgetExhausted", "RetryPolicy", "Transport"]

T = TypeVar("T")


class BudgetExhausted(Exception):
    """The run reached ``max_requests``; readers stop cleanly and keep their saved cursors.

    Raised before a request would be sent, never after; the read loop turns it into a warning
    (``connectors.kit.reader``), so it is not a :class:`~connectors.common.ConnectorError`.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"max_requests={limit} reached")
        self.limit = limit


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one call is retried.

    ``attempts`` bounds the attempts a call may spend on failures. Two kinds of failure may
    first draw on budgets of their own, because the provider *answered* and said "not now":
    ``rate_limit_retries`` for rate-limited answers and ``server_error_retries`` for server
    errors (transient failures that are not ambiguous: 5xx, Slack's ``internal_error``).
    Lost and damaged answers always spend ``attempts``. Slack asks to wait often and briefly
    and has both; Gmail counts every failure as an ordinary attempt and leaves them at 0.
    """

    attempts: int = 4
    backoff_base: float = 0.5
    max_backoff: float = 64.0
    rate_limit_retries: int = 0
    server_error_retries: int = 0

    def delay(self, attempt: int, retry_after: float = 0.0) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first retry).

        Exponential backoff with jitter (x0.5..x1.5, so clients that failed together do not
        retry together), or the provider's hint plus up to 10% when that is longer.
        """
        backoff = min(self.backoff_base * 2 ** max(attempt - 1, 0), self.max_backoff)
        hint = retry_after * (1 + 0.1 * random.random()) if retry_after > 0 else 0.0
        return max(backoff * (0.5 + random.random()), hint)


class Transport:
    """Base of a provider transport: see the module docstring for what a subclass supplies.

    ``provider`` names the provider in messages ("Slack"); its lower-case form is the
    ``provider`` of the errors raised. ``api_url_env`` / ``default_api_url`` are the setting
    and default of the API's base URL (:meth:`endpoint`).
    """

    provider: ClassVar[str] = ""
    api_url_env: ClassVar[str] = ""
    default_api_url: ClassVar[str] = ""

    def __init__(
        self,
        stats: RunStats,
        policy: RetryPolicy,
        *,
        max_requests: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token: Secret | None = None,
        renew: TokenRenewal | None = None,
    ) -> None:
        self.stats = stats
        self.policy = policy
        self.max_requests = max_requests
        self._sleep = sleep
        self.token = token
        self._renew = renew

    @classmethod
    def endpoint(cls, explicit: str | None = None) -> str:
        """The API base URL: ``explicit``, else the ``api_url_env`` setting, else the
        provider's; always with the trailing slash that relative paths are joined to."""
        url = explicit or os.environ.get(cls.api_url_env) or cls.default_api_url
        return url if url.endswith("/") else url + "/"

    # -- what a provider supplies ------------------------------------------------------------

    def classify(self, method: str, error: Exception) -> Failure | None:
        """The :class:`Failure` that ``error`` is, or ``None`` when it is not a provider
        failure at all (a bug: it propagates as is)."""
        raise NotImplementedError

    def unusable(self, method: str, answer: Any) -> str | None:
        """Why a successful ``answer`` of ``method`` cannot be used; ``None`` when it can."""
        return None

    def limiter(self, method: str) -> tuple[SlidingWindowLimiter, float] | None:
        """The limiter a request of ``method`` waits on and the units it spends (or none)."""
        return None

    def use_token(self, token: Secret) -> None:
        """Send every later call with ``token`` (a transport built with ``renew`` supplies it)."""
        raise NotImplementedError

    # -- a refused access token ------------------------------------------------------------

    def renew_token(self, refused: TokenRefused) -> None:
        """The provider refused the access token: put a fresh one from the task layer in use.
        Raises ``refused`` when there is nothing to renew with, and whatever the renewal
        raises (:class:`~connectors.common.AuthError` when the refresh itself is refused)."""
        if self._renew is None or self.token is None:
            raise refused
        self.token = self._renew(self.token)
        self.use_token(self.token)

    def renewing(self, call: Callable[[], T]) -> T:
        """``call()``, sent once more with a fresh access token when the provider refused the
        one it had. A second refusal propagates: the token was not the problem, or the new
        one is refused too, and a person must reconnect the account."""
        try:
            return call()
        except TokenRefused as refused:
            self.renew_token(refused)
        return call()

    def renewing_stream(self, stream: Callable[[], Iterator[T]]) -> Iterator[T]:
        """:meth:`renewing` for a call whose answer arrives in parts (a gRPC stream): a
        refusal ends the first stream, the second is opened with the fresh token."""
        try:
            yield from stream()
            return
        except TokenRefused as refused:
            self.renew_token(refused)
        yield from stream()

    # -- the shared machinery ----------------------------------------------------------------

    def failure(self, method: str, error: Exception) -> Failure:
        """``error`` classified and counted: a refusal is raised, a foreign exception
        re-raised; what is returned may be retried."""
        failure = self.classify(method, error)
        if failure is None:
            raise error
        if failure.kind is Kind.RATE_LIMITED:
            self.stats.rate_limited += 1
        if failure.refusal is not None:
            raise failure.refusal from None
        return failure

    def prepare(
        self, method: str, attempt: int, problem: Failure | None, requests: int = 1
    ) -> SlidingWindowLimiter | None:
        """Everything before sending ``requests`` requests of ``method``: the budget check,
        the wait after ``problem`` (counted as retries), pacing, counting. Returns the limiter
        to :meth:`~SlidingWindowLimiter.settle` once the answer is in."""
        if self.max_requests is not None and self.stats.requests >= self.max_requests:
            raise BudgetExhausted(self.max_requests)
        if problem is not None:
            self.stats.retries += requests
            self._sleep(self.policy.delay(attempt, problem.retry_after))
        paced = self.limiter(method)
        if paced is not None:
            paced[0].acquire(paced[1] * requests)
        self.stats.requests += requests
        return paced[0] if paced is not None else None

    def request(self, method: str, send: Callable[[], T], *, idempotent: bool = True) -> T:
        """``send()`` until it returns a usable answer; raise when the provider refuses, or
        :class:`TransientError` when the retries are spent (or, for a call that is not
        ``idempotent``, after a failure that may have let it take effect). A refused access
        token is renewed once (:meth:`renewing`)."""
        return self.renewing(lambda: self._attempts(method, send, idempotent))

    def _attempts(self, method: str, send: Callable[[], T], idempotent: bool) -> T:
        problem: Failure | None = None
        attempt = spent = 0
        own = {Kind.RATE_LIMITED: 0, Kind.TRANSIENT: 0}  # drawn from the budgets of their own
        while True:
            limiter = self.prepare(method, attempt, problem)
            try:
                answer = send()
            except Exception as error:
                problem = self.failure(method, error)
            else:
                why = self.unusable(method, answer)
                if why is None:
                    return answer
                problem = Failure.transient(why, ambiguous=True)
            finally:
                if limiter is not None:
                    limiter.settle()
            attempt += 1
            if problem.ambiguous and not idempotent:
                raise self.exhausted(method, attempt, problem)
            if self._own_budget(problem) > own.get(problem.kind, 0):
                own[problem.kind] += 1
            else:
                spent += 1
            if spent >= self.policy.attempts:
                raise self.exhausted(method, attempt, problem)

    def _own_budget(self, failure: Failure) -> int:
        """The retries ``failure`` may draw on before it spends ``policy.attempts``."""
        if failure.kind is Kind.RATE_LIMITED:
            return self.policy.rate_limit_retries
        if failure.kind is Kind.TRANSIENT and not failure.ambiguous:
            return self.policy.server_error_retries
        return 0

    def exhausted(self, method: str, attempts: int, problem: Failure | None) -> TransientError:
        """The error for a call that kept failing (``problem`` is the last failure)."""
        plural = "s" if attempts != 1 else ""
        last = problem.description if problem is not None else "no attempt made"
        return TransientError(
            f"{self.provider} {method} failed after {attempts} attempt{plural}: {last}",
            provider=self.provider.lower(),
            method=method,
        )
