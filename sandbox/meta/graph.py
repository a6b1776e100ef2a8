"""Graph API plumbing shared by every Meta route: errors, parameters, filtering, paging.

Shapes follow the Graph API reference: errors are HTTP 400 (500/503 for server trouble) with
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id", "is_transient"}}``;
list parameters arrive either comma-joined (``fields=id,name`` on a GET from the SDK) or as
JSON arrays (the same parameters in a POST form body); edges page with opaque
``cursors.before`` / ``cursors.after`` and an absolute ``paging.next`` URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from sandbox.ids import make_id

__all__ = [
    "BUC_TYPES",
    "GraphError",
    "apply_filtering",
    "json_param",
    "list_param",
    "page",
    "rate_limit_error",
]

Params = Mapping[str, Any]

# Business-use-case throttling codes, one per use case (Graph rate-limiting reference):
# code -> (``type`` in x-business-use-case-usage, noun, anchor of the docs page).
BUC_TYPES: dict[int, tuple[str, str]] = {
    80000: ("ads_insights", "from this ad-account"),
    80001: ("pages", "to this Page"),
    80002: ("instagram", "to this Instagram account"),
    80003: ("custom_audience", "to this ad-account"),
    80004: ("ads_management", "to this ad-account"),
    80005: ("leadgen", "to this Page"),
    80006: ("messenger", "to this Messenger account"),
    80007: ("whatsapp_business_management", "to this WhatsApp Business account"),
    80008: ("whatsapp_business_management", "to this WhatsApp Business account"),
    80009: ("catalog_management", "to this Catalog account"),
    80010: ("catalog_management", "to this Catalog account"),
    80011: ("catalog_management", "to this Catalog account"),
    80012: ("catalog_management", "to this Catalog account"),
    80013: ("catalog_management", "to this Catalog account"),
    80014: ("catalog_batch", "to this Catalog account"),
}
_RATE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}
_trace_counter = iter(range(1, 1 << 62))


class GraphError(Exception):
    """A Graph error answer; :meth:`payload` is the wire body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        kind: str = "OAuthException",
        status: int = 400,
        transient: bool = False,
        user_title: str | None = None,
        user_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.kind = kind
        self.status = status
        self.transient = transient
        self.user_title = user_title
        self.user_msg = user_msg

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["is_transient"] = self.transient
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        error["fbtrace_id"] = make_id("A", "fbtrace", next(_trace_counter), length=21)
        return {"error": error}


def invalid_param(message: str) -> GraphError:
    return GraphError(100, f"(#100) {message}", kind="OAuthException")


def rate_limit_error(code: int, subcode: int | None = None) -> GraphError:
    """The throttling error of ``code`` (4, 17, 32, 613 or 80000-80014)."""
    if code in BUC_TYPES:
        kind, whom = BUC_TYPES[code]
        anchor = kind.replace("_", "-")
        message = (
            f"(#{code}) There have been too many calls {whom}. Wait a bit and try again. "
            "For more info, please refer to "
            f"https://developers.facebook.com/docs/graph-api/overview/rate-limiting#{anchor}."
        )
        return GraphError(code, message, subcode=subcode, transient=True)
    if code not in _RATE_MESSAGES:
        raise ValueError(f"not a throttling code: {code}")
    if code == 17 and subcode == 2446079:
        return GraphError(
            17,
            _RATE_MESSAGES[17],
            subcode=subcode,
            transient=False,  # as observed in production: do not trust is_transient
            user_title="Ad Account Has Too Many API Calls",
            user_msg="There have been too many calls from this ad-account. Please wait a bit "
            "and try again.",
        )
    return GraphError(code, _RATE_MESSAGES[code], subcode=subcode, transient=True)


# -- parameters -----------------------------------------------------------------------------
def json_param(params: Params, name: str) -> Any:
    """A JSON-valued parameter (``time_range``, ``filtering``), ``None`` when absent."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_param(f"param {name} must be JSON") from exc


def list_param(params: Params, name: str) -> list[str]:
    """A list parameter sent as ``a,b`` or as a JSON array ``["a","b"]``."""
    raw = params.get(name)
    if raw in (None, ""):
        return []
    if isinstance(raw, list):
        return [str(v) for v in raw]
    text = str(raw).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except ValueError as exc:
            raise invalid_param(f"param {name} must be an array") from exc
    return [part.strip() for part in text.split(",") if part.strip()]


def limit_param(params: Params, default: int = 25, maximum: int = 5000) -> int:
    try:
        limit = int(params.get("limit") or default)
    except (TypeError, ValueError) as exc:
        raise invalid_param("param limit must be a non-negative integer") from exc
    return max(1, min(limit, maximum))


# -- filtering ------------------------------------------------------------------------------
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL": lambda a, b: a == b,
    "NOT_EQUAL": lambda a, b: a != b,
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
    "IN": lambda a, b: a in b,
    "NOT_IN": lambda a, b: a not in b,
    "CONTAIN": lambda a, b: str(b).lower() in str(a).lower(),
    "NOT_CONTAIN": lambda a, b: str(b).lower() not in str(a).lower(),
    "IN_RANGE": lambda a, b: b[0] <= a <= b[1],
    "NOT_IN_RANGE": lambda a, b: not b[0] <= a <= b[1],
}


def parse_filtering(params: Params) -> list[tuple[str, str, Any]]:
    """``filtering`` as ``(field, operator, value)`` triples, validated."""
    raw = json_param(params, "filtering")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_param("param filtering must be an array")
    rules = []
    for rule in raw:
        if not isinstance(rule, dict) or not {"field", "operator", "value"} <= set(rule):
            raise invalid_param(
                "Filtering field 'filtering' is invalid: each filter needs field, operator "
                "and value"
            )
        operator = str(rule["operator"]).upper()
        if operator not in _OPERATORS:
            raise invalid_param(f"Filter operator {operator} is not supported")
        rules.append((str(rule["field"]), operator, rule["value"]))
    return rules


def apply_filtering(
    items: Sequence[Any],
    rules: Sequence[tuple[str, str, Any]],
    value_of: Callable[[Any, str], Any],
) -> list[Any]:
    """Keep the items every rule accepts; ``value_of(item, field)`` raises ``KeyError`` for
    a field the node type does not have (Graph: error 100)."""
    kept = []
    for item in items:
        for name, operator, wanted in rules:
            try:
                have = value_of(item, name)
            except KeyError as exc:
                raise invalid_param(f"Filtering field {name} is invalid") from exc
            if isinstance(have, (int, float)) and not isinstance(have, bool):
                wanted = _numbers(wanted)
            if operator in ("IN", "NOT_IN") and not isinstance(wanted, list):
                wanted = [wanted]
            if not _OPERATORS[operator](have, wanted):
                break
        else:
            kept.append(item)
    return kept


def _numbers(value: Any) -> Any:
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


# -- paging ---------------------------------------------------------------------------------
def encode_cursor(position: int, page_no: int) -> str:
    return base64.urlsafe_b64encode(f"{position}:{page_no}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position, _, page_no = base64.urlsafe_b64decode(padded).decode().partition(":")
        return int(position), int(page_no)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid_param("Invalid cursor") from exc


def page(
    rows: Sequence[dict[str, Any]],
    params: Params,
    *,
    url: str,
    empty_pages: frozenset[int] = frozenset(),
    default_limit: int = 25,
) -> dict[str, Any]:
    """One page of ``rows`` as ``{"data", "paging"}``.

    Cursors carry the position and the page number, so ``empty_pages`` (page numbers, 0
    being the first) can answer an empty page that still has a ``next`` link, as Graph does
    sometimes. ``url`` is the absolute URL of the edge; ``next`` / ``previous`` repeat every
    original parameter with the new cursor."""
    limit = limit_param(params, default_limit)
    start, page_no = 0, 0
    if params.get("after"):
        start, page_no = decode_cursor(str(params["after"]))
    elif params.get("before"):
        end, before_no = decode_cursor(str(params["before"]))
        start, page_no = max(0, end - limit), max(0, before_no - 1)
    start = max(0, min(start, len(rows)))
    if page_no in empty_pages and start < len(rows):
        data: list[dict[str, Any]] = []
        stop = start
    else:
        stop = min(start + limit, len(rows))
        data = list(rows[start:stop])
    result: dict[str, Any] = {"data": data}
    if not rows:
        return result
    cursors = {"before": encode_cursor(start, page_no), "after": encode_cursor(stop, page_no + 1)}
    paging: dict[str, Any] = {"cursors": cursors}
    base = {k: v for k, v in params.items() if k not in ("after", "before")}
    if stop < len(rows):
        paging["next"] = f"{url}?{urlencode({**base, 'limit': limit, 'after': cursors['after']})}"
    if start > 0:
        query = urlencode({**base, "limit": limit, "before": cursors["before"]})
        paging["previous"] = f"{url}?{query}"
    result["paging"] = paging
    return result
