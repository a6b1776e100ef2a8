"""``MetaTransport``: the facebook-business SDK on the kit's :class:`Transport`.

One attempt is one ``FacebookAdsApi.call("GET", path, params)``: the SDK does not retry
(``requests`` without retry adapters) and its ``Cursor`` is never used, because it fetches
further pages on its own and stops at the first empty page even when Meta announces a next
one (see ``MetaGraph.pages``). The API is initialised with ``crash_log=False`` (otherwise the
SDK installs an excepthook that posts crash reports to Graph), pinned to v26.0 and pointed at
``AOS_META_GRAPH_URL``. Meta throttles per ad account on its side and says how long to wait
(``errors.classify``); there is no client-side limiter.

Calls made for one ad account run inside :meth:`MetaTransport.account`. There a throttling
answer (codes 4, 17, 32, 613, 80000-80014, whatever ``is_transient`` says) is not slept on:
it raises :class:`AccountThrottled` with the time the usage headers give, so the connector
can pause that account alone and read the others meanwhile. The usage headers of *every*
answer are read, successful ones included (``usage.py``): an answer that says the account is
throttled (a time to regain access, a usage at 100%) pauses it before its next call, and one
near the limit spaces its next call; an ordinary answer, whatever its
``reset_time_duration``, changes nothing. Outside an account (the account list,
``debug_token``) a throttle is waited out by the kit's retry loop.

Heavy pages: to a paged read Meta may answer code 1, "Please reduce the amount of data you're
asking for" (``errors.asks_for_less``); the same request would get the same answer, so
:meth:`MetaTransport.pages` asks for the same page again with half the rows, down to
``min_page_limit``, and reads the rest of that edge of that account at the size that worked
(for the rest of the run). Refused at the floor, it raises :class:`PageTooLarge` for the
caller to ask for less another way (a shorter range, ``insights.py``; a smaller report run,
``reports.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from facebook_business.api import FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookRequestError

from connectors.common import RunStats, Secret, TransientError
from connectors.kit import Failure, Kind, RetryPolicy, TokenPaginator, Transport

from . import settings
from .app import MetaApp
from .config import MetaAdsConfig
from .errors import asks_for_less, classify, throttle_wait
from .usage import read_usage

__all__ = ["USAGE_PAUSE", "AccountThrottled", "MetaTransport", "PageTooLarge", "next_after"]

MIN_THROTTLE_PAUSE = 60.0  # Meta seconds: a throttle without a usable hint still waits this
USAGE_PAUSE = "Meta usage headers asked ad account {account} to wait"
# Methods whose answer is one object, not a ``data`` list.
_OBJECT_METHODS = frozenset({"insights.start", "report_run", "debug_token"})


class AccountThrottled(Exception):
    """Meta throttled an ad account: call it again no earlier than ``until`` (the transport's
    monotonic clock). Not a :class:`~connectors.common.ConnectorError`: nothing failed, the
    account waits (``connector.py``)."""

    def __init__(self, account: str, until: float, wait: float, description: str) -> None:
        super().__init__(f"{description}; ad account {account} paused for {wait:.0f} s")
        self.account = account
        self.until = until
        self.wait = wait
        self.reason = description


class PageTooLarge(TransientError):
    """Meta answered "Please reduce the amount of data you're asking for" to a page of
    ``limit`` rows, the smallest this integration asks for (``min_page_limit``)."""

    def __init__(self, method: str, account: str | None, limit: int) -> None:
        where = f" of {account}" if account else ""
        super().__init__(
            f'Meta {method}{where} still answered code 1 "Please reduce the amount of data '
            f"you're asking for\" at {limit} rows a page",
            provider="meta_ads",
            method=method,
        )
        self.limit = limit


class _AsksForLess(Exception):
    """Code 1 to a paged read: :meth:`MetaTransport.pages` asks again with a smaller page."""


def next_after(body: Mapping[str, Any]) -> str | None:
    """The token of the page after ``body``: Meta sends ``cursors.after`` on the last page
    too, so only a page with ``paging.next`` has one."""
    paging = body.get("paging") or {}
    if "next" not in paging:
        return None
    after = (paging.get("cursors") or {}).get("after")
    return str(after) if after else None


class MetaTransport(Transport):
    provider: ClassVar[str] = "Meta"
    api_url_env: ClassVar[str] = settings.GRAPH_URL_ENV
    default_api_url: ClassVar[str] = settings.DEFAULT_GRAPH_URL

    def __init__(
        self,
        token: Secret,
        config: MetaAdsConfig,
        stats: RunStats,
        *,
        base_url: str | None = None,
        retry_backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        app: MetaApp | None = None,
    ) -> None:
        super().__init__(
            stats,
            RetryPolicy(
                attempts=4,
                backoff_base=retry_backoff / config.rate_scale,
                rate_limit_retries=3,
                server_error_retries=2,
            ),
            max_requests=config.max_requests,
            sleep=sleep,
        )
        self.config = config
        self.clock = clock
        self._account: str | None = None
        self.paused_until: dict[str, float] = {}  # ad account -> clock time it may call again
        self._spaced_until: dict[str, float] = {}  # ad account -> its next call, near the limit
        self._percent: dict[str, float] = {}  # ad account -> the usage its last answer gave
        self._page_limits: dict[tuple[str | None, str], int] = {}  # (account, method) -> rows
        self._paging = False  # a paged read is in flight: code 1 asks for a smaller page
        # Given the app's secret, the SDK's session sends ``appsecret_proof`` (HMAC-SHA256
        # of the token under the secret) with every call (``app.py``).
        self.api = FacebookAdsApi.init(
            app_id=app.app_id if app else None,
            app_secret=app.secret.reveal() if app else None,
            access_token=token.reveal(),
            api_version=settings.API_VERSION,
            timeout=config.timeout,
            crash_log=False,
        )
        self.api._session.GRAPH = self.endpoint(base_url).rstrip("/")

    # -- the kit's hooks -----------------------------------------------------------------
    def classify(self, method: str, error: Exception) -> Failure | None:
        if self._paging and asks_for_less(error):
            raise _AsksForLess from None
        failure = classify(method, error, max_wait=self.config.max_rate_limit_wait)
        if failure is not None and failure.kind is Kind.RATE_LIMITED:
            return dataclasses.replace(
                failure, retry_after=failure.retry_after / self.config.rate_scale
            )
        return failure

    def unusable(self, method: str, answer: Any) -> str | None:
        body = answer.json() if isinstance(answer, FacebookResponse) else None
        if not isinstance(body, dict):
            return f"Meta {method} answered something that is not a JSON object"
        if method not in _OBJECT_METHODS and not isinstance(body.get("data"), list):
            return f"Meta {method} answered without its data list"
        return None

    def failure(self, method: str, error: Exception) -> Failure:
        """The kit's classification, except that a throttle inside :meth:`account` pauses
        that account (:class:`AccountThrottled`) instead of sleeping in the retry loop."""
        problem = super().failure(method, error)
        if problem.kind is Kind.RATE_LIMITED and self._account is not None:
            headers = error.http_headers() if isinstance(error, FacebookRequestError) else None
            hinted = throttle_wait(headers)
            self._pause(max(hinted, MIN_THROTTLE_PAUSE))
            raise self._throttled(problem.description)
        return problem

    def prepare(self, method: str, attempt: int, problem: Failure | None, requests: int = 1) -> Any:
        if self._account is not None and self.paused_for(self._account) > 0:
            raise self._throttled(USAGE_PAUSE.format(account=self._account))
        if self._account is not None:
            spaced = self._spaced_until.get(self._account, 0.0) - self.clock()
            if spaced > 0:
                self._sleep(spaced)
        return super().prepare(method, attempt, problem, requests)

    # -- per-account throttling ----------------------------------------------------------
    def paused_for(self, account_id: str) -> float:
        """Seconds (this transport's clock) before ``account_id`` may call again (0: now)."""
        return max(0.0, self.paused_until.get(account_id, 0.0) - self.clock())

    @contextlib.contextmanager
    def account(self, account_id: str) -> Iterator[None]:
        """Calls inside are made for ad account ``account_id`` (see the module docstring)."""
        outer, self._account = self._account, account_id
        try:
            yield
        finally:
            self._account = outer

    def _pause(self, meta_seconds: float) -> None:
        """Pause the current account for ``meta_seconds`` (Meta's time, divided by
        ``rate_scale``) plus up to 10% jitter, so accounts freed together do not all call at
        once; a pause only ever grows."""
        assert self._account is not None
        wait = meta_seconds / self.config.rate_scale * (1 + 0.1 * random.random())
        until = self.clock() + wait
        self.paused_until[self._account] = max(self.paused_until.get(self._account, 0), until)

    def _throttled(self, description: str) -> AccountThrottled:
        assert self._account is not None
        until = self.paused_until[self._account]
        return AccountThrottled(self._account, until, until - self.clock(), description)

    def _observe(self, response: FacebookResponse) -> None:
        """Read the usage headers of a successful answer (``usage.py``): a throttled account
        pauses before its next call, one near its limit spaces it."""
        if self._account is None:
            return
        usage = read_usage(response.headers())
        before = self._percent.get(self._account)
        self._percent[self._account] = usage.percent
        if usage.throttled:
            self._pause(usage.pause())
            return
        step = usage.percent - before if before is not None else 1.0
        spacing = usage.spacing(step) / self.config.rate_scale
        self._spaced_until[self._account] = self.clock() + spacing

    # -- calls ---------------------------------------------------------------------------
    def call(
        self, verb: str, method: str, path: tuple[str, ...], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One call, retried by the kit; the answer's body. ``method`` names it in errors,
        counts and :meth:`unusable`'s check."""
        query = dict(params)

        def send() -> FacebookResponse:
            response = self.api.call(verb, path, query)
            self._observe(response)
            return response

        response = self.request(method, send)
        body: dict[str, Any] = response.json()
        return body

    def get(self, method: str, path: tuple[str, ...], params: Mapping[str, Any]) -> dict[str, Any]:
        """One GET of an edge, retried by the kit; the answer's body."""
        return self.call("GET", method, path, params)

    def page_limit(self, method: str) -> int:
        """Rows to ask for in a page of ``method`` of the current account."""
        configured = self.config.page_limit
        return min(self._page_limits.get((self._account, method), configured), configured)

    def _smaller_pages(self, method: str, limit: int) -> None:
        """Meta found a page of ``limit`` rows too heavy: halve the account's pages of
        ``method``, or raise :class:`PageTooLarge` at the floor."""
        floor = min(self.config.min_page_limit, self.config.page_limit)
        if limit <= floor:
            raise PageTooLarge(method, self._account, limit)
        smaller = max(floor, limit // 2)
        key = (self._account, method)
        if key not in self._page_limits:
            where = f" of {self._account}" if self._account else ""
            self.stats.warnings.append(
                f"Meta {method}{where}: {limit} rows a page were too much data for Meta; "
                "smaller pages for the rest of the run (a lower page_limit starts there)"
            )
        self._page_limits[key] = smaller
        self.stats.retries += 1

    def pages(
        self, method: str, path: tuple[str, ...], params: Mapping[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of an edge, following ``after`` while Meta announces a next page --
        past empty pages too (Meta sends them), but not past ``max_empty_pages`` of them in
        a row: that is an answer we cannot trust, and never read as the end of the list. A
        page Meta finds too heavy is asked for again, smaller (see the module docstring)."""
        pager = TokenPaginator(f"Meta {method}", next_after)
        empty = 0
        while pager.has_next:
            limit = self.page_limit(method)
            query = {**params, "limit": limit}
            if pager.next_token:
                query["after"] = pager.next_token
            try:
                self._paging = True
                body = self.get(method, path, query)
            except _AsksForLess:
                self._smaller_pages(method, limit)
                continue
            finally:
                self._paging = False
            pager.update(body)
            data = body["data"]
            empty = 0 if data else empty + 1
            if pager.has_next and empty >= self.config.max_empty_pages:
                raise TransientError(
                    f"Meta {method}: {empty} empty pages in a row still announce a next page",
                    provider="meta_ads",
                    method=method,
                )
            yield data
