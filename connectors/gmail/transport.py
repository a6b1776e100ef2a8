"""Gmail over google-api-python-client: one mailbox token, paced, retried, counted, bounded.

The service is built from the bundled (static) discovery document with ``api_endpoint`` set
to our base URL, and batches are posted to an explicit ``<base>/batch/gmail/v1``:
``BatchHttpRequest`` ignores ``api_endpoint`` (and the discovery document's ``batchPath`` is
the legacy ``batch``). ``build()`` takes ``http`` *or* ``credentials``, so the bearer token is
attached by ``google_auth_httplib2.AuthorizedHttp`` around our own ``httplib2.Http(timeout)``,
with token refresh on 401 switched off: refreshing is the task layer's job, and a 401 here
means the integration needs re-authorisation.

Counting: ``stats.rate_limited`` counts 429s and 403 ``*RateLimitExceeded`` answers (batch
parts included). ``stats.requests`` counts API calls the way Gmail's quota does: every attempt of a
single call is one request, and every part of a batch is one request (the multipart envelope
itself is not counted). A batch may overshoot ``max_requests`` by at most its own size.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from connectors.common import AuthError, ConnectorError, RunStats, Secret

from . import settings
from .config import GmailConfig

__all__ = [
    "BudgetExhausted",
    "GmailCallError",
    "GmailNotFound",
    "GmailTransport",
    "QuotaPacer",
    "resolve_base_url",
]


class BudgetExhausted(Exception):
    """The run reached ``max_requests``; readers stop cleanly and keep their saved cursors."""


class GmailCallError(ConnectorError):
    """Gmail answered with an error that retrying will not fix."""

    def __init__(self, method: str, status: int, reason: str) -> None:
        super().__init__(f"Gmail {method} failed: HTTP {status} {reason}".rstrip())
        self.method = method
        self.status = status
        self.reason = reason


class GmailNotFound(GmailCallError):
    """HTTP 404: a message deleted since it was listed, or (history.list) an expired id."""


def resolve_base_url(base_url: str | None = None) -> str:
    """Explicit URL, else ``AOS_GMAIL_API_URL``, else Gmail; with the trailing slash the
    discovery paths (``gmail/v1/users/...``) are joined to."""
    url = base_url or os.environ.get(settings.API_URL_ENV) or settings.DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


class QuotaPacer:
    """At most ``units_per_second`` quota units in any sliding one-second window.

    A sliding window is stricter than a fixed per-second count, so it never crosses one. The
    server counts a request when it handles it, somewhere between our send and its answer
    (a batch of 50 parts takes a while), so :meth:`settle` re-stamps the spend when the
    answer arrives, and the window is padded by ``SAFETY`` for the rest of the jitter. A batch may cost more than one window holds: it is sent into an empty
    window and whatever parts the server refuses are retried. One pacer per connector (one
    mailbox); Prefect concurrency limits keep two workers off the same mailbox.
    """

    SAFETY = 1.05

    def __init__(
        self,
        units_per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = units_per_second
        self.window = self.SAFETY
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, float]] = deque()

    def acquire(self, units: float) -> float:
        """Wait until ``units`` fit in the window, then spend them; returns seconds waited."""
        if not self.limit:
            return 0.0
        waited = 0.0
        while True:
            now = self._clock()
            while self._spent and now - self._spent[0][0] >= self.window:
                self._spent.popleft()
            used = sum(u for _, u in self._spent)
            if not self._spent or used + units <= self.limit:
                self._spent.append((now, units))
                return waited
            excess, freed, delay = used + units - self.limit, 0.0, self.window
            for stamp, spent in self._spent:
                freed += spent
                delay = self.window - (now - stamp)
                if freed >= excess:
                    break
            self._sleep(max(delay, 0.001))
            waited += max(delay, 0.001)

    def settle(self) -> None:
        """The last spend's answer arrived: count its units from now (conservative)."""
        if self.limit and self._spent:
            _, units = self._spent.pop()
            self._spent.append((self._clock(), units))


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, description: str, retry_after: float = 0.0) -> None:
        super().__init__(description)
        self.retry_after = retry_after


# What a dropped connection, a timeout or a truncated body surfaces as through httplib2 and
# the client's JSON / multipart parsing.
_TRANSPORT_ERRORS = (
    httplib2.HttpLib2Error,
    http.client.HTTPException,
    OSError,
    ValueError,
    TransportError,
)


def _error_details(exc: HttpError) -> tuple[int, str, set[str], float]:
    """(status, short reason, reasons, Retry-After seconds) of an HttpError."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    try:
        data = json.loads(exc.content or b"null")
    except (ValueError, TypeError):
        data = None
    reasons: set[str] = set()
    short = ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        reasons = {str(e.get("reason")) for e in error.get("errors") or () if e.get("reason")}
        if error.get("status"):
            reasons.add(str(error["status"]))
        short = str(error.get("status") or next(iter(sorted(reasons)), ""))
    elif isinstance(error, str):  # OAuth-style {"error": "invalid_grant"}
        reasons = {error}
        short = error
    retry_after = 0.0
    try:
        retry_after = max(float((exc.resp or {}).get("retry-after") or 0), 0.0)
    except (TypeError, ValueError):
        retry_after = 0.0
    return status, short, reasons, retry_after


class GmailTransport:
    """Calls Gmail for one mailbox: single requests and batches of ``users.*.get``."""

    def __init__(
        self,
        token: Secret,
        config: GmailConfig,
        stats: RunStats,
        base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._stats = stats
        self._sleep = sleep
        base = resolve_base_url(base_url)
        self._batch_uri = base + settings.BATCH_PATH
        self._http = AuthorizedHttp(
            Credentials(token=token.reveal()),
            http=httplib2.Http(timeout=settings.REQUEST_TIMEOUT_SECONDS),
            refresh_status_codes=(),
        )
        self.service: Any = build(
            "gmail",
            "v1",
            http=self._http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": base},
        )
        self._pacer = QuotaPacer(config.quota_units_per_second, sleep=sleep)

    # -- shared pieces -----------------------------------------------------------------------

    def _check_budget(self) -> None:
        budget = self._config.max_requests
        if budget is not None and self._stats.requests >= budget:
            raise BudgetExhausted

    def _backoff(self, attempt: int, retry_after: float) -> None:
        delay = min(self._config.backoff_base * 2 ** (attempt - 1), settings.MAX_BACKOFF_SECONDS)
        self._sleep(max(delay * (0.5 + random.random()), retry_after))

    def _classify(self, method: str, exc: HttpError) -> _Transient:
        """Raise for permanent failures; return the transient ones."""
        status, short, reasons, retry_after = _error_details(exc)
        rate_limited = status == 429 or (status == 403 and reasons & settings.RATE_LIMIT_REASONS)
        if rate_limited:
            self._stats.rate_limited += 1
        if (
            status == 401
            or reasons & settings.AUTH_STATUSES
            or reasons & settings.AUTH_REASONS
            or "insufficientPermissions" in reasons
        ):
            raise AuthError(
                f"Gmail rejected the access token on {method} (HTTP {status} {short}); "
                "the mailbox must be re-authorised"
            ) from None
        if rate_limited or status in settings.RETRYABLE_STATUSES:
            return _Transient(f"HTTP {status} {short}".rstrip(), retry_after)
        if status == 404:
            raise GmailNotFound(method, status, short) from None
        raise GmailCallError(method, status, short) from None

    @staticmethod
    def _auth_failed(method: str) -> AuthError:
        return AuthError(
            f"Gmail rejected the access token on {method}; the mailbox must be re-authorised"
        )

    # -- single calls ------------------------------------------------------------------------

    def call(self, method: str, request: Callable[[], HttpRequest]) -> dict[str, Any]:
        """Execute ``request()`` (a fresh HttpRequest per attempt) with retries."""
        problem: _Transient | None = None
        for attempt in range(self._config.max_retries + 1):
            self._check_budget()
            if problem is not None:
                self._stats.retries += 1
                self._backoff(attempt, problem.retry_after)
            self._pacer.acquire(settings.QUOTA_COST.get(method, 1))
            self._stats.requests += 1
            try:
                response = request().execute(http=self._http)
                self._pacer.settle()
                return response if isinstance(response, dict) else {}
            except HttpError as exc:
                problem = self._classify(method, exc)
            except RefreshError:
                raise self._auth_failed(method) from None
            except _TRANSPORT_ERRORS as exc:
                problem = _Transient(type(exc).__name__)
            self._pacer.settle()
        raise ConnectorError(
            f"Gmail {method} failed after {self._config.max_retries + 1} attempts: {problem}"
        )

    # -- batches -----------------------------------------------------------------------------

    def batch(
        self, method: str, requests: Mapping[str, Callable[[], HttpRequest]]
    ) -> dict[str, dict[str, Any] | None]:
        """Execute many requests of one ``method`` in batches; returns id -> response, with
        ``None`` for parts answered 404 (deleted since listed). Failed parts are retried
        alone, in a smaller batch, with backoff; parts that succeeded are never re-sent."""
        results: dict[str, dict[str, Any] | None] = {}
        todo = list(requests)
        problem: _Transient | None = None
        cost = settings.QUOTA_COST.get(method, 1)
        for attempt in range(self._config.max_retries + 1):
            if not todo:
                break
            self._check_budget()
            if problem is not None:
                self._stats.retries += len(todo)
                self._backoff(attempt, problem.retry_after)
            problem = None
            self._pacer.acquire(cost * len(todo))
            self._stats.requests += len(todo)
            failures = self._batch_round(method, todo, requests, results)
            self._pacer.settle()
            todo = [request_id for request_id in todo if request_id not in results]
            if todo:
                problem = max(failures, key=lambda f: f.retry_after, default=None) or _Transient(
                    "parts missing from the batch response"
                )
        if todo:
            raise ConnectorError(
                f"Gmail {method} failed for {len(todo)} of {len(requests)} batched requests "
                f"after {self._config.max_retries + 1} attempts: {problem}"
            )
        return results

    def _batch_round(
        self,
        method: str,
        todo: list[str],
        requests: Mapping[str, Callable[[], HttpRequest]],
        results: dict[str, dict[str, Any] | None],
    ) -> list[_Transient]:
        """Send ``todo`` as one batch; store answers in ``results``, return transient failures."""
        failures: list[_Transient] = []

        def collect(request_id: str, response: Any, exc: HttpError | None) -> None:
            if exc is None:
                results[request_id] = response if isinstance(response, dict) else {}
                return
            try:
                failures.append(self._classify(method, exc))
            except GmailNotFound:
                results[request_id] = None

        envelope = BatchHttpRequest(callback=collect, batch_uri=self._batch_uri)
        for request_id in todo:
            envelope.add(requests[request_id](), request_id=request_id)
        try:
            envelope.execute(http=self._http)
        except BatchError as exc:  # a multipart answer we could not parse (truncated)
            failures.append(_Transient(f"malformed batch response: {exc.reason}"))
        except HttpError as exc:
            failures.append(self._classify(f"{method} (batch)", exc))
        except RefreshError:
            raise self._auth_failed(method) from None
        except (*_TRANSPORT_ERRORS, KeyError) as exc:  # KeyError: a part went missing
            failures.append(_Transient(type(exc).__name__))
        return failures
