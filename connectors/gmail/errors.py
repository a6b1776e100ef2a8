"""What a failed Gmail call is: the one classification of google-api-python-client failures.

The client reports a failed call as one of:

* ``HttpError`` -- an error status; its body is Google's JSON error (``error.status``,
  ``error.errors[].reason``, ``error.message``) or, for OAuth, ``{"error": "invalid_grant"}``;
  ``resp`` carries ``retry-after`` when Google sent one;
* ``RefreshError`` -- google-auth could not use the token (refresh is off here: a 401 means
  the mailbox needs re-authorisation);
* a connection-level exception (``httplib2`` errors, resets, timeouts, a body cut short that
  the JSON or multipart parsing chokes on).

And a 2xx answer can still be no answer: a body that does not parse (the client hands back
the raw string) or one without a field Gmail always sends (``settings.REQUIRED_FIELDS``).
Read as ``{}`` it would be an empty page, and an empty listing soft-deletes every row it
reconciles, so :func:`unusable` says why and the transport retries it.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.common import AuthError, PermanentError, TokenRefused
from connectors.kit import Failure, retry_after_seconds

from . import settings

__all__ = ["GmailCallError", "GmailNotFound", "classify", "error_details", "unusable"]

# What a dropped connection, a timeout or a truncated body surfaces as through httplib2 and
# the client's JSON / multipart parsing.
_CONNECTION_ERRORS = (
    httplib2.HttpLib2Error,
    http.client.HTTPException,
    OSError,
    ValueError,
    TransportError,
)


class GmailCallError(PermanentError):
    """Gmail answered with an error that retrying will not fix; the message carries Google's
    own explanation (``error.message``), which usually says exactly what is wrong."""

    def __init__(self, method: str, status: int, reason: str, message: str = "") -> None:
        text = f"Gmail {method} failed: HTTP {status} {reason}".rstrip()
        super().__init__(
            f"{text}: {message}" if message else text,
            provider="gmail",
            method=method,
            code=reason,
            detail={"status": status, "reason": reason, "message": message},
        )
        self.status = status
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments: a task's failed state may be pickled.
        args = (self.method, self.status, self.reason, self.detail.get("message", ""))
        return (type(self), args)


class GmailNotFound(GmailCallError):
    """HTTP 404: a message deleted since it was listed, or (history.list) an expired id."""


@dataclass(frozen=True)
class ErrorDetails:
    """What an ``HttpError`` says."""

    status: int
    short: str  # Google's status (``RESOURCE_EXHAUSTED``) or the first reason
    reasons: frozenset[str]
    message: str  # Google's human-readable ``error.message``
    retry_after: float


def error_details(exc: HttpError) -> ErrorDetails:
    """What an HttpError says, in Google's JSON error shape or the OAuth one."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    try:
        data = json.loads(exc.content or b"null")
    except (ValueError, TypeError):
        data = None
    reasons: set[str] = set()
    short = message = ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        reasons = {str(e.get("reason")) for e in error.get("errors") or () if e.get("reason")}
        if error.get("status"):
            reasons.add(str(error["status"]))
        short = str(error.get("status") or next(iter(sorted(reasons)), ""))
        message = str(error.get("message") or "")
    elif isinstance(error, str):  # OAuth-style {"error": "invalid_grant"}
        reasons = {error}
        short = error
        message = str(data.get("error_description") or "") if isinstance(data, dict) else ""
    retry_after = retry_after_seconds(exc.resp)
    return ErrorDetails(status, short, frozenset(reasons), message[:300], retry_after)


def auth_failed(method: str) -> AuthError:
    return AuthError(
        f"Gmail rejected the access token on {method}; the mailbox must be re-authorised",
        provider="gmail",
        method=method,
    )


def classify(method: str, error: Exception) -> Failure | None:
    """The kit's kind of a failed Gmail call (``None``: not a Gmail failure)."""
    if isinstance(error, HttpError):
        return _http_error(method, error)
    if isinstance(error, RefreshError):
        return Failure.refused(auth_failed(method))
    if isinstance(error, _CONNECTION_ERRORS):
        return Failure.transient(type(error).__name__, ambiguous=True)
    return None


def _http_error(method: str, exc: HttpError) -> Failure:
    details = error_details(exc)
    status, short, reasons = details.status, details.short, details.reasons
    # 401 is about the access token itself: "the access token you're using is either expired
    # or invalid", to be refreshed with the refresh token (Gmail API guide "Resolve errors",
    # developers.google.com/gmail/api/guides/handle-errors). A fresh one may be accepted, so
    # it is a TokenRefused the transport renews once. A missing scope (403
    # insufficientPermissions) is no token's fault.
    expired = status == 401 or bool(reasons & settings.AUTH_STATUSES)
    if expired or reasons & settings.AUTH_REASONS or "insufficientPermissions" in reasons:
        refusal = TokenRefused if expired else AuthError
        return Failure.refused(
            refusal(
                f"Gmail rejected the access token on {method} (HTTP {status} {short}); "
                "the mailbox must be re-authorised",
                provider="gmail",
                method=method,
                code=short,
                detail={"status": status, "message": details.message},
            )
        )
    said = f"HTTP {status} {short}".rstrip()
    if status == 429 or (status == 403 and reasons & settings.RATE_LIMIT_REASONS):
        return Failure.rate_limited(said, details.retry_after)
    if status in settings.RETRYABLE_STATUSES:
        return Failure.transient(said, retry_after=details.retry_after)
    if status == 404:
        return Failure.refused(GmailNotFound(method, status, short, details.message))
    return Failure.refused(GmailCallError(method, status, short, details.message))


def unusable(method: str, body: Any) -> str | None:
    """Why a 2xx answer of ``method`` is not a usable answer (``None`` when it is)."""
    if not isinstance(body, dict):
        return "response body does not parse (truncated?)"
    missing = [name for name in settings.REQUIRED_FIELDS.get(method, ()) if name not in body]
    if missing:
        return f"answer without {', '.join(missing)} (truncated or malformed)"
    return None
