"""Slack JSON -> typed rows, and the timestamp arithmetic the cursors rely on.

Slack ``ts`` values are strings like ``"1700000000.000100"`` and double as message ids, so they
are compared as :class:`~decimal.Decimal` (a float would merge neighbouring messages) and kept
as text in the tables. All datetimes are UTC-aware. Every record goes through
:func:`connectors.common.sanitize`: a NUL or a lone surrogate in a message (Slack sends both)
would make PostgreSQL reject the page on every run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from connectors.common import sanitize

__all__ = [
    "TS_MAX",
    "TS_MIN",
    "channel_record",
    "datetime_to_ts",
    "epoch_to_datetime",
    "message_record",
    "ts_add_micros",
    "ts_key",
    "ts_to_datetime",
    "user_record",
]

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


def user_record(user: dict[str, Any]) -> dict[str, Any]:
    profile = user.get("profile") or {}
    return sanitize(
        {
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
    )


def channel_record(channel: dict[str, Any]) -> dict[str, Any]:
    num_members = channel.get("num_members")
    return sanitize(
        {
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
    )


def _reactions(message: dict[str, Any]) -> list[dict[str, Any]] | None:
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


def _files(message: dict[str, Any]) -> list[dict[str, Any]] | None:
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


def is_reply(message: dict[str, Any]) -> bool:
    """A reply has a ``thread_ts`` other than its own ts (thread broadcasts included)."""
    thread_ts = message.get("thread_ts")
    return thread_ts is not None and thread_ts != message["ts"]


def message_record(channel_id: str, message: dict[str, Any]) -> dict[str, Any]:
    ts = message["ts"]
    return sanitize(
        {
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
    )
