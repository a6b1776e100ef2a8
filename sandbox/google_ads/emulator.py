"""The Google Ads API v26 emulator: a gRPC server with local TLS, on the library's own types.

Serves ``GoogleAdsService.SearchStream``, ``GoogleAdsService.Search`` and
``CustomerService.ListAccessibleCustomers`` on ``127.0.0.1``. The certificate is self-signed,
made once per process (gRPC reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` once, when the first
TLS channel is created, so every emulator of a process shares it). OAuth is the shared
:class:`~sandbox.google_oauth.GoogleOAuth`, its ``POST /token`` served over HTTP by a
:class:`~sandbox.server.ProviderServer` started alongside.

Rules of the real server that are enforced, in this order: a valid access token
(``UNAUTHENTICATED`` / ``OAUTH_TOKEN_INVALID``; a token that outlived its lifetime --
``access_token_ttl``, short on request, see :mod:`sandbox.google_oauth` -- is
``GOOGLE_ACCOUNT_COOKIE_INVALID``, which Google's common-errors guide gives for "The access
token in the request header is either invalid or has expired", to be handled by requesting a
new token: developers.google.com/google-ads/api/docs/get-started/common-errors), the daily
operations quota of the OAuth client's project (``RESOURCE_EXHAUSTED`` /
``QuotaError.RESOURCE_EXHAUSTED`` with a long ``retry_delay``; one query, paged or streamed, is
one operation), access (the token's user must reach the customer directly, or through the
manager named in ``login-customer-id``: ``USER_PERMISSION_DENIED`` otherwise), the account's
status (``CUSTOMER_NOT_ENABLED``), then the query (``QueryError``; metrics on a manager: ``REQUESTED_METRICS_FOR_MANAGER``;
``FROM change_status`` without a finite recent range or a LIMIT <= 10,000:
``ChangeStatusError``, see ``changes.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import ipaddress
import itertools
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import date
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.ads.googleads.v26.services.types import customer_service
from google.ads.googleads.v26.services.types import google_ads_service as gas
from google.protobuf import field_mask_pb2

from sandbox.faults import Fault, FaultInjector
from sandbox.google_ads.changes import change_status_rows
from sandbox.google_ads.data import (
    BIDDING,
    METRIC_FIELDS,
    Ad,
    AdGroup,
    AdsAccount,
    Campaign,
    DayMetrics,
)
from sandbox.google_ads.data import account_id as make_account_id
from sandbox.google_ads.errors import AdsError
from sandbox.google_ads.gaql import GaqlError, Query, date_bounds, is_resource, matches, parse
from sandbox.google_oauth import ACCESS_TOKEN_TTL, GoogleOAuth, TokenError, handle_http
from sandbox.protocol import Request, Response, json_response
from sandbox.requestlog import LogEntry, RequestLog
from sandbox.server import ProviderServer

__all__ = [
    "ADWORDS_SCOPE",
    "METRIC_FIELDS",
    "Login",
    "ENDPOINT_ENV",
    "PROVIDER",
    "ROOTS_ENV",
    "SIZES",
    "GoogleAdsEmulator",
    "local_tls",
]

PROVIDER = "google_ads"
ENDPOINT_ENV = "AOS_GOOGLE_ADS_API_ENDPOINT"
ROOTS_ENV = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"
PAGE_SIZE = 10_000  # Search's fixed page size; SearchStream's chunk size
# The Cloud project's daily operations at its API access level (developers.google.com/
# google-ads/api/docs/api-policy/access-levels): Explorer access, which a new project gets
# first, allows 2,880 a day against production accounts (Basic access 15,000: set
# ``daily_operations``).
EXPLORER_DAILY_OPERATIONS = 2_880
SEARCH_STREAM = "GoogleAdsService.SearchStream"
SEARCH = "GoogleAdsService.Search"
LIST_ACCESSIBLE = "CustomerService.ListAccessibleCustomers"
_SERVICE_PREFIX = "google.ads.googleads.v26.services."
# (resource in FROM) -> resources whose fields it may also select ("attributed resources").
ATTRIBUTED = {
    "customer": ("customer",),
    "customer_client": ("customer_client", "customer"),
    "campaign": ("campaign", "campaign_budget", "customer"),
    "ad_group": ("ad_group", "campaign", "customer"),
    "ad_group_ad": ("ad_group_ad", "ad_group", "campaign", "customer"),
    "change_status": ("change_status",),
}
WITH_METRICS = frozenset({"customer", "campaign", "ad_group", "ad_group_ad"})
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
}
# Preset trees for ``populate(size)``: kwargs of :meth:`GoogleAdsEmulator.add_manager_tree`.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"clients": 1, "campaigns": 1, "ad_groups": 1, "ads_per_group": 1},
    "small": {"clients": 3, "campaigns": 2},
    "demo": {"clients": 5, "campaigns": 3},
    "large": {"clients": 20, "campaigns": 5, "ad_groups": 3, "ads_per_group": 3},
}


@functools.cache
def local_tls() -> tuple[str, bytes, bytes]:
    """``(roots_file, key_pem, cert_pem)``: one self-signed cert for localhost and 127.0.0.1
    per process, its PEM written to a temporary file for ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, path = tempfile.mkstemp(prefix="aos-gads-", suffix=".pem")
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert_pem)
    return path, key_pem, cert_pem


class _TokenEndpoint:
    """Google's ``POST /token`` for the Ads emulator: the shared OAuth store over HTTP."""

    name = "google_oauth"

    def __init__(self, oauth: GoogleOAuth) -> None:
        self.oauth = oauth

    def api_method(self, request: Request) -> str:
        return "oauth2.token" if request.path == "/token" else request.path

    def handle(self, request: Request, method: str) -> Response:
        if (consent := handle_http(self.oauth, request)) is not None:  # the connect flow's
            return consent
        if method != "oauth2.token" or request.verb != "POST":
            return json_response({"error": "not_found"}, 404)
        try:
            return json_response(self.oauth.token_endpoint(request.params, request.headers))
        except TokenError as exc:
            return json_response(exc.payload(), status=exc.status)

    def fault_response(self, fault: Fault) -> Response:
        status = int(fault.kind) if fault.kind.isdigit() else 500
        return json_response({"error": "internal_failure"}, status)

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        return self.handle(request, method)

    def revoke_request_token(self, request: Request) -> None:
        self.oauth.revoke_token(str(request.params.get("refresh_token") or ""))

    def env(self, base_url: str) -> dict[str, str]:
        return {"AOS_GOOGLE_TOKEN_URL": f"{base_url}/token"}


@dataclass
class Login:
    """A Google user who granted our app the ``adwords`` scope."""

    email: str
    refresh_token: str
    customers: set[int]


@dataclass
class _Call:
    method: str
    customer_id: str
    login_customer_id: str
    query: str
    page_token: str
    request_id: str


class GoogleAdsEmulator:
    """Accounts, logins, knobs and the gRPC server (see the package docstring for knobs)."""

    name = PROVIDER

    def __init__(
        self,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        oauth: GoogleOAuth | None = None,
        faults: FaultInjector | None = None,
        log: RequestLog | None = None,
        daily_operations: int = EXPLORER_DAILY_OPERATIONS,
        access_token_ttl: float = ACCESS_TOKEN_TTL,
    ) -> None:
        self.seed = seed
        self.time_scale = time_scale
        self.oauth = oauth or GoogleOAuth(
            seed, time_scale=time_scale, access_token_ttl=access_token_ttl
        )
        self.faults = faults or FaultInjector(seed)
        self.log = log or RequestLog()
        self.daily_operations = daily_operations
        self.page_size = PAGE_SIZE
        self.stream_chunk_size = PAGE_SIZE
        self.accounts: dict[int, AdsAccount] = {}
        self.logins: dict[str, Login] = {}
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self._operations: deque[float] = deque()
        self._request_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._grpc: grpc.Server | None = None
        self._port = 0
        self._token_server = self._make_token_server()

    # -- hosting by a Sandbox --------------------------------------------------------------
    serves_itself = True  # a gRPC server of its own: a Sandbox starts it, not a ProviderServer

    def _make_token_server(self) -> ProviderServer:
        return ProviderServer(
            _TokenEndpoint(self.oauth), faults=self.faults, log=self.log, time_scale=self.time_scale
        )

    def attach(
        self,
        *,
        faults: FaultInjector | None = None,
        log: RequestLog | None = None,
        oauth: GoogleOAuth | None = None,
    ) -> None:
        """Share a sandbox's fault rules and request log, and (with Gmail in the same
        sandbox) its Google OAuth store, so a token minted by either is good for both.
        Before :meth:`start` and before any login exists."""
        if self._grpc is not None:
            raise RuntimeError("attach before start")
        if oauth is not None and oauth is not self.oauth:
            if self.logins:
                raise RuntimeError("attach another OAuth store before adding logins")
            self.oauth = oauth
        self.faults = faults if faults is not None else self.faults
        self.log = log if log is not None else self.log
        self._token_server = self._make_token_server()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the OAuth token endpoint served alongside."""
        return self._token_server.base_url

    def oauth_env(self, base_url: str | None = None) -> dict[str, str]:
        """The connect service's Google settings (consent, revoke, userinfo)."""
        from sandbox.google_oauth import oauth_env

        return oauth_env(self.base_url, self.oauth)

    def reset_quota(self) -> None:
        """Forget the operations spent so far (as if the 24-hour window had passed)."""
        with self._lock:
            self._operations.clear()

    def spend_operations(self, operations: int) -> None:
        """Count ``operations`` against the project's quota now, as if other users of the same
        OAuth client had sent them."""
        with self._lock:
            self._operations.extend([time.monotonic()] * operations)

    # -- data ----------------------------------------------------------------------------
    def add_account(
        self,
        name: str,
        *,
        parent: AdsAccount | None = None,
        manager: bool = False,
        currency: str = "USD",
        time_zone: str = "America/New_York",
        status: str = "ENABLED",
        test_account: bool = False,
        hidden: bool = False,
        history_start: date = date(2026, 1, 1),
    ) -> AdsAccount:
        with self._lock:
            account = AdsAccount(
                seed=self.seed,
                id=make_account_id(self.seed, name, len(self.accounts)),
                name=name,
                currency=currency,
                time_zone=time_zone,
                manager=manager,
                status=status,
                test_account=test_account,
                hidden=hidden,
                parent=parent,
                history_start=history_start,
            )
            self.accounts[account.id] = account
            if parent is not None:
                parent.children.append(account)
        return account

    def add_manager_tree(
        self,
        name: str = "Acme Agency",
        *,
        clients: int = 3,
        campaigns: int = 2,
        ad_groups: int = 2,
        ads_per_group: int = 2,
        history_start: date = date(2026, 1, 1),
    ) -> AdsAccount:
        """A manager, a sub-manager, ``clients`` enabled client accounts (alternating between
        the two managers, each with ``campaigns`` campaigns, the first client also a
        Performance Max campaign) and three more: a hidden one, a test one and a cancelled
        one. Currencies and time zones rotate through :data:`~sandbox.google_ads.data.LOCALES`.
        """
        from sandbox.google_ads.data import CHANNELS, LOCALES

        manager = self.add_account(name, manager=True, history_start=history_start)
        sub = self.add_account(
            f"{name} EMEA", parent=manager, manager=True, history_start=history_start
        )
        specs: list[dict[str, Any]] = [{} for _ in range(clients)]
        specs += [{"hidden": True}, {"test_account": True}, {"status": "CANCELED"}]
        for n, spec in enumerate(specs):
            currency, zone = LOCALES[n % len(LOCALES)]
            client = self.add_account(
                f"{name} Client {n + 1}",
                parent=manager if n % 2 == 0 else sub,
                currency=currency,
                time_zone=zone,
                history_start=history_start,
                **spec,
            )
            for c in range(campaigns):
                client.add_campaign(
                    channel=CHANNELS[c % len(CHANNELS)],
                    ad_groups=ad_groups,
                    ads_per_group=ads_per_group,
                )
            if n == 0:
                client.add_campaign(channel="PERFORMANCE_MAX")
        return manager

    def add_login(self, email: str, *customers: AdsAccount | int) -> Login:
        """A user with direct access to ``customers``; returns its refresh token holder."""
        ids = {c.id if isinstance(c, AdsAccount) else int(c) for c in customers}
        with self._lock:
            login = self.logins.get(email)
            if login is None:
                login = Login(email, self.oauth.grant(email, ADWORDS_SCOPE), set())
                self.logins[email] = login
            login.customers |= ids
        return login

    def populate(self, size: str) -> AdsAccount:
        """A preset tree (see :data:`SIZES`) and a login ``ads@acme-agency.test`` on its manager."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        manager = self.add_manager_tree(**SIZES[size])
        self.add_login("ads@acme-agency.test", manager)
        if size == "demo":  # and a client's own account, connected by the client directly
            direct = self.add_account("Globex Direct", currency="EUR", time_zone="Europe/Berlin")
            for channel in ("SEARCH", "DISPLAY"):
                direct.add_campaign(channel=channel)
            self.add_login("ads@globex.example", direct)
        return manager

    def account(self, customer_id: int | str) -> AdsAccount:
        return self.accounts[int(str(customer_id).replace("-", ""))]

    # -- mutations -----------------------------------------------------------------------
    # Each one that changes a campaign, ad group or ad records it for ``change_status`` at
    # ``now()``; building the initial tree (``add_manager_tree``, ``populate``) records none.
    def add_campaign(self, customer_id: int | str, **kwargs: Any) -> Campaign:
        with self._lock:
            account = self.account(customer_id)
            campaign = account.add_campaign(**kwargs)
            at = self.now()
            account.record_change(campaign, "ADDED", at)
            for group in campaign.ad_groups:
                account.record_change(group, "ADDED", at)
                for ad in group.ads:
                    account.record_change(ad, "ADDED", at)
            return campaign

    def add_ad_group(self, campaign: Campaign, name: str | None = None) -> AdGroup:
        with self._lock:
            group = campaign.account.add_ad_group(campaign, name)
            campaign.account.record_change(group, "ADDED", self.now())
            return group

    def add_ad(self, group: AdGroup, **kwargs: Any) -> Ad:
        """A new ad in ``group``; it accrues metrics from ``created`` (default: today)."""
        with self._lock:
            account = group.campaign.account
            kwargs.setdefault("created", account.today(self.now()))
            ad = account.add_ad(group, **kwargs)
            account.record_change(ad, "ADDED", self.now())
            return ad

    def rename(self, entity: Campaign | AdGroup | Ad, name: str) -> None:
        with self._lock:
            entity.name = name
            _account_of(entity).record_change(entity, "CHANGED", self.now())

    def set_status(self, entity: Campaign | AdGroup | Ad, status: str) -> None:
        """``ENABLED``, ``PAUSED`` or ``REMOVED``; a removed entity stops accruing from today."""
        with self._lock:
            entity.status = status
            account = _account_of(entity)
            account.record_change(
                entity, "REMOVED" if status == "REMOVED" else "CHANGED", self.now()
            )
            if status != "REMOVED":
                return
            if isinstance(entity, Campaign):
                entity.end = entity.account.today(self.now())
            elif isinstance(entity, AdGroup):
                today = entity.campaign.account.today(self.now())
                for ad in entity.ads:
                    ad.removed = ad.removed or today
            else:
                entity.removed = entity.ad_group.campaign.account.today(self.now())

    def add_late_conversions(
        self,
        entity: Ad | Campaign,
        day: date,
        conversions: float,
        value: float = 0.0,
    ) -> None:
        """Conversions attributed late to ``day`` (an ad, or a Performance Max campaign):
        they raise ``conversions``, ``conversions_value`` and ``all_conversions`` of that
        day at every level above."""
        with self._lock:
            extra = entity.late.setdefault(day, DayMetrics())
            extra.conversions += conversions
            extra.all_conversions += conversions
            extra.conversions_value += value

    def close_account(self, account: AdsAccount, status: str = "CLOSED") -> None:
        account.status = status

    # -- rows ----------------------------------------------------------------------------
    def _customer_fields(self, acc: AdsAccount) -> dict[str, Any]:
        return {
            "customer.resource_name": acc.resource_name,
            "customer.id": acc.id,
            "customer.descriptive_name": acc.name,
            "customer.currency_code": acc.currency,
            "customer.time_zone": acc.time_zone,
            "customer.manager": acc.manager,
            "customer.test_account": acc.test_account,
            "customer.status": acc.status,
        }

    def _campaign_fields(self, c: Campaign) -> dict[str, Any]:
        budget = f"customers/{c.account.id}/campaignBudgets/{c.budget_id}"
        out = {
            **self._customer_fields(c.account),
            "campaign.resource_name": c.resource_name,
            "campaign.id": c.id,
            "campaign.name": c.name,
            "campaign.status": c.status,
            "campaign.advertising_channel_type": c.channel,
            "campaign.bidding_strategy_type": BIDDING.get(c.channel, "MANUAL_CPC"),
            "campaign.start_date_time": f"{c.start.isoformat()} 00:00:00",
            "campaign.campaign_budget": budget,
            "campaign_budget.resource_name": budget,
            "campaign_budget.id": c.budget_id,
            "campaign_budget.amount_micros": c.budget_micros,
        }
        if c.end is not None:
            out["campaign.end_date_time"] = f"{c.end.isoformat()} 23:59:59"
        return out

    def _ad_group_fields(self, g: AdGroup) -> dict[str, Any]:
        return {
            **self._campaign_fields(g.campaign),
            "ad_group.resource_name": g.resource_name,
            "ad_group.id": g.id,
            "ad_group.name": g.name,
            "ad_group.status": g.status,
            "ad_group.type": g.type,
            "ad_group.campaign": g.campaign.resource_name,
        }

    def _ad_fields(self, a: Ad) -> dict[str, Any]:
        account = a.ad_group.campaign.account
        return {
            **self._ad_group_fields(a.ad_group),
            "ad_group_ad.resource_name": a.resource_name,
            "ad_group_ad.status": a.status,
            "ad_group_ad.ad_group": a.ad_group.resource_name,
            "ad_group_ad.ad.resource_name": f"customers/{account.id}/ads/{a.id}",
            "ad_group_ad.ad.id": a.id,
            "ad_group_ad.ad.name": a.name,
            "ad_group_ad.ad.type": a.type,
            "ad_group_ad.ad.final_urls": list(a.final_urls),
        }

    def _entities(
        self, acc: AdsAccount, resource: str
    ) -> list[tuple[dict[str, Any], Callable[[date], DayMetrics] | None]]:
        def customer_day(day: date) -> DayMetrics:
            out = DayMetrics()
            for c in acc.campaigns:
                out.add(acc.campaign_day(c, day))
            return out

        if resource == "customer":
            return [(self._customer_fields(acc), customer_day)]
        if resource == "customer_client":
            rows: list[tuple[dict[str, Any], Callable[[date], DayMetrics] | None]] = []
            for client, level in acc.descendants():
                rows.append(
                    (
                        {
                            **self._customer_fields(acc),
                            "customer_client.resource_name": f"customers/{acc.id}/customerClients/{client.id}",
                            "customer_client.client_customer": client.resource_name,
                            "customer_client.id": client.id,
                            "customer_client.descriptive_name": client.name,
                            "customer_client.level": level,
                            "customer_client.manager": client.manager,
                            "customer_client.status": client.status,
                            "customer_client.currency_code": client.currency,
                            "customer_client.time_zone": client.time_zone,
                            "customer_client.test_account": client.test_account,
                            "customer_client.hidden": client.hidden,
                        },
                        None,
                    )
                )
            return rows
        out: list[tuple[dict[str, Any], Callable[[date], DayMetrics] | None]] = []
        for c in acc.campaigns:
            if resource == "campaign":
                out.append((self._campaign_fields(c), functools.partial(acc.campaign_day, c)))
                continue
            for g in c.ad_groups:
                if resource == "ad_group":
                    out.append((self._ad_group_fields(g), functools.partial(acc.ad_group_day, g)))
                    continue
                for a in g.ads:
                    out.append((self._ad_fields(a), functools.partial(acc.ad_day, a)))
        return out

    def run_query(self, acc: AdsAccount, text: str) -> tuple[Query, list[dict[str, Any]]]:
        """The flat rows ``text`` selects on ``acc`` (raises :class:`AdsError`)."""
        try:
            query = parse(text)
            return query, self._evaluate(acc, query)
        except GaqlError as exc:
            raise AdsError("query_error", exc.code, exc.message) from None

    def _evaluate(self, acc: AdsAccount, query: Query) -> list[dict[str, Any]]:
        resource = query.resource
        if resource not in ATTRIBUTED:
            code = (
                "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"
                if is_resource(resource)
                else "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"
            )
            raise GaqlError(code, f"Error in FROM clause: resource '{resource}' is not supported.")
        uses_metrics = False
        uses_date = False
        for name in query.fields():
            head = name.split(".")[0]
            if head == "metrics":
                uses_metrics = True
                if resource not in WITH_METRICS:
                    raise GaqlError(
                        "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
                        f"Metrics cannot be requested with resource '{resource}': {name}.",
                    )
            elif head == "segments":
                if name != "segments.date" or resource not in WITH_METRICS:
                    raise GaqlError(
                        "PROHIBITED_SEGMENT_IN_SELECT_OR_WHERE_CLAUSE",
                        f"Segment '{name}' cannot be used here (only segments.date is emulated).",
                    )
                uses_date = True
            elif head not in ATTRIBUTED[resource]:
                raise GaqlError(
                    "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
                    f"Fields of '{head}' are not selectable with resource '{resource}'.",
                )
        if resource == "change_status":
            with self._lock:
                changed = change_status_rows(acc, query, self.now())
            return self._ordered(changed, query)
        if uses_metrics and acc.manager:
            raise GaqlError(
                "REQUESTED_METRICS_FOR_MANAGER",
                "Metrics cannot be requested for a manager account. To retrieve metrics, issue "
                "separate requests against each client account under the manager account.",
            )
        today = acc.today(self.now())
        lo, hi, finite = date_bounds(query.where, today)
        if "segments.date" in query.select and not finite:
            raise GaqlError(
                "EXPECTED_FILTERS_ON_DATE_RANGE",
                "Filters on date range are expected when segments.date is selected: a finite "
                "date range is required.",
            )
        date_conds = [c for c in query.where if c.field == "segments.date"]
        other_conds = [c for c in query.where if c.field != "segments.date"]
        rows: list[dict[str, Any]] = []
        with self._lock:
            entities = self._entities(acc, resource)
            days = acc.days(lo, hi, self.now()) if (uses_metrics or uses_date) else []
            for base, per_day in entities:
                if per_day is None or not (uses_metrics or uses_date):
                    rows.append(base)
                    continue
                total = DayMetrics()
                for day in days:
                    iso = day.isoformat()
                    if not all(matches({"segments.date": iso}, c, today) for c in date_conds):
                        continue
                    m = per_day(day)
                    if m.empty:
                        continue
                    if "segments.date" in query.select:
                        rows.append({**base, "segments.date": iso, **_metric_row(m)})
                    else:
                        total.add(m)
                if "segments.date" not in query.select and not total.empty:
                    rows.append({**base, **_metric_row(total)})
        rows = [r for r in rows if all(matches(r, c, today) for c in other_conds)]
        return self._ordered(rows, query)

    @staticmethod
    def _ordered(rows: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
        for name, descending in reversed(query.order):
            rows.sort(key=functools.partial(_sort_key, name), reverse=descending)
        return rows[: query.limit] if query.limit is not None else rows

    # -- service plumbing ----------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self._grpc is None:
            raise RuntimeError("emulator not started")
        return f"127.0.0.1:{self._port}"

    @property
    def token_url(self) -> str:
        return f"{self._token_server.base_url}/token"

    @property
    def roots_file(self) -> str:
        return local_tls()[0]

    def env(self, base_url: str | None = None) -> dict[str, str]:
        """``AOS_GOOGLE_ADS_API_ENDPOINT`` (host:port), the token URL and the TLS roots file
        (set ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` before the process makes its first TLS
        channel). Before :meth:`start` the addresses are ``base_url``'s (a placeholder)."""
        if self._grpc is None and base_url is not None:
            return {
                ENDPOINT_ENV: base_url.split("://", 1)[-1],
                ROOTS_ENV: self.roots_file,
                "AOS_GOOGLE_TOKEN_URL": f"{base_url}/token",
            }
        return {
            ENDPOINT_ENV: self.endpoint,
            ROOTS_ENV: self.roots_file,
            "AOS_GOOGLE_TOKEN_URL": self.token_url,
        }

    def credentials(self, login: Login) -> dict[str, str]:
        """A token bundle for the vault: a fresh access token, its expiry, and what refreshes
        it (refresh token, OAuth client, token URL)."""
        token, record = self.oauth.issue_access_token(login.email)
        return {
            "access_token": token,
            "expires_at": self.oauth.expires_at_iso(record),
            "token_type": "Bearer",
            "scope": ADWORDS_SCOPE,
            **self.credentials_info(login),
        }

    def credentials_info(self, login: Login) -> dict[str, str]:
        """Keyword arguments for ``google.oauth2.credentials.Credentials``."""
        return {
            "refresh_token": login.refresh_token,
            "client_id": self.oauth.client_id,
            "client_secret": self.oauth.client_secret,
            "token_uri": self.token_url,
        }

    def start(self) -> GoogleAdsEmulator:
        if self._grpc is not None:
            return self
        _, key_pem, cert_pem = local_tls()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    _SERVICE_PREFIX + "GoogleAdsService",
                    {
                        "SearchStream": grpc.unary_stream_rpc_method_handler(
                            self._search_stream,
                            request_deserializer=gas.SearchGoogleAdsStreamRequest.deserialize,
                            response_serializer=gas.SearchGoogleAdsStreamResponse.serialize,
                        ),
                        "Search": grpc.unary_unary_rpc_method_handler(
                            self._search,
                            request_deserializer=gas.SearchGoogleAdsRequest.deserialize,
                            response_serializer=gas.SearchGoogleAdsResponse.serialize,
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    _SERVICE_PREFIX + "CustomerService",
                    {
                        "ListAccessibleCustomers": grpc.unary_unary_rpc_method_handler(
                            self._list_accessible,
                            request_deserializer=customer_service.ListAccessibleCustomersRequest.deserialize,
                            response_serializer=customer_service.ListAccessibleCustomersResponse.serialize,
                        )
                    },
                ),
            )
        )
        self._port = server.add_secure_port(
            "127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)])
        )
        server.start()
        self._grpc = server
        self._token_server.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=0.5).wait(5)
            self._grpc = None
        self._token_server.stop()

    def __enter__(self) -> GoogleAdsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- quota ---------------------------------------------------------------------------
    def operations_used(self) -> int:
        with self._lock:
            self._expire_operations(time.monotonic())
            return len(self._operations)

    def _expire_operations(self, now: float) -> None:
        window = 86_400 / self.time_scale
        while self._operations and self._operations[0] <= now - window:
            self._operations.popleft()

    def _charge_operation(self) -> None:
        """One operation against the OAuth client project's sliding 24-hour quota."""
        now = time.monotonic()
        with self._lock:
            self._expire_operations(now)
            if len(self._operations) >= self.daily_operations:
                wait = self._operations[0] + 86_400 / self.time_scale - now
                raise AdsError(
                    "quota_error",
                    "RESOURCE_EXHAUSTED",
                    f"Too many requests. Retry in {max(1, round(wait))} seconds.",
                    retry_delay=max(1.0, float(round(wait))),
                    rate_scope="DEVELOPER",
                    rate_name="Number of operations for basic access",
                )
            self._operations.append(now)

    # -- handlers ------------------------------------------------------------------------
    def _begin(self, method: str, context: grpc.ServicerContext, **fields: str) -> _Call:
        md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        call = _Call(
            method=method,
            customer_id=fields.get("customer_id", ""),
            login_customer_id=md.get("login-customer-id", ""),
            query=fields.get("query", ""),
            page_token=fields.get("page_token", ""),
            request_id=f"gads-{self.seed}-{next(self._request_ids):06d}",
        )
        return call

    def _authenticate(self, context: grpc.ServicerContext) -> Login:
        md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        header = md.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        subject = self.oauth.authenticate(token) if token else None
        login = self.logins.get(subject or "")
        if login is None:
            code = "OAUTH_TOKEN_HEADER_INVALID"
            if token:
                expired = self.oauth.refusal(token) == "expired"
                code = "GOOGLE_ACCOUNT_COOKIE_INVALID" if expired else "OAUTH_TOKEN_INVALID"
            raise AdsError(
                "authentication_error",
                code,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        return login

    def _authorize(self, login: Login, call: _Call) -> AdsAccount:
        try:
            target = self.account(call.customer_id)
        except (KeyError, ValueError):
            target = None
        via: AdsAccount | None = None
        if call.login_customer_id:
            try:
                via = self.account(call.login_customer_id)
            except (KeyError, ValueError):
                via = None
        denied = AdsError(
            "authorization_error",
            "USER_PERMISSION_DENIED",
            "User doesn't have permission to access customer. Note: If you're accessing a "
            "client customer, the manager's customer id must be set in the "
            "'login-customer-id' header. See https://developers.google.com/google-ads/api/"
            "docs/concepts/call-structure#cid",
        )
        if target is None:
            raise denied
        if call.login_customer_id:
            if via is None or via.id not in login.customers or not target.is_under(via):
                raise denied
        elif target.id not in login.customers:
            raise denied
        if target.status in ("CANCELED", "CLOSED", "SUSPENDED"):
            raise AdsError(
                "authorization_error",
                "CUSTOMER_NOT_ENABLED",
                "The customer account can't be accessed because it is not yet enabled or has "
                "been deactivated.",
            )
        return target

    def _fault(self, call: _Call) -> Fault | None:
        params = {"customer_id": call.customer_id, "login_customer_id": call.login_customer_id}
        return self.faults.pick(PROVIDER, call.method, params=params)

    def _fault_error(self, fault: Fault) -> AdsError:
        if fault.kind == "429":
            # Google answers QuotaError.RESOURCE_EXHAUSTED for a short-term request rate too,
            # not only for the daily quota (Google Ads API team, adwords-api forum: "generally
            # occurs when you are sending too many requests in a short period of time"); the
            # retry_delay tells them apart. ``options={"code": ...}`` picks another enum.
            daily = bool(fault.options.get("daily"))
            delay = float(fault.options.get("retry_delay", 86_000 if daily else fault.retry_after))
            return AdsError(
                "quota_error",
                str(fault.options.get("code", "RESOURCE_EXHAUSTED")),
                f"Too many requests. Retry in {round(delay)} seconds.",
                retry_delay=delay,
                rate_scope="DEVELOPER" if daily else "ACCOUNT",
                rate_name="Number of operations for basic access"
                if daily
                else "Requests per account",
            )
        if fault.kind == "503":
            return AdsError(
                "internal_error",
                "TRANSIENT_ERROR",
                "The service is currently unavailable.",
                status=grpc.StatusCode.UNAVAILABLE,
            )
        return AdsError("internal_error", "INTERNAL_ERROR", "Internal error encountered.")

    def _record(self, call: _Call, status: grpc.StatusCode, fault: Fault | None) -> None:
        params = {
            "customer_id": call.customer_id,
            "login_customer_id": call.login_customer_id,
            "query": call.query,
            "page_token": call.page_token,
            "request_id": call.request_id,
        }
        self.log.append(
            LogEntry(
                provider=PROVIDER,
                method=call.method,
                path=f"/{_SERVICE_PREFIX}{call.method.replace('.', '/')}",
                params={k: v for k, v in params.items() if v},
                status=_HTTP_STATUS.get(status, 500),
                fault=fault.kind if fault else None,
            )
        )

    def _prepare(
        self, call: _Call, context: grpc.ServicerContext, fault: Fault | None, *, charge: bool
    ) -> AdsAccount | None:
        """Auth, quota and access; a fault that ends the call before any row."""
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        login = self._authenticate(context)
        if fault is not None and fault.kind == "revoked":
            self.oauth.revoke_subject(login.email)
            login = self._authenticate(context)
        if fault is not None and fault.kind in ("429", "500", "503", "reset"):
            if not fault.options.get("after_rows"):
                raise self._fault_error(fault)
        if charge:
            self._charge_operation()
        return self._authorize(login, call) if call.customer_id else None

    def _search_stream(
        self, request: gas.SearchGoogleAdsStreamRequest, context: grpc.ServicerContext
    ) -> Iterator[gas.SearchGoogleAdsStreamResponse]:
        call = self._begin(
            SEARCH_STREAM, context, customer_id=request.customer_id, query=request.query
        )
        fault = self._fault(call)
        error: AdsError | None = None
        try:
            account = self._prepare(call, context, fault, charge=True)
            assert account is not None
            query, rows = self.run_query(account, request.query)
        except AdsError as exc:
            error = exc
        if error is not None:
            self._record(call, error.grpc_status, fault)
            error.abort(context, call.request_id)
            return
        cut = int(fault.options.get("after_rows", 0)) if fault is not None else 0
        sent = rows[:cut] if cut else rows
        size = max(1, self.stream_chunk_size)
        if cut:
            size = min(size, cut)
        context.set_trailing_metadata((("request-id", call.request_id),))
        for start in range(0, len(sent), size):
            yield _stream_response(sent[start : start + size], query, call.request_id)
        if cut and fault is not None:
            error = self._fault_error(fault)
            self._record(call, error.grpc_status, fault)
            error.abort(context, call.request_id)
            return
        # Nothing matched: the real server ends the stream without sending any message, not
        # one empty message: googleads/google-ads-python issue 851 ("Get All Campaigns Based
        # on Given Example returns Nothing": ``for batch in response`` never runs) and
        # google-ads-dotnet issue 197 (the response callback never fires on zero rows).
        self._record(call, grpc.StatusCode.OK, fault)

    def _search(
        self, request: gas.SearchGoogleAdsRequest, context: grpc.ServicerContext
    ) -> gas.SearchGoogleAdsResponse:
        call = self._begin(
            SEARCH,
            context,
            customer_id=request.customer_id,
            query=request.query,
            page_token=request.page_token,
        )
        fault = self._fault(call)
        try:
            account = self._prepare(call, context, fault, charge=not request.page_token)
            assert account is not None
            if request.page_size:
                raise AdsError(
                    "request_error",
                    "PAGE_SIZE_NOT_SUPPORTED",
                    "Setting the page size is not supported. Search Responses will have fixed "
                    f"page size of {PAGE_SIZE} rows.",
                )
            offset = self._page_offset(request) if request.page_token else 0
            query, rows = self.run_query(account, request.query)
        except AdsError as exc:
            self._record(call, exc.grpc_status, fault)
            exc.abort(context, call.request_id)
            raise AssertionError("unreachable") from None
        page = rows[offset : offset + self.page_size]
        response = gas.SearchGoogleAdsResponse(
            results=[_to_row(r, query) for r in page],
            field_mask=field_mask_pb2.FieldMask(paths=query.select),
        )
        if offset + self.page_size < len(rows):
            response.next_page_token = self._page_token(request, offset + self.page_size)
        if request.search_settings.return_total_results_count:
            response.total_results_count = len(rows)
        context.set_trailing_metadata((("request-id", call.request_id),))
        self._record(call, grpc.StatusCode.OK, fault)
        return response

    def _page_digest(self, request: gas.SearchGoogleAdsRequest) -> str:
        text = f"{self.seed}|{request.customer_id}|{request.query}"
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    def _page_token(self, request: gas.SearchGoogleAdsRequest, offset: int) -> str:
        raw = f"{offset}:{self._page_digest(request)}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _page_offset(self, request: gas.SearchGoogleAdsRequest) -> int:
        invalid = AdsError("request_error", "INVALID_PAGE_TOKEN", "Page token is invalid.")
        try:
            token = request.page_token
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            offset, digest = raw.split(":")
        except (ValueError, UnicodeDecodeError):
            raise invalid from None
        if digest != self._page_digest(request) or not offset.isdigit():
            raise invalid
        return int(offset)

    def _list_accessible(
        self,
        request: customer_service.ListAccessibleCustomersRequest,
        context: grpc.ServicerContext,
    ) -> customer_service.ListAccessibleCustomersResponse:
        call = self._begin(LIST_ACCESSIBLE, context)
        fault = self._fault(call)
        try:
            self._prepare(call, context, fault, charge=True)
            login = self._authenticate(context)
        except AdsError as exc:
            self._record(call, exc.grpc_status, fault)
            exc.abort(context, call.request_id)
            raise AssertionError("unreachable") from None
        context.set_trailing_metadata((("request-id", call.request_id),))
        self._record(call, grpc.StatusCode.OK, fault)
        return customer_service.ListAccessibleCustomersResponse(
            resource_names=[f"customers/{cid}" for cid in sorted(login.customers)]
        )


def _account_of(entity: Campaign | AdGroup | Ad) -> AdsAccount:
    if isinstance(entity, Ad):
        return entity.ad_group.campaign.account
    if isinstance(entity, AdGroup):
        return entity.campaign.account
    return entity.account


def _metric_row(m: DayMetrics) -> dict[str, Any]:
    return {f"metrics.{k}": v for k, v in m.as_dict().items()}


def _sort_key(name: str, row: dict[str, Any]) -> tuple[int, Any]:
    value = row.get(name)
    return (0, "") if value is None else (1, value)


class _RowPlan:
    """How the flat rows of one SELECT list become ``GoogleAdsRow`` messages: the fields set
    on the library's own protobuf type directly (the selected fields, plus the resource names
    of the resources they belong to, as the real server returns them). Built once per SELECT
    list; much faster than a JSON round trip per row."""

    def __init__(self, select: tuple[str, ...]) -> None:
        heads = sorted({f.split(".")[0] for f in select} - {"metrics", "segments"})
        paths = [f"{h}.resource_name" for h in heads] + list(select)
        root = gas.GoogleAdsRow.pb().DESCRIPTOR
        self.steps: list[tuple[str, tuple[str, ...], str, str, dict[str, int] | None]] = []
        for path in paths:
            descriptor, names = root, []
            parts = path.split(".")
            for part in parts:
                name = part if part in descriptor.fields_by_name else f"{part}_"
                names.append(name)
                fd = descriptor.fields_by_name[name]
                if fd.message_type is not None:
                    descriptor = fd.message_type
            enum = {v.name: v.number for v in fd.enum_type.values} if fd.enum_type else None
            kind = "repeated" if _is_repeated(fd) else "scalar"
            self.steps.append((path, tuple(names[:-1]), names[-1], kind, enum))

    def fill(self, row: Any, flat: dict[str, Any]) -> None:
        for path, parents, name, kind, enum in self.steps:
            value = flat.get(path)
            if value is None:
                continue
            node = row
            for parent in parents:
                node = getattr(node, parent)
            if kind == "repeated":
                getattr(node, name).extend(value)
            elif enum is not None:
                setattr(node, name, enum[value])
            else:
                setattr(node, name, value)


def _is_repeated(fd: Any) -> bool:
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == fd.LABEL_REPEATED


@functools.lru_cache(maxsize=256)
def _plan(select: tuple[str, ...]) -> _RowPlan:
    return _RowPlan(select)


def _stream_response(
    flats: list[dict[str, Any]], query: Query, request_id: str
) -> gas.SearchGoogleAdsStreamResponse:
    pb = gas.SearchGoogleAdsStreamResponse.pb()()
    plan = _plan(tuple(query.select))
    for flat in flats:
        plan.fill(pb.results.add(), flat)
    pb.field_mask.paths.extend(query.select)
    pb.request_id = request_id
    return gas.SearchGoogleAdsStreamResponse.wrap(pb)


def _to_row(flat: dict[str, Any], query: Query) -> gas.GoogleAdsRow:
    """A ``GoogleAdsRow`` holding the selected fields and the resource names of the
    resources they belong to (as the real server returns them)."""
    pb = gas.GoogleAdsRow.pb()()
    _plan(tuple(query.select)).fill(pb, flat)
    return gas.GoogleAdsRow.wrap(pb)
