"""The ``analytics`` views from Python: their names, how to select a date range of one, and
who may do it.

``db/analytics_views.py`` defines the views (``docs/data-dictionary.md``, "Analytics views",
documents every column); ``db/readers.py`` puts them where each analyst login reads them. Read
as the application role, an agency database shows the whole agency, so :func:`check_analyst`
refuses any login that is not one of the agency's analysts before a row is read.

View names are an allow-list (:data:`VIEWS`); every identifier reaches SQL through
``psycopg.sql.Identifier`` and every value as a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "SCHEMA",
    "VIEWS",
    "Analyst",
    "NotAnAnalyst",
    "UnknownView",
    "View",
    "MONEY_COLUMNS",
    "MONEY_SCALE",
    "NUMERIC_SCALE",
    "check_analyst",
    "describe",
    "scale_of",
    "select_range",
    "view",
]

SCHEMA = "analytics"


@dataclass(frozen=True)
class View:
    name: str
    #: the column a date range applies to
    day: str
    #: a unique, stable row order (exports are reproducible)
    order: tuple[str, ...]
    summary: str


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View(
            "ad_performance_daily",
            "day",
            (
                "day",
                "platform",
                "integration_id",
                "account_id",
                "campaign_id",
                "ad_group_id",
                "ad_id",
            ),  # fmt: skip
            "one row per integration, platform, account-local day and ad, plus Google Ads"
            " campaign-level rows for what no ad carries: sums are the accounts' totals",
        ),
        View(
            "campaign_performance_daily",
            "day",
            ("day", "platform", "integration_id", "account_id", "campaign_id"),
            "one row per integration, platform, account-local day and campaign",
        ),
        View(
            "client_activity_daily",
            "day",
            ("day", "client_id"),
            "Slack and Gmail messages per client and UTC day",
        ),
    )
}

#: Money columns (amounts in ``currency``) leave every path (``frame()``, CSV, Parquet) with
#: exactly this many decimal places: Google Ads amounts are micros (6), Meta's cents fit.
MONEY_COLUMNS = frozenset({"spend", "conversion_value"})
MONEY_SCALE = 6
#: Any other ``numeric`` column (Google's fractional conversions): this many decimal places.
NUMERIC_SCALE = 12


def scale_of(column: str) -> int:
    """Decimal places of a ``numeric`` column of the views, the same on every path."""
    return MONEY_SCALE if column in MONEY_COLUMNS else NUMERIC_SCALE


def describe(conn: psycopg.Connection[Any], name: str) -> tuple[list[str], list[str]]:
    """Column names and PostgreSQL type names of a view, from a query that reads no row."""
    query, _ = select_range(name)
    with conn.cursor() as cur:
        cur.execute(query + sql.SQL(" LIMIT 0"))
        description = cur.description or []
    names = [d.name for d in description]
    kinds = []
    for d in description:
        info = conn.adapters.types.get(d.type_code)
        kinds.append(info.name if info is not None else "text")
    return names, kinds


_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class UnknownView(ValueError):
    """A view name outside :data:`VIEWS` (nothing is sent to the database)."""


class NotAnAnalyst(PermissionError):
    """The login is not a bound analyst: row-level security would not limit what it reads."""


@dataclass(frozen=True)
class Analyst:
    role: str
    agency_id: int | None


def view(name: str) -> View:
    """The view called ``name`` (plain, or ``analytics.``-qualified), or :class:`UnknownView`."""
    plain = name[len(SCHEMA) + 1 :] if name.startswith(SCHEMA + ".") else name
    try:
        return VIEWS[plain]
    except KeyError:
        raise UnknownView(
            f"unknown view {name[:60]!r}; expected one of: {', '.join(VIEWS)}"
        ) from None


def select_range(
    name: str,
    since: date | None = None,
    until: date | None = None,
    *,
    columns: Sequence[str] | None = None,
    client_ids: Sequence[int] | None = None,
    numeric_columns: Sequence[str] = (),
) -> tuple[sql.Composed, list[Any]]:
    """``SELECT`` of view ``name`` for days ``since`` .. ``until`` (both included; either may
    be open), optionally some ``columns`` and clients, in the view's stable order.

    ``numeric_columns`` are rounded to their :func:`scale_of` decimal places, so money has one
    scale whatever reads it."""
    spec = view(name)
    wanted = list(columns) if columns else None
    for column in wanted or ():
        if not _COLUMN.fullmatch(column):
            raise ValueError(f"not a column name: {column[:60]!r}")
    if wanted is None:
        select: sql.Composable = sql.SQL("*")
        if numeric_columns:
            raise ValueError("rounding numeric columns needs the column list")
    else:
        select = sql.SQL(", ").join(
            sql.SQL("round({c}, {s}) AS {c}").format(
                c=sql.Identifier(c), s=sql.Literal(scale_of(c))
            )
            if c in numeric_columns
            else sql.Identifier(c)
            for c in wanted
        )
    where: list[sql.Composable] = []
    params: list[Any] = []
    day = sql.Identifier(spec.day)
    if since is not None:
        where.append(sql.SQL("{} >= %s").format(day))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("{} <= %s").format(day))
        params.append(until)
    if client_ids is not None:
        where.append(sql.SQL("client_id = ANY(%s)"))
        params.append([int(c) for c in client_ids])
    # Unqualified: each login's search_path leads to the views it may read (``analytics`` for
    # the whole agency, a member's own schema for a member).
    query = sql.SQL("SELECT {} FROM {}").format(select, sql.Identifier(spec.name))
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(sql.Identifier(c) for c in spec.order)
    return query, params


def check_analyst(conn: psycopg.Connection[Any]) -> Analyst:
    """The analyst this connection is, or :class:`NotAnAnalyst`.

    An analyst is a login of an agency's database that reads it as a reader of the agency
    (``db/readers.py``): a member of the database's reader group, or the holder of a member
    schema; never the database's owner (the application), a superuser, or a role that skips
    grants."""
    row = conn.execute(
        """
        SELECT r.rolname::text, r.rolsuper OR r.rolbypassrls,
               pg_has_role(session_user, d.datdba, 'USAGE'),
               EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = current_database() || '_all'
                          AND pg_has_role(session_user, g.oid, 'MEMBER'))
               OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname LIKE 'm\\_%'
                             AND has_schema_privilege(n.oid, 'USAGE')
                             AND NOT pg_has_role(session_user, n.nspowner, 'USAGE'))
          FROM pg_roles r, pg_database d
         WHERE r.rolname = session_user AND d.datname = current_database()
        """
    ).fetchone()
    assert row is not None
    role, unbounded, owner, reader = row
    if unbounded or owner:
        raise NotAnAnalyst(
            f"database role {role!r} is not an analyst login (it owns the database or skips "
            "grants, so it would read the whole agency); connect with an analyst login "
            "(`aos-sync analyst create --user EMAIL` makes one)"
        )
    if not reader:
        raise NotAnAnalyst(
            f"database role {role!r} is not an analyst login of this agency database; "
            "`aos-sync analyst create --user EMAIL` makes one"
        )
    agency = conn.execute("SELECT min(agency_id) FROM integration").fetchone()
    return Analyst(role=role, agency_id=int(agency[0]) if agency and agency[0] else None)
