"""What a failed Slack call is: the one classification of slack-sdk failures into the kit's kinds.

slack-sdk (with its own retry handlers off) reports a failed call as one of:

* ``SlackApiError`` -- an HTTP error status, or ``ok: false`` in a 200 answer. Its
  ``response`` has ``status_code``, ``headers`` (``Retry-After`` on a 429) and ``data`` (the
  decoded body: ``error`` plus, for ``missing_scope``, ``needed`` and ``provided``). A body
  that does not parse arrives as ``ok: false`` with an ``error`` that quotes the body (which
  may hold tokens: it is never repeated);
* a connection-level exception (reset, timeout, a body cut short: ``OSError``,
  ``http.client.HTTPException``, ``json.JSONDecodeError``).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

from connectors.common import AuthError, PermanentError
from connectors.kit import Failure, retry_after_seconds

from . import settings

__all__ = ["SlackCallError", "classify"]

# What Slack says besides ``error`` on an ``ok: false`` answer, kept in SlackCallError.detail.
_DETAIL_FIELDS = ("needed", "provided", "warning")
# How the SDK reports a body that is not JSON (its message quotes the body).
_NOT_JSON = "Received a response in a non-JSON format"
_CONNECTION_ERRORS = (json.JSONDecodeError, http.client.HTTPException, OSError)


class SlackCallError(PermanentError):
    """Slack answered ``ok: false`` with an error that retrying will not fix.

    ``detail`` keeps what Slack said besides the code: for ``missing_scope`` the ``needed``
    and ``provided`` scopes, which are the whole point of the answer (the message shows them).
    """

    def __init__(self, method: str, error: str, detail: Mapping[str, Any] | None = None) -> None:
        detail = dict(detail or {})
        extra = "; ".join(f"{k}: {detail[k]}" for k in _DETAIL_FIELDS if detail.get(k))
        super().__init__(
            f"Slack {method} failed: {error}" + (f" ({extra})" if extra else ""),
            provider="slack",
            method=method,
            code=error,
            detail=detail,
        )
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments: a task's failed state may be pickled.
        return (type(self), (self.method, self.error, self.detail))


def classify(method: str, error: Exception) -> Failure | None:
    """The kit's kind of a failed Slack call (``None``: not a Slack failure)."""
    if isinstance(error, SlackApiError):
        return _api_error(method, error)
    if isinstance(error, _CONNECTION_ERRORS):
        # Sent, maybe handled, answer lost: a call that must not run twice stops here.
        return Failure.transient(type(error).__name__, ambiguous=True)
    return None


def _api_error(method: str, exc: SlackApiError) -> Failure:
    status = int(getattr(exc.response, "status_code", 0) or 0)
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or "")
    if error in settings.AUTH_ERRORS:
        return Failure.refused(
            AuthError(
                f"Slack rejected the workspace token ({error}) on {method}; "
                "the integration must be re-authorised",
                provider="slack",
                method=method,
                code=error,
            )
        )
    if status == 429:
        wait = retry_after_seconds(exc.response.headers, settings.RATE_LIMIT_DEFAULT_WAIT)
        return Failure.rate_limited(error or "HTTP 429", wait)
    if status >= 500 or error in settings.TRANSIENT_ERRORS:
        return Failure.transient(error or f"HTTP {status}")
    if not data or error.startswith(_NOT_JSON):
        return Failure.transient("response body does not parse (truncated?)", ambiguous=True)
    detail = {k: data[k] for k in _DETAIL_FIELDS if data.get(k)}
    return Failure.refused(SlackCallError(method, error or f"HTTP {status}", detail))
