"""The layer that talks HTTP: slack_sdk's WebClient plus auth, pacing, retries and counting.

Everything above this module sees ``SlackTransport.call(method, **params) -> dict`` and one of
four outcomes: the decoded body of a complete ``ok: true`` answer, :class:`AuthError`,
:class:`SlackCallError` (a :class:`~connectors.common.PermanentError`, sent once, carrying
Slack's error code and its ``needed``/``provided`` scopes), or ``TransientError`` once the
retries are spent. Retries live here and only here:

* slack_sdk's retry handlers (429 honouring ``Retry-After``, 5xx, connection resets/timeouts);
  slack_sdk retries 429 only when its rate-limit handler is installed, so we install it;
* our own bounded retry around the SDK call for what the handlers cannot see: a truncated body
  (the SDK turns a body that does not parse into ``ok: false``), an ``ok: true`` page missing
  the list it exists for, an incomplete read, or retries the SDK gave up on. When those are
  spent the call raises :class:`~connectors.common.TransientError` naming the method.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
from collections.abc import Callable, Mapping
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

from connectors.common import AuthError, PermanentError, RunStats, Secret, TransientError

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


class SlackCallError(PermanentError):
    """Slack answered ``ok: false`` with an error that retrying will not fix.

    ``detail`` keeps what Slack said besides the code: for ``missing_scope`` the ``needed``
    and ``provided`` scopes, which are the whole point of the answer (the message shows them).
    """

    def __init__(self, method: str, error: str, detail: Mapping[str, Any] | None = None) -> None:
        detail = dict(detail or {})
        extra = "; ".join(f"{k}: {detail[k]}" for k in _DETAIL_FIELDS if detail.get(k))
        super().__init__(
            f"Slack {method} failed: {error}" + (f" ({extra})" if extra else ""),
            provider="slack",
            method=method,
            code=error,
            detail=detail,
        )
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments: a task's failed state may be pickled.
        return (type(self), (self.method, self.error, self.detail))


# What Slack says besides ``error`` on an ``ok: false`` answer, kept in SlackCallError.detail.
_DETAIL_FIELDS = ("needed", "provided", "warning")


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
        self._warned: set[str] = set()

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
        -> ``conversations_history``) and return the decoded body of an ``ok: true`` answer.

        A body that does not parse, or an ``ok: true`` page without the fields Slack always
        sends (``settings.REQUIRED_FIELDS``), is retried like a 5xx and never returned: read as
        an empty page it would end a listing early and let its reconcile delete live rows.
        Permanent errors raise :class:`SlackCallError` at once; warnings Slack attaches to a
        success go to ``stats.warnings``.
        """
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
                data = response.data
                missing = _missing_fields(method, data)
                if missing is None:
                    assert isinstance(data, dict)
                    self._note_warnings(method, params, data)
                    return dict(data)
                problem = missing
            except SlackApiError as exc:
                problem = self._classify(method, exc)
            except _TRANSPORT_ERRORS as exc:
                problem = type(exc).__name__
            finally:
                self._stats.retries += max(self._stats.requests - before - 1, 0)
        raise TransientError(
            f"Slack {method} failed after {settings.CALL_ATTEMPTS} attempts: {problem}",
            provider="slack",
            method=method,
        )

    def _note_warnings(
        self, method: str, params: Mapping[str, Any], data: Mapping[str, Any]
    ) -> None:
        """Record ``warning`` / ``response_metadata.warnings`` of a success, once per run each:
        Slack uses them for what it silently did differently (``already_in_channel``,
        ``superfluous_charset``), which someone reading the run summary may need to know."""
        found: list[str] = []
        if isinstance(data.get("warning"), str):
            found.extend(w.strip() for w in data["warning"].split(","))
        metadata = data.get("response_metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("warnings"), list):
            found.extend(str(w) for w in metadata["warnings"])
        where = f" (channel {params['channel']})" if params.get("channel") else ""
        for warning in dict.fromkeys(w for w in found if w):
            line = f"Slack {method}{where} warned: {warning}"
            if line not in self._warned:
                self._warned.add(line)
                self._stats.warnings.append(line)

    @staticmethod
    def _classify(method: str, exc: SlackApiError) -> str:
        """Raise for permanent failures; return a short description for transient ones."""
        status = int(getattr(exc.response, "status_code", 0) or 0)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or "")
        if error in settings.AUTH_ERRORS:
            raise AuthError(
                f"Slack rejected the workspace token ({error}) on {method}; "
                "the integration must be re-authorised",
                provider="slack",
                method=method,
                code=error,
            ) from None
        if status == 429 or status >= 500 or error in settings.TRANSIENT_ERRORS:
            return error or f"HTTP {status}"
        if not data or error.startswith("Received a response in a non-JSON format"):
            return "response body does not parse (truncated?)"
        detail = {k: data[k] for k in _DETAIL_FIELDS if data.get(k)}
        raise SlackCallError(method, error or f"HTTP {status}", detail) from None


def _missing_fields(method: str, data: Any) -> str | None:
    """Why an ``ok: true`` answer cannot be used (``None`` when it can)."""
    if not isinstance(data, dict):
        return "response body is not a JSON object"
    for name in settings.REQUIRED_FIELDS.get(method, ()):
        if not isinstance(data.get(name), list):
            return f"answer without its {name!r} list (truncated or malformed page)"
    return None
