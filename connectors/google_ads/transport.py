"""``GoogleAdsTransport``: the google-ads client (gRPC + TLS) on the kit's :class:`Transport`.

The client is built the one way that works against any endpoint: ``GoogleAdsClient(
credentials=...)`` with ``google.oauth2`` credentials holding the vault's access token and
the ``AOS_GOOGLE_TOKEN_URL`` setting (``load_from_dict`` would refresh against Google's fixed
token URL), the endpoint from ``AOS_GOOGLE_ADS_API_ENDPOINT``, API version pinned to v26,
raw protobuf rows (``use_proto_plus=False``: no wrapper per row). ``login-customer-id`` is
sent per call, because one integration reaches accounts through several managers. The v26
services have no default retry, so one attempt is one RPC; trusted TLS roots are gRPC's
(``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` or the system's).

An access token lives about an hour, and a run may last longer: a call Google Ads answers with
a refused token (:class:`~.errors.GoogleAdsTokenRefused`) is sent once more with a fresh token
from ``renew`` (the task layer's, see :data:`~connectors.common.TokenRenewal`), which the
credentials object then carries for every later call.

Every attempt first reserves one operation from the :class:`~.budget.OperationBudget`, and
counts as one request. A query is a stream and a stream is not atomic: rows arrive in
batches and the call can fail after some were handed over (INTERNAL, UNAVAILABLE). So
:meth:`GoogleAdsTransport.search` yields batches as they come and, on a failure worth a
retry, sends the query again *as the caller rewrites it then* (``query()``), so the caller
re-reads only what it still lacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from google.ads.googleads.client import GoogleAdsClient
from google.oauth2.credentials import Credentials

from connectors.common import RunStats, Secret, TokenRenewal
from connectors.google_auth import resolve_token_url
from connectors.kit import Failure, Kind, RetryPolicy, Transport

from . import settings
from .budget import OperationBudget, Unmetered
from .config import GoogleAdsConfig
from .errors import QuotaExhausted, classify

__all__ = ["GoogleAdsTransport"]


class GoogleAdsTransport(Transport):
    provider: ClassVar[str] = "Google Ads"
    api_url_env: ClassVar[str] = settings.ENDPOINT_ENV
    default_api_url: ClassVar[str] = settings.DEFAULT_ENDPOINT

    def __init__(
        self,
        token: Secret,
        config: GoogleAdsConfig,
        stats: RunStats,
        *,
        budget: OperationBudget | None = None,
        endpoint: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        renew: TokenRenewal | None = None,
    ) -> None:
        super().__init__(
            stats,
            RetryPolicy(
                attempts=4,
                backoff_base=config.retry_backoff,
                rate_limit_retries=4,
                server_error_retries=2,
            ),
            max_requests=config.max_requests,
            sleep=sleep,
            token=token,
            renew=renew,
        )
        self.config = config
        self.budget: OperationBudget = budget if budget is not None else Unmetered()
        # gRPC asks these credentials for the bearer token before every call (google-auth's
        # AuthMetadataPlugin), so a renewed token is used from the next call on.
        self._credentials = Credentials(token.reveal(), token_uri=resolve_token_url())
        self._client = GoogleAdsClient(
            credentials=self._credentials,
            developer_token=None,  # retired in 2026: access belongs to the Cloud project
            endpoint=self.host(endpoint),
            version=settings.API_VERSION,
            use_proto_plus=False,
        )
        self._ads = self._client.get_service("GoogleAdsService")
        self._customers: Any = None

    @classmethod
    def host(cls, explicit: str | None = None) -> str:
        """``host[:port]`` of the API (gRPC has no URL): ``explicit``, the setting, Google's."""
        return explicit or os.environ.get(cls.api_url_env) or cls.default_api_url

    # -- the kit's hooks -----------------------------------------------------------------
    def classify(self, method: str, error: Exception) -> Failure | None:
        return classify(method, error, max_quota_wait=self.config.max_quota_wait)

    def use_token(self, token: Secret) -> None:
        self._credentials.token = token.reveal()

    def _reserve(self, method: str) -> None:
        if not self.budget.reserve(1):
            self.stats.requests -= 1  # counted by prepare(), never sent
            raise QuotaExhausted(
                f"Google Ads {method}: this integration's share of the project's daily "
                "operations is used up"
            )

    # -- calls ---------------------------------------------------------------------------
    def accessible_customers(self) -> list[str]:
        """``CustomerService.ListAccessibleCustomers``: the ids the user reaches directly."""
        method = "CustomerService.ListAccessibleCustomers"
        if self._customers is None:
            self._customers = self._client.get_service("CustomerService")

        def send() -> Any:
            self._reserve(method)
            return self._customers.list_accessible_customers(timeout=self.config.timeout)

        answer = self.request(method, send)
        return [str(name).rsplit("/", 1)[-1] for name in answer.resource_names]

    def search(
        self,
        what: str,
        customer_id: str,
        login_customer_id: str,
        query: Callable[[], str],
    ) -> Iterator[Sequence[Any]]:
        """Batches of rows of one ``SearchStream`` query, as they arrive.

        A failed attempt that may be retried (a broken stream, a short quota wait) is sent
        again with ``query()`` as it reads *then*; refusals raise at once, the daily quota
        raises :class:`QuotaExhausted`, spent retries :class:`TransientError`; a refused
        access token is renewed once (:meth:`renewing_stream`)."""
        method = f"GoogleAdsService.SearchStream {what}"
        metadata = (("login-customer-id", login_customer_id),)
        return self.renewing_stream(lambda: self._streamed(method, customer_id, metadata, query))

    def _streamed(
        self, method: str, customer_id: str, metadata: Any, query: Callable[[], str]
    ) -> Iterator[Sequence[Any]]:
        problem: Failure | None = None
        attempt = spent = 0
        own = {Kind.RATE_LIMITED: 0, Kind.TRANSIENT: 0}
        while True:
            self.prepare(method, attempt, problem)
            self._reserve(method)
            try:
                responses = self._ads.search_stream(
                    customer_id=customer_id,
                    query=query(),
                    metadata=metadata,
                    timeout=self.config.timeout,
                )
                for response in responses:
                    yield response.results
                return
            except QuotaExhausted:
                raise
            except Exception as error:
                problem = self.failure(method, error)
            attempt += 1
            if self._own_budget(problem) > own.get(problem.kind, 0):
                own[problem.kind] += 1
            else:
                spent += 1
            if spent >= self.policy.attempts:
                raise self.exhausted(method, attempt, problem)
