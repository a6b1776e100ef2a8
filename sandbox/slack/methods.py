"""Slack Web API methods over a :class:`SlackWorkspace`, in Slack's wire format.

Each handler takes the workspace, the request parameters and the tier's page cap, and returns
the JSON payload, or raises :class:`SlackError` with Slack's error code. Semantics follow the
documented methods: history is newest first, ``oldest``/``latest`` are exclusive unless
``inclusive``; a ``conversations.replies`` page always starts with the parent (and the parent
counts towards ``limit``); cursors are opaque base64 like Slack's (``next_ts:...``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.slack.content import parse_ts_us
from sandbox.slack.directory import SlackChannel
from sandbox.slack.workspace import SlackWorkspace

__all__ = ["METHODS", "SlackError"]

Params = Mapping[str, Any]
Handler = Callable[[SlackWorkspace, Params, int | None], dict[str, Any]]
_FAR_FUTURE = 1 << 62


class SlackError(Exception):
    """An ``{"ok": false, "error": code}`` answer."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def encode_cursor(kind: str, value: object) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(cursor: str, kind: str) -> str:
    try:
        found, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc
    if found != kind or not value:
        raise SlackError("invalid_cursor")
    return value


def _flag(params: Params, name: str) -> bool:
    return str(params.get(name, "")).lower() in ("1", "true")


def _limit(params: Params, default: int, maximum: int, cap: int | None) -> int:
    try:
        limit = int(params.get("limit") or 0) or default
    except (TypeError, ValueError) as exc:
        raise SlackError("invalid_limit") from exc
    limit = max(1, min(limit, maximum))
    return min(limit, cap) if cap else limit


def _ts(params: Params, name: str, error: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return parse_ts_us(str(raw))
    except ValueError as exc:
        raise SlackError(error) from exc


def _bounds(params: Params) -> tuple[int, int]:
    """``[low, high]`` inclusive bounds from oldest/latest/inclusive."""
    inclusive = _flag(params, "inclusive")
    oldest = _ts(params, "oldest", "invalid_ts_oldest")
    latest = _ts(params, "latest", "invalid_ts_latest")
    low = 0 if oldest is None else oldest + (0 if inclusive else 1)
    high = _FAR_FUTURE if latest is None else latest - (0 if inclusive else 1)
    return low, high


def _channel(ws: SlackWorkspace, params: Params, *, member: bool) -> SlackChannel:
    channel = ws.channels.get(str(params.get("channel", "")))
    if channel is None or (channel.is_private and not channel.is_member):
        raise SlackError("channel_not_found")  # private channels are invisible to outsiders
    if member and not channel.is_member:
        raise SlackError("not_in_channel")
    return channel


def _page(
    items: Sequence[dict[str, Any]], params: Params, kind: str, default: int, maximum: int
) -> tuple[list[dict[str, Any]], str]:
    """Offset-free cursor paging over a small list: the cursor names the next item's id."""
    start = 0
    if params.get("cursor"):
        wanted = decode_cursor(str(params["cursor"]), kind)
        ids = [item["id"] for item in items]
        if wanted not in ids:
            raise SlackError("invalid_cursor")
        start = ids.index(wanted)
    limit = _limit(params, default, maximum, None)
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, encode_cursor(kind, items[start + limit]["id"]) if more else ""


def auth_test(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{ws.domain}.slack.com/",
        "team": ws.name,
        "user": "audienceos",
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def team_info(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    return {
        "ok": True,
        "team": {
            "id": ws.team_id,
            "name": ws.name,
            "url": f"https://{ws.domain}.slack.com/",
            "domain": ws.domain,
            "email_domain": "",
            "is_verified": False,
            "icon": {"image_default": True, "image_34": "https://a.slack-edge.com/img/34.png"},
            "avatar_base_url": "https://ca.slack-edge.com/",
        },
    }


def users_list(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    users = [u.as_api() for u in list(ws.users)]
    page, cursor = _page(users, params, "user", default=len(users) or 1, maximum=1000)
    return {
        "ok": True,
        "members": page,
        "cache_ts": int(ws.end.timestamp()),
        "response_metadata": {"next_cursor": cursor},
    }


def conversations_list(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",")}
    if not types <= {"public_channel", "private_channel", "mpim", "im"}:
        raise SlackError("invalid_types")
    exclude_archived = _flag(params, "exclude_archived")
    channels = [
        c.as_api()
        for c in list(ws.channels.values())
        if ("private_channel" in types and c.is_private and c.is_member)
        or ("public_channel" in types and not c.is_private)
        if not (exclude_archived and c.is_archived)
    ]
    page, cursor = _page(channels, params, "channel", default=100, maximum=1000)
    return {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}


def conversations_info(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    return {"ok": True, "channel": _channel(ws, params, member=False).as_api()}


def conversations_join(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    channel = ws.channels.get(str(params.get("channel", "")))
    if channel is None:
        raise SlackError("channel_not_found")
    if channel.is_private:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.is_member:
        return {
            "ok": True,
            "channel": channel.as_api(),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.is_member = True
    channel.num_members += 1
    return {"ok": True, "channel": channel.as_api()}


def conversations_history(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    channel = _channel(ws, params, member=True)
    low, high = _bounds(params)
    if params.get("cursor"):
        high = min(high, _cursor_ts(params))
    limit = _limit(params, 100, 1000, cap)
    messages, next_high = channel.messages.history_page(low, high, limit)
    payload: dict[str, Any] = {
        "ok": True,
        "messages": messages,
        "has_more": next_high is not None,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if next_high is not None:
        payload["response_metadata"] = {"next_cursor": encode_cursor("next_ts", next_high)}
    return payload


def conversations_replies(ws: SlackWorkspace, params: Params, cap: int | None) -> dict[str, Any]:
    channel = _channel(ws, params, member=True)
    ts = _ts(params, "ts", "thread_not_found")
    root = None if ts is None else channel.messages.thread_root(ts)
    if root is None:
        raise SlackError("thread_not_found")
    low, high = _bounds(params)
    if params.get("cursor"):
        low = max(low, _cursor_ts(params))
    limit = _limit(params, 1000, 1000, cap)
    parent, replies, next_low = channel.messages.replies_page(root, low, high, limit)
    payload: dict[str, Any] = {
        "ok": True,
        "messages": [parent, *replies],
        "has_more": next_low is not None,
    }
    if next_low is not None:
        payload["response_metadata"] = {"next_cursor": encode_cursor("next_ts", next_low)}
    return payload


def _cursor_ts(params: Params) -> int:
    value = decode_cursor(str(params["cursor"]), "next_ts")
    if not value.isdigit():
        raise SlackError("invalid_cursor")
    return int(value)


METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "team.info": team_info,
    "users.list": users_list,
    "conversations.list": conversations_list,
    "conversations.info": conversations_info,
    "conversations.join": conversations_join,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
}
