"""The Meta Graph API (Marketing API v26.0) emulator: routing, tokens, throttling, reports.

Routes (``/v26.0/`` prefix; ``/debug_token`` and ``/oauth/access_token`` also without it):

* ``GET me/adaccounts``, ``GET {business_id}/owned_ad_accounts|client_ad_accounts``;
* ``GET act_X/campaigns|adsets|ads`` (also ``{campaign_id}/adsets|ads``, ``{adset_id}/ads``)
  with ``fields``, ``limit``, ``after``/``before``, ``filtering``, ``effective_status``;
  DELETED and ARCHIVED objects are left out unless an ``effective_status`` filter asks;
* ``GET|POST {node}/insights`` (node: ``act_X``, campaign, ad set or ad); a POST starts an
  async report run, ``GET {report_run_id}`` polls it, ``GET {report_run_id}/insights`` reads;
* ``GET {id}`` reads any object by id (deleted ones too), ``POST {ad_id}`` with ``status``
  and ``DELETE {ad_id}`` change an ad;
* ``GET debug_token?input_token=``, ``GET oauth/access_token?grant_type=fb_exchange_token``.

Every answer about an ad account carries ``x-business-use-case-usage``,
``x-ad-account-usage`` and ``x-app-usage`` (insights answers also
``x-fb-ads-insights-throttle``), failed ones included. Usage is driven by a per-account call
budget over a rolling provider hour, scaled by ``time_scale``; the times the headers announce
(``estimated_time_to_regain_access`` in minutes, ``reset_time_duration`` in seconds) are in
real time, as the sandbox's ``Retry-After`` values are. As Meta's do (Marketing API, "Rate
Limiting"; e.g. ``acc_id_util_pct`` 9.67 with ``reset_time_duration`` 100), ordinary answers
carry the usage so far and a non-zero ``reset_time_duration`` -- the time until the account's
usage window resets, not a wait -- while ``estimated_time_to_regain_access`` stays 0 until
the account is throttled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.clock import TimeScale
from sandbox.faults import Fault
from sandbox.ids import derive_key
from sandbox.meta.data import (
    MetaAccount,
    MetaAd,
    MetaAdSet,
    MetaBusiness,
    MetaCampaign,
    build_business,
    graph_time,
)
from sandbox.meta.graph import (
    BUC_TYPES,
    GraphError,
    apply_filtering,
    invalid_param,
    list_param,
    page,
    parse_filtering,
    rate_limit_error,
)
from sandbox.meta.insights import InsightsQuery, compute_rows, parse_query
from sandbox.meta.limits import check_page, check_query
from sandbox.meta.oauth import MetaOAuth
from sandbox.protocol import Request, Response, json_response

__all__ = ["API_VERSION", "SIZES", "MetaEmulator", "ReportRun", "TokenRecord"]

API_VERSION = "v26.0"
LONG_LIVED_SECONDS = 5_183_944  # what fb_exchange_token answers (about 60 days)
SCOPES = ("ads_read", "ads_management", "business_management", "read_insights")
# Preset businesses for ``populate(size)``: (name, kwargs of add_business).
SIZES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "tiny": [("Acme Agency", {"owned": 1, "clients": 1, "campaigns": 1})],
    "small": [("Acme Agency", {"owned": 1, "clients": 2}), ("Globex", {"owned": 1, "clients": 0})],
    # The agency's business (its own accounts and its clients'), and a client's own business
    # whose token the client connects itself (a per-client integration).
    "demo": [
        ("Acme Agency", {"owned": 2, "clients": 4, "campaigns": 3}),
        ("Globex", {"owned": 1, "clients": 0, "campaigns": 2}),
    ],
    "large": [("Bigco", {"owned": 5, "clients": 20, "campaigns": 5, "ads_per_adset": 4})],
}
_VERSION = re.compile(r"^v\d+\.\d+$")
_OBJECT_FIELDS = {
    "Campaign": (
        "id",
        "name",
        "account_id",
        "status",
        "effective_status",
        "configured_status",
        "objective",
        "created_time",
        "updated_time",
        "start_time",
    ),
    "AdSet": (
        "id",
        "name",
        "account_id",
        "campaign_id",
        "status",
        "effective_status",
        "configured_status",
        "daily_budget",
        "attribution_spec",
        "created_time",
        "updated_time",
        "start_time",
    ),
    "Ad": (
        "id",
        "name",
        "account_id",
        "campaign_id",
        "adset_id",
        "status",
        "effective_status",
        "configured_status",
        "created_time",
        "updated_time",
    ),
    "AdAccount": (
        "id",
        "account_id",
        "name",
        "currency",
        "timezone_name",
        "timezone_offset_hours_utc",
        "account_status",
        "business",
        "created_time",
        "amount_spent",
    ),
}
_DEFAULT_SCRIPT = (("Job Not Started", 0), ("Job Running", 50), ("Job Completed", 100))
_HIDDEN_BY_DEFAULT = ("DELETED", "ARCHIVED")


@dataclass
class TokenRecord:
    token: str
    user_id: str
    business_ids: list[str]
    kind: str  # USER or SYSTEM_USER
    issued_at: datetime
    expires_at: datetime | None  # None: never (system users)
    data_access_expires_at: datetime
    scopes: tuple[str, ...] = SCOPES
    invalid_subcode: int | None = None  # 460: password changed / session invalidated
    app_developer: bool = False  # an owner or developer of the app may call debug_token

    def problem(self, now: datetime) -> GraphError | None:
        if self.invalid_subcode == 460:
            return GraphError(
                190,
                "Error validating access token: The session has been invalidated because the "
                "user changed their password or Facebook has changed the session for "
                "security reasons.",
                subcode=460,
                # Graph API, "Handling Errors": error_user_title / error_user_msg are the words
                # meant for the person, sent with errors they must act on.
                user_title="Session invalidated",
                user_msg="Your session was ended because your password changed. Log in again "
                "to reconnect the app.",
            )
        if self.invalid_subcode is not None:
            return GraphError(190, "Error validating access token.", subcode=self.invalid_subcode)
        if self.expires_at is not None and self.expires_at <= now:
            when = self.expires_at.strftime("%A, %d-%b-%y %H:%M:%S UTC")
            current = now.strftime("%A, %d-%b-%y %H:%M:%S UTC")
            return GraphError(
                190,
                f"Error validating access token: Session has expired on {when}. "
                f"The current time is {current}.",
                subcode=463,
            )
        return None


@dataclass
class ReportRun:
    """An async insights job; ``script`` is the (async_status, percent) each poll shows.
    ``rows`` computes its results (when first read: the emulator keeps the results of a few
    runs only, so a large backfill does not hold every row it ever served)."""

    id: str
    account: MetaAccount
    rows: Callable[[], list[dict[str, Any]]]
    params: dict[str, Any]
    since: date
    until: date
    script: list[tuple[str, int]]
    created: datetime
    fields: tuple[str, ...] = ()  # the fields each result row carries
    polls: int = 0
    shown: str = "Job Not Started"
    completed_at: datetime | None = None
    unready_reads: int = 0  # reads answered 2601 although completed

    def poll(self, now: datetime) -> tuple[str, int]:
        status, percent = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        self.shown = status
        if status == "Job Completed" and self.completed_at is None:
            self.completed_at = now
        return status, percent


@dataclass
class _Budget:
    started: float = 0.0
    used: int = 0
    blocked_until: float = 0.0
    blocked_error: tuple[int, int | None] = (17, 2446079)
    extra: dict[str, Any] = field(default_factory=dict)


class MetaEmulator:
    """Businesses, ad accounts and the Graph endpoints over them."""

    name = "meta"

    def __init__(
        self,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seed = seed
        self.scale = TimeScale(time_scale)
        self.now = now or (lambda: datetime.now(UTC))
        self._clock = clock
        self.app_id = str(10**14 + derive_key(seed, "meta-app") % (9 * 10**14))
        self.app_secret = f"{derive_key(seed, 'meta-secret'):016x}{derive_key(seed, 's2'):016x}"
        self.businesses: dict[str, MetaBusiness] = {}
        self.accounts: dict[str, MetaAccount] = {}  # by "act_<id>"
        self.tokens: dict[str, TokenRecord] = {}
        self.report_runs: dict[str, ReportRun] = {}
        # Knobs (see the module docstring of sandbox.meta).
        self.empty_pages: dict[str, set[int]] = {}
        self.report_scripts: list[list[tuple[str, int]]] = []
        self.budget_window = 3600.0  # provider seconds
        self.app_call_budget: int | None = None
        # "Require App Secret" (App Settings > Advanced): user-token calls without an
        # appsecret_proof are refused (Graph API, "Securing Requests").
        self.require_appsecret_proof = False
        # Usage headers announce waits in real time (default) or, when True, in provider
        # time as Meta would (a client then divides them by the time scale itself).
        self.provider_time_headers = False
        self._report_unready: list[int] = []
        self._report_cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._budgets: dict[str, _Budget] = {}
        self._app = _Budget()
        self._counter = 0
        self._base_url = ""
        self._lock = threading.RLock()
        self.oauth = MetaOAuth(self)  # login dialog, code exchange, app removal

    # -- data ------------------------------------------------------------------------------
    def add_business(
        self,
        name: str = "Acme Agency",
        *,
        owned: int = 1,
        clients: int = 1,
        campaigns: int = 2,
        adsets_per_campaign: int = 2,
        ads_per_adset: int = 2,
        start: date | None = None,
        days: int = 60,
        token_kind: str = "SYSTEM_USER",
        token_lifetime: timedelta | None = None,
    ) -> MetaBusiness:
        """A business with ``owned`` + ``clients`` ad accounts, each with ``campaigns`` x
        ``adsets_per_campaign`` x ``ads_per_adset`` ads starting on or after ``start`` (default
        ``days`` ago). The first four ads of every account are ACTIVE, PAUSED, ARCHIVED and
        DELETED. ``credentials["access_token"]`` sees every account of the business."""
        with self._lock:
            today = self.now().date()
            business = build_business(
                self.seed,
                len(self.businesses),
                name,
                owned=owned,
                clients=clients,
                campaigns=campaigns,
                adsets_per_campaign=adsets_per_campaign,
                ads_per_adset=ads_per_adset,
                start=start or today - timedelta(days=days),
                today=today,
            )
            self.businesses[business.id] = business
            for account in business.accounts:
                self.accounts[account.id] = account
            record = self.issue_token(business, kind=token_kind, lifetime=token_lifetime)
            business.credentials.update({"access_token": record.token, "user_id": record.user_id})
            return business

    def populate(self, size: str) -> list[MetaBusiness]:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return [self.add_business(name, **kwargs) for name, kwargs in SIZES[size]]

    def issue_token(
        self,
        business: MetaBusiness,
        *,
        kind: str = "USER",
        lifetime: timedelta | None = None,
        user_id: str | None = None,
    ) -> TokenRecord:
        """A new token for ``business``; ``lifetime=None`` never expires for system users
        and lasts two hours (a short-lived login token) for users."""
        with self._lock:
            self._counter += 1
            now = self.now()
            digest = hashlib.sha256(f"{self.seed}:{business.id}:{self._counter}".encode())
            token = "EAAB" + digest.hexdigest()[:60]
            if lifetime is None and kind == "USER":
                lifetime = timedelta(hours=2)
            record = TokenRecord(
                token=token,
                user_id=user_id
                or str(10**14 + derive_key(self.seed, "user", business.id) % 10**14),
                business_ids=[business.id],
                kind=kind,
                issued_at=now,
                expires_at=None if lifetime is None else now + lifetime,
                data_access_expires_at=now + timedelta(days=90),
            )
            self.tokens[token] = record
            return record

    def expire_token(self, token: str) -> None:
        """The token expires now (code 190 / subcode 463 from the next call)."""
        with self._lock:
            self.tokens[token].expires_at = self.now() - timedelta(seconds=1)

    def invalidate_token(self, token: str, subcode: int = 460) -> None:
        """The session is invalidated (password change: code 190 / subcode 460)."""
        with self._lock:
            self.tokens[token].invalid_subcode = subcode

    def account(self, account_id: str) -> MetaAccount:
        key = account_id if account_id.startswith("act_") else f"act_{account_id}"
        return self.accounts[key]

    def find_ad(self, ad_id: str) -> MetaAd:
        for account in self.accounts.values():
            if ad_id in account.ads:
                return account.ads[ad_id]
        raise KeyError(ad_id)

    # -- mutations -------------------------------------------------------------------------
    def add_ad(
        self,
        account_id: str,
        *,
        adset_id: str | None = None,
        name: str | None = None,
        first_day: date | None = None,
    ) -> MetaAd:
        """A new ACTIVE ad (in the account's first ad set unless ``adset_id``), delivering
        from ``first_day`` (default today, account time)."""
        with self._lock:
            account = self.account(account_id)
            adset = account.adsets[adset_id] if adset_id else next(iter(account.adsets.values()))
            now = self.now()
            ad = account.add_ad(
                adset, name=name, first_day=first_day or account.today(now), created_time=now
            )
            return ad

    def set_ad_status(
        self, ad_id: str, status: str, *, on: date | None = None, accrue_days: int = 3
    ) -> MetaAd:
        """PAUSED / ARCHIVED stop delivery after ``on`` (default today, account time);
        DELETED keeps accruing ``accrue_days`` more days (Meta: up to 28), ACTIVE resumes."""
        if status not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
            raise GraphError(
                100, "(#100) param status must be one of ACTIVE, PAUSED, ARCHIVED, DELETED"
            )
        with self._lock:
            ad = self.find_ad(ad_id)
            if ad.status == "DELETED" and status != "DELETED":
                raise GraphError(100, "(#100) A deleted object cannot change its status")
            now = self.now()
            day = on or ad.account.today(now)
            ad.status = status
            ad.updated_time = now
            if status == "ACTIVE":
                ad.last_day = None
            elif status == "DELETED":
                ad.last_day = day + timedelta(days=accrue_days)
            else:
                ad.last_day = day
            return ad

    def pause_ad(self, ad_id: str) -> MetaAd:
        return self.set_ad_status(ad_id, "PAUSED")

    def archive_ad(self, ad_id: str) -> MetaAd:
        return self.set_ad_status(ad_id, "ARCHIVED")

    def delete_ad(self, ad_id: str, *, accrue_days: int = 3) -> MetaAd:
        return self.set_ad_status(ad_id, "DELETED", accrue_days=accrue_days)

    def add_late_conversions(
        self,
        ad_id: str,
        day: date,
        *,
        count: int = 1,
        value: str = "50.00",
        action_type: str = "offsite_conversion.fb_pixel_purchase",
    ) -> None:
        """Conversions attributed late to ``day`` (7d_click, 28d_click and the default
        value grow; ``value`` is added to ``action_values`` for purchases)."""
        with self._lock:
            ad = self.find_ad(ad_id)
            account = ad.account
            minor = round(float(value) * 10**account.decimals)
            key = (ad.id, day, action_type)
            old_count, old_value = account.late.get(key, (0, 0))
            account.add_late(key, (old_count + count, old_value + minor))
            ad.updated_time = self.now()

    # -- throttling knobs ------------------------------------------------------------------
    def set_call_budget(self, account_id: str, calls: int) -> None:
        """Calls per rolling provider hour before the account is throttled."""
        with self._lock:
            self.account(account_id).call_budget = calls

    def throttle(
        self,
        account_id: str,
        *,
        code: int = 80004,
        subcode: int | None = 2446079,
        minutes: float = 5.0,
        usage: int = 100,
    ) -> None:
        """Block ``account_id`` for ``minutes`` provider minutes: every call is answered
        with the throttling error ``code`` (4, 17, 32, 613, 80000-80014) and the usage
        headers report ``usage`` percent."""
        rate_limit_error(code, subcode)  # validates the code
        with self._lock:
            budget = self._budgets.setdefault(self.account(account_id).id, _Budget())
            budget.blocked_until = self._clock() + self.scale.real_seconds(minutes * 60)
            budget.blocked_error = (code, subcode)
            budget.extra["usage"] = usage

    def set_data_limit(
        self, account_id: str, *, page_cells: int | None = None, query_rows: int | None = None
    ) -> None:
        """From now on, answer code 1 "Please reduce the amount of data..." to insights pages of
        ``account_id`` carrying more than ``page_cells`` cells (rows x fields) and synchronous
        queries computing more than ``query_rows`` rows (``None``: no limit; see
        ``sandbox/meta/limits.py``)."""
        with self._lock:
            account = self.account(account_id)
            account.max_page_cells, account.max_query_rows = page_cells, query_rows

    def script_next_report(self, *steps: tuple[str, int], unready_reads: int = 0) -> None:
        """The (async_status, percent) that successive polls of the next report run show,
        e.g. ``("Job Running", 100), ("Job Completed", 100)`` or ``("Job Failed", 30)``;
        ``unready_reads`` more reads of its results answer 2601 / 1815107 even once it is
        completed (the race between the status and the results)."""
        with self._lock:
            self.report_scripts.append(list(steps))
            self._report_unready.append(unready_reads)

    def set_empty_pages(self, edge: str, *pages: int) -> None:
        """Answer page numbers ``pages`` (0 is the first) of ``edge`` (``adaccounts``,
        ``campaigns``, ``adsets``, ``ads``, ``insights``) empty, with a ``next`` link."""
        with self._lock:
            self.empty_pages[edge] = set(pages)

    # -- Provider protocol -----------------------------------------------------------------
    def bind(self, base_url: str) -> None:
        self._base_url = base_url

    def env(self, base_url: str) -> dict[str, str]:
        """The Graph endpoint, and the app's id and secret (the connect settings a worker
        needs for ``debug_token`` and ``appsecret_proof``)."""
        return {
            "AOS_META_GRAPH_URL": base_url,
            "AOS_META_CLIENT_ID": self.app_id,
            "AOS_META_CLIENT_SECRET": self.app_secret,
        }

    def oauth_env(self, base_url: str) -> dict[str, str]:
        """The connect settings of this emulator's Meta app: the login dialog, the App ID and
        the App Secret (what an operator copies from the app's Basic settings)."""
        return {
            "AOS_META_DIALOG_URL": f"{base_url}/{API_VERSION}/dialog/oauth",
            "AOS_META_CLIENT_ID": self.app_id,
            "AOS_META_CLIENT_SECRET": self.app_secret,
        }

    def _segments(self, request: Request) -> tuple[str | None, list[str]]:
        parts = [p for p in request.path.split("/") if p]
        if parts and _VERSION.match(parts[0]):
            return parts[0], parts[1:]
        return None, parts

    def api_method(self, request: Request) -> str:
        _, parts = self._segments(request)
        verb = request.verb.upper()
        if not parts:
            return "unknown"
        if parts[0] in ("debug_token", "me") or parts[:2] == ["oauth", "access_token"]:
            return ".".join(parts[:2])
        if len(parts) == 1:
            if parts[0] in self.report_runs:
                return "report_run"
            return {"GET": "node", "POST": "node.update", "DELETE": "node.delete"}.get(verb, "node")
        edge = parts[1]
        if parts[0] in self.report_runs and edge == "insights":
            return "report_run.insights"
        if edge == "insights" and verb == "POST":
            return "insights.async"
        if edge in ("owned_ad_accounts", "client_ad_accounts"):
            return f"business.{edge}"
        return edge

    def fault_response(self, fault: Fault) -> Response:
        """ "429": a throttling error (``options``: ``code`` default 4, ``subcode``);
        "500": code 1 "An unknown error occurred"; "503": code 2, service unavailable."""
        if fault.kind == "429":
            code = int(fault.options.get("code", 4))
            subcode = fault.options.get("subcode")
            error = rate_limit_error(code, None if subcode is None else int(subcode))
        elif fault.kind == "500":
            error = GraphError(
                1, "An unknown error occurred", subcode=99, status=500, transient=True
            )
        else:
            error = GraphError(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                status=503,
                transient=True,
            )
        return json_response(error.payload(), status=error.status)

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        return self.handle(request, method)  # Meta has no kinds of its own yet

    def revoke_request_token(self, request: Request) -> None:
        with self._lock:
            record = self.tokens.get(_token(request))
            if record is not None:
                record.invalid_subcode = 460

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, request: Request, method: str) -> Response:
        headers: dict[str, str] = {}
        with self._lock:
            if (consent := self.oauth.handle(request, self._segments(request)[1])) is not None:
                return consent
            try:
                payload = self._route(request, method, headers)
            except GraphError as error:
                return json_response(error.payload(), status=error.status, headers=headers)
        return json_response(payload, headers=headers)

    def _route(self, request: Request, method: str, headers: dict[str, str]) -> Any:
        version, parts = self._segments(request)
        if version is not None and version != API_VERSION:
            raise GraphError(
                2635,
                f"(#2635) You are calling a deprecated version of the Ads API. Please update "
                f"to the latest version: {API_VERSION}.",
            )
        params = request.params
        if method == "oauth.access_token":
            return self._exchange(params)
        if method == "debug_token":
            return self._debug_token(request)
        record = self._auth(request)
        if method == "me.adaccounts":
            accounts = [a for b in record.business_ids for a in self.businesses[b].accounts]
            return self._edge(request, "adaccounts", accounts, "AdAccount", headers, record)
        if method == "me":
            return {"id": record.user_id, "name": "AudienceOS Sync"}
        if method.startswith("business."):
            business = self.businesses.get(parts[0])
            if business is None or business.id not in record.business_ids:
                raise _no_object(parts[0])
            accounts = business.owned if method.endswith("owned_ad_accounts") else business.clients
            return self._edge(request, "adaccounts", accounts, "AdAccount", headers, record)
        if method in ("report_run", "report_run.insights"):
            return self._report_run(request, method, parts[0], headers, record)
        node = self._node(parts[0], record)
        account = node if isinstance(node, MetaAccount) else node.account
        insights = method in ("insights", "insights.async")
        self._spend_call(account, headers, insights=insights)
        if method == "node":
            return self._render(node, list_param(params, "fields") or ["id"])
        if method in ("node.update", "node.delete"):
            if not isinstance(node, MetaAd):
                raise invalid_param("only ads can be changed in this emulator")
            status = "DELETED" if method == "node.delete" else str(params.get("status", ""))
            self.set_ad_status(node.id, status)
            return {"success": True}
        if method in ("campaigns", "adsets", "ads"):
            kind = {"campaigns": "Campaign", "adsets": "AdSet", "ads": "Ad"}[method]
            pool = {"Campaign": account.campaigns, "AdSet": account.adsets, "Ad": account.ads}
            items = [o for o in pool[kind].values() if _under(o, node)]
            return self._edge(request, method, items, kind, headers, record)
        if insights:
            ads = [ad for ad in account.ads.values() if _under(ad, node)]
            level = {"AdAccount": "account", "Campaign": "campaign", "AdSet": "adset"}.get(
                _kind(node), "ad"
            )
            query = parse_query(params, account.today(self.now()), level)
            if method == "insights.async":
                return self._start_report(
                    account,
                    lambda: compute_rows(account, ads, query, self.now()),
                    dict(params),
                    query,
                )
            rows = compute_rows(account, ads, query, self.now())
            check_query(account, len(rows))
            result = page(
                rows,
                params,
                url=self._url(request),
                empty_pages=frozenset(self.empty_pages.get("insights", ())),
            )
            check_page(account, result["data"], query.fields)
            return result
        raise GraphError(
            100,
            f"(#100) Unsupported {request.verb.lower()} request. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api",
            kind="GraphMethodException",
        )

    # -- auth ------------------------------------------------------------------------------
    def _auth(self, request: Request) -> TokenRecord:
        token = _token(request)
        if not token:
            raise GraphError(104, "An access token is required to request this resource.")
        record = self.tokens.get(token)
        if record is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        problem = record.problem(self.now())
        if problem is not None:
            raise problem
        proof = request.params.get("appsecret_proof")
        if proof:
            wanted = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(str(proof), wanted):
                raise GraphError(100, "Invalid appsecret_proof provided in the API argument")
        elif self.require_appsecret_proof:
            raise GraphError(
                100,
                "API calls from the server require an appsecret_proof argument",
                kind="GraphMethodException",
            )
        return record

    def _debug_token(self, request: Request) -> dict[str, Any]:
        """Graph API reference, "Debug Token": the caller is the app's access token
        (``{app_id}|{app_secret}``) or a token of an owner or developer of the app; anyone
        else is refused with code 100."""
        caller = _token(request)
        if caller != f"{self.app_id}|{self.app_secret}":
            if not self._auth(request).app_developer:
                raise GraphError(
                    100,
                    "(#100) You must provide an app access token, or a user access token that "
                    "is an owner or developer of the app",
                )
        input_token = str(request.params.get("input_token", ""))
        record = self.tokens.get(input_token)
        if record is None:
            return {
                "data": {
                    "error": {"code": 190, "message": "Invalid OAuth access token."},
                    "is_valid": False,
                    "scopes": [],
                }
            }
        data: dict[str, Any] = {
            "app_id": self.app_id,
            "type": record.kind,
            "application": "AudienceOS Sync",
            "data_access_expires_at": int(record.data_access_expires_at.timestamp()),
            "expires_at": 0 if record.expires_at is None else int(record.expires_at.timestamp()),
            "is_valid": True,
            "issued_at": int(record.issued_at.timestamp()),
            "scopes": list(record.scopes),
            "granular_scopes": [
                {"scope": s, "target_ids": list(record.business_ids)}
                for s in record.scopes
                if s == "business_management"
            ],
            "user_id": record.user_id,
        }
        problem = record.problem(self.now())
        if problem is not None:
            data["is_valid"] = False
            data["error"] = {
                "code": problem.code,
                "message": problem.message,
                "subcode": problem.subcode,
            }
        return {"data": data}

    def _exchange(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("grant_type") != "fb_exchange_token":
            raise invalid_param("param grant_type must be fb_exchange_token")
        if str(params.get("client_id")) != self.app_id:
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if str(params.get("client_secret")) != self.app_secret:
            raise GraphError(1, "Error validating client secret.")
        record = self.tokens.get(str(params.get("fb_exchange_token", "")))
        if record is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        problem = record.problem(self.now())
        if problem is not None:
            raise problem
        if record.kind != "USER":  # the exchange is for user tokens ("Get Long-Lived ...")
            raise invalid_param("param fb_exchange_token must be a user access token")
        business = self.businesses[record.business_ids[0]]
        fresh = self.issue_token(
            business, lifetime=timedelta(seconds=LONG_LIVED_SECONDS), user_id=record.user_id
        )
        fresh.business_ids = list(record.business_ids)
        return {
            "access_token": fresh.token,
            "token_type": "bearer",
            "expires_in": LONG_LIVED_SECONDS,
        }

    # -- objects ---------------------------------------------------------------------------
    def _node(self, node_id: str, record: TokenRecord) -> Any:
        visible = [a for b in record.business_ids for a in self.businesses[b].accounts]
        for account in visible:
            if node_id == account.id:
                return account
            for pool in (account.campaigns, account.adsets, account.ads):
                if node_id in pool:
                    return pool[node_id]
        raise _no_object(node_id)

    def _edge(
        self,
        request: Request,
        edge: str,
        items: list[Any],
        kind: str,
        headers: dict[str, str],
        record: TokenRecord,
    ) -> dict[str, Any]:
        params = request.params
        fields = list_param(params, "fields") or ["id"]
        for name in fields:
            if name not in _OBJECT_FIELDS[kind]:
                raise invalid_param(
                    f"Tried accessing nonexisting field ({name}) on node type ({kind})"
                )
        rules = parse_filtering(params)
        statuses = list_param(params, "effective_status")
        if statuses:
            rules.append(("effective_status", "IN", statuses))
        if kind != "AdAccount" and not any(f.endswith("effective_status") for f, _, _ in rules):
            items = [o for o in items if o.effective_status not in _HIDDEN_BY_DEFAULT]
        items = apply_filtering(items, rules, lambda o, f: _field_value(o, f, kind))
        rows = [self._render(o, fields) for o in items]
        result = page(
            rows,
            params,
            url=self._url(request),
            empty_pages=frozenset(self.empty_pages.get(edge, ())),
        )
        if str(params.get("summary", "")).lower() == "true":
            result["summary"] = {"total_count": len(rows)}
        return result

    def _render(self, obj: Any, fields: list[str]) -> dict[str, Any]:
        kind = _kind(obj)
        out: dict[str, Any] = {}
        for name in fields:
            if name not in _OBJECT_FIELDS[kind]:
                raise invalid_param(
                    f"Tried accessing nonexisting field ({name}) on node type ({kind})"
                )
            out[name] = self._value(obj, name)
        if "id" not in out:
            out["id"] = obj.id
        return out

    def _value(self, obj: Any, name: str) -> Any:
        if isinstance(obj, MetaAccount):
            tz = obj.tz
            now = self.now()
            offset = now.astimezone(tz).utcoffset() or timedelta(0)
            return {
                "id": obj.id,
                "account_id": obj.account_id,
                "name": obj.name,
                "currency": obj.currency,
                "timezone_name": obj.timezone_name,
                "timezone_offset_hours_utc": offset.total_seconds() / 3600,
                "account_status": obj.account_status,
                "business": {"id": obj.business.id, "name": obj.business.name},
                "created_time": graph_time(obj.created_time, tz),
                "amount_spent": "0",
            }[name]
        tz = obj.account.tz
        if name in ("created_time", "updated_time", "start_time"):
            moment = obj.created_time if name == "start_time" else getattr(obj, name)
            return graph_time(moment, tz)
        if name == "account_id":
            return obj.account.account_id
        if name == "configured_status":
            return obj.status
        if name in ("campaign_id", "adset_id"):
            return getattr(obj, name.removesuffix("_id")).id
        if name == "daily_budget":
            return str(obj.daily_budget)
        if name == "attribution_spec":  # AdSet reference: list<AttributionSpec>
            return [{"event_type": e, "window_days": d} for e, d in obj.attribution_spec]
        return getattr(obj, name)

    # -- report runs -----------------------------------------------------------------------
    def _start_report(
        self,
        account: MetaAccount,
        rows: Callable[[], list[dict[str, Any]]],
        params: dict[str, Any],
        query: InsightsQuery,
    ) -> dict[str, str]:
        self._counter += 1
        run_id = str(10**15 + derive_key(self.seed, "report", self._counter) % (9 * 10**15))
        script = self.report_scripts.pop(0) if self.report_scripts else list(_DEFAULT_SCRIPT)
        unready = self._report_unready.pop(0) if self._report_unready else 0
        self.report_runs[run_id] = ReportRun(
            id=run_id,
            account=account,
            rows=rows,
            params=params,
            since=query.since,
            until=query.until,
            fields=tuple(query.fields),
            script=script,
            created=self.now(),
            unready_reads=unready,
        )
        return {"report_run_id": run_id}

    def _report_rows(self, run: ReportRun) -> list[dict[str, Any]]:
        rows = self._report_cache.pop(run.id, None)
        if rows is None:
            rows = run.rows()
        self._report_cache[run.id] = rows
        while len(self._report_cache) > 2:
            self._report_cache.popitem(last=False)
        return rows

    def _report_run(
        self,
        request: Request,
        method: str,
        run_id: str,
        headers: dict[str, str],
        record: TokenRecord,
    ) -> dict[str, Any]:
        run = self.report_runs[run_id]
        if run.account.business.id not in record.business_ids:
            raise _no_object(run_id)
        self._spend_call(run.account, headers, insights=True)
        if method == "report_run.insights":
            unready = run.shown == "Job Completed" and run.unready_reads > 0
            if unready:
                run.unready_reads -= 1
            if run.shown != "Job Completed" or unready:
                raise GraphError(
                    2601,
                    "Error accessing adreport job.",
                    subcode=1815107,
                    transient=True,
                    user_title="Loading Async Ads Report Failed",
                    user_msg="Sorry, the report cannot be loaded successfully. Please check "
                    "if your job status is completed instead of failed or running before "
                    "fetching the data.",
                )
            result = page(
                self._report_rows(run),
                request.params,
                url=self._url(request),
                empty_pages=frozenset(self.empty_pages.get("insights", ())),
            )
            check_page(run.account, result["data"], run.fields)
            return result
        status, percent = run.poll(self.now())
        body: dict[str, Any] = {
            "id": run.id,
            "account_id": run.account.account_id,
            "async_status": status,
            "async_percent_completion": percent,
            "date_start": run.since.isoformat(),
            "date_stop": run.until.isoformat(),
            "time_ref": int(run.created.timestamp()),
            "is_running": status in ("Job Not Started", "Job Started", "Job Running"),
            "emails": [],
            "friendly_name": "",
            "schedule_id": "0",
            "time_completed": (
                int(run.completed_at.timestamp()) if run.completed_at is not None else 0
            ),
            "is_bookmarked": False,
        }
        if status == "Job Failed":
            body.update(
                error_code=-2,
                error_subcode=2490547,
                error_message="Report Failed",
                error_user_title="Report Failed",
                error_user_msg="The report could not be generated. Try a smaller date range "
                "or fewer objects.",
            )
        return body

    # -- throttling ------------------------------------------------------------------------
    def _spend_call(self, account: MetaAccount, headers: dict[str, str], *, insights: bool) -> None:
        """Count one call against the account and the app; fill the usage headers; raise
        the throttling error when the account (or the app) is over its budget."""
        now = self._clock()
        window = self.scale.real_seconds(self.budget_window)
        budget = self._budgets.setdefault(account.id, _Budget(started=now))
        if now - budget.started >= window:
            budget.started, budget.used = now, 0
        app = self._app
        if now - app.started >= window:
            app.started, app.used = now, 0
        error: GraphError | None = None
        wait = 0.0
        if budget.blocked_until > now:
            error = rate_limit_error(*budget.blocked_error)
            wait = budget.blocked_until - now
        elif budget.used >= account.call_budget:
            error = rate_limit_error(17, 2446079)
            wait = budget.started + window - now
        elif self.app_call_budget is not None and app.used >= self.app_call_budget:
            error = rate_limit_error(4)
            wait = app.started + window - now
        else:
            budget.used += 1
            app.used += 1
        share = min(100.0, round(budget.used * 100 / max(1, account.call_budget), 2))
        if budget.blocked_until > now:
            share = float(budget.extra.get("usage", 100))
        pct = round(share)
        # The window resets at its end whatever the usage: that is what reset_time_duration
        # says on ordinary answers; a throttled answer's is the time it lasts.
        resets = wait if wait > 0 else (budget.started + window - now if budget.used else 0.0)
        reset_announced = resets * self.scale.factor if self.provider_time_headers else resets
        app_pct = (
            0
            if self.app_call_budget is None
            else min(100, round(app.used * 100 / max(1, self.app_call_budget)))
        )
        announced = wait * self.scale.factor if self.provider_time_headers else wait
        minutes = math.ceil(announced / 60) if wait > 0 else 0
        use_case = "ads_insights" if insights else "ads_management"
        if error is not None and error.code in BUC_TYPES:
            use_case = BUC_TYPES[error.code][0]
        headers["x-business-use-case-usage"] = json.dumps(
            {
                account.business.id: [
                    {
                        "type": use_case,
                        "call_count": pct,
                        "total_cputime": pct // 3,
                        "total_time": pct // 2,
                        "estimated_time_to_regain_access": minutes,
                        "ads_api_access_tier": "standard_access",
                    }
                ]
            },
            separators=(",", ":"),
        )
        headers["x-ad-account-usage"] = json.dumps(
            {
                "acc_id_util_pct": share,
                "reset_time_duration": self.scale.retry_after(reset_announced) if resets > 0 else 0,
                "ads_api_access_tier": "standard_access",
            },
            separators=(",", ":"),
        )
        headers["x-app-usage"] = json.dumps(
            {"call_count": app_pct, "total_cputime": app_pct // 3, "total_time": app_pct // 2},
            separators=(",", ":"),
        )
        if insights:
            headers["x-fb-ads-insights-throttle"] = json.dumps(
                {
                    "app_id_util_pct": float(app_pct),
                    "acc_id_util_pct": share,
                    "ads_api_access_tier": "standard_access",
                },
                separators=(",", ":"),
            )
        if error is not None:
            raise error

    def _url(self, request: Request) -> str:
        host = request.headers.get("host")
        base = f"http://{host}" if host else self._base_url
        return base + request.path.rstrip("/")


def _token(request: Request) -> str:
    token = request.params.get("access_token")
    if token:
        return str(token)
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() in ("oauth", "bearer") else ""


def _no_object(node_id: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation. Please read the Graph "
        "API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        kind="GraphMethodException",
    )


def _kind(obj: Any) -> str:
    return {
        MetaAccount: "AdAccount",
        MetaCampaign: "Campaign",
        MetaAdSet: "AdSet",
        MetaAd: "Ad",
    }[type(obj)]


def _under(obj: Any, node: Any) -> bool:
    """Whether ``obj`` is ``node`` or sits below it (account > campaign > ad set > ad)."""
    if isinstance(node, MetaAccount) or obj is node:
        return True
    if isinstance(obj, MetaAd):
        return node in (obj.adset, obj.campaign)
    if isinstance(obj, MetaAdSet):
        return node is obj.campaign
    return False


def _field_value(obj: Any, name: str, kind: str) -> Any:
    entity, _, attribute = name.rpartition(".")
    prefix = {"Campaign": "campaign", "AdSet": "adset", "Ad": "ad", "AdAccount": "account"}[kind]
    if entity and entity != prefix:
        parent = {"campaign": "campaign", "adset": "adset"}.get(entity)
        if parent is None or not hasattr(obj, parent):
            raise KeyError(name)
        obj = getattr(obj, parent)
    if attribute in ("updated_time", "created_time"):
        return getattr(obj, attribute).timestamp()
    if attribute in ("id", "name", "status", "effective_status", "objective"):
        if not hasattr(obj, attribute):
            raise KeyError(name)
        return getattr(obj, attribute)
    if attribute in ("campaign_id", "adset_id") and hasattr(obj, attribute.removesuffix("_id")):
        return getattr(obj, attribute.removesuffix("_id")).id
    raise KeyError(name)
