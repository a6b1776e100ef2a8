"""Google Ads API failures as the real server sends them.

An error ends the call with a gRPC status and three trailing metadata keys:
``google.ads.googleads.v26.errors.googleadsfailure-bin`` (a serialized ``GoogleAdsFailure``),
``grpc-status-details-bin`` (a ``google.rpc.Status`` carrying the same failure) and
``request-id``. The client turns INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED and
NOT_FOUND into ``GoogleAdsException``; RESOURCE_EXHAUSTED, INTERNAL and UNAVAILABLE stay plain
``google.api_core`` exceptions (the failure is still in their trailing metadata). UNAVAILABLE
is sent bare (no failure), as a front end would, so it surfaces as ``ServiceUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.ads.googleads.v26.errors.types import errors
from google.protobuf import any_pb2, duration_pb2
from google.rpc import status_pb2

__all__ = ["FAILURE_KEY", "AdsError"]

FAILURE_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
# Which ErrorCode field (error family) maps to which gRPC status.
_STATUS = {
    "query_error": grpc.StatusCode.INVALID_ARGUMENT,
    "request_error": grpc.StatusCode.INVALID_ARGUMENT,
    "change_status_error": grpc.StatusCode.INVALID_ARGUMENT,
    "authorization_error": grpc.StatusCode.PERMISSION_DENIED,
    "authentication_error": grpc.StatusCode.UNAUTHENTICATED,
    "quota_error": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "internal_error": grpc.StatusCode.INTERNAL,
}
_MESSAGE = "Request contains an invalid argument."


@dataclass
class AdsError(Exception):
    """One API error: ``family`` is the ``ErrorCode`` field (``query_error``), ``code`` its
    enum name (``UNRECOGNIZED_FIELD``)."""

    family: str
    code: str
    message: str
    status: grpc.StatusCode | None = None
    retry_delay: float | None = None  # seconds, for quota errors
    rate_scope: str = "DEVELOPER"
    rate_name: str = ""

    def __post_init__(self) -> None:
        super().__init__(f"{self.family}.{self.code}: {self.message}")

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return self.status or _STATUS.get(self.family, grpc.StatusCode.INVALID_ARGUMENT)

    def failure(self, request_id: str) -> errors.GoogleAdsFailure:
        details = None
        if self.retry_delay is not None:
            seconds = int(self.retry_delay)
            details = errors.ErrorDetails(
                quota_error_details=errors.QuotaErrorDetails(
                    rate_scope=self.rate_scope,
                    rate_name=self.rate_name,
                    retry_delay=duration_pb2.Duration(
                        seconds=seconds, nanos=int((self.retry_delay - seconds) * 1e9)
                    ),
                )
            )
        error = errors.GoogleAdsError(
            error_code=errors.ErrorCode(**{self.family: self.code}), message=self.message
        )
        if details is not None:
            error.details = details
        return errors.GoogleAdsFailure(errors=[error], request_id=request_id)

    def trailers(self, request_id: str) -> tuple[tuple[str, str | bytes], ...]:
        if self.grpc_status == grpc.StatusCode.UNAVAILABLE:
            # Unavailability comes from the front end, without a GoogleAdsFailure.
            return (("request-id", request_id),)
        failure = errors.GoogleAdsFailure.serialize(self.failure(request_id))
        status = status_pb2.Status(code=self.grpc_status.value[0], message=self.details_text)
        packed = any_pb2.Any(
            type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            value=failure,
        )
        status.details.append(packed)
        return (
            (FAILURE_KEY, failure),
            ("grpc-status-details-bin", status.SerializeToString()),
            ("request-id", request_id),
        )

    @property
    def details_text(self) -> str:
        if self.grpc_status == grpc.StatusCode.INVALID_ARGUMENT:
            return _MESSAGE
        return self.message

    def abort(self, context: grpc.ServicerContext, request_id: str) -> None:
        context.set_trailing_metadata(self.trailers(request_id))
        context.abort(self.grpc_status, self.details_text)
