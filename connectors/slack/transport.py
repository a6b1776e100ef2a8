"""The layer that talks HTTP: slack_sdk's WebClient plus auth, pacing, retries and counting.

Everything above this module sees ``SlackTransport.call(method, **params) -> dict`` and one of
three outcomes: the decoded body of an ``ok: true`` answer, :class:`AuthError`, or
:class:`SlackCallError` carrying Slack's error code. Retries live here and only here:

* slack_sdk's retry handlers (429 honouring ``Retry-After``, 5xx, connection resets/timeouts);
  slack_sdk retries 429 only when its rate-limit handler is installed, so we install it;
* our own bounded retry around the SDK call for what the handlers cannot see: a truncated body
  (the SDK raises a JSON decode error), an incomplete read, or retries the SDK gave up on.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse

from connectors.common import AuthError, ConnectorError, RunStats, Secret

from . import settings
from .config import SlackConfig
from .ratelimit import limiter_for

__all__ = [
    "BudgetExhausted",
    "SlackCallError",
    "SlackTransport",
    "build_web_client",
    "resolve_base_url",
]


class SlackCallError(ConnectorError):
    """Slack answered ``ok: false`` with an error that retrying will not fix."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error


class BudgetExhausted(Exception):
    """The run reached ``max_requests``; readers stop cleanly and keep their saved cursors."""


def resolve_base_url(base_url: str | None = None) -> str:
    """Explicit URL, else ``AOS_SLACK_API_URL``, else Slack; always with the trailing slash
    that ``urljoin`` needs to keep the ``/api/`` path."""
    url = base_url or os.environ.get(settings.API_URL_ENV) or settings.DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


class _RetryAfterHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, accepting a fractional ``Retry-After`` (a time-scaled sandbox
    sends them; the stock handler calls ``int()`` on it) and adding only a little jitter."""

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # pragma: no cover - the handler only accepts 429 responses
            raise error  # type: ignore[misc]
        value: Any = next(
            (v for k, v in response.headers.items() if k.lower() == "retry-after"), None
        )
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            delay = max(float(value), 0.0)
        except (TypeError, ValueError):
            delay = 1.0
        state.next_attempt_requested = True
        time.sleep(delay + random.uniform(0, 0.1 * max(delay, 0.1)))
        state.increment_current_attempt()


class _ServerErrorHandler(ServerErrorRetryHandler):
    """Also retry 502 and 504, which gateways in front of Slack return."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


class _CountingWebClient(WebClient):
    """WebClient that counts every HTTP attempt, retries included, and every 429.

    ``_perform_urllib_http_request_internal`` is the one point each attempt passes through in
    slack_sdk 3.x; ``tests/connectors`` checks the counts so an SDK change cannot go unnoticed.
    """

    def __init__(self, *, stats: RunStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stats = stats

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        self._stats.requests += 1
        try:
            return super()._perform_urllib_http_request_internal(url, req)
        except HTTPError as exc:
            if exc.code == 429:
                self._stats.rate_limited += 1
            raise


def build_web_client(
    token: str | None,
    base_url: str,
    stats: RunStats,
    retry_connection_errors: bool = True,
    retry_backoff: float = 0.5,
) -> WebClient:
    """A WebClient with the retry handlers this project relies on.

    ``retry_connection_errors=False`` is for calls that must not be sent twice blindly (a
    rotating refresh token may already have been spent by a request whose answer was lost).
    """
    backoff = BackoffRetryIntervalCalculator(backoff_factor=retry_backoff)
    handlers: list[RetryHandler] = [
        _RetryAfterHandler(max_retry_count=settings.SDK_RATE_LIMIT_RETRIES),
        _ServerErrorHandler(
            max_retry_count=settings.SDK_SERVER_ERROR_RETRIES, interval_calculator=backoff
        ),
    ]
    if retry_connection_errors:
        handlers.append(
            ConnectionErrorRetryHandler(
                max_retry_count=settings.SDK_CONNECTION_RETRIES, interval_calculator=backoff
            )
        )
    return _CountingWebClient(
        stats=stats,
        token=token,
        base_url=base_url,
        timeout=settings.REQUEST_TIMEOUT_SECONDS,
        retry_handlers=handlers,
    )


_TRANSPORT_ERRORS = (json.JSONDecodeError, http.client.HTTPException, OSError)


class SlackTransport:
    """One workspace token, paced per method, retried, counted, and bounded by a budget."""

    def __init__(
        self,
        token: Secret,
        config: SlackConfig,
        stats: RunStats,
        base_url: str | None = None,
        retry_backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self._config = config
        self._stats = stats
        self._backoff = retry_backoff
        self._sleep = sleep
        self._client = build_web_client(
            token.reveal(), resolve_base_url(base_url), stats, retry_backoff=retry_backoff
        )

    def _check_budget(self) -> None:
        budget = self._config.max_requests
        if budget is not None and self._stats.requests >= budget:
            raise BudgetExhausted

    def _pace(self, method: str) -> None:
        limit = settings.RATE_LIMITS[self._config.tier].get(method)
        if limit:
            window = self._config.window_seconds()
            limiter_for(self._token.reveal(), method, limit, window).acquire()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call one Web API method through the SDK's typed wrapper (``conversations.history``
        -> ``conversations_history``) and return the decoded body."""
        sdk_method = getattr(self._client, method.replace(".", "_"))
        problem = "no attempt made"
        for attempt in range(settings.CALL_ATTEMPTS):
            self._check_budget()
            if attempt:
                self._stats.retries += 1
                self._sleep(self._backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))
            self._pace(method)
            before = self._stats.requests
            try:
                response = sdk_method(**params)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                problem = self._classify(method, exc)
            except _TRANSPORT_ERRORS as exc:
                problem = type(exc).__name__
            finally:
                self._stats.retries += max(self._stats.requests - before - 1, 0)
        raise ConnectorError(
            f"Slack {method} failed after {settings.CALL_ATTEMPTS} attempts: {problem}"
        )

    @staticmethod
    def _classify(method: str, exc: SlackApiError) -> str:
        """Raise for permanent failures; return a short description for transient ones."""
        status = int(getattr(exc.response, "status_code", 0) or 0)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or "")
        if error in settings.AUTH_ERRORS:
            raise AuthError(
                f"Slack rejected the workspace token ({error}) on {method}; "
                "the integration must be re-authorised"
            ) from None
        if status == 429 or status >= 500 or error in settings.TRANSIENT_ERRORS:
            return error or f"HTTP {status}"
        if not data or error.startswith("Received a response in a non-JSON format"):
            return "undecodable response body"
        raise SlackCallError(method, error or f"HTTP {status}") from None
