"""``MetaTransport``: the facebook-business SDK on the kit's :class:`Transport`.

One attempt is one ``FacebookAdsApi.call("GET", path, params)``: the SDK does not retry
(``requests`` without retry adapters) and its ``Cursor`` is never used, because it fetches
further pages on its own and stops at the first empty page even when Meta announces a next
one (see ``MetaGraph.pages``). The API is initialised with ``crash_log=False`` (otherwise the
SDK installs an excepthook that posts crash reports to Graph), pinned to v26.0 and pointed at
``AOS_META_GRAPH_URL``. Meta throttles per ad account on its side and says how long to wait
(``errors.classify``); there is no client-side limiter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from facebook_business.api import FacebookAdsApi, FacebookResponse

from connectors.common import RunStats, Secret, TransientError
from connectors.kit import Failure, RetryPolicy, TokenPaginator, Transport

from . import settings
from .config import MetaAdsConfig
from .errors import classify

__all__ = ["MetaTransport", "next_after"]


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
    ) -> None:
        super().__init__(
            stats,
            RetryPolicy(
                attempts=4,
                backoff_base=retry_backoff,
                rate_limit_retries=3,
                server_error_retries=2,
            ),
            max_requests=config.max_requests,
            sleep=sleep,
        )
        self.config = config
        self.api = FacebookAdsApi.init(
            access_token=token.reveal(),
            api_version=settings.API_VERSION,
            timeout=config.timeout,
            crash_log=False,
        )
        self.api._session.GRAPH = self.endpoint(base_url).rstrip("/")

    # -- the kit's hooks -----------------------------------------------------------------
    def classify(self, method: str, error: Exception) -> Failure | None:
        return classify(method, error, max_wait=self.config.max_rate_limit_wait)

    def unusable(self, method: str, answer: Any) -> str | None:
        body = answer.json() if isinstance(answer, FacebookResponse) else None
        if not isinstance(body, dict):
            return f"Meta {method} answered something that is not a JSON object"
        if not isinstance(body.get("data"), list):
            return f"Meta {method} answered without its data list"
        return None

    # -- calls ---------------------------------------------------------------------------
    def get(self, method: str, path: tuple[str, ...], params: Mapping[str, Any]) -> dict[str, Any]:
        """One GET of an edge, retried by the kit; the answer's body."""
        query = dict(params)
        response = self.request(method, lambda: self.api.call("GET", path, query))
        body: dict[str, Any] = response.json()
        return body

    def pages(
        self, method: str, path: tuple[str, ...], params: Mapping[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of an edge, following ``after`` while Meta announces a next page --
        past empty pages too (Meta sends them), but not past ``max_empty_pages`` of them in
        a row: that is an answer we cannot trust, and never read as the end of the list."""
        pager = TokenPaginator(f"Meta {method}", next_after)
        empty = 0
        while pager.has_next:
            query = {**params, "limit": self.config.page_limit}
            if pager.next_token:
                query["after"] = pager.next_token
            body = self.get(method, path, query)
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
