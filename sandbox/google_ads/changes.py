"""``FROM change_status``: the resources changed in a time range, under the real server's rules.

The real server answers a ``change_status`` query only when it is bounded: a finite range on
``change_status.last_change_date_time`` (``BETWEEN``, or a lower *and* an upper bound, or a
``DURING`` preset), starting no more than 90 days ago, and a ``LIMIT`` of at most 10,000.
Anything else is refused with a ``ChangeStatusError`` (``CHANGE_DATE_RANGE_INFINITE``,
``START_DATE_TOO_OLD``, ``CHANGE_DATE_RANGE_NEGATIVE``, ``LIMIT_NOT_SPECIFIED``,
``INVALID_LIMIT_CLAUSE``). Times are written and compared in the account's time zone
(``YYYY-MM-DD HH:MM:SS``; a bare date means its midnight).

Only campaigns, ad groups and ads are emulated (``resource_type`` ``CAMPAIGN``, ``AD_GROUP``,
``AD_GROUP_AD``); each changed resource is one row with the time of its latest change
(:class:`~sandbox.google_ads.data.Change`). The real server may take up to three minutes to
show a change; the emulator shows it at once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sandbox.google_ads.data import Ad, AdGroup, AdsAccount, Campaign, Change
from sandbox.google_ads.errors import AdsError
from sandbox.google_ads.gaql import Condition, GaqlError, Query, matches, parse_date, preset_range

__all__ = ["MAX_AGE_DAYS", "MAX_LIMIT", "TIME_FIELD", "change_status_rows"]

TIME_FIELD: Final = "change_status.last_change_date_time"
MAX_AGE_DAYS: Final = 90
MAX_LIMIT: Final = 10_000
_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def _refused(code: str, message: str) -> AdsError:
    return AdsError("change_status_error", code, message)


def _moment(value: Any) -> datetime:
    """A naive local datetime from ``'YYYY-MM-DD HH:MM:SS[.ffffff]'`` or a bare date."""
    text = str(getattr(value, "name", value)).strip()
    if len(text) > 10:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise GaqlError("INVALID_DATE_FORMAT", f"Invalid date time: {text}") from None
    return datetime.combine(parse_date(text), time())


def time_bounds(where: list[Condition], now_local: datetime) -> tuple[datetime, datetime]:
    """The inclusive ``(lo, hi)`` the WHERE clause puts on the change time; refused unless
    both ends are bounded."""
    lo: datetime | None = None
    hi: datetime | None = None
    tick = timedelta(microseconds=1)
    for c in where:
        if c.field != TIME_FIELD:
            continue
        lows: list[datetime] = []
        highs: list[datetime] = []
        if c.op == "BETWEEN":
            lows.append(_moment(c.values[0]))
            highs.append(_moment(c.values[1]))
        elif c.op == "DURING":
            first, last = preset_range(c.values[0], now_local.date())
            lows.append(datetime.combine(first, time()))
            highs.append(datetime.combine(last, time.max))
        elif c.op == "=":
            lows.append(_moment(c.values[0]))
            highs.append(_moment(c.values[0]))
        elif c.op in (">", ">="):
            lows.append(_moment(c.values[0]) + (tick if c.op == ">" else timedelta()))
        elif c.op in ("<", "<="):
            highs.append(_moment(c.values[0]) - (tick if c.op == "<" else timedelta()))
        for moment in lows:
            lo = moment if lo is None else max(lo, moment)
        for moment in highs:
            hi = moment if hi is None else min(hi, moment)
    if lo is None or hi is None:
        raise _refused(
            "CHANGE_DATE_RANGE_INFINITE",
            "The change_status search request must specify a finite range filter on "
            "last_change_date_time.",
        )
    return lo, hi


def change_status_rows(acc: AdsAccount, query: Query, now: datetime) -> list[dict[str, Any]]:
    """The flat rows of a ``FROM change_status`` query on ``acc`` at ``now`` (aware)."""
    zone = ZoneInfo(acc.time_zone)
    now_local = now.astimezone(zone).replace(tzinfo=None)
    lo, hi = time_bounds(query.where, now_local)
    if lo < now_local - timedelta(days=MAX_AGE_DAYS):
        raise _refused("START_DATE_TOO_OLD", "The requested start date is too old.")
    if lo > hi:
        raise _refused(
            "CHANGE_DATE_RANGE_NEGATIVE",
            "The change status search request has specified invalid date time filters that "
            "can never logically produce any valid results.",
        )
    if query.limit is None:
        raise _refused(
            "LIMIT_NOT_SPECIFIED", "The change_status search request must specify a LIMIT."
        )
    if query.limit > MAX_LIMIT:
        raise _refused(
            "INVALID_LIMIT_CLAUSE",
            f"The LIMIT specified by change_status request should be less than or equal to "
            f"{MAX_LIMIT // 1000}K.",
        )
    others = [c for c in query.where if c.field != TIME_FIELD]
    today = now_local.date()
    rows = []
    for change in sorted(acc.changes.values(), key=lambda c: c.at):
        at = change.at.astimezone(zone).replace(tzinfo=None, microsecond=0)
        if not lo <= at <= hi:
            continue
        row = _row(acc, change, at.strftime(_FORMAT))
        if all(matches(row, c, today) for c in others):
            rows.append(row)
    return rows


def _row(acc: AdsAccount, change: Change, at: str) -> dict[str, Any]:
    entity = change.entity
    digest = hashlib.blake2b(entity.resource_name.encode(), digest_size=6).hexdigest()
    row: dict[str, Any] = {
        "change_status.resource_name": f"customers/{acc.id}/changeStatus/{int(digest, 16)}",
        TIME_FIELD: at,
        "change_status.resource_type": change.resource_type,
        "change_status.resource_status": change.status,
    }
    if isinstance(entity, Ad):
        row["change_status.ad_group_ad"] = entity.resource_name
        entity = entity.ad_group
    if isinstance(entity, AdGroup):
        row["change_status.ad_group"] = entity.resource_name
        entity = entity.campaign
    assert isinstance(entity, Campaign)
    row["change_status.campaign"] = entity.resource_name
    return row
