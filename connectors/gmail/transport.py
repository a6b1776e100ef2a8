"""Gmail over google-api-python-client, on the kit's transport: one mailbox token, paced,
retried, counted and bounded.

The service is built from the bundled (static) discovery document with ``api_endpoint`` set
to our base URL, and batches are posted to an explicit ``<base>/batch/gmail/v1``:
``BatchHttpRequest`` ignores ``api_endpoint`` (and the discovery document's ``batchPath`` is
the legacy ``batch``). ``build()`` takes ``http`` *or* ``credentials``, so the bearer token is
attached by ``google_auth_httplib2.AuthorizedHttp`` around our own ``httplib2.Http(timeout)``,
with google-auth's own refresh on 401 switched off: the refresh token stays with the task
layer. A call (or a batch) answered 401 is sent once more with a fresh token from ``renew``
(:data:`~connectors.common.TokenRenewal`; the kit's :meth:`~connectors.kit.Transport.renewing`),
which the credentials then carry for every later call; only a refused refresh, or the fresh
token refused too, means the mailbox needs re-authorisation.

Retries, pacing, the request budget and counting are the kit's (``connectors.kit``): requests
are executed with the client's default ``num_retries=0``, so one attempt is one request.
``stats.requests`` counts API calls the way Gmail's quota does: every attempt of a single call
is one request, and every part of a batch is one request (the multipart envelope itself is
not counted). A batch may overshoot ``max_requests`` by at most its own size.
``stats.rate_limited`` counts 429s and 403 ``*RateLimitExceeded`` answers (batch parts
included). Pacing is by quota units (``settings.QUOTA_COST``) per mailbox, shared in the
process (``connectors.kit.limiter``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httplib2
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import HttpRequest

from connectors.common import RunStats, Secret, TokenRenewal
from connectors.kit import Failure, RetryPolicy, SlidingWindowLimiter, Transport, shared_limiter

from . import settings
from .batch import BatchResult, TolerantBatch
from .config import GmailConfig
from .errors import GmailCallError, GmailNotFound, classify, unusable

__all__ = ["GmailTransport"]


class GmailTransport(Transport):
    """Calls Gmail for one mailbox: single requests and batches of ``users.*.get``."""

    provider = "Gmail"
    api_url_env = settings.API_URL_ENV
    default_api_url = settings.DEFAULT_API_URL

    def __init__(
        self,
        token: Secret,
        config: GmailConfig,
        stats: RunStats,
        base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        renew: TokenRenewal | None = None,
    ) -> None:
        policy = RetryPolicy(
            attempts=config.max_retries + 1,
            backoff_base=config.backoff_base,
            max_backoff=settings.MAX_BACKOFF_SECONDS,
        )
        super().__init__(
            stats, policy, max_requests=config.max_requests, sleep=sleep, token=token, renew=renew
        )
        base = self.endpoint(base_url)
        self._batch_uri = base + settings.BATCH_PATH
        # AuthorizedHttp asks these credentials for the bearer token on every request (the
        # batch envelope's too, which Google applies to its parts).
        self._credentials = Credentials(token=token.reveal())
        self._http = AuthorizedHttp(
            self._credentials,
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
        quota = config.quota_units_per_second
        self._quota = (
            shared_limiter("gmail", token.reveal(), "quota", quota, 1.0) if quota else None
        )

    # -- the kit's hooks ---------------------------------------------------------------------

    def classify(self, method: str, error: Exception) -> Failure | None:
        return classify(method, error)

    def unusable(self, method: str, answer: Any) -> str | None:
        return unusable(method, answer)

    def limiter(self, method: str) -> tuple[SlidingWindowLimiter, float] | None:
        """The mailbox's per-user quota; a request of ``method`` costs its quota units."""
        if self._quota is None:
            return None
        return self._quota, float(settings.QUOTA_COST.get(method, 1))

    def use_token(self, token: Secret) -> None:
        self._credentials.token = token.reveal()

    # -- single calls ------------------------------------------------------------------------

    def call(self, method: str, request: Callable[[], HttpRequest]) -> dict[str, Any]:
        """Execute ``request()`` (a fresh HttpRequest per attempt) with retries; returns a
        usable answer (a JSON object with the method's required fields) or raises."""
        return dict(self.request(method, lambda: request().execute(http=self._http)))

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

        A refused access token (the envelope's or a part's 401) is renewed once and the parts
        not yet answered are sent again with it.
        """
        result = BatchResult()
        self.renewing(lambda: self._batches(method, requests, result, id_field))
        return result

    def _batches(
        self,
        method: str,
        requests: Mapping[str, Callable[[], HttpRequest]],
        result: BatchResult,
        id_field: str | None,
    ) -> None:
        todo = result.pending(requests)
        problem: Failure | None = None
        for attempt in range(self.policy.attempts):
            if not todo:
                break
            limiter = self.prepare(method, attempt, problem, requests=len(todo))
            try:
                failures = self._batch_round(method, todo, requests, result, id_field)
            finally:
                if limiter is not None:
                    limiter.settle()
            todo = result.pending(todo)
            problem = None
            if todo:
                problem = max(failures, key=lambda f: f.retry_after, default=None) or (
                    Failure.transient("parts missing from the batch response")
                )
        for request_id in todo:
            result.failed[request_id] = self.exhausted(method, self.policy.attempts, problem)

    def _batch_round(
        self,
        method: str,
        todo: list[str],
        requests: Mapping[str, Callable[[], HttpRequest]],
        result: BatchResult,
        id_field: str | None,
    ) -> list[Failure]:
        """Send ``todo`` as one batch; file the outcomes in ``result``, return the transient
        failures (whose requests stay to do)."""
        envelope = TolerantBatch(batch_uri=self._batch_uri)
        built = {request_id: requests[request_id]() for request_id in todo}
        for request_id, request in built.items():
            envelope.add(request, request_id=request_id)
        try:
            answers, missing = envelope.send(self._http)
        except BatchError as exc:  # not a multipart answer at all
            return [Failure.transient(f"malformed batch response: {exc.reason}")]
        except Exception as exc:
            try:
                return [self.failure(f"{method} (batch)", exc)]
            except GmailCallError as refused:  # the envelope itself refused: every part is
                result.failed.update(dict.fromkeys(todo, refused))
                return []
        failures = [Failure.transient(missing)] if missing else []
        for request_id, (resp, content) in answers.items():
            request = built[request_id]
            if resp.status >= 300:
                try:
                    failures.append(self.failure(method, HttpError(resp, content, uri=request.uri)))
                except GmailNotFound:
                    result.gone.add(request_id)
                except GmailCallError as refused:
                    result.failed[request_id] = refused
                continue
            body = request.postproc(resp, content)
            why = unusable(method, body)
            if why is None and id_field in body and str(body[id_field]) != request_id:
                why = "answers another request (matched to the wrong part)"
            if why is None:
                result.answers[request_id] = dict(body)
            else:
                failures.append(Failure.transient(f"part {why}"))
        return failures
