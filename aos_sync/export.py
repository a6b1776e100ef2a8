"""Stream an analytics view to a CSV or Parquet file, in flat memory.

Rows come through a server-side cursor (``DECLARE ... CURSOR`` inside one read-only
transaction, hence one consistent snapshot) ``batch_rows`` at a time; each batch is written
(a Parquet row group, or CSV lines) and dropped before the next is fetched, so memory depends
on the batch size, not on the date range.

Every path gives a column one type (``docs/data-dictionary.md``, "Types by path"): money
(``spend``, ``conversion_value``) has 6 decimal places and other ``numeric`` columns 12
(``db.analytics.scale_of``, rounded by PostgreSQL). Parquet: ``int8``/``int4`` →
int64/int32, ``numeric`` → ``decimal(38, 6)`` for money, ``decimal(38, 12)`` otherwise,
``date`` → date32, ``timestamptz`` → timestamp[us, UTC], ``bool`` → bool, text → string.
CSV: a header line, days ``YYYY-MM-DD``, money with its 6 decimals, ISO 8601 instants (UTC),
``true``/``false`` and empty for NULL.

The file appears only when complete: rows go to ``<out>.partial`` first, renamed at the end.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from db.analytics import NUMERIC_SCALE, check_analyst, describe, scale_of, select_range, view

__all__ = ["FORMATS", "NUMERIC_SCALE", "ExportResult", "export"]

FORMATS = ("csv", "parquet")
BATCH_ROWS = 20_000


@dataclass(frozen=True)
class ExportResult:
    view: str
    format: str
    out: str
    rows: int
    batches: int
    since: date | None
    until: date | None


def export(
    conn: psycopg.Connection[Any],
    view_name: str,
    out: str | os.PathLike[str],
    fmt: str,
    since: date | None = None,
    until: date | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    client_ids: Sequence[int] | None = None,
) -> ExportResult:
    """Write rows of ``view_name`` for days ``since`` .. ``until`` (both included) to ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    spec = view(view_name)
    check_analyst(conn)
    names, kinds = describe(conn, spec.name)
    numeric = [n for n, k in zip(names, kinds, strict=True) if k == "numeric"]
    query, params = select_range(
        spec.name,
        since,
        until,
        columns=names,
        client_ids=client_ids,
        numeric_columns=numeric,
    )
    target = Path(out)
    partial = target.with_name(target.name + ".partial")
    writer = (
        _ParquetSink(partial, names, kinds) if fmt == "parquet" else _CsvSink(partial, names, kinds)
    )
    rows = batches = 0
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            with conn.cursor(name="aos_export") as cur:
                cur.itersize = batch_rows
                cur.execute(query, params)
                while batch := cur.fetchmany(batch_rows):
                    writer.write(batch)
                    rows += len(batch)
                    batches += 1
                    del batch
        writer.close()
        os.replace(partial, target)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(spec.name, fmt, str(target), rows, batches, since, until)


# --- CSV ----------------------------------------------------------------------------------------
def _csv_value(kind: str) -> Callable[[Any], Any] | None:
    if kind == "bool":
        return lambda v: "" if v is None else ("true" if v else "false")
    if kind == "numeric":
        return lambda v: "" if v is None else format(v, "f")
    if kind in {"timestamptz", "timestamp"}:
        return lambda v: "" if v is None else v.isoformat()
    return None  # str() of the value, as csv.writer does; None is written empty


class _CsvSink:
    def __init__(self, path: Path, names: list[str], kinds: list[str]) -> None:
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(names)
        self._convert = [(i, c) for i, k in enumerate(kinds) if (c := _csv_value(k))]

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        if not self._convert:
            self._writer.writerows(batch)
            return
        for row in batch:
            values = list(row)
            for i, convert in self._convert:
                values[i] = convert(values[i])
            self._writer.writerow(values)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


# --- Parquet ------------------------------------------------------------------------------------
def _arrow_type(kind: str, name: str = "") -> Any:
    import pyarrow as pa

    return {
        "int8": pa.int64(),
        "int4": pa.int32(),
        "int2": pa.int16(),
        "numeric": pa.decimal128(38, scale_of(name)),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "float8": pa.float64(),
    }.get(kind, pa.string())


class _ParquetSink:
    def __init__(self, path: Path, names: list[str], kinds: list[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = pa.schema(
            [pa.field(n, _arrow_type(k, n)) for n, k in zip(names, kinds, strict=True)]
        )
        self._text = [
            i for i, k in enumerate(kinds) if _arrow_type(k) == pa.string() and k != "text"
        ]
        self._writer: Any = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        pa = self._pa
        columns = list(zip(*batch, strict=True))
        for i in self._text:  # types without an Arrow mapping travel as their text
            columns[i] = tuple(None if v is None else str(v) for v in columns[i])
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(columns, self.schema, strict=True)
        ]
        self._writer.write_batch(pa.record_batch(arrays, schema=self.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
