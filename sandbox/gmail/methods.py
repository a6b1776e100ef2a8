"""Gmail REST methods over a :class:`GmailMailbox`, in Gmail's wire format.

Each handler takes the mailbox, the request and the path arguments, returns the JSON payload
or raises :class:`GmailError`. Empty lists are omitted as Gmail (proto3 JSON) omits them;
64-bit numbers (``historyId``, ``internalDate``) are strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sandbox.gmail.errors import bad_request, not_found
from sandbox.gmail.history import HISTORY_TYPES, HistoryExpired
from sandbox.gmail.mailbox import GmailMailbox
from sandbox.gmail.mime import b64url
from sandbox.gmail.render import FORMATS, render_message
from sandbox.gmail.search import QueryError, parse_query
from sandbox.protocol import Request

__all__ = ["QUOTA_UNITS", "ROUTES", "route"]

Handler = Callable[[GmailMailbox, Request, tuple[str, ...]], dict[str, Any]]

# Quota units per call (Gmail's documented per-method costs).
QUOTA_UNITS = {
    "users.getProfile": 1,
    "users.labels.list": 1,
    "users.labels.get": 1,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.messages.attachments.get": 5,
    "users.history.list": 2,
}


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise bad_request(f"Invalid value for {name}: {raw}", location=name) from exc
    return default if value <= 0 else min(value, maximum)


def _token(request: Request) -> int | None:
    raw = str(request.params.get("pageToken") or "")
    if not raw:
        return None
    if not raw.isdigit():
        raise bad_request("Invalid pageToken", location="pageToken")
    return int(raw)


def _flag(request: Request, name: str) -> bool:
    return str(request.params.get(name, "")).lower() in ("1", "true")


def get_profile(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    stats = mb.stats()
    return {
        "emailAddress": mb.email,
        "messagesTotal": stats["messages"],
        "threadsTotal": stats["threads"],
        "historyId": str(mb.history_id),
    }


def labels_list(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    return {"labels": mb.labels()}


def labels_get(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    label = next((x for x in mb.labels() if x["id"] == args[0]), None)
    if label is None:
        raise not_found()
    total, unread, threads, threads_unread = mb.stats()["labels"].get(args[0], (0, 0, 0, 0))
    return {
        **label,
        "messagesTotal": total,
        "messagesUnread": unread,
        "threadsTotal": threads,
        "threadsUnread": threads_unread,
    }


def messages_list(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    names: dict[str, str] = {}
    for label in mb.user_labels:
        lowered = label["name"].lower()
        names.update(
            {
                lowered: label["id"],
                re.sub(r"[ /]", "-", lowered): label["id"],
                label["id"].lower(): label["id"],
            }
        )
    try:
        query = parse_query(str(request.params.get("q") or ""), names)
    except QueryError as exc:
        raise bad_request(str(exc), location="q") from exc
    known = mb.label_ids()
    for label_id in request.query_list("labelIds"):
        if label_id not in known:
            raise bad_request(f"Invalid label: {label_id}", location="labelIds")
        query.required.add(label_id)
    query.include_spam_trash |= _flag(request, "includeSpamTrash")
    page, bound, estimate = mb.search(
        query, max_results=_int_param(request, "maxResults", 100, 500), before=_token(request)
    )
    out: dict[str, Any] = {}
    if page:
        out["messages"] = page
    if bound is not None:
        out["nextPageToken"] = str(bound)
    out["resultSizeEstimate"] = estimate
    return out


def _message(mb: GmailMailbox, message_id: str) -> Any:
    if not re.fullmatch(r"[0-9a-f]{16}", message_id):
        raise bad_request("Invalid id value", location="id")
    with mb.lock:
        spec = mb.spec(message_id)
    if spec is None:
        raise not_found()
    return spec


def messages_get(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    fmt = str(request.params.get("format") or "full")
    if fmt not in FORMATS:
        raise bad_request(f"Invalid value at 'format' ({fmt})", location="format")
    return render_message(_message(mb, args[0]), fmt, request.query_list("metadataHeaders"))


def attachments_get(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    part = _message(mb, args[0]).part.find_attachment(args[1])
    if part is None:
        raise bad_request("Invalid attachment token", location="id")
    return {"size": len(part.content), "data": b64url(part.content)}


def history_list(mb: GmailMailbox, request: Request, args: tuple[str, ...]) -> dict[str, Any]:
    raw = str(request.params.get("startHistoryId") or "")
    if not raw:
        raise bad_request("Missing required field: startHistoryId", location="startHistoryId")
    if not raw.isdigit():
        raise bad_request(f"Invalid startHistoryId: {raw}", location="startHistoryId")
    types = request.query_list("historyTypes") or list(HISTORY_TYPES)
    unknown = set(types) - set(HISTORY_TYPES)
    if unknown:
        raise bad_request(f"Invalid historyTypes: {sorted(unknown)}", location="historyTypes")
    label = str(request.params.get("labelId") or "") or None
    with mb.lock:
        try:
            records, more = mb.history.page(
                int(raw),
                types=types,
                label=label,
                max_results=_int_param(request, "maxResults", 100, 500),
                after=_token(request),
            )
        except HistoryExpired as exc:
            raise not_found() from exc
        out: dict[str, Any] = {}
        if records:
            out["history"] = records
        if more is not None:
            out["nextPageToken"] = str(more)
        out["historyId"] = str(mb.history_id)
        return out


_USER = r"^/gmail/v1/users/(?P<user>[^/]+)"
ROUTES: list[tuple[re.Pattern[str], str, Handler]] = [
    (re.compile(_USER + r"/profile$"), "users.getProfile", get_profile),
    (re.compile(_USER + r"/labels$"), "users.labels.list", labels_list),
    (re.compile(_USER + r"/labels/([^/]+)$"), "users.labels.get", labels_get),
    (re.compile(_USER + r"/messages$"), "users.messages.list", messages_list),
    (re.compile(_USER + r"/messages/([^/]+)$"), "users.messages.get", messages_get),
    (
        re.compile(_USER + r"/messages/([^/]+)/attachments/([^/]+)$"),
        "users.messages.attachments.get",
        attachments_get,
    ),
    (re.compile(_USER + r"/history$"), "users.history.list", history_list),
]


def route(path: str) -> tuple[str, Handler, str, tuple[str, ...]] | None:
    """(method name, handler, userId, other path arguments) for a Gmail REST path."""
    for pattern, name, handler in ROUTES:
        match = pattern.match(path)
        if match is not None:
            groups = tuple(unquote(g) for g in match.groups())
            return name, handler, groups[0], groups[1:]
    return None
