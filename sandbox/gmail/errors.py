"""Google API errors in their wire shape: ``{"error": {code, message, errors[], status}}``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.protocol import Response, json_response

__all__ = [
    "GmailError",
    "bad_request",
    "internal",
    "not_found",
    "quota_exceeded",
    "unauthenticated",
    "unavailable",
]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_AUTH_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


class GmailError(Exception):
    """Raised by handlers; :meth:`response` renders it."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        status: str | None = None,
        location: str | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.domain = code, message, reason, domain
        self.status = status or _STATUS.get(code, "UNKNOWN")
        self.location, self.headers = location, headers or {}
        self.detail = detail or message

    def response(self) -> Response:
        item = {"message": self.detail, "domain": self.domain, "reason": self.reason}
        if self.location:
            item.update(
                location=self.location,
                locationType="header" if self.location == "Authorization" else "parameter",
            )
        payload = {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [item],
                "status": self.status,
            }
        }
        return json_response(payload, status=self.code, headers=self.headers)


def bad_request(message: str, *, location: str | None = None) -> GmailError:
    return GmailError(400, message, "invalidArgument", location=location)


def not_found() -> GmailError:
    return GmailError(404, "Requested entity was not found.", "notFound")


def unauthenticated(*, missing: bool = False) -> GmailError:
    return GmailError(
        401,
        _MISSING_MESSAGE if missing else _AUTH_MESSAGE,
        "required" if missing else "authError",
        detail="Login Required." if missing else "Invalid Credentials",
        location="Authorization",
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'
            + ("" if missing else ', error="invalid_token"')
        },
    )


def quota_exceeded(status: int, retry_after: float) -> GmailError:
    """Gmail's per-user rate limit: 429 ``rateLimitExceeded`` (what Gmail sends today) or
    the older 403 ``userRateLimitExceeded``."""
    if status == 403:
        return GmailError(
            403, "User Rate Limit Exceeded", "userRateLimitExceeded", domain="usageLimits"
        )
    when = datetime.now(UTC) + timedelta(seconds=retry_after)
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return GmailError(
        429,
        f"User-rate limit exceeded.  Retry after {stamp}",
        "rateLimitExceeded",
        domain="usageLimits",
    )


def internal() -> GmailError:
    return GmailError(500, "Internal error encountered.", "backendError")


def unavailable() -> GmailError:
    return GmailError(503, "The service is currently unavailable.", "backendError")
