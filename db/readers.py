"""Who reads an agency's database, and exactly which relations each login can reach there.

An analyst login (``db/analyst.py``) connects to its agency's database only (``db/agencydb.py``)
and nothing there is granted to PUBLIC. What a login may read is materialised as grants and
views, never decided by a policy at query time:

* **Owners, admins, managers** read the whole agency: their logins are members of the
  database's reader group (``<database>_all``), which may read every provider table, the copy of
  the agency's clients and integrations, and the views of schema ``analytics``. Their
  ``search_path`` is ``analytics, public``.
* **A member** reads through a schema of its own (``m_<tag of the login>``) holding, per
  provider table, a view over exactly the partitions of the integrations of its granted clients
  (an empty typed view where there are none), its clients' and integrations' rows copied into
  two small tables, and the analytics views over those. Agency-wide integrations stay
  manager-and-above. Nothing in the schema depends on a relation holding another client's rows,
  so no plan of a member's query can touch one. Its ``search_path`` is that schema.

:func:`refresh` brings every login of an agency in line with the control database (roles,
grants, clients, integrations, partitions); a login whose reach did not change is left alone.
The CLI calls it after every change of roles, grants, clients or integrations, and a run calls
it after making an integration's partitions: a grant or revoke takes effect for the login's next
query. A revoke also ends the member's open sessions, so none keeps reading from a view its
query started on.

Every analyst role has a connection limit and timeouts (:func:`limits`), so no analyst can
crowd out the application's connections or hold a lock for long.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from db.analytics_views import VIEW_NAMES, view_statements
from db.schema import (
    ROLE_LEVELS,
    agency_client,
    agency_integration,
    agency_metadata,
    analyst_binding,
    app_user,
    client,
    integration,
    member_client_access,
    user_role,
)

__all__ = [
    "ANALYTICS",
    "Limits",
    "ensure_shared_objects",
    "group_name",
    "limits",
    "member_schema",
    "readable_tables",
    "refresh",
]

ANALYTICS = "analytics"
_FULL_LEVEL = ROLE_LEVELS["manager"]
_LOOKBACK_KEYS = {"google_ads": "conversion_window_days", "meta_ads": "lookback_days"}
_VIEWS_VERSION = hashlib.sha256(
    "\n".join(s.as_string(None) for s in view_statements("analytics", "public")).encode()
).hexdigest()[:16]


def group_name(database: str) -> str:
    """The reader group of one agency database (roles are cluster-wide, groups are not)."""
    return f"{database}_all"


def member_schema(role_name: str) -> str:
    return "m_" + hashlib.sha256(role_name.encode()).hexdigest()[:16]


def readable_tables() -> list[str]:
    """The tables of an agency database a full reader may read: provider tables and the copy
    of the agency's clients and integrations (not the sync state or the quarantine)."""
    return [
        t.name for t in agency_metadata.sorted_tables if t.name not in ("sync_state", "sync_reject")
    ]


def _provider_tables() -> list[sa.Table]:
    return [
        t for t in agency_metadata.sorted_tables if "integration_id" in t.c and "synced_at" in t.c
    ]


@dataclass(frozen=True)
class Limits:
    connections: int
    statement_timeout: str
    idle_in_transaction_timeout: str


def limits() -> Limits:
    """Per analyst login: ``AOS_ANALYST_CONNECTION_LIMIT`` (default 5),
    ``AOS_ANALYST_STATEMENT_TIMEOUT`` (default ``5min``) and
    ``AOS_ANALYST_IDLE_IN_TRANSACTION_TIMEOUT`` (default ``60s``)."""
    return Limits(
        connections=int(os.environ.get("AOS_ANALYST_CONNECTION_LIMIT", "5")),
        statement_timeout=os.environ.get("AOS_ANALYST_STATEMENT_TIMEOUT", "5min"),
        idle_in_transaction_timeout=os.environ.get(
            "AOS_ANALYST_IDLE_IN_TRANSACTION_TIMEOUT", "60s"
        ),
    )


def _raw(conn: sa.Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[return-value]


def ensure_shared_objects(conn: sa.Connection) -> None:
    """In an agency database (the caller's transaction): its reader group and the
    ``analytics`` views over the whole agency, re-made when their definition changed."""
    raw = _raw(conn)
    database = raw.info.dbname
    group = sql.Identifier(group_name(database))
    exists = raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group_name(database),))
    if exists.fetchone() is None:
        raw.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(group))
    raw.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
    raw.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(group))
    present = [
        t
        for t in readable_tables()
        if raw.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone()[0]  # type: ignore[index]
    ]
    raw.execute(
        sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier("public", t) for t in present), group
        )
    )
    current = raw.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        (ANALYTICS,),
    ).fetchone()
    if current is None or current[0] != _VIEWS_VERSION:
        schema = sql.Identifier(ANALYTICS)
        raw.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        raw.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        for statement in view_statements(ANALYTICS, "public"):
            raw.execute(statement)
        raw.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(schema, sql.Literal(_VIEWS_VERSION))
        )
        raw.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
        raw.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, group))
        raw.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, group))


# --- what the control database says -------------------------------------------------------------
@dataclass(frozen=True)
class _Login:
    role_name: str
    full: bool
    clients: tuple[int, ...]


@dataclass(frozen=True)
class _Catalog:
    clients: list[dict[str, Any]]
    integrations: list[dict[str, Any]]
    logins: list[_Login]


def _catalog(control: sa.Connection, agency_id: int) -> _Catalog:
    clients = [
        dict(r._mapping)
        for r in control.execute(
            sa.select(client.c.agency_id, client.c.id, client.c.name, client.c.email_domains)
            .where(client.c.agency_id == agency_id)
            .order_by(client.c.id)
        )
    ]
    integrations = []
    for r in control.execute(
        sa.select(
            integration.c.agency_id,
            integration.c.id,
            integration.c.client_id,
            integration.c.provider,
            integration.c.name,
            integration.c.config,
        )
        .where(integration.c.agency_id == agency_id)
        .order_by(integration.c.id)
    ):
        window = (r.config or {}).get(_LOOKBACK_KEYS.get(r.provider, "lookback_days"))
        integrations.append(
            {
                "agency_id": r.agency_id,
                "id": r.id,
                "client_id": r.client_id,
                "provider": r.provider,
                "name": r.name,
                "lookback_days": window
                if isinstance(window, int) and not isinstance(window, bool) and 0 <= window < 10000
                else None,
            }
        )
    rows = control.execute(
        sa.select(analyst_binding.c.role_name, analyst_binding.c.user_id, user_role.c.role_name)
        .join(app_user, app_user.c.id == analyst_binding.c.user_id)
        .outerjoin(user_role, user_role.c.user_id == analyst_binding.c.user_id)
        .where(analyst_binding.c.agency_id == agency_id, app_user.c.agency_id == agency_id)
        .order_by(analyst_binding.c.role_name)
    ).all()
    grants: dict[int, list[int]] = {}
    for user_id, client_id in control.execute(
        sa.select(member_client_access.c.user_id, member_client_access.c.client_id).where(
            member_client_access.c.agency_id == agency_id
        )
    ):
        grants.setdefault(user_id, []).append(client_id)
    logins = [
        _Login(
            role_name=login,
            full=ROLE_LEVELS.get(role or "", 0) >= _FULL_LEVEL,
            clients=tuple(sorted(grants.get(user_id, []))),
        )
        for login, user_id, role in rows
    ]
    return _Catalog(clients, integrations, logins)


# --- applying it --------------------------------------------------------------------------------
def refresh(control: sa.Engine, agency_id: int, *, only: Iterable[str] | None = None) -> None:
    """Bring the agency database's copy of clients and integrations, and every analyst login
    of the agency (or just ``only``), in line with the control database."""
    from db.agencydb import ddl_lock, engine_for

    wanted = set(only) if only is not None else None
    engine = engine_for(control, agency_id)
    # One refresh (or attach, or migration) of an agency at a time: runs of its integrations
    # may start together, and their GRANTs and ATTACHes touch the same catalog rows.
    with ddl_lock(control, agency_id) as lock:
        catalog = _catalog(lock, agency_id)
        lock.commit()
        with engine.begin() as conn:
            _copy_catalog(conn, catalog)
        for login in catalog.logins:
            if wanted is None or login.role_name in wanted:
                _apply(engine, catalog, login)


def _copy_catalog(conn: sa.Connection, catalog: _Catalog) -> None:
    for table, rows in (
        (agency_client, catalog.clients),
        (agency_integration, catalog.integrations),
    ):
        ids = [r["id"] for r in rows]
        conn.execute(table.delete().where(table.c.id.not_in(ids)))
        for row in rows:
            stmt = sa.dialects.postgresql.insert(table).values(**row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.agency_id, table.c.id],
                    set_={k: stmt.excluded[k] for k in row if k not in ("agency_id", "id")},
                )
            )


def _partitions(conn: sa.Connection, integration_ids: Sequence[int]) -> dict[str, list[str]]:
    """Existing partitions of each provider table for ``integration_ids``."""
    from db.agencydb import partition_name

    found: dict[str, list[str]] = {}
    names = {partition_name(t.name, i): t.name for t in _provider_tables() for i in integration_ids}
    if not names:
        return found
    rows = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_inherits h ON h.inhrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(:names)"
            " ORDER BY c.relname"
        ),
        {"names": list(names)},
    )
    for (part,) in rows:
        found.setdefault(names[part], []).append(part)
    return found


def _member_views(conn: sa.Connection, catalog: _Catalog, login: _Login) -> list[sql.Composed]:
    schema = member_schema(login.role_name)
    granted = set(login.clients)
    mine = [i["id"] for i in catalog.integrations if i["client_id"] in granted]
    parts = _partitions(conn, mine)
    out: list[sql.Composed] = []
    target = sql.Identifier(schema)
    for name, rows, key in (
        ("client", catalog.clients, "id"),
        ("integration", catalog.integrations, "client_id"),
    ):
        ids = [r["id"] for r in rows if r[key] in granted]
        out.append(
            sql.SQL(
                "CREATE TABLE {}.{} AS SELECT * FROM public.{} WHERE id = ANY({}::bigint[])"
            ).format(target, sql.Identifier(name), sql.Identifier(name), sql.Literal(ids))
        )
    for table in _provider_tables():
        names = parts.get(table.name, [])
        if names:
            body: sql.Composable = sql.SQL(" UNION ALL ").join(
                [sql.SQL("SELECT * FROM public.{}").format(sql.Identifier(p)) for p in names]
            )
        else:  # nothing of this table is the member's: a view over no relation at all
            columns = sql.SQL(", ").join(
                sql.SQL("CAST(NULL AS {}) AS {}").format(
                    sql.SQL(c.type.compile(dialect=sa.dialects.postgresql.dialect())),  # type: ignore[attr-defined]
                    sql.Identifier(c.name),
                )
                for c in table.columns
            )
            body = sql.SQL("SELECT {} WHERE false").format(columns)
        out.append(
            sql.SQL("CREATE VIEW {}.{} AS {}").format(target, sql.Identifier(table.name), body)
        )
    out.extend(view_statements(schema, schema))
    return out


def _fingerprint(statements: Sequence[sql.Composed], extra: str) -> str:
    text = "\n".join(s.as_string(None) for s in statements) + extra
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _apply(engine: sa.Engine, catalog: _Catalog, login: _Login) -> None:
    with engine.begin() as conn:
        raw = _raw(conn)
        database = raw.info.dbname
        role, group = sql.Identifier(login.role_name), sql.Identifier(group_name(database))
        schema = member_schema(login.role_name)
        target = sql.Identifier(schema)
        if (
            raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login.role_name,)).fetchone()
            is None
        ):
            return  # the binding outlived its role (dropped by hand): nothing to grant to
        present = raw.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (schema,),
        ).fetchone()
        in_group = raw.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER')", (login.role_name, group_name(database))
        ).fetchone()
        if login.full:
            if present is not None:
                _end_sessions(raw, login.role_name)
                raw.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(target))
            if not (in_group and in_group[0]):
                raw.execute(sql.SQL("GRANT {} TO {}").format(group, role))
            path: sql.Composable = sql.SQL("{}, public").format(sql.Identifier(ANALYTICS))
        else:
            statements = _member_views(conn, catalog, login)
            fingerprint = _fingerprint(statements, ",".join(map(str, login.clients)))
            if in_group and in_group[0]:
                _end_sessions(raw, login.role_name)
                raw.execute(sql.SQL("REVOKE {} FROM {}").format(group, role))
            if present is None or present[0] != fingerprint:
                narrowed = present is not None
                if narrowed:
                    _end_sessions(raw, login.role_name)
                raw.execute("SET LOCAL lock_timeout = '10s'")
                raw.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(target))
                raw.execute(sql.SQL("CREATE SCHEMA {}").format(target))
                for statement in statements:
                    raw.execute(statement)
                raw.execute(
                    sql.SQL("COMMENT ON SCHEMA {} IS {}").format(target, sql.Literal(fingerprint))
                )
                raw.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(target))
                raw.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(target, role))
                raw.execute(
                    sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(target, role)
                )
            path = target
        raw.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                role, sql.Identifier(database), path
            )
        )
        raw.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role)
        )


def _end_sessions(raw: psycopg.Connection[Any], role_name: str) -> None:
    """End the login's open sessions (its reach is about to narrow or move)."""
    raw.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE usename = %s AND pid <> pg_backend_pid()",
        (role_name,),
    )


def drop_roles_of(pg: psycopg.Connection[Any], database: str) -> None:
    """Drop the reader group of a dropped agency database (its logins are dropped by
    ``db/analyst.py``, which knows them)."""
    pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(group_name(database))))


__all__ += ["drop_roles_of", "VIEW_NAMES"]


def revoke_all(conn: sa.Connection, role_name: str) -> None:
    """In an agency database: take everything back from a login about to be dropped and end
    its sessions (its member schema goes, its CONNECT and group membership too)."""
    raw = _raw(conn)
    database = raw.info.dbname
    role = sql.Identifier(role_name)
    raw.execute(
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database), role)
    )
    raw.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group_name(database)), role))
    raw.execute(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(member_schema(role_name)))
    )
    raw.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, sql.Identifier(database))
    )
    _end_sessions(raw, role_name)


__all__ += ["revoke_all"]


def attach(
    control: sa.Engine, agency_id: int, integration_id: int, tables: Iterable[str]
) -> sa.Engine:
    """Ready the agency's database for rows of an integration: its partitions of ``tables``,
    the copy of its row, and every analyst login brought in line (only when something was
    missing). Returns the agency database's engine."""
    from db.agencydb import ddl_lock, engine_for, ensure_partitions, partition_name

    engine = engine_for(control, agency_id)
    tables = list(tables)
    with engine.connect() as conn:  # the common case: all there, nothing to lock
        names = [f"public.{partition_name(t, integration_id)}" for t in tables]
        found = conn.execute(
            sa.text(
                "SELECT to_regclass(n) IS NOT NULL"
                " FROM unnest(CAST(:n AS text[])) WITH ORDINALITY AS u(n, i) ORDER BY i"
            ),
            {"n": names},
        ).scalars()
        missing = [t for t, there in zip(tables, found, strict=True) if not there]
        known = conn.execute(
            sa.select(agency_integration.c.id).where(agency_integration.c.id == integration_id)
        ).first()
    if missing:
        # Integrations of one agency starting together: one attach at a time (ddl_lock).
        with ddl_lock(control, agency_id), engine.begin() as conn:
            ensure_partitions(conn, integration_id, missing)
    if missing or known is None:
        refresh(control, agency_id)
    return engine


__all__ += ["attach"]
