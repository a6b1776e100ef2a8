"""The analytics views as pandas DataFrames, read as the caller's own analyst login.

    >>> from aos_sync.analytics import connect, frame
    >>> df = frame("ad_performance_daily", "2026-01-01", "2026-01-31")  # AOS_ANALYST_URL
    >>> with connect(role="analyst_1a2b...", password="...") as conn:
    ...     df = frame("client_activity_daily", since="2026-01-01", conn=conn)

Where the login comes from, first found wins: ``url``; ``role`` + ``password`` (on the
project's database: ``AOS_DATABASE_URL``'s host, port and database, or the embedded
server); ``AOS_ANALYST_URL``; ``AOS_ANALYST_ROLE`` + ``AOS_ANALYST_PASSWORD``. A login that
is not a bound analyst is refused (:class:`NotAnAnalyst`): row-level security would not limit
it, and a frame must show what its analyst may see, no more.

Dtypes, the same as a Parquet export read back with pandas: ids and counts ``Int64``
(nullable), money ``decimal.Decimal`` with 6 decimal places and other ``numeric`` columns with
12 (``db.analytics.scale_of``), days ``datetime.date`` objects (calendar days, no time: account-
local for ads, UTC for activity), instants ``datetime64[ns, UTC]``, flags ``boolean``, text
``string``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa

from db.analytics import VIEWS, NotAnAnalyst, UnknownView, check_analyst, describe, select_range
from db.analytics import view as view_spec

if TYPE_CHECKING:  # pandas is imported when a frame is made: exports do without it
    import pandas as pd

__all__ = ["VIEWS", "NotAnAnalyst", "UnknownView", "connect", "frame", "to_frame"]

DateLike = date | str


def _libpq(url: str) -> str:
    """A libpq URL from a libpq or SQLAlchemy one (``postgresql+psycopg://``)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _agency_database(role: str) -> sa.URL:
    """The database of the agency the analyst login ``role`` belongs to, looked up in the
    project's control database (this needs the operator's settings, not the analyst's)."""
    from db.agencydb import placement
    from db.engine import get_engine
    from db.schema import analyst_binding

    control = get_engine()
    with control.connect() as conn:
        agency_id = conn.execute(
            sa.select(analyst_binding.c.agency_id).where(analyst_binding.c.role_name == role)
        ).scalar()
    if agency_id is None:
        raise NotAnAnalyst(f"{role!r} is not an analyst login of this installation")
    return sa.make_url(placement(control, int(agency_id)).url)


def analyst_url(
    url: str | None = None, *, role: str | None = None, password: str | None = None
) -> str:
    """The analyst login to use (see the module docstring for the order)."""
    if url:
        return _libpq(url)
    if role is None and (env := os.environ.get("AOS_ANALYST_URL")):
        return _libpq(env)
    role = role or os.environ.get("AOS_ANALYST_ROLE")
    if not role:
        raise NotAnAnalyst(
            "no analyst login given: pass url=, or role= and password=, or set "
            "AOS_ANALYST_URL (or AOS_ANALYST_ROLE and AOS_ANALYST_PASSWORD)"
        )
    if password is None:
        password = os.environ.get("AOS_ANALYST_PASSWORD")
    base = _agency_database(role).set(username=role, password=password)
    return _libpq(base.render_as_string(hide_password=False))


def connect(
    url: str | None = None, *, role: str | None = None, password: str | None = None
) -> psycopg.Connection[Any]:
    """An autocommit connection as an analyst (checked), with time zone UTC."""
    conn = psycopg.connect(
        analyst_url(url, role=role, password=password), autocommit=True, options="-c TimeZone=UTC"
    )
    try:
        check_analyst(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _day(value: DateLike | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: expected a date as YYYY-MM-DD, got {value[:40]!r}") from None


def frame(
    view: str,
    since: DateLike | None = None,
    until: DateLike | None = None,
    *,
    conn: psycopg.Connection[Any] | None = None,
    url: str | None = None,
    columns: Sequence[str] | None = None,
    client_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Rows of ``view`` for days ``since`` .. ``until`` (both included; None: open), in the
    view's stable order. ``conn`` is used as given (it must be an analyst's: checked);
    otherwise a connection is opened from ``url`` or the environment and closed."""
    view_spec(view)  # an unknown name is refused before anything is sent
    own = conn is None
    active = connect(url) if conn is None else conn
    try:
        if not own:
            check_analyst(active)
        names, kinds = describe(active, view)
        wanted = list(columns) if columns else names
        query, params = select_range(
            view,
            _day(since, "since"),
            _day(until, "until"),
            columns=wanted,
            client_ids=client_ids,
            numeric_columns=[n for n, k in zip(names, kinds, strict=True) if k == "numeric"],
        )
        with active.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
            kinds = [_type_name(active, d.type_code) for d in cur.description or ()]
            names = [d.name for d in cur.description or ()]
    finally:
        if own:
            active.close()
    return to_frame(names, kinds, rows)


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else "unknown"


_INTS = {"int2", "int4", "int8"}


def to_frame(
    names: Sequence[str], kinds: Sequence[str], rows: Sequence[Sequence[Any]]
) -> pd.DataFrame:
    """A DataFrame with the dtypes of the module docstring, from PostgreSQL type names."""
    import pandas as pd

    data: dict[str, Any] = {}
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    for name, kind, values in zip(names, kinds, columns, strict=True):
        if kind in _INTS:
            data[name] = pd.array(values, dtype="Int64")
        elif kind == "numeric":
            data[name] = pd.Series(values, dtype=object)
        elif kind == "bool":
            data[name] = pd.array(values, dtype="boolean")
        elif kind == "date":
            data[name] = pd.Series(values, dtype=object)
        elif kind == "timestamptz":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype(
                "datetime64[ns, UTC]"
            )
        elif kind in {"text", "varchar", "bpchar", "name"}:
            data[name] = pd.array(values, dtype="string")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(names))
