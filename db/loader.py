"""Load pages of typed records into one provider table, with their cursors, batch by batch.

Why it is built this way:

* **Rows and cursor commit together.** Each batch is one short transaction: the rows (binary
  COPY, see :mod:`db.load_sql` for the statements), the pages' deletions and reconciliations,
  then their cursors (:func:`db.state.save_state`). A crash at any point loses or duplicates
  nothing; the rerun starts from the last committed cursor.
* **A first load costs about a raw COPY.** While the integration has no rows in the table, rows
  are copied straight into it; the first key conflict (a key twice in a batch) switches that
  load to staging + upsert.
* **Unchanged rows are not rewritten.** Re-loads go through a session-private staging table and
  an upsert that skips rows equal to their stored version (no new tuple version, lock, WAL or
  index entry). Keys seen twice in one batch are found while copying; only then are staged
  rows de-duplicated (the last version wins).
* **Memory is bounded by one batch.** Pages are buffered until ``max_rows`` / ``max_bytes`` (or
  ``max_seconds`` of waiting on a slow API) and then written. The transaction is opened only to
  write, never while a connector waits on the network. A page bigger than a batch is split; its
  cursor and deletions go with its last part. A page that deletes closes its batch, so its
  deletions apply after its own rows and never to rows that a later page re-creates.
* **A poison record is set aside, not fatal.** The fast path does no per-value Python checks
  (psycopg's binary dumpers reject most wrong types; integer columns are staged as ``bigint``
  so an out-of-range value fails instead of wrapping). When a batch fails, its records are
  checked one by one (:mod:`db.load_checks`); the ones no column can take go to
  ``sync_reject`` (:mod:`db.rejects`) in the rewritten batch's transaction, and the rest of the
  batch and its cursor commit. A batch in which *every* record fails, or a record whose fields
  do not match the table (a missing or unknown field), is a mismatch between connector and
  schema, not poison: it raises :class:`LoadError` and commits nothing.
* **Tenant columns come from :class:`Tenant`, never from records**; record keys starting with
  ``_`` are hints (e.g. client attribution), never columns.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import operator
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from db import rejects
from db.agencydb import partition_name
from db.load_checks import approx_row_bytes, check_for, describe
from db.load_sql import (
    BIGINT_OID,
    RECONCILE_PLANNER,
    STAGED_TENANT_COLUMNS,
    UPSERT_PLANNER,
    LoadSql,
    planner,
)
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
_SMALL_INTS = ("smallint", "integer")
#: What psycopg's dumpers raise for a value they cannot encode.
_DUMP_ERRORS = (TypeError, ValueError, OverflowError, IndexError, struct.error)


class LoadError(Exception):
    """A batch could not be stored; nothing of it was committed."""


class _DumpError(Exception):
    """psycopg could not encode a value (raised from its TypeError/ValueError/struct.error)."""


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
    rejected: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, other: LoadCounts) -> None:
        for name, value in other.__dict__.items():
            setattr(self, name, getattr(self, name) + value)


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


class _StrictInt4Dumper(Dumper):
    """A direct COPY writes integer columns as themselves (staging widens them to bigint): a
    value out of range must fail, not wrap."""

    format = Format.BINARY
    oid = 23  # int4
    _pack = struct.Struct("!i").pack

    def dump(self, obj: Any) -> bytes:
        return self._pack(obj)


class _StrictInt2Dumper(_StrictInt4Dumper):
    oid = 21  # int2
    _pack = struct.Struct("!h").pack


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

    def fresh_positions(self) -> set[tuple[int, int]]:
        """Positions of the records read from the provider in this load (not retries)."""
        return {
            (p, i)
            for p, part in enumerate(self.parts)
            if not isinstance(part.page, _RetryPage)
            for i in range(part.start, part.stop)
        }

    def records(self) -> Iterator[tuple[tuple[int, int], PageLike, Mapping[str, Any]]]:
        for p, part in enumerate(self.parts):
            for i in range(part.start, part.stop):
                yield (p, i), part.page, part.page.records[i]


@dataclass
class _RetryPage:
    """Records taken back out of quarantine, tried again before the new pages of a load."""

    stream: str
    records: list[dict[str, Any]]
    partition: str = ""
    state: Mapping[str, Any] | None = None
    deleted_keys: Sequence[Sequence[Any]] = ()
    reconcile: ReconcileLike | None = None


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
        self._getter = _getter(self.columns)
        self._keyget = _getter(self.keys)
        self._checks = {c.name: check_for(c.type) for c in table.columns}
        self._target = sql.Identifier(*filter(None, [table.schema, table.name]))
        # Set by _prepare, per load.
        self._has_rows = False  # the integration has rows in the table (so: filter unchanged)
        self._direct = False  # COPY straight into the table until a key conflict
        self._quarantined = False  # sync_reject holds records of this table to retry
        self._analyze_at = 1_000  # rows inserted by this load at which to ANALYZE the target

    # -- public -------------------------------------------------------------------------------
    def load(self, pages: Iterable[PageLike]) -> LoadCounts:
        counts = LoadCounts()
        with self.engine.connect() as conn:
            raw = _raw(conn)
            self._prepare(conn)
            retry: list[PageLike] = []
            if self._quarantined:
                by_stream: dict[str, list[dict[str, Any]]] = {}
                for stream, record in rejects.pending(raw, *self._ids, self.table.name):
                    by_stream.setdefault(stream, []).append(record)
                retry = [_RetryPage(s, r) for s, r in by_stream.items()]
            with _young_gc_only():
                for batch in self._batches(itertools.chain(retry, pages)):
                    self._write(conn, batch, counts)
                    self._keep_statistics(conn, counts)
                    gc.collect(1)  # the batch is gone: young cycles, if any, go with it
            if self._quarantined:
                with conn.begin():
                    cur = raw.cursor()
                    table = self.table.name
                    rejects.resolve_loaded(
                        cur, self._target, self.keys, *self._ids, table, self._since
                    )
        return counts

    def _keep_statistics(self, conn: sa.Connection, counts: LoadCounts) -> None:
        """ANALYZE the target each time this load has doubled what it held (from 1,000 rows
        on). An integration's partition starts empty and without statistics: left alone until
        autovacuum comes, the planner goes on taking it for tiny and plans each batch's upsert
        as a scan of the whole (growing) partition."""
        if counts.inserted < self._analyze_at:
            return
        with conn.begin():
            _raw(conn).execute(sql.SQL("ANALYZE {}").format(self._target))
        self._analyze_at = 2 * max(counts.inserted, self._analyze_at)

    @property
    def _ids(self) -> tuple[int, int]:
        return self.tenant.agency_id, self.tenant.integration_id

    # -- batching -----------------------------------------------------------------------------
    def _batches(self, pages: Iterable[PageLike]) -> Iterable[_Batch]:
        batch = _Batch()
        for page in pages:
            records = page.records
            start, total = 0, len(records)
            per_row = approx_row_bytes(records)
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
        """Write the batch; after a data error, once more without the records that caused it."""
        aside: dict[tuple[int, int], rejects.Reject] = {}
        while True:
            try:
                with conn.begin():
                    outcome = self._transaction(conn, batch, aside)
                break
            except (psycopg.DataError, psycopg.IntegrityError, _DumpError) as exc:
                cause = exc.__cause__ if isinstance(exc, _DumpError) else exc
                if aside:  # the poison is already out: what remains is no record's fault
                    raise LoadError(f"{self.table.name}: {cause}") from cause
                aside = self._poison(batch) or self._bisect(conn, batch)
                if not aside:
                    raise LoadError(f"{self.table.name}: {cause}") from cause
                fresh = batch.fresh_positions()  # records retried from quarantine aside
                if len(fresh) > 1 and fresh <= aside.keys():
                    first = aside[min(fresh)]
                    raise LoadError(
                        f"{self.table.name}: every record of a batch of {len(fresh)} was "
                        f"refused, so this is a mismatch between connector and table, not a "
                        f"poison record: {first.reason}"
                    ) from cause
        counts.add(outcome)
        counts.rejected += len(aside)
        counts.batches += 1
        self._has_rows = self._has_rows or outcome.inserted > 0

    def _transaction(
        self, conn: sa.Connection, batch: _Batch, aside: Mapping[tuple[int, int], rejects.Reject]
    ) -> LoadCounts:
        cur = _raw(conn).cursor()
        cur.adapters.register_dumper(bool, _StrictBoolDumper)
        outcome = LoadCounts()
        if self._direct and self._copy_direct(cur, batch, aside, outcome):
            pass
        else:
            staged, duplicates = self._copy(cur, batch, aside)
            if staged:
                self._upsert(cur, staged, duplicates, outcome)
        for reject in aside.values():
            rejects.set_aside(cur, *self._ids, self.table.name, reject)
        for part in batch.parts:
            if not part.last:
                continue
            page = part.page
            if page.deleted_keys:
                stmt, params = self._sql.soft_delete(page.deleted_keys)
                outcome.deleted += cur.execute(stmt, [*params, *self._ids]).rowcount
            if page.reconcile is not None:
                rec = page.reconcile
                for name in (*rec.where, *filter(None, [rec.range_column])):
                    self._column(name)
                stmt, params = self._sql.reconcile(
                    rec.where, rec.alive_keys, rec.range_column, rec.lo, rec.hi
                )
                with planner(cur, RECONCILE_PLANNER):
                    outcome.deleted += cur.execute(stmt, [*self._ids, *params]).rowcount
            if page.state is not None:
                tid = self.tenant.integration_id
                save_state(conn, tid, page.stream, page.partition, page.state)
        return outcome

    def _copy_direct(
        self,
        cur: psycopg.Cursor[Any],
        batch: _Batch,
        aside: Mapping[tuple[int, int], rejects.Reject],
        outcome: LoadCounts,
    ) -> bool:
        """COPY straight into the target; False (and nothing written) on a key conflict."""
        for dumper in (_StrictInt4Dumper, _StrictInt2Dumper):
            cur.adapters.register_dumper(None, dumper)  # by oid only: this COPY's columns
        agency, tid = self.tenant.agency_id, self.tenant.integration_id
        cur.execute("SAVEPOINT aos_direct")
        try:
            with cur.copy(self._sql.copy_direct()) as copy:
                copy.set_types(self._direct_oids)
                write, written = copy.write_row, 0
                try:
                    if self.tenant.per_record_client or aside:
                        client_of = self.tenant.client_of
                        per_record = self.tenant.per_record_client
                        client = self.tenant.client_id
                        for record, values in self._rows(batch, aside):
                            write(
                                values + (client_of(record) if per_record else client, tid, agency)
                            )
                            written += 1
                    else:  # the common case, inlined: one itemgetter call and one write per row
                        tail = (self.tenant.client_id, tid, agency)
                        getter, width = self._getter, len(self.columns)
                        for part in batch.parts:
                            for record in part.page.records[part.start : part.stop]:
                                try:
                                    values = getter(record)
                                except KeyError:
                                    values = self._row_with_gaps(record)
                                if len(record) != width:
                                    self._check_extra_fields(record, self._known)
                                write(values + tail)
                            written += part.stop - part.start
                except _DUMP_ERRORS as exc:
                    raise _DumpError from exc
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT aos_direct")
            self._direct = False
            return False
        cur.execute("RELEASE SAVEPOINT aos_direct")
        outcome.inserted = written
        return True

    def _copy(
        self,
        cur: psycopg.Cursor[Any],
        batch: _Batch,
        aside: Mapping[tuple[int, int], rejects.Reject],
    ) -> tuple[int, bool]:
        """Stream the batch into the staging table: (rows staged, whether a key came twice).
        The ordinal column lets a de-duplication keep the last version of a key."""
        seen: set[Any] = set()
        add, keyget, tid = seen.add, self._keyget, self.tenant.integration_id
        client = self.tenant.client_id
        client_of = self.tenant.client_of if self.tenant.per_record_client else None
        with cur.copy(self._sql.copy_stage()) as copy:
            copy.set_types(self._stage_oids)
            write, staged = copy.write_row, 0
            try:
                for record, values in self._rows(batch, aside):
                    add(keyget(record))
                    write(values + (client_of(record) if client_of else client, tid, staged))
                    staged += 1
            except _DUMP_ERRORS as exc:
                raise _DumpError from exc
        return staged, len(seen) != staged

    def _rows(
        self, batch: _Batch, aside: Mapping[tuple[int, int], rejects.Reject]
    ) -> Iterator[tuple[Mapping[str, Any], tuple[Any, ...]]]:
        """The hot loop: (record, its column values), one itemgetter call per record and
        nothing per value; records set aside are left out."""
        getter, width, known = self._getter, len(self.columns), self._known
        for p, part in enumerate(batch.parts):
            records = part.page.records
            for i in range(part.start, part.stop):
                if aside and (p, i) in aside:
                    continue
                record = records[i]
                try:
                    values = getter(record)
                except KeyError:
                    values = self._row_with_gaps(record)
                if len(record) != width:
                    self._check_extra_fields(record, known)
                yield record, values

    def _upsert(
        self, cur: psycopg.Cursor[Any], staged: int, duplicates: bool, outcome: LoadCounts
    ) -> None:
        """Into a target with rows of this integration, unchanged staged rows are filtered out
        by an anti-join that must probe the primary key once per staged row; see
        :mod:`db.load_sql` for why hash and merge joins are off for it."""
        stmt = self._upsert_sql(dedupe=duplicates, filter_unchanged=self._has_rows)
        if self._has_rows:
            with planner(cur, UPSERT_PLANNER):
                result = cur.execute(stmt, self._params).fetchone()
        else:
            result = cur.execute(stmt, self._params).fetchone()
        inserted, updated, distinct = result  # type: ignore[misc]
        distinct = distinct if distinct is not None else staged
        outcome.inserted += inserted
        outcome.updated += updated
        outcome.unchanged += distinct - inserted - updated

    def _upsert_sql(self, *, dedupe: bool, filter_unchanged: bool) -> bytes:
        key = (dedupe, filter_unchanged)
        if key not in self._upserts:
            self._upserts[key] = self._sql.upsert(
                dedupe=dedupe, filter_unchanged=filter_unchanged
            ).as_bytes(self._raw)
        return self._upserts[key]

    # -- set-up -------------------------------------------------------------------------------
    def _prepare(self, conn: sa.Connection) -> None:
        """Column types from the catalog; staging table (once per session); SQL for this load."""
        raw = self._raw = _raw(conn)
        with conn.begin():
            cur = raw.cursor()
            # An agency database's provider tables are partitioned by integration: rows go
            # straight into the integration's partition (a plain table, so RETURNING may read
            # xmax, and no row is routed).
            part = partition_name(self.table.name, self.tenant.integration_id)
            if cur.execute("SELECT to_regclass(%s)", [f"public.{part}"]).fetchone()[0]:  # type: ignore[index]
                self._target = sql.Identifier("public", part)
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
                (c, "bigint", BIGINT_OID) if t in _SMALL_INTS else (c, t, o) for c, t, o in staged
            ]
            # integration_id is staged as a column (not a query parameter) so that the planner
            # cannot turn the anti-join's key match into a constant filter on the target and
            # trust a stale row estimate for it.
            staged += [(c, "bigint", BIGINT_OID) for c in STAGED_TENANT_COLUMNS]
            digest = hashlib.sha1(repr(staged).encode()).hexdigest()[:10]
            stage = sql.Identifier(f"_aos_stage_{self.table.name[:32]}_{digest}")
            self._sql = LoadSql(self._target, stage, self.keys, self.data, self._types)
            self._stage_oids = [o for _, _, o in staged]
            self._direct_oids = [types[c][1] for c in self.columns] + [BIGINT_OID] * 3
            cur.execute(self._sql.stage_ddl([(c, t) for c, t, _ in staged], self.required))
            self._has_rows = bool(cur.execute(self._sql.has_rows(), self._ids).fetchone()[0])  # type: ignore[index]
            self._quarantined = bool(
                cur.execute(
                    "SELECT EXISTS (SELECT FROM sync_reject WHERE agency_id = %s AND"
                    " integration_id = %s AND table_name = %s)",
                    [*self._ids, self.table.name],
                ).fetchone()[0]  # type: ignore[index]
            )
            self._since = cur.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        self._direct = not self._has_rows and not self._quarantined
        self._analyze_at = 1_000
        self._params = {"aid": self.tenant.agency_id}
        self._upserts: dict[tuple[bool, bool], bytes] = {}

    # -- checks, only after a failed batch ----------------------------------------------------
    def _column(self, name: str) -> str:
        if name not in self.table.c:
            raise LoadError(f"{self.table.name}: no column {name!r}")
        return name

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

    def _problem(self, record: Mapping[str, Any]) -> str | None:
        """Why no column could take this record, or None."""
        for name in self.columns:
            value = record.get(name)
            if value is None:
                if name in self.required:
                    return f"column {name!r} is NOT NULL, got None ({self._key_repr(record)})"
                continue
            label, ok = self._checks[name]
            if not ok(value):
                return (
                    f"column {name!r} expects {label}, got {describe(value)} "
                    f"({self._key_repr(record)})"
                )
        return None

    def _bisect(self, conn: sa.Connection, batch: _Batch) -> dict[tuple[int, int], rejects.Reject]:
        """The records PostgreSQL refuses for a reason no check here foresees (a constraint, a
        trigger), found by halving: each probe stages and upserts a subset inside a savepoint of
        a transaction that is rolled back, so nothing of it stays. About log2(n) probes per
        refused record; only ever run after a batch failed."""
        everything = [position for position, _, _ in batch.records()]
        limit = max(16, len(everything) // 100)
        found: dict[tuple[int, int], rejects.Reject] = {}
        records = {position: (page, record) for position, page, record in batch.records()}
        trans = conn.begin()
        try:
            cur = _raw(conn).cursor()
            cur.adapters.register_dumper(bool, _StrictBoolDumper)

            def refusal(subset: list[tuple[int, int]]) -> str | None:
                keep = set(subset)
                others = {p: _PROBE for p in everything if p not in keep}
                cur.execute("SAVEPOINT aos_probe")
                try:
                    staged, duplicates = self._copy(cur, batch, others)
                    if staged:
                        self._upsert(cur, staged, duplicates, LoadCounts())
                except (psycopg.DataError, psycopg.IntegrityError, _DumpError) as exc:
                    cause = exc.__cause__ if isinstance(exc, _DumpError) else exc
                    cur.execute("ROLLBACK TO SAVEPOINT aos_probe")
                    return str(cause).strip().splitlines()[0]
                cur.execute("ROLLBACK TO SAVEPOINT aos_probe")
                return None

            def search(subset: list[tuple[int, int]]) -> None:
                reason = refusal(subset)
                if reason is None:
                    return
                if len(found) >= limit:  # not poison but something systematic: stop probing
                    raise LoadError(
                        f"{self.table.name}: more than {limit} records of a batch of "
                        f"{len(everything)} refused ({reason}); a mismatch between connector "
                        "and table, not a poison record"
                    )
                if len(subset) == 1:
                    page, record = records[subset[0]]
                    found[subset[0]] = rejects.Reject(
                        key=rejects.record_key(dict(record), self.keys),
                        reason=f"{self.table.name}: {reason} ({self._key_repr(record)})",
                        record=dict(record),
                        stream=page.stream,
                    )
                    return
                half = len(subset) // 2
                search(subset[:half])
                search(subset[half:])

            search(everything)
        finally:
            trans.rollback()
        return found

    def _poison(self, batch: _Batch) -> dict[tuple[int, int], rejects.Reject]:
        found = {}
        for position, page, record in batch.records():
            problem = self._problem(record)
            if problem is not None:
                found[position] = rejects.Reject(
                    key=rejects.record_key(dict(record), self.keys),
                    reason=f"{self.table.name}: {problem}",
                    record=dict(record),
                    stream=page.stream,
                )
        return found


class _GcPause:
    """No automatic (full) garbage collections while a load holds a batch of records.

    A batch keeps tens of thousands of fresh containers alive until it is written; CPython's
    full collections then traverse them again and again, which cost a first load 15-20% of its
    time (``bench/load.py``). The load collects the young generations itself after each batch
    instead, so memory stays bounded by a batch. Counted, because ``sync_all`` loads in threads:
    automatic collection resumes when the last load ends (if it was on to begin with)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = True

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


_young_gc_only = _GcPause()


#: Stands for "not in this probe" among the records a bisection leaves out.
_PROBE = rejects.Reject(key=[], reason="", record={}, stream="")


def _raw(conn: sa.Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(columns) > 1:
        return operator.itemgetter(*columns)
    name = columns[0]
    return lambda r: (r[name],)


def soft_delete(
    engine: sa.Engine, table: sa.Table, tenant: Tenant, keys: Sequence[Sequence[Any]]
) -> int:
    """Set ``deleted_at`` on this integration's rows with these natural keys; returns how many."""
    loader = TableLoader(engine, table, tenant)
    with engine.connect() as conn:
        loader._prepare(conn)
        with conn.begin():
            stmt, params = loader._sql.soft_delete(keys)
            cur = _raw(conn).cursor()
            return cur.execute(stmt, [*params, tenant.agency_id, tenant.integration_id]).rowcount
