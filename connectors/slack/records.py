"""Slack JSON -> typed rows, and the timestamp arithmetic the cursors rely on.

Slack ``ts`` values are strings like ``"1700000000.000100"`` and double as message ids, so they
are compared as :class:`~decimal.Decimal` (a float would merge neighbouring messages) and kept
as text in the tables. All datetimes are UTC-aware. Every record goes through
:func:`connectors.common.sanitize`: a NUL or a lone surrogate in a message (Slack sends both)
would make PostgreSQL reject the page on every run.

Each table's row is declared once, as a ``TypedDict`` (:class:`SlackUser`, :class:`SlackChannel`,
:class:`SlackMessage`): the record functions return it, the stream declarations name it, and
``tests/connectors/test_record_types.py`` holds it against the table's columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from connectors.common import sanitize

__all__ = [
    "TS_MAX",
    "TS_MIN",
    "SlackChannel",
    "SlackMessage",
    "SlackUser",
    "channel_record",
    "datetime_to_ts",
    "epoch_to_datetime",
    "message_record",
    "ts_add_micros",
    "ts_key",
    "ts_to_datetime",
    "user_record",
]


class SlackUser(TypedDict):
    """A ``slack_users`` row (``users.list``)."""

    user_id: str
    team_id: str
    name: str
    real_name: str | None
    display_name: str | None
    email: str | None
    is_bot: bool
    is_admin: bool
    is_deleted: bool
    tz: str | None
    updated_at: datetime | None


class SlackChannel(TypedDict):
    """A ``slack_channels`` row (``conversations.list``)."""

    channel_id: str
    name: str
    is_private: bool
    is_archived: bool
    is_member: bool
    created_at: datetime
    creator_id: str | None
    topic: str | None
    purpose: str | None
    num_members: int | None


class SlackMessage(TypedDict):
    """A ``slack_messages`` row: a top-level message or a thread reply (``is_reply``).
    ``reactions`` and ``files`` are jsonb: lists of small objects, or NULL when there are none."""

    channel_id: str
    ts: str
    posted_at: datetime
    user_id: str | None
    bot_id: str | None
    subtype: str | None
    text: str | None
    thread_ts: str | None
    is_reply: bool
    reply_count: int
    latest_reply: str | None
    edited_ts: str | None
    reactions: list[dict[str, Any]] | None
    files: list[dict[str, Any]] | None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = Decimal("0.000001")
# Bounds that sort below/above every real ts, as text and as numbers.
TS_MIN = "0000000000.000000"
TS_MAX = "9999999999.999999"


def ts_key(ts: str) -> Decimal:
    """Sort/compare key for a Slack ts."""
    return Decimal(ts)


def ts_add_micros(ts: str, micros: int) -> str:
    """``ts`` moved by ``micros`` microseconds, formatted like Slack (6 decimals)."""
    return _format(Decimal(ts) + micros * _MICRO)


def _format(value: Decimal) -> str:
    value = max(value, Decimal(0))
    whole, _, frac = str(value.quantize(_MICRO)).partition(".")
    return f"{int(whole):010d}.{frac:0<6}"


def ts_to_datetime(ts: str) -> datetime:
    """Exact conversion (no float rounding) keeping microseconds."""
    value = Decimal(ts)
    seconds = int(value)
    micros = int((value - seconds) / _MICRO)
    return _EPOCH + timedelta(seconds=seconds, microseconds=micros)


def datetime_to_ts(moment: datetime) -> str:
    delta = moment.astimezone(UTC) - _EPOCH
    return f"{delta.days * 86400 + delta.seconds:010d}.{delta.microseconds:06d}"


def date_to_ts(day: date) -> str:
    return datetime_to_ts(datetime.combine(day, time(0), tzinfo=UTC))


def epoch_to_datetime(value: Any) -> datetime | None:
    """Slack's integer epoch fields (``created``, ``updated``); 0/absent -> None."""
    if value in (None, "", 0):
        return None
    return _EPOCH + timedelta(seconds=int(value))


def _text(value: Any) -> str | None:
    """Slack sends "" for unset optional text; store NULL instead."""
    return value if isinstance(value, str) and value != "" else None


def user_record(user: Mapping[str, Any]) -> SlackUser:
    profile = user.get("profile") or {}
    row: SlackUser = {
        "user_id": user["id"],
        "team_id": user.get("team_id") or profile.get("team") or "",
        "name": user.get("name") or "",
        "real_name": _text(user.get("real_name")) or _text(profile.get("real_name")),
        "display_name": _text(profile.get("display_name")),
        "email": _text(profile.get("email")),
        "is_bot": bool(user.get("is_bot")),
        "is_admin": bool(user.get("is_admin")),
        "is_deleted": bool(user.get("deleted")),
        "tz": _text(user.get("tz")),
        "updated_at": epoch_to_datetime(user.get("updated")),
    }
    return sanitize(row)


def channel_record(channel: Mapping[str, Any]) -> SlackChannel:
    num_members = channel.get("num_members")
    row: SlackChannel = {
        "channel_id": channel["id"],
        "name": channel.get("name") or channel["id"],
        "is_private": bool(channel.get("is_private")),
        "is_archived": bool(channel.get("is_archived")),
        "is_member": bool(channel.get("is_member")),
        "created_at": epoch_to_datetime(channel.get("created")) or _EPOCH,
        "creator_id": _text(channel.get("creator")),
        "topic": _text((channel.get("topic") or {}).get("value")),
        "purpose": _text((channel.get("purpose") or {}).get("value")),
        "num_members": int(num_members) if num_members is not None else None,
    }
    return sanitize(row)


def _reactions(message: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    reactions = message.get("reactions")
    if not reactions:
        return None
    return [
        {
            "name": r.get("name"),
            "count": int(r.get("count", len(r.get("users") or []))),
            "users": list(r.get("users") or []),
        }
        for r in reactions
    ]


def _files(message: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    files = message.get("files")
    if not files:
        return None
    return [
        {
            "id": f.get("id"),
            "name": f.get("name"),
            "mimetype": f.get("mimetype"),
            "size": f.get("size"),
        }
        for f in files
    ]


def is_reply(message: Mapping[str, Any]) -> bool:
    """A reply has a ``thread_ts`` other than its own ts (thread broadcasts included)."""
    thread_ts = message.get("thread_ts")
    return thread_ts is not None and thread_ts != message["ts"]


def message_record(channel_id: str, message: Mapping[str, Any]) -> SlackMessage:
    ts = message["ts"]
    row: SlackMessage = {
        "channel_id": channel_id,
        "ts": ts,
        "posted_at": ts_to_datetime(ts),
        "user_id": _text(message.get("user")),
        "bot_id": _text(message.get("bot_id")),
        "subtype": _text(message.get("subtype")),
        "text": message.get("text"),
        "thread_ts": message.get("thread_ts"),
        "is_reply": is_reply(message),
        "reply_count": int(message.get("reply_count") or 0),
        "latest_reply": message.get("latest_reply"),
        "edited_ts": (message.get("edited") or {}).get("ts"),
        "reactions": _reactions(message),
        "files": _files(message),
    }
    return sanitize(row)
