"""The one classification of google-ads failures, on both shapes a quota error arrives in.

The failures are built the way the library hands them over (a ``GoogleAdsFailure`` serialized
into the ``...googleadsfailure-bin`` trailer of a gRPC call), from v26 message types; the
expected kinds are Google's documented meanings, not the classifier's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.api_core import exceptions as core_exceptions
from google.protobuf import duration_pb2

from connectors.common import AuthError, TokenRefused
from connectors.google_ads.errors import (
    GoogleAdsAuthError,
    GoogleAdsCallError,
    QuotaExhausted,
    classify,
)
from connectors.kit import Kind

KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"


@dataclass
class FakeCall:
    """What a finished gRPC call offers: its status and trailing metadata."""

    status: grpc.StatusCode
    trailers: tuple[tuple[str, Any], ...]

    def code(self) -> grpc.StatusCode:
        return self.status

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self.trailers


def failure(family: str, code: str, delay: float | None = None) -> Any:
    error = ads_errors.GoogleAdsError(
        error_code=ads_errors.ErrorCode(**{family: code}), message=f"{family} {code}"
    )
    if delay is not None:
        whole = int(delay)
        error.details = ads_errors.ErrorDetails(
            quota_error_details=ads_errors.QuotaErrorDetails(
                rate_scope="DEVELOPER",
                retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((delay - whole) * 1e9)),
            )
        )
    return ads_errors.GoogleAdsFailure(errors=[error], request_id="req-1")


def wrapped(status: grpc.StatusCode, family: str, code: str, delay: float | None = None) -> Any:
    """The ``GoogleAdsException`` shape (what Google's own examples catch)."""
    found = failure(family, code, delay)
    call = FakeCall(status, ((KEY, ads_errors.GoogleAdsFailure.serialize(found)),))
    return GoogleAdsException(call, call, found, "req-1")  # type: ignore[arg-type]


def plain(status: grpc.StatusCode, family: str, code: str, delay: float | None = None) -> Any:
    """The ``google.api_core`` shape: the failure only in the trailing metadata."""
    found = ads_errors.GoogleAdsFailure.serialize(failure(family, code, delay))
    call = FakeCall(status, ((KEY, found), ("request-id", "req-2")))
    exc = core_exceptions.from_grpc_status(status, "failed", response=call)
    return exc


@pytest.mark.parametrize("shape", [wrapped, plain], ids=["GoogleAdsException", "api_core"])
@pytest.mark.parametrize("code", ["RESOURCE_TEMPORARILY_EXHAUSTED", "RESOURCE_EXHAUSTED"])
def test_a_short_quota_wait_is_honoured_in_both_shapes(shape: Any, code: str) -> None:
    """Google answers RESOURCE_EXHAUSTED for a short-term request rate too (Google Ads API
    team, adwords-api forum); a short retry_delay is waited out whatever the enum."""
    error = shape(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_error", code, 7.5)
    found = classify("q", error, max_quota_wait=120)
    assert found is not None
    assert found.kind is Kind.RATE_LIMITED and found.retry_after == 7.5


@pytest.mark.parametrize("shape", [wrapped, plain], ids=["GoogleAdsException", "api_core"])
def test_the_daily_quota_stops_the_run_in_both_shapes(shape: Any) -> None:
    daily = shape(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_error", "RESOURCE_EXHAUSTED", 86000)
    with pytest.raises(QuotaExhausted) as stop:
        classify("q", daily, max_quota_wait=120)
    assert stop.value.retry_after == stop.value.hold_for == 86000  # the project is held
    # A "temporary" answer asking for more than we wait in a run is the same thing.
    long = shape(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", 600
    )
    with pytest.raises(QuotaExhausted):
        classify("q", long, max_quota_wait=120)
    # RESOURCE_EXHAUSTED with no delay to wait has nothing to retry on.
    bare = shape(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_error", "RESOURCE_EXHAUSTED")
    with pytest.raises(QuotaExhausted) as stop:
        classify("q", bare, max_quota_wait=120)
    assert stop.value.hold_for == 3600  # held an hour: the next scheduled run asks again
    assert not issubclass(QuotaExhausted, core_exceptions.GoogleAPIError)


def test_refusals_auth_and_server_errors() -> None:
    denied = wrapped(
        grpc.StatusCode.PERMISSION_DENIED, "authorization_error", "USER_PERMISSION_DENIED"
    )
    found = classify("q", denied, max_quota_wait=120)
    assert found is not None and found.kind is Kind.PERMANENT
    assert isinstance(found.refusal, GoogleAdsCallError)
    assert found.refusal.code == "authorization_error.USER_PERMISSION_DENIED"
    assert found.refusal.detail["request_id"] == "req-1"

    auth = wrapped(grpc.StatusCode.UNAUTHENTICATED, "authentication_error", "OAUTH_TOKEN_INVALID")
    found = classify("q", auth, max_quota_wait=120)
    assert found is not None and found.kind is Kind.AUTH
    assert isinstance(found.refusal, GoogleAdsAuthError | AuthError)

    for status in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
        broken = plain(status, "internal_error", "INTERNAL_ERROR")
        found = classify("q", broken, max_quota_wait=120)
        assert found is not None and found.kind is Kind.TRANSIENT
    bare = core_exceptions.ServiceUnavailable("front end")  # no failure, no call
    found = classify("q", bare, max_quota_wait=120)
    assert found is not None and found.kind is Kind.TRANSIENT
    assert classify("q", ValueError("a bug"), max_quota_wait=120) is None


@pytest.mark.parametrize(
    ("status", "code", "renewable"),
    [
        # "The access token in the request header is either invalid or has expired ... Request
        # a new token" (common-errors guide, developers.google.com/google-ads/api/docs/
        # get-started/common-errors); the v26 AuthenticationErrorEnum's token errors.
        (grpc.StatusCode.UNAUTHENTICATED, "GOOGLE_ACCOUNT_COOKIE_INVALID", True),
        (grpc.StatusCode.UNAUTHENTICATED, "OAUTH_TOKEN_EXPIRED", True),
        (grpc.StatusCode.UNAUTHENTICATED, "OAUTH_TOKEN_INVALID", True),
        (grpc.StatusCode.UNAUTHENTICATED, "OAUTH_TOKEN_REVOKED", True),
        # "The Google account that generated the OAuth access token is not associated with a
        # Google Ads account": another token of the same account is no better.
        (grpc.StatusCode.UNAUTHENTICATED, "NOT_ADS_USER", False),
        (grpc.StatusCode.UNAUTHENTICATED, "TWO_STEP_VERIFICATION_NOT_ENROLLED", False),
    ],
)
def test_only_a_refused_access_token_is_worth_a_fresh_one(
    status: grpc.StatusCode, code: str, renewable: bool
) -> None:
    found = classify("q", wrapped(status, "authentication_error", code), max_quota_wait=120)
    assert found is not None and found.kind is Kind.AUTH
    assert isinstance(found.refusal, GoogleAdsAuthError)
    assert isinstance(found.refusal, TokenRefused) is renewable
    # A front end's UNAUTHENTICATED carries no GoogleAdsFailure at all: the token it is.
    bare = core_exceptions.from_grpc_status(
        grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials."
    )
    found = classify("q", bare, max_quota_wait=120)
    assert found is not None and isinstance(found.refusal, TokenRefused)


def test_every_error_of_a_failure_reaches_the_reason_with_its_field_path() -> None:
    """A ``GoogleAdsFailure`` may carry several errors, each with a ``location`` whose
    ``field_path_elements`` name the field (GoogleAdsError reference); none is dropped."""
    first = ads_errors.GoogleAdsError(
        error_code=ads_errors.ErrorCode(query_error="UNRECOGNIZED_FIELD"),
        message="Unrecognized field in the query: 'campaign.nme'.",
        location=ads_errors.ErrorLocation(
            field_path_elements=[
                ads_errors.ErrorLocation.FieldPathElement(field_name="query"),
            ]
        ),
    )
    second = ads_errors.GoogleAdsError(
        error_code=ads_errors.ErrorCode(request_error="INVALID_CUSTOMER_ID"),
        message="Invalid customer ID '12'.",
        location=ads_errors.ErrorLocation(
            field_path_elements=[
                ads_errors.ErrorLocation.FieldPathElement(field_name="operations", index=0),
                ads_errors.ErrorLocation.FieldPathElement(field_name="customer_id"),
            ]
        ),
    )
    found_failure = ads_errors.GoogleAdsFailure(errors=[first, second], request_id="req-9")
    call = FakeCall(
        grpc.StatusCode.INVALID_ARGUMENT,
        ((KEY, ads_errors.GoogleAdsFailure.serialize(found_failure)),),
    )
    error = GoogleAdsException(call, call, found_failure, "req-9")  # type: ignore[arg-type]
    found = classify("q", error, max_quota_wait=120)
    assert found is not None and isinstance(found.refusal, GoogleAdsCallError)
    reason = str(found.refusal)
    for part in (
        "query_error.UNRECOGNIZED_FIELD",
        "Unrecognized field in the query: 'campaign.nme'.",
        "(field query)",
        "request_error.INVALID_CUSTOMER_ID",
        "Invalid customer ID '12'.",
        "(field operations[0].customer_id)",
    ):
        assert part in reason, (part, reason)


def test_field_violations_alone_still_say_what_is_wrong() -> None:
    """An INVALID_ARGUMENT whose only detail is a ``google.rpc.BadRequest`` (in
    ``grpc-status-details-bin``, the standard gRPC error model) is not reported empty."""
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2

    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="customer_id", description="must be 10 digits"
            )
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(bad)
    status = status_pb2.Status(code=3, message="Request contains an invalid argument.")
    status.details.append(packed)
    call = FakeCall(
        grpc.StatusCode.INVALID_ARGUMENT, (("grpc-status-details-bin", status.SerializeToString()),)
    )
    exc = core_exceptions.from_grpc_status(grpc.StatusCode.INVALID_ARGUMENT, "bad", response=call)
    found = classify("q", exc, max_quota_wait=120)
    assert found is not None and found.refusal is not None
    assert str(found.refusal).endswith("customer_id: must be 10 digits"), str(found.refusal)
