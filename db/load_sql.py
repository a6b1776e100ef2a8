"""The SQL of the loader, and the planner settings it runs under, in one place.

Everything is composed with :mod:`psycopg.sql` from identifiers of our own schema and type
names read from the catalog; no value from a record ever becomes SQL text.

Statements (``t`` is the target table, ``s`` the session's staging table):

* **direct**: ``COPY t FROM STDIN`` - while the integration has no rows in ``t`` yet, rows go
  straight in (a first load costs about what a raw COPY costs); a key seen twice makes it fail
  and the batch falls back to staging.
* **upsert**: ``INSERT .. SELECT .. FROM s ON CONFLICT DO UPDATE .. WHERE changed``; when ``t``
  already holds rows of the integration, an anti-join first drops staged rows equal to their
  stored version, so unchanged rows cost no new tuple, lock, WAL or index entry. With
  ``dedupe`` the last staged version of each key wins (``DISTINCT ON``).
* **soft delete** / **reconcile**: set ``deleted_at`` by key list, or on rows of a slice whose
  keys a complete listing did not contain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["BIGINT_OID", "LoadSql", "planner", "STAGED_TENANT_COLUMNS"]

BIGINT_OID = 20
#: Tenant columns staged with every row, after the record's own columns.
STAGED_TENANT_COLUMNS = ("client_id", "integration_id", "_ord")

# Right after a big first load the target's statistics still say "empty", and the planner
# would pick a nested loop over all the integration's rows (hours, not seconds) or hash the
# whole target per batch. Transaction-local switches keep the plans right at every size.
UPSERT_PLANNER = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_material": "off"}
RECONCILE_PLANNER = {"enable_nestloop": "off"}


class planner:
    """Set planner switches for the statements inside, and put them back after (they are
    transaction-local, so a failure that aborts the transaction also undoes them)."""

    def __init__(self, cur: psycopg.Cursor[Any], settings: Mapping[str, str]) -> None:
        self.cur, self.settings = cur, settings
        self.previous: list[str] = []

    def _set(self, values: Sequence[str]) -> None:
        stmt = sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("set_config({}, %s, true)").format(sql.Literal(n)) for n in self.settings
            )
        )
        self.cur.execute(stmt, list(values))

    def __enter__(self) -> None:
        now = sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("current_setting({})").format(sql.Literal(n)) for n in self.settings
            )
        )
        row = self.cur.execute(now).fetchone()
        self.previous = [str(v) for v in row or ()]
        self._set(list(self.settings.values()))

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._set(self.previous)


class LoadSql:
    """Statements for one target table; ``types`` maps column -> SQL type from the catalog."""

    def __init__(
        self,
        target: sql.Identifier,
        stage: sql.Identifier,
        keys: Sequence[str],
        data: Sequence[str],
        types: Mapping[str, str],
    ) -> None:
        self.target, self.stage = target, stage
        self.keys, self.data = list(keys), list(data)
        self.columns = self.keys + self.data
        self.types = types

    def type_sql(self, name: str) -> sql.Composable:
        return sql.SQL(self.types[name])  # a type name from our own catalog query

    # -- loading ------------------------------------------------------------------------------
    def copy_stage(self) -> sql.Composed:
        cols = [*self.columns, *STAGED_TENANT_COLUMNS]
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self.stage, sql.SQL(", ").join(map(sql.Identifier, cols))
        )

    def copy_direct(self) -> sql.Composed:
        cols = [*self.columns, "client_id", "integration_id", "agency_id"]
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self.target, sql.SQL(", ").join(map(sql.Identifier, cols))
        )

    def stage_ddl(self, staged: Sequence[tuple[str, str]], required: set[str]) -> sql.Composed:
        ddl = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c),
                sql.SQL(t),  # t: a type name from our own catalog
                sql.SQL(" NOT NULL" if c in required else ""),
            )
            for c, t in staged
        )
        return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            self.stage, ddl
        )

    def has_rows(self) -> sql.Composed:
        return sql.SQL(
            "SELECT EXISTS (SELECT FROM {} WHERE agency_id = %s AND integration_id = %s)"
        ).format(self.target)

    def upsert(self, *, dedupe: bool, filter_unchanged: bool) -> sql.Composed:
        """Insert new rows, update changed ones; returns (inserted, updated, distinct keys or
        NULL when not de-duplicating: then every staged row is a distinct key)."""
        ident = sql.Identifier
        compared = ["client_id", *self.data]
        target_cols = [
            "integration_id",
            "agency_id",
            "client_id",
            *self.columns,
            "synced_at",
            "deleted_at",
        ]

        def cols(alias: str, names: Sequence[str]) -> sql.Composable:
            return sql.SQL(", ").join(
                sql.SQL("{}.{}").format(ident(alias), ident(n)) for n in names
            )

        staged = sql.SQL(", ").join(map(ident, self.columns))
        src = sql.SQL(
            "SELECT integration_id, %(aid)s::bigint AS agency_id, client_id, {} FROM {}"
        ).format(staged, self.stage)
        if dedupe:
            keys = sql.SQL(", ").join(map(ident, self.keys))
            src = sql.SQL(
                "SELECT DISTINCT ON ({keys}) integration_id, %(aid)s::bigint AS agency_id,"
                " client_id, {cols} FROM {stage} ORDER BY {keys}, _ord DESC"
            ).format(keys=keys, cols=staged, stage=self.stage)
        where: sql.Composable = sql.SQL("")
        if filter_unchanged:
            key_match = sql.SQL(" AND ").join(
                sql.SQL("o.{0} = s.{0}").format(ident(k)) for k in self.keys
            )
            where = sql.SQL(
                " WHERE NOT EXISTS (SELECT FROM {} AS o WHERE o.agency_id = s.agency_id"
                " AND o.integration_id = s.integration_id AND {} AND o.deleted_at IS NULL"
                " AND ({}) IS NOT DISTINCT FROM ({}))"
            ).format(self.target, key_match, cols("o", compared), cols("s", compared))
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in compared)
        upsert = sql.SQL(
            "INSERT INTO {target} AS t ({tcols}) SELECT s.integration_id, s.agency_id, s.client_id,"
            " {scols}, now(), NULL FROM src AS s{where} ON CONFLICT ({pk}) DO UPDATE SET {sets},"
            " synced_at = now(), deleted_at = NULL WHERE t.deleted_at IS NOT NULL OR ({tcmp})"
            " IS DISTINCT FROM ({xcmp}) RETURNING (t.xmax = 0) AS inserted"
        ).format(
            target=self.target,
            tcols=sql.SQL(", ").join(map(ident, target_cols)),
            scols=cols("s", self.columns),
            where=where,
            pk=sql.SQL(", ").join(map(ident, ["agency_id", "integration_id", *self.keys])),
            sets=sets,
            tcmp=cols("t", compared),
            xcmp=cols("excluded", compared),
        )
        return sql.SQL(
            "WITH src AS {mat}({src}), up AS ({upsert}) SELECT count(*) FILTER (WHERE inserted),"
            " count(*) FILTER (WHERE NOT inserted), {distinct} FROM up"
        ).format(
            mat=sql.SQL("MATERIALIZED " if dedupe else "NOT MATERIALIZED "),
            distinct=sql.SQL("(SELECT count(*) FROM src)" if dedupe else "NULL::bigint"),
            src=src,
            upsert=upsert,
        )

    # -- deleting -----------------------------------------------------------------------------
    def keys_relation(self, keys: Sequence[Sequence[Any]]) -> tuple[sql.Composable, list[Any]]:
        """``unnest(k1[], k2[]) AS a(k1, k2)`` for a list of natural keys, and its params."""
        columns = list(zip(*keys, strict=True)) if keys else [() for _ in self.keys]
        if len(columns) != len(self.keys):
            raise ValueError(f"keys must have {len(self.keys)} values {self.keys}")
        arrays = sql.SQL(", ").join(
            sql.SQL("CAST(%s AS {}[])").format(self.type_sql(k)) for k in self.keys
        )
        rel = sql.SQL("unnest({}) AS a({})").format(
            arrays, sql.SQL(", ").join(map(sql.Identifier, self.keys))
        )
        return rel, [list(c) for c in columns]

    def soft_delete(self, keys: Sequence[Sequence[Any]]) -> tuple[sql.Composed, list[Any]]:
        rel, params = self.keys_relation(keys)
        match = sql.SQL(" AND ").join(
            sql.SQL("t.{0} = a.{0}").format(sql.Identifier(k)) for k in self.keys
        )
        stmt = sql.SQL(
            "UPDATE {} AS t SET deleted_at = now() FROM {} WHERE t.agency_id = %s"
            " AND t.integration_id = %s AND t.deleted_at IS NULL AND {}"
        ).format(self.target, rel, match)
        return stmt, params

    def reconcile(
        self,
        where: Mapping[str, Any],
        alive_keys: Sequence[Sequence[Any]],
        range_column: str | None,
        lo: Any,
        hi: Any,
    ) -> tuple[sql.Composed, list[Any]]:
        """Soft-delete rows of the slice ``where`` (and ``range_column`` in [lo, hi]) whose keys
        are not among ``alive_keys``. Params: agency and integration first, then the rest."""
        t = sql.Identifier("t")
        conds = [
            sql.SQL("{}.agency_id = %s").format(t),
            sql.SQL("{}.integration_id = %s").format(t),
            sql.SQL("{}.deleted_at IS NULL").format(t),
        ]
        params: list[Any] = []
        for name, value in where.items():
            col = sql.SQL("{}.{}").format(t, sql.Identifier(name))
            if value is None:
                conds.append(sql.SQL("{} IS NULL").format(col))
            else:
                conds.append(sql.SQL("{} = CAST(%s AS {})").format(col, self.type_sql(name)))
                params.append(value)
        if range_column is not None:
            col = sql.SQL("{}.{}").format(t, sql.Identifier(range_column))
            for op, bound in ((">=", lo), ("<=", hi)):
                if bound is not None:
                    conds.append(
                        sql.SQL("{} " + op + " CAST(%s AS {})").format(
                            col, self.type_sql(range_column)
                        )
                    )
                    params.append(bound)
        alive, alive_params = self.keys_relation(alive_keys)
        match = sql.SQL(" AND ").join(
            sql.SQL("a.{0} = {1}.{0}").format(sql.Identifier(k), t) for k in self.keys
        )
        stmt = sql.SQL(
            "UPDATE {} AS t SET deleted_at = now() WHERE {} AND NOT EXISTS "
            "(SELECT FROM {} WHERE {})"
        ).format(self.target, sql.SQL(" AND ").join(conds), alive, match)
        return stmt, [*params, *alive_params]
