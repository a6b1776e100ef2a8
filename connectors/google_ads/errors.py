"""The one classification of google-ads failures, read from the structured answer.

Failures arrive in two shapes (the library's exception interceptor wraps only some statuses):

* ``GoogleAdsException`` -- INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND:
  ``.failure.errors[i].error_code`` is a one-of (``query_error``, ``quota_error``, ...),
  ``.error.code()`` the gRPC status, ``.request_id`` the request id;
* ``google.api_core.exceptions.GoogleAPICallError`` -- RESOURCE_EXHAUSTED, INTERNAL,
  UNAVAILABLE, and any error in the middle of a stream: ``.grpc_status_code`` is the status
  and the ``GoogleAdsFailure`` (with ``quota_error_details.retry_delay``) is in the call's
  trailing metadata, under ``google.ads.googleads.v26.errors.googleadsfailure-bin``.

A quota error is one thing in either shape, and its ``retry_delay`` says which: Google
answers ``QuotaError.RESOURCE_EXHAUSTED`` both for too many requests in a short time and for
the daily operations quota (Google Ads API team on the adwords-api forum: "generally occurs
when you are sending too many requests in a short period of time ... also ... if you have
already exceeded the daily limit"), and ``RESOURCE_TEMPORARILY_EXHAUSTED`` for short bursts.
A delay up to ``max_quota_wait`` is ``RATE_LIMITED`` (waited out, then retried, whatever the
enum); only a longer delay -- the daily quota of the OAuth client's project, whose delay runs
to hours -- or a ``RESOURCE_EXHAUSTED`` with no delay to wait at all raises
:class:`QuotaExhausted`, which stops the stream cleanly. UNAUTHENTICATED
and ``authentication_error`` are ``AUTH``: a refused access token (UNAUTHENTICATED with no
typed error, as a front end sends it, or one of :data:`TOKEN_CODES`) is a
:class:`GoogleAdsTokenRefused`, which the transport answers with a fresh token once; any other
``authentication_error`` (``NOT_ADS_USER``, ...) a new token cannot fix. INTERNAL, UNAVAILABLE,
ABORTED, UNKNOWN and
DEADLINE_EXCEEDED (ambiguous) are ``TRANSIENT``; every other typed refusal
(``USER_PERMISSION_DENIED``, ``CUSTOMER_NOT_ENABLED``, query errors) is a
:class:`GoogleAdsCallError` with the error codes and request id in ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.api_core import exceptions as core_exceptions
from google.rpc import error_details_pb2, status_pb2

from connectors.common import AuthError, PermanentError, TokenRefused
from connectors.kit import Failure

from . import settings

__all__ = [
    "FAILURE_KEY",
    "AdsErrorInfo",
    "GoogleAdsAuthError",
    "GoogleAdsCallError",
    "GoogleAdsTokenRefused",
    "QuotaExhausted",
    "TOKEN_CODES",
    "classify",
    "error_info",
]

FAILURE_KEY = f"google.ads.googleads.{settings.API_VERSION}.errors.googleadsfailure-bin"
_TRANSIENT = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
}
_DAILY_QUOTA_CODES = frozenset({"RESOURCE_EXHAUSTED"})
# ``authentication_error`` codes about the access token itself, which a fresh one may cure
# (v26 ``AuthenticationErrorEnum``). The common-errors guide
# (developers.google.com/google-ads/api/docs/get-started/common-errors) gives
# GOOGLE_ACCOUNT_COOKIE_INVALID for "The access token in the request header is either invalid
# or has expired", to be handled by requesting a new token.
TOKEN_CODES = frozenset(
    {
        "GOOGLE_ACCOUNT_COOKIE_INVALID",
        "OAUTH_TOKEN_INVALID",
        "OAUTH_TOKEN_EXPIRED",
        "OAUTH_TOKEN_REVOKED",
        "OAUTH_TOKEN_DISABLED",
    }
)


class GoogleAdsCallError(PermanentError):
    """Google Ads refused a query and will refuse it again (a permission, a closed account,
    a query error)."""


class GoogleAdsAuthError(AuthError):
    """Google Ads refused the credentials: the integration must be reconnected."""


class GoogleAdsTokenRefused(GoogleAdsAuthError, TokenRefused):
    """Google Ads refused the access token itself (expired, revoked, unknown): a fresh one from
    the refresh token may be accepted."""


class QuotaExhausted(Exception):
    """The operations quota is spent: the provider's daily quota of the OAuth client's
    project, or this integration's share of it (``connectors.google_ads.budget``).

    Not a :class:`~connectors.common.ConnectorError`: nothing failed. The connector ends the
    stream cleanly (rows and cursors stored so far stay) and the next run resumes.
    ``retry_after`` is the delay Google gave (0: none); ``hold_for`` the seconds the project
    is to be held for every reader because Google said so (that delay, or
    :data:`~.settings.UNTIMED_QUOTA_HOLD` without one), ``None`` when the stop is ours."""

    def __init__(
        self, message: str, retry_after: float = 0.0, *, hold_for: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.hold_for = hold_for


@dataclass(frozen=True)
class AdsErrorInfo:
    """What one failed call said: its gRPC status, typed errors, quota delay and request id."""

    status: grpc.StatusCode | None
    codes: tuple[tuple[str, str], ...]  # (family, enum name), e.g. ("quota_error", "...")
    message: str
    retry_delay: float | None
    request_id: str

    def has(self, family: str) -> bool:
        return any(f == family for f, _ in self.codes)

    def label(self) -> str:
        status = self.status.name if self.status is not None else "no status"
        codes = ", ".join(f"{f}.{c}" for f, c in self.codes)
        return status + (f" ({codes})" if codes else "")


def _pb(message: Any) -> Any:
    """The protobuf message behind a proto-plus wrapper (or the message itself)."""
    return getattr(message, "_pb", message)


def _failure_from_metadata(metadata: Iterable[Any] | None) -> Any:
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == FAILURE_KEY and isinstance(value, bytes):
            try:
                return ads_errors.GoogleAdsFailure.deserialize(value)
            except Exception:  # an unreadable trailer is no failure we can use
                return None
    return None


def _request_id(metadata: Iterable[Any] | None) -> str:
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == "request-id":
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def _trailers(call: Any) -> Any:
    try:
        return call.trailing_metadata() if call is not None else None
    except Exception:
        return None


def error_info(error: Exception) -> AdsErrorInfo | None:
    """The structured content of a google-ads failure; ``None`` for any other exception."""
    status: grpc.StatusCode | None
    if isinstance(error, GoogleAdsException):
        call = error.error
        status = call.code() if hasattr(call, "code") else None
        failure, request_id = error.failure, error.request_id or ""
    elif isinstance(error, core_exceptions.GoogleAPICallError):
        status = error.grpc_status_code
        trailers = _trailers(error.response)
        failure, request_id = _failure_from_metadata(trailers), _request_id(trailers)
    elif isinstance(error, grpc.RpcError):
        status = error.code() if hasattr(error, "code") else None
        trailers = _trailers(error)
        failure, request_id = _failure_from_metadata(trailers), _request_id(trailers)
    else:
        return None
    codes: list[tuple[str, str]] = []
    delay: float | None = None
    message = ""
    for item in getattr(failure, "errors", None) or ():
        known = len(codes)
        code = _pb(item.error_code)
        family = code.WhichOneof("error_code")
        if family:
            value = getattr(code, family)
            enum = code.DESCRIPTOR.fields_by_name[family].enum_type
            name = enum.values_by_number[value].name if value in enum.values_by_number else "?"
            codes.append((family, name))
        this = "{}.{}".format(*codes[-1]) if len(codes) > known else ""
        message = "; ".join(filter(None, (message, _described(this, item))))
        details = _pb(item).details
        if details.HasField("quota_error_details"):
            wait = details.quota_error_details.retry_delay
            delay = max(delay or 0.0, wait.seconds + wait.nanos / 1e9)
    request_id = request_id or str(getattr(failure, "request_id", "") or "")
    if not message:  # no GoogleAdsFailure: the status's own field violations, if any
        call = error.error if isinstance(error, GoogleAdsException) else None
        message = _violations(_trailers(call or getattr(error, "response", None) or error))
    return AdsErrorInfo(status, tuple(codes), message[:1000], delay, request_id)


def _violations(metadata: Iterable[Any] | None) -> str:
    """The ``google.rpc.BadRequest`` field violations of ``grpc-status-details-bin``
    (``field: description``), for an INVALID_ARGUMENT that carries nothing else."""
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:
            return ""
        found: list[str] = []
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                found.extend(f"{v.field}: {v.description}" for v in bad.field_violations)
        return "; ".join(found) or status.message
    return ""


def _described(code: str, item: Any) -> str:
    """One error of a failure as a reason says it: its code, message and field path
    (``operations[0].create.name``), so no error of several is lost."""
    path = ".".join(
        f"{e.field_name}[{e.index}]" if _pb(e).HasField("index") else e.field_name
        for e in getattr(getattr(item, "location", None), "field_path_elements", None) or ()
    )
    text = f"{code}: {item.message}" if code else str(item.message)
    return text + (f" (field {path})" if path else "")


def classify(method: str, error: Exception, *, max_quota_wait: float) -> Failure | None:
    """The :class:`Failure` ``error`` is; ``None`` when it is not a google-ads failure.

    Raises :class:`QuotaExhausted` for the daily quota (see the module docstring)."""
    info = error_info(error)
    if info is None:
        return None
    label = info.label()
    quota = info.has("quota_error") or info.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    if quota:
        exhausted = any(f == "quota_error" and c in _DAILY_QUOTA_CODES for f, c in info.codes)
        delay = info.retry_delay or 0.0
        if delay > max_quota_wait or (exhausted and info.retry_delay is None):
            raise QuotaExhausted(
                f"Google Ads {method}: the project's operations quota is spent ({label}; "
                f"retry in {round(delay)} s)",
                retry_after=delay,
                hold_for=delay or settings.UNTIMED_QUOTA_HOLD,
            )
        return Failure.rate_limited(f"Google Ads {method} throttled ({label})", delay)
    if info.status == grpc.StatusCode.UNAUTHENTICATED or info.has("authentication_error"):
        auth = [c for f, c in info.codes if f == "authentication_error"]
        token = not info.codes or any(c in TOKEN_CODES for c in auth)
        refused = GoogleAdsTokenRefused if token else GoogleAdsAuthError
        return Failure.refused(
            refused(
                f"Google Ads refused the {'access token' if token else 'credentials'} ({label})",
                provider="google_ads",
                method=method,
                code=label,
                detail=_detail(info),
            )
        )
    if info.status in _TRANSIENT or info.has("internal_error"):
        return Failure.transient(f"Google Ads {method} failed ({label})")
    if info.status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Failure.transient(f"Google Ads {method} timed out", ambiguous=True)
    first = f"{info.codes[0][0]}.{info.codes[0][1]}" if info.codes else label
    return Failure.refused(
        GoogleAdsCallError(
            f"Google Ads refused {method} ({label}): {info.message}".strip(),
            provider="google_ads",
            method=method,
            code=first,
            detail=_detail(info),
        )
    )


def _detail(info: AdsErrorInfo) -> dict[str, Any]:
    return {
        "status": info.status.name if info.status is not None else None,
        "errors": [f"{f}.{c}" for f, c in info.codes],
        "message": info.message,
        "request_id": info.request_id,
    }
