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

Never an answer by mistake: a body that does not parse (the client hands back the raw string),
an answer missing a field Gmail always sends (``settings.REQUIRED_FIELDS``), a batch part that
cannot be matched to its request or was cut short -- each is retried like a 503 and, once the
retries are spent, raises :class:`~connectors.common.TransientError` naming the method. Read as
``{}`` it would be an empty page, and an empty listing soft-deletes every row it reconciles.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.errors import CloseBoundaryNotFoundDefect
from email.feedparser import FeedParser
from email.generator import Generator
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from connectors.common import (
    AuthError,
    ConnectorError,
    PermanentError,
    RunStats,
    Secret,
    TransientError,
)

from . import settings
from .config import GmailConfig

__all__ = [
    "BatchResult",
    "BudgetExhausted",
    "GmailCallError",
    "GmailNotFound",
    "GmailTransport",
    "QuotaPacer",
    "resolve_base_url",
]


class BudgetExhausted(Exception):
    """The run reached ``max_requests``; readers stop cleanly and keep their saved cursors."""


class GmailCallError(PermanentError):
    """Gmail answered with an error that retrying will not fix; the message carries Google's
    own explanation (``error.message``), which usually says exactly what is wrong."""

    def __init__(self, method: str, status: int, reason: str, message: str = "") -> None:
        text = f"Gmail {method} failed: HTTP {status} {reason}".rstrip()
        super().__init__(
            f"{text}: {message}" if message else text,
            provider="gmail",
            method=method,
            code=reason,
            detail={"status": status, "reason": reason, "message": message},
        )
        self.status = status
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments: a task's failed state may be pickled.
        args = (self.method, self.status, self.reason, self.detail.get("message", ""))
        return (type(self), args)


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


@dataclass(frozen=True)
class _ErrorDetails:
    status: int
    short: str  # Google's status (``RESOURCE_EXHAUSTED``) or the first reason
    reasons: frozenset[str]
    message: str  # Google's human-readable ``error.message``
    retry_after: float


def _error_details(exc: HttpError) -> _ErrorDetails:
    """What an HttpError says, in Google's JSON error shape or the OAuth one."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    try:
        data = json.loads(exc.content or b"null")
    except (ValueError, TypeError):
        data = None
    reasons: set[str] = set()
    short = message = ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        reasons = {str(e.get("reason")) for e in error.get("errors") or () if e.get("reason")}
        if error.get("status"):
            reasons.add(str(error["status"]))
        short = str(error.get("status") or next(iter(sorted(reasons)), ""))
        message = str(error.get("message") or "")
    elif isinstance(error, str):  # OAuth-style {"error": "invalid_grant"}
        reasons = {error}
        short = error
        message = str(data.get("error_description") or "") if isinstance(data, dict) else ""
    retry_after = 0.0
    try:
        retry_after = max(float((exc.resp or {}).get("retry-after") or 0), 0.0)
    except (TypeError, ValueError):
        retry_after = 0.0
    return _ErrorDetails(status, short, frozenset(reasons), message[:300], retry_after)


def _unusable(method: str, body: Any) -> str | None:
    """Why a 2xx answer of ``method`` is not a usable answer (``None`` when it is)."""
    if not isinstance(body, dict):
        return "response body does not parse (truncated?)"
    missing = [name for name in settings.REQUIRED_FIELDS.get(method, ()) if name not in body]
    if missing:
        return f"answer without {', '.join(missing)} (truncated or malformed)"
    return None


@dataclass
class BatchResult:
    """The outcome of :meth:`GmailTransport.batch`, by request id; every id lands in exactly
    one of ``answers`` (usable bodies), ``gone`` (404: deleted since listed) or ``failed``
    (refused for good, or still failing when the retries ran out)."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    failed: dict[str, ConnectorError] = field(default_factory=dict)

    def raise_failures(self, method: str) -> None:
        """For callers that cannot skip a request: raise the first failure, counted."""
        if not self.failed:
            return
        first = next(iter(self.failed.values()))
        total = len(self.answers) + len(self.gone) + len(self.failed)
        message = f"{len(self.failed)} of {total} batched {method} requests failed; first: {first}"
        if isinstance(first, PermanentError):
            raise PermanentError(
                message,
                provider="gmail",
                method=method,
                code=first.code,
                detail=first.detail,
            ) from first
        raise TransientError(message, provider="gmail", method=method) from first


class _Batch(BatchHttpRequest):
    """``BatchHttpRequest`` whose reading of the answer never crashes nor guesses.

    The stock client maps each answer part to its request by ``Content-ID`` and raises
    ``TypeError`` on a part without one (some real Gmail answers carry none), ``IndexError`` on
    a part cut short and ``KeyError`` for a part that never came. Here parts are matched by
    ``Content-ID`` when they carry one and, when none does, by position: Google answers the
    parts in request order. A part that cannot be matched or read is left out of
    :meth:`send`'s answers, and the transport retries its request. Requests are serialised by
    the client's own code (``_serialize_request``, ``_id_to_header``); only reading is ours.
    """

    def send(self, http: Any) -> tuple[dict[str, tuple[httplib2.Response, bytes]], str]:
        """POST the batch: (answers by request id, why some are missing, "" when none are)."""
        message = MIMEMultipart("mixed")
        # As the client does: the envelope's own headers go in the HTTP request, not the body.
        message._write_headers = lambda self: None  # type: ignore[attr-defined]
        for request_id in self._order:
            part = MIMENonMultipart("application", "http")
            part["Content-Transfer-Encoding"] = "binary"
            part["Content-ID"] = self._id_to_header(request_id)
            part.set_payload(self._serialize_request(self._requests[request_id]))
            message.attach(part)
        buffer = io.StringIO()
        Generator(buffer, mangle_from_=False).flatten(message, unixfrom=False)
        content_type = f'multipart/mixed; boundary="{message.get_boundary()}"'
        resp, content = http.request(
            self._batch_uri,
            method="POST",
            body=buffer.getvalue(),
            headers={"content-type": content_type},
        )
        if resp.status >= 300:
            raise HttpError(resp, content, uri=self._batch_uri)
        return self._read(str(resp.get("content-type", "")), content)

    def _read(
        self, content_type: str, content: bytes
    ) -> tuple[dict[str, tuple[httplib2.Response, bytes]], str]:
        try:
            text, complete = content.decode("utf-8"), True
        except UnicodeDecodeError as exc:  # cut inside a multi-byte character
            text, complete = content[: exc.start].decode("utf-8"), False
        parser = FeedParser()
        parser.feed(f"content-type: {content_type}\r\n\r\n{text}")
        mime = parser.close()
        parts = mime.get_payload() if mime.is_multipart() else None
        if not isinstance(parts, list) or not parts:
            raise BatchError("Response not in multipart/mixed format.")
        if any(isinstance(d, CloseBoundaryNotFoundDefect) for d in mime.defects):
            complete = False
        if not complete:
            parts = parts[:-1]  # the answer was cut short inside its last part
        ids = [self._content_id(part) for part in parts]
        order = list(self._order)
        if all(i is None for i in ids) and (
            len(parts) == len(order) or (not complete and len(parts) < len(order))
        ):
            ids = order[: len(parts)]
        answers: dict[str, tuple[httplib2.Response, bytes]] = {}
        for request_id, part in zip(ids, parts, strict=True):
            payload = part.get_payload()
            if request_id not in self._requests or request_id in answers:
                continue
            if not isinstance(payload, str):
                continue
            try:
                resp, body = self._deserialize_response(payload)
            except (ValueError, IndexError):  # a status line or header block cut short
                continue
            answers[str(request_id)] = (resp, body.encode("utf-8"))
        missing = len(order) - len(answers)
        if not missing:
            return answers, ""
        cut = "" if complete else ", the answer was cut short"
        return answers, f"{missing} of {len(order)} parts missing or unreadable{cut}"

    def _content_id(self, part: Any) -> str | None:
        """The request id a part names; ``None`` without a Content-ID, "" for one we cannot
        read (never matched, and it rules out matching the answer by position)."""
        header = part.get("Content-ID")
        if header is None:
            return None
        try:
            return str(self._header_to_id(str(header)))
        except (BatchError, ValueError, IndexError):
            return ""


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
        details = _error_details(exc)
        status, short, reasons = details.status, details.short, details.reasons
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
                "the mailbox must be re-authorised",
                provider="gmail",
                method=method,
                code=short,
                detail={"status": status, "message": details.message},
            ) from None
        if rate_limited or status in settings.RETRYABLE_STATUSES:
            return _Transient(f"HTTP {status} {short}".rstrip(), details.retry_after)
        if status == 404:
            raise GmailNotFound(method, status, short, details.message) from None
        raise GmailCallError(method, status, short, details.message) from None

    @staticmethod
    def _auth_failed(method: str) -> AuthError:
        return AuthError(
            f"Gmail rejected the access token on {method}; the mailbox must be re-authorised",
            provider="gmail",
            method=method,
        )

    # -- single calls ------------------------------------------------------------------------

    def call(self, method: str, request: Callable[[], HttpRequest]) -> dict[str, Any]:
        """Execute ``request()`` (a fresh HttpRequest per attempt) with retries; returns a
        usable answer (a JSON object with the method's required fields) or raises."""
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
            except HttpError as exc:
                problem = self._classify(method, exc)
            except RefreshError:
                raise self._auth_failed(method) from None
            except _TRANSPORT_ERRORS as exc:
                problem = _Transient(type(exc).__name__)
            else:
                self._pacer.settle()
                unusable = _unusable(method, response)
                if unusable is None:
                    return dict(response)
                problem = _Transient(unusable)
                continue
            self._pacer.settle()
        raise TransientError(
            f"Gmail {method} failed after {self._config.max_retries + 1} attempts: {problem}",
            provider="gmail",
            method=method,
        )

    # -- batches -----------------------------------------------------------------------------

    def batch(
        self,
        method: str,
        requests: Mapping[str, Callable[[], HttpRequest]],
        id_field: str | None = "id",
    ) -> BatchResult:
        """Execute many requests of one ``method`` in batches of their own.

        Parts answered 404 are ``gone`` (deleted since listed); parts refused for good are
        ``failed`` at once; transient failures -- a 429/5xx part, a part that does not parse
        or lacks required fields, a part missing from the answer, a whole answer lost or cut
        short -- are retried alone, in a smaller batch, with backoff, and are ``failed`` with
        a :class:`TransientError` when the retries run out. Parts that succeeded are never
        re-sent. :class:`AuthError` raises at once: it concerns every part.

        Request ids are the resources' ids: an answer whose ``id_field`` names another one
        was matched to the wrong request and is retried, never stored under the wrong key.
        """
        result = BatchResult()
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
            failures = self._batch_round(method, todo, requests, result, id_field)
            self._pacer.settle()
            done = result.answers.keys() | result.gone | result.failed.keys()
            todo = [request_id for request_id in todo if request_id not in done]
            if todo:
                problem = max(failures, key=lambda f: f.retry_after, default=None) or _Transient(
                    "parts missing from the batch response"
                )
        for request_id in todo:
            result.failed[request_id] = TransientError(
                f"Gmail {method} failed after {self._config.max_retries + 1} attempts: {problem}",
                provider="gmail",
                method=method,
            )
        return result

    def _batch_round(
        self,
        method: str,
        todo: list[str],
        requests: Mapping[str, Callable[[], HttpRequest]],
        result: BatchResult,
        id_field: str | None,
    ) -> list[_Transient]:
        """Send ``todo`` as one batch; file the outcomes in ``result``, return the transient
        failures (whose requests stay to do)."""
        failures: list[_Transient] = []
        envelope = _Batch(batch_uri=self._batch_uri)
        built = {request_id: requests[request_id]() for request_id in todo}
        for request_id, request in built.items():
            envelope.add(request, request_id=request_id)
        try:
            answers, missing = envelope.send(self._http)
        except BatchError as exc:  # not a multipart answer at all
            return [_Transient(f"malformed batch response: {exc.reason}")]
        except HttpError as exc:
            try:
                return [self._classify(f"{method} (batch)", exc)]
            except GmailCallError as refused:  # the envelope itself refused: every part is
                result.failed.update(dict.fromkeys(todo, refused))
                return []
        except RefreshError:
            raise self._auth_failed(method) from None
        except _TRANSPORT_ERRORS as exc:
            return [_Transient(type(exc).__name__)]
        if missing:
            failures.append(_Transient(missing))
        for request_id, (resp, content) in answers.items():
            request = built[request_id]
            if resp.status >= 300:
                try:
                    failures.append(
                        self._classify(method, HttpError(resp, content, uri=request.uri))
                    )
                except GmailNotFound:
                    result.gone.add(request_id)
                except GmailCallError as refused:
                    result.failed[request_id] = refused
                continue
            body = request.postproc(resp, content)
            unusable = _unusable(method, body)
            if unusable is None and id_field in body and str(body[id_field]) != request_id:
                unusable = "answers another request (matched to the wrong part)"
            if unusable is None:
                result.answers[request_id] = dict(body)
            else:
                failures.append(_Transient(f"part {unusable}"))
        return failures
