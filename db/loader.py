"""Load pages of typed records into one provider table, with their cursors, batch by batch.

Why it is built this way (DESIGN §3, §4):

* **Rows and cursor commit together.** Each batch is one short transaction: binary COPY into a
  session-private staging table, one ``INSERT .. SELECT .. ON CONFLICT`` into the target, the
  pages' deletions and reconciliations, then their cursors (:func:`db.state.save_state`). A crash
  at any point loses or duplicates nothing; the rerun starts from the last committed cursor.
* **Unchanged rows are not rewritten.** A re-sync mostly sees rows it already has. When the
  target holds rows of this integration, staged rows equal to their stored version are dropped
  by an anti-join before the upsert, and the upsert's ``WHERE .. IS DISTINCT FROM`` guards the
  rest, so unchanged rows cost no new tuple version, no row lock, no WAL and no index entry.
* **Memory is bounded by one batch.** Pages are buffered until ``max_rows`` / ``max_bytes`` (or
  ``max_seconds`` of waiting on a slow API) and then written. The transaction is opened only to
  write, never while a connector waits on the network. A page bigger than a batch is split; its
  cursor and deletions go with its last part.
* **A page that deletes closes its batch**, so its deletions apply after its own rows and the
  rows before it, and never to rows that a later page re-creates.
* **The fast path does no per-value Python checks.** psycopg's binary dumpers reject most wrong
  types (str for timestamptz, naive datetimes, floats for numeric, ...); integer columns are
  staged as ``bigint`` so an out-of-range value fails the cast instead of wrapping; NOT NULL is
  enforced by the staging table. Only when a batch fails are its records checked one by one,
  to name the culprit (:class:`LoadError`). Booleans are the exception: psycopg would store
  any truthy value, so a strict dumper is registered for them.
* **Tenant columns come from :class:`Tenant`, never from records**; record keys starting with
  ``_`` are hints (e.g. client attribution), never columns.

``synchronous_commit`` is left at the server's setting: batches are large, so the commit flush
is a small part of their cost. This module is longer than the usual 300 lines because the
batching, the SQL and the culprit search only make sense together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import operator
import reprlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.dialects import postgresql as pg

from db.schema import TENANT_COLUMNS
from db.state import save_state

__all__ = [
    "LoadCounts",
    "LoadError",
    "PageLike",
    "ReconcileLike",
    "TableLoader",
    "Tenant",
    "soft_delete",
]

MiB = 1024 * 1024
_BIGINT = 20  # pg_type oid of int8
_SMALL_INTS = ("smallint", "integer")
# Transaction-local planner switches, see TableLoader._upsert.
_PLANNER_SWITCHES = ("enable_hashjoin", "enable_mergejoin", "enable_material")
_PLANNER = sql.SQL("SELECT {}").format(
    sql.SQL(", ").join(
        sql.SQL("set_config({}, %s, true)").format(sql.Literal(n)) for n in _PLANNER_SWITCHES
    )
)
_PLANNER_NOW = sql.SQL("SELECT {}").format(
    sql.SQL(", ").join(
        sql.SQL("current_setting({})").format(sql.Literal(n)) for n in _PLANNER_SWITCHES
    )
)


class LoadError(Exception):
    """A record (or batch) could not be stored; nothing of its batch was committed."""


class _DumpError(Exception):
    """psycopg could not encode a staged value (raised from its TypeError/ValueError)."""


class ReconcileLike(Protocol):
    """What :class:`connectors.common.Reconcile` offers (``db`` does not import connectors)."""

    @property
    def where(self) -> Mapping[str, Any]: ...
    @property
    def alive_keys(self) -> Sequence[Sequence[Any]]: ...
    @property
    def range_column(self) -> str | None: ...
    @property
    def lo(self) -> Any: ...
    @property
    def hi(self) -> Any: ...


class PageLike(Protocol):
    """What :class:`connectors.common.Page` offers."""

    @property
    def stream(self) -> str: ...
    @property
    def records(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def partition(self) -> str: ...
    @property
    def state(self) -> Mapping[str, Any] | None: ...
    @property
    def deleted_keys(self) -> Sequence[Sequence[Any]]: ...
    @property
    def reconcile(self) -> ReconcileLike | None: ...


@dataclass(frozen=True)
class Tenant:
    """Whose rows these are. ``client_id`` wins; else ``client_field`` is looked up in
    ``client_map`` (a str hint, or the first hit of a list of str hints); else NULL."""

    agency_id: int
    integration_id: int
    client_id: int | None = None
    client_map: Mapping[str, int] = field(default_factory=dict)
    client_field: str | None = None

    def client_of(self, record: Mapping[str, Any]) -> int | None:
        hint = record.get(self.client_field) if self.client_field else None
        if isinstance(hint, str):
            return self.client_map.get(hint)
        if isinstance(hint, list | tuple):
            for value in hint:
                if isinstance(value, str) and value in self.client_map:
                    return self.client_map[value]
        return None

    @property
    def per_record_client(self) -> bool:
        return self.client_id is None and self.client_field is not None and bool(self.client_map)


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _StrictBoolDumper(Dumper):
    """psycopg's bool dumper stores any truthy value; a connector bug should not become True."""

    format = Format.BINARY
    oid = 16  # bool

    def dump(self, obj: Any) -> bytes:
        if obj is True:
            return b"\x01"
        if obj is False:
            return b"\x00"
        raise TypeError(f"expected bool, got {type(obj).__name__}")


@dataclass
class _Part:
    page: PageLike
    start: int
    stop: int
    last: bool  # the page ends here: its cursor, deletions and reconcile go with this batch


@dataclass
class _Batch:
    parts: list[_Part] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    opened: float = 0.0


class TableLoader:
    """Loads pages for one table and one integration. See the module docstring."""

    def __init__(
        self,
        engine: sa.Engine,
        table: sa.Table,
        tenant: Tenant,
        *,
        max_rows: int = 50_000,
        max_bytes: int = 32 * MiB,
        max_seconds: float = 10.0,
    ) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be positive")
        self.engine, self.table, self.tenant = engine, table, tenant
        self.max_rows, self.max_bytes, self.max_seconds = max_rows, max_bytes, max_seconds
        self.keys = [
            c.name
            for c in table.primary_key.columns
            if c.name not in ("agency_id", "integration_id")
        ]
        data = [c for c in table.columns if c.name not in TENANT_COLUMNS and not c.primary_key]
        self.data = [c.name for c in data]
        self.columns = self.keys + self.data  # record fields, in staging order
        self.required = {*self.keys, *(c.name for c in data if not c.nullable)}
        self._known = set(self.columns) | set(TENANT_COLUMNS)
        self._getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*self.columns)
            if len(self.columns) > 1
            else lambda r: (r[self.columns[0]],)
        )
        self._checks = {c.name: _check_for(c.type) for c in table.columns}
        self._target = sql.Identifier(*filter(None, [table.schema, table.name]))

    # -- public -------------------------------------------------------------------------------
    def load(self, pages: Iterable[PageLike]) -> LoadCounts:
        counts = LoadCounts()
        with self.engine.connect() as conn:
            self._prepare(conn)
            for batch in self._batches(pages):
                self._write(conn, batch, counts)
        return counts

    # -- batching -----------------------------------------------------------------------------
    def _batches(self, pages: Iterable[PageLike]) -> Iterable[_Batch]:
        batch = _Batch()
        for page in pages:
            records = page.records
            start, total = 0, len(records)
            per_row = _approx_row_bytes(records)
            if not batch.parts:
                batch.opened = time.monotonic()
            while True:
                room = min(self.max_rows - batch.rows, (self.max_bytes - batch.bytes) // per_row)
                take = max(min(total - start, room), 1 if not batch.parts else 0)
                stop = min(start + take, total)
                last = stop == total
                if stop > start or last:
                    batch.parts.append(_Part(page, start, stop, last))
                    batch.rows += stop - start
                    batch.bytes += (stop - start) * per_row
                start = stop
                closes = last and (page.deleted_keys or page.reconcile is not None)
                full = batch.rows >= self.max_rows or batch.bytes >= self.max_bytes
                slow = time.monotonic() - batch.opened >= self.max_seconds
                if closes or full or (last and slow) or not last:
                    yield batch
                    batch = _Batch(opened=time.monotonic())
                if last:
                    break
        if batch.parts:
            yield batch

    # -- one transaction ----------------------------------------------------------------------
    def _write(self, conn: sa.Connection, batch: _Batch, counts: LoadCounts) -> None:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            with conn.begin():
                cur = raw.cursor()
                staged = self._copy(cur, batch)
                if staged:
                    inserted, updated, distinct = self._upsert(cur, staged)
                    counts.inserted += inserted
                    counts.updated += updated
                    counts.unchanged += distinct - inserted - updated
                for part in batch.parts:
                    if not part.last:
                        continue
                    page = part.page
                    if page.deleted_keys:
                        counts.deleted += _soft_delete(cur, self, page.deleted_keys)
                    if page.reconcile is not None:
                        counts.deleted += self._reconcile(cur, page.reconcile)
                    if page.state is not None:
                        tid = self.tenant.integration_id
                        save_state(conn, tid, page.stream, page.partition, page.state)
        except (psycopg.DataError, psycopg.IntegrityError, _DumpError) as exc:
            cause = exc.__cause__ if isinstance(exc, _DumpError) else exc
            raise self._culprit(batch) or LoadError(f"{self.table.name}: {cause}") from cause
        counts.batches += 1

    def _copy(self, cur: psycopg.Cursor[Any], batch: _Batch) -> int:
        """Stream the batch's rows into the staging table; returns how many were staged."""
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self._stage, sql.SQL(", ").join(map(sql.Identifier, self._stage_columns))
        )
        cur.adapters.register_dumper(bool, _StrictBoolDumper)
        try:
            with cur.copy(stmt) as copy:
                copy.set_types(self._stage_oids)
                return self._copy_rows(copy.write_row, batch)
        except (TypeError, ValueError, OverflowError, IndexError) as exc:  # from psycopg's dumpers
            raise _DumpError from exc

    def _copy_rows(self, write: Callable[[Sequence[Any]], None], batch: _Batch) -> int:
        # The hot loop: one itemgetter call and one write per row, nothing per value.
        getter, width, known = self._getter, len(self.columns), self._known
        per_record, client_of = self.tenant.per_record_client, self.tenant.client_of
        client, integration = self.tenant.client_id, self.tenant.integration_id
        ordinal = 0
        for part in batch.parts:
            records = part.page.records
            for i in range(part.start, part.stop):
                record = records[i]
                try:
                    row = getter(record)
                except KeyError:
                    row = self._row_with_gaps(record)
                if len(record) != width:
                    self._check_extra_fields(record, known)
                if per_record:
                    client = client_of(record)
                write((*row, client, integration, ordinal))
                ordinal += 1
        return ordinal

    def _upsert(self, cur: psycopg.Cursor[Any], staged: int) -> tuple[int, int, int]:
        """(inserted, updated, distinct keys). With a key twice in a batch the last one wins.

        Into a target without rows of this integration (a first load) the upsert runs as is;
        a duplicate key makes it fail (CardinalityViolation) and it reruns de-duplicated. When
        the target has rows, unchanged ones are filtered out first, which would hide such a
        failure, so the staged rows are always de-duplicated (DISTINCT ON) before the filter.

        The anti-join that skips unchanged rows must probe the primary key once per staged row.
        Right after a big first load the target's statistics still say "empty", and the planner
        would then pick a nested loop over all the integration's rows (hours, not seconds) or
        hash the whole target per batch; so hash and merge joins (and materializing the inner
        side) are off for this statement, leaving one index probe per staged row.
        """
        if self._has_rows:
            cur.execute(_PLANNER, ["off"] * len(_PLANNER_SWITCHES))
            result = cur.execute(self._sql_upsert_dedupe, self._params).fetchone()
            cur.execute(_PLANNER, self._planner)
        else:
            cur.execute("SAVEPOINT aos_upsert")
            try:
                result = cur.execute(self._sql_upsert, self._params).fetchone()
                cur.execute("RELEASE SAVEPOINT aos_upsert")
            except psycopg.errors.CardinalityViolation:
                cur.execute("ROLLBACK TO SAVEPOINT aos_upsert")
                result = cur.execute(self._sql_upsert_dedupe, self._params).fetchone()
        inserted, updated, distinct = result  # type: ignore[misc]
        return inserted, updated, distinct if distinct is not None else staged

    def _reconcile(self, cur: psycopg.Cursor[Any], rec: ReconcileLike) -> int:
        t = sql.Identifier("t")
        conds = [
            sql.SQL("{}.agency_id = %s").format(t),
            sql.SQL("{}.integration_id = %s").format(t),
            sql.SQL("{}.deleted_at IS NULL").format(t),
        ]
        params: list[Any] = [self.tenant.agency_id, self.tenant.integration_id]
        for name, value in rec.where.items():
            col = sql.SQL("{}.{}").format(t, sql.Identifier(self._column(name)))
            if value is None:
                conds.append(sql.SQL("{} IS NULL").format(col))
            else:
                conds.append(sql.SQL("{} = CAST(%s AS {})").format(col, self._type_sql(name)))
                params.append(value)
        if rec.range_column is not None:
            col = sql.SQL("{}.{}").format(t, sql.Identifier(self._column(rec.range_column)))
            for op, bound in ((">=", rec.lo), ("<=", rec.hi)):
                if bound is not None:
                    conds.append(
                        sql.SQL("{} " + op + " CAST(%s AS {})").format(
                            col, self._type_sql(rec.range_column)
                        )
                    )
                    params.append(bound)
        alive, alive_params = self._keys_relation(rec.alive_keys)
        match = sql.SQL(" AND ").join(
            sql.SQL("a.{0} = {1}.{0}").format(sql.Identifier(k), t) for k in self.keys
        )
        stmt = sql.SQL(
            "UPDATE {} AS t SET deleted_at = now() WHERE {} AND NOT EXISTS "
            "(SELECT FROM {} WHERE {})"
        ).format(self._target, sql.SQL(" AND ").join(conds), alive, match)
        # Right after a first big load the statistics still say the integration has ~no rows,
        # and the planner picks a nested loop over every (row, alive key) pair: 112 ms per
        # 1,000-row page instead of ~1 ms. A hash anti-join is right at every size here.
        previous = cur.execute("SELECT current_setting('enable_nestloop')").fetchone()[0]  # type: ignore[index]
        cur.execute("SELECT set_config('enable_nestloop', 'off', true)")
        try:
            return cur.execute(stmt, [*params, *alive_params]).rowcount
        finally:
            cur.execute("SELECT set_config('enable_nestloop', %s, true)", [previous])

    # -- set-up -------------------------------------------------------------------------------
    def _prepare(self, conn: sa.Connection) -> None:
        """Column types from the catalog; staging table (once per session); SQL for this load."""
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with conn.begin():
            cur = raw.cursor()
            rows = cur.execute(
                "SELECT attname, format_type(atttypid, atttypmod), atttypid FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [self._target.as_string(raw)],
            ).fetchall()
            types = {name: (typ, oid) for name, typ, oid in rows}
            missing = [c for c in [*self.columns, *TENANT_COLUMNS] if c not in types]
            if missing:
                raise LoadError(f"{self.table.name}: no column(s) {missing} in the database")
            self._types = {n: t for n, (t, _) in types.items()}
            staged = [(c, *types[c]) for c in self.columns]
            staged = [
                (c, "bigint", _BIGINT) if t in _SMALL_INTS else (c, t, o) for c, t, o in staged
            ]
            # integration_id is staged as a column (not a query parameter) so that the planner
            # cannot turn the anti-join's key match into a constant filter on the target and
            # trust a stale row estimate for it; see _upsert.
            staged += [(c, "bigint", _BIGINT) for c in ("client_id", "integration_id", "_ord")]
            digest = hashlib.sha1(repr(staged).encode()).hexdigest()[:10]
            self._stage = sql.Identifier(f"_aos_stage_{self.table.name[:32]}_{digest}")
            self._stage_columns = [c for c, _, _ in staged]
            self._stage_oids = [o for _, _, o in staged]
            ddl = sql.SQL(", ").join(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(c),
                    sql.SQL(t),  # t: a type name from our own catalog
                    sql.SQL(" NOT NULL" if c in self.required else ""),
                )
                for c, t, _ in staged
            )
            cur.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
                    self._stage, ddl
                )
            )
            self._has_rows = cur.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT FROM {} WHERE agency_id = %s AND integration_id = %s)"
                ).format(self._target),
                [self.tenant.agency_id, self.tenant.integration_id],
            ).fetchone()[0]  # type: ignore[index]
            self._planner = list(cur.execute(_PLANNER_NOW).fetchone())  # type: ignore[arg-type]
        self._params = {"iid": self.tenant.integration_id, "aid": self.tenant.agency_id}
        self._sql_upsert = self._upsert_sql(dedupe=False).as_bytes(raw)
        self._sql_upsert_dedupe = self._upsert_sql(dedupe=True).as_bytes(raw)

    def _upsert_sql(self, *, dedupe: bool) -> sql.Composable:
        ident = sql.Identifier
        cmp_cols = ["client_id", *self.data]
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

        src = sql.SQL(
            "SELECT integration_id, %(aid)s::bigint AS agency_id, client_id, {} FROM {}"
        ).format(sql.SQL(", ").join(map(ident, self.columns)), self._stage)
        if dedupe:  # the last staged version of each key wins
            keys = sql.SQL(", ").join(map(ident, self.keys))
            src = sql.SQL(
                "SELECT DISTINCT ON ({keys}) integration_id, %(aid)s::bigint AS agency_id,"
                " client_id, {cols} FROM {stage}"
                " ORDER BY {keys}, _ord DESC"
            ).format(
                keys=keys, cols=sql.SQL(", ").join(map(ident, self.columns)), stage=self._stage
            )
        where: sql.Composable = sql.SQL("")
        if self._has_rows:
            key_match = sql.SQL(" AND ").join(
                sql.SQL("o.{0} = s.{0}").format(ident(k)) for k in self.keys
            )
            where = sql.SQL(
                " WHERE NOT EXISTS (SELECT FROM {} AS o WHERE o.agency_id = s.agency_id"
                " AND o.integration_id = s.integration_id AND {} AND o.deleted_at IS NULL"
                " AND ({}) IS NOT DISTINCT FROM ({}))"
            ).format(self._target, key_match, cols("o", cmp_cols), cols("s", cmp_cols))
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in cmp_cols)
        upsert = sql.SQL(
            "INSERT INTO {target} AS t ({tcols}) SELECT s.integration_id, s.agency_id, s.client_id,"
            " {scols}, now(), NULL FROM src AS s{where} ON CONFLICT ({pk}) DO UPDATE SET {sets},"
            " synced_at = now(), deleted_at = NULL WHERE t.deleted_at IS NOT NULL OR ({tcmp})"
            " IS DISTINCT FROM ({xcmp}) RETURNING (t.xmax = 0) AS inserted"
        ).format(
            target=self._target,
            tcols=sql.SQL(", ").join(map(ident, target_cols)),
            scols=cols("s", self.columns),
            where=where,
            pk=sql.SQL(", ").join(map(ident, ["agency_id", "integration_id", *self.keys])),
            sets=sets,
            tcmp=cols("t", cmp_cols),
            xcmp=cols("excluded", cmp_cols),
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

    # -- helpers ------------------------------------------------------------------------------
    def _column(self, name: str) -> str:
        if name not in self.table.c:
            raise LoadError(f"{self.table.name}: no column {name!r}")
        return name

    def _type_sql(self, name: str) -> sql.Composable:
        return sql.SQL(self._types[name])  # from our catalog query, not from input

    def _keys_relation(self, keys: Sequence[Sequence[Any]]) -> tuple[sql.Composable, list[Any]]:
        """``unnest(k1[], k2[]) AS a(k1, k2)`` for a list of natural keys, and its params."""
        columns = list(zip(*keys, strict=True)) if keys else [() for _ in self.keys]
        if len(columns) != len(self.keys):
            raise LoadError(
                f"{self.table.name}: keys must have {len(self.keys)} values {self.keys}"
            )
        arrays = sql.SQL(", ").join(
            sql.SQL("CAST(%s AS {}[])").format(self._type_sql(k)) for k in self.keys
        )
        rel = sql.SQL("unnest({}) AS a({})").format(
            arrays, sql.SQL(", ").join(map(sql.Identifier, self.keys))
        )
        return rel, [list(c) for c in columns]

    def _row_with_gaps(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        for name in self.columns:
            if name not in record and name in self.required:
                raise LoadError(
                    f"{self.table.name}: record has no {name!r} "
                    f"({'key ' if name in self.keys else ''}column is required; "
                    f"{self._key_repr(record)})"
                )
        return tuple(record.get(name) for name in self.columns)

    def _check_extra_fields(self, record: Mapping[str, Any], known: set[str]) -> None:
        for name in record:
            if name not in known and not name.startswith("_"):
                raise LoadError(
                    f"{self.table.name}: record field {name!r} is not a column "
                    f"({self._key_repr(record)}); hints must start with '_'"
                )

    def _key_repr(self, record: Mapping[str, Any]) -> str:
        return "key " + ", ".join(f"{k}={record.get(k)!r}" for k in self.keys)

    def _culprit(self, batch: _Batch) -> LoadError | None:
        """After a failed batch: the first record that breaks a column's type or NOT NULL."""
        for part in batch.parts:
            for record in part.page.records[part.start : part.stop]:
                for name in self.columns:
                    value = record.get(name)
                    if value is None:
                        if name in self.required:
                            return LoadError(
                                f"{self.table.name}: column {name!r} is NOT NULL, "
                                f"got None ({self._key_repr(record)})"
                            )
                        continue
                    label, ok = self._checks[name]
                    if not ok(value):
                        return LoadError(
                            f"{self.table.name}: column {name!r} expects {label}, got "
                            f"{_describe(value)} ({self._key_repr(record)})"
                        )
        return None


def soft_delete(
    engine: sa.Engine, table: sa.Table, tenant: Tenant, keys: Sequence[Sequence[Any]]
) -> int:
    """Set ``deleted_at`` on this integration's rows with these natural keys; returns how many."""
    loader = TableLoader(engine, table, tenant)
    with engine.connect() as conn:
        loader._prepare(conn)
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with conn.begin():
            return _soft_delete(raw.cursor(), loader, keys)


def _soft_delete(
    cur: psycopg.Cursor[Any], loader: TableLoader, keys: Sequence[Sequence[Any]]
) -> int:
    rel, params = loader._keys_relation(keys)
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = a.{0}").format(sql.Identifier(k)) for k in loader.keys
    )
    stmt = sql.SQL(
        "UPDATE {} AS t SET deleted_at = now() FROM {} WHERE t.agency_id = %s"
        " AND t.integration_id = %s AND t.deleted_at IS NULL AND {}"
    ).format(loader._target, rel, match)
    tenant = loader.tenant
    return cur.execute(stmt, [*params, tenant.agency_id, tenant.integration_id]).rowcount


# -- validation, used only to explain a failed batch -------------------------------------------
def _approx_row_bytes(records: Sequence[Mapping[str, Any]]) -> int:
    """Rough staged size of a row, from up to three sample records (cheap, per page)."""
    if not records:
        return 1
    sample = [records[0], records[len(records) // 2], records[-1]]
    size = sum(
        len(v) if isinstance(v, str) else len(repr(v)) if isinstance(v, dict | list) else 8
        for r in sample
        for v in r.values()
    )
    return max(1, size // len(sample) + 8)


def _describe(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, dt.datetime) and value.utcoffset() is None:
        kind = "naive datetime"
    return f"{kind} {reprlib.repr(value)}"


def _json_ok(value: Any) -> bool:
    try:
        return "\\u0000" not in json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False


def _int_in(bits: int) -> Callable[[Any], bool]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_for(t: sa.types.TypeEngine[Any]) -> tuple[str, Callable[[Any], bool]]:
    """(type label, predicate) for a column type; the predicate accepts what we store."""
    if isinstance(t, sa.ARRAY):
        label, item = _check_for(t.item_type)
        return (
            f"{label}[]",
            lambda v: isinstance(v, list | tuple) and all(x is None or item(x) for x in v),
        )
    if isinstance(t, sa.JSON | pg.JSONB):
        return ("jsonb" if isinstance(t, pg.JSONB) else "json"), _json_ok
    if isinstance(t, sa.DateTime):
        if t.timezone:
            return "timestamptz", lambda v: isinstance(v, dt.datetime) and v.utcoffset() is not None
        return "timestamp", lambda v: isinstance(v, dt.datetime) and v.utcoffset() is None
    if isinstance(t, sa.Date):
        return "date", lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)
    if isinstance(t, sa.Boolean):
        return "boolean", lambda v: isinstance(v, bool)
    if isinstance(t, sa.BigInteger):
        return "bigint", _int_in(64)
    if isinstance(t, sa.SmallInteger):
        return "smallint", _int_in(16)
    if isinstance(t, sa.Integer):
        return "integer", _int_in(32)
    if isinstance(t, sa.Float):
        return "double precision", lambda v: isinstance(v, float | int) and not isinstance(v, bool)
    if isinstance(t, sa.Numeric):
        return "numeric", lambda v: isinstance(v, Decimal | int) and not isinstance(v, bool)
    if isinstance(t, sa.String | sa.Enum):
        return "text", lambda v: isinstance(v, str) and "\x00" not in v
    if isinstance(t, sa.LargeBinary | pg.BYTEA):
        return "bytea", lambda v: isinstance(v, bytes | bytearray | memoryview)
    if isinstance(t, sa.Uuid | pg.UUID):
        return "uuid", lambda v: isinstance(v, uuid.UUID | str)
    if isinstance(t, sa.Interval):
        return "interval", lambda v: isinstance(v, dt.timedelta)
    return str(t).lower(), lambda v: True
