"""Meta's refusals and the one classification of the facebook-business SDK's failures.

Everything is read from the structured answer (HTTP status, ``error.code``,
``error.error_subcode``, ``is_transient``, the usage headers), never from message text:

* code 190 (and 102) -- the token is expired, invalidated or malformed: ``AUTH``;
* codes 4, 17, 32, 613 and 80000-80014 -- a throttle: ``RATE_LIMITED``, waiting what the
  ``x-business-use-case-usage`` header's ``estimated_time_to_regain_access`` says (minutes),
  or ``x-ad-account-usage``'s ``reset_time_duration`` (seconds), whichever is longer;
  ``is_transient`` is not trusted here (Meta answers 17/2446079 with ``is_transient: false``);
* 5xx, codes 1 and 2, ``is_transient`` answers, and answers without a Graph error -- ``TRANSIENT``;
  except that code 1 to a paged read is Meta saying "Please reduce the amount of data you're
  asking for" (:func:`asks_for_less`), which the transport answers with a smaller page;
* anything else (permissions 10 and 200-299, parameters 100, ...) -- :class:`MetaCallError`,
  ``PERMANENT``, with the code, subcode, type and trace id in ``detail``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from facebook_business.exceptions import FacebookRequestError

from connectors.common import AuthError, PermanentError
from connectors.kit import Failure, retry_after_seconds

from . import settings

__all__ = ["MetaAuthError", "MetaCallError", "asks_for_less", "classify", "throttle_wait"]


class MetaCallError(PermanentError):
    """Meta refused a call and will refuse it again (a permission, a parameter, an object)."""


class MetaAuthError(AuthError):
    """Meta refused the access token (code 190): the integration must be reconnected."""


def _header(headers: Mapping[str, Any] | None, name: str) -> Any:
    return next((v for k, v in (headers or {}).items() if str(k).lower() == name), None)


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        return None


def throttle_wait(headers: Mapping[str, Any] | None) -> float:
    """Seconds until Meta lets the account call again, from the usage headers (0: no hint)."""
    waits = [retry_after_seconds(headers)]
    usage = _json(_header(headers, "x-business-use-case-usage"))
    if isinstance(usage, dict):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else []:
                minutes = (
                    entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
                )
                if isinstance(minutes, int | float):
                    waits.append(float(minutes) * 60)
    account = _json(_header(headers, "x-ad-account-usage"))
    if isinstance(account, dict) and isinstance(account.get("reset_time_duration"), int | float):
        waits.append(float(account["reset_time_duration"]))
    return max(waits)


def asks_for_less(error: Exception) -> bool:
    """Whether ``error`` is Meta's code 1, which it answers to a page too heavy to produce:
    HTTP 500, ``{"code": 1, "message": "Please reduce the amount of data you're asking for,
    then retry your request"}`` (facebook-python-business-sdk#470, singer-io/tap-facebook#65).
    The same request gets the same answer; a smaller page does not. Code 1 is also Meta's
    "An unknown error occurred": to a paged read a smaller page is a retry like any other, so
    the code alone decides, never the message."""
    return isinstance(error, FacebookRequestError) and error.api_error_code() == 1


def classify(method: str, error: Exception, *, max_wait: float = 900.0) -> Failure | None:
    """The :class:`Failure` ``error`` is, or ``None`` when it is not Meta's (a bug)."""
    if isinstance(error, requests.RequestException):
        return Failure.transient(f"{type(error).__name__} on {method}", ambiguous=True)
    if not isinstance(error, FacebookRequestError):
        return None
    status = error.http_status() or 0
    code = error.api_error_code()
    subcode = error.api_error_subcode()
    label = f"HTTP {status}" + (f", code {code}" if code is not None else "")
    label += f"/{subcode}" if subcode else ""
    said = _said(error)
    if code in settings.AUTH_CODES:
        return Failure.refused(
            MetaAuthError(
                f"Meta refused the access token ({label})" + (f": {said}" if said else ""),
                provider="meta_ads",
                method=method,
                code=str(code),
                detail=_detail(error),
            )
        )
    if code in settings.RATE_LIMIT_CODES:
        wait = min(throttle_wait(error.http_headers()), max_wait)
        return Failure.rate_limited(f"Meta throttled {method} ({label})", retry_after=wait)
    if status >= 500 or code in settings.TRANSIENT_CODES or error.api_transient_error():
        return Failure.transient(f"Meta {method} failed ({label})")
    if code is None:  # no Graph error in the body: a proxy page, a cut answer
        return Failure.transient(f"Meta {method} answered without a Graph error ({label})")
    return Failure.refused(
        MetaCallError(
            f"Meta refused {method} ({label}): {said}".strip(),
            provider="meta_ads",
            method=method,
            code=str(code),
            detail=_detail(error),
        )
    )


def _said(error: FacebookRequestError) -> str:
    """Everything Meta said about the error, for the run's reason: its message, and the
    ``error_user_title`` / ``error_user_msg`` it writes for people (Graph API, "Handling
    Errors"), which often say what to do (log in again, accept terms)."""
    body = error.body()
    said = body.get("error") if isinstance(body, dict) else None
    said = said if isinstance(said, dict) else {}
    parts = [error.api_error_message(), said.get("error_user_title"), said.get("error_user_msg")]
    blamed = error.api_blame_field_specs()
    if blamed:  # the fields a parameter error is about (``error_data.blame_field_specs``)
        parts.append(f"fields {blamed}")
    return " -- ".join(dict.fromkeys(str(p) for p in parts if p))[:600]


def _detail(error: FacebookRequestError) -> dict[str, Any]:
    body = error.body()
    trace = body.get("error", {}).get("fbtrace_id") if isinstance(body, dict) else None
    return {
        "status": error.http_status(),
        "subcode": error.api_error_subcode(),
        "type": error.api_error_type(),
        "message": (error.api_error_message() or "")[:300],
        "fbtrace_id": trace,
    }
