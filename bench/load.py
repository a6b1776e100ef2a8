"""Loader benchmark: ``python -m bench.load [--rows N]`` prints rates, ratios and PASS/FAIL.

All contenders read the same lazily generated rows (bench.common), in one run, into the same
PostgreSQL:

  (a) raw binary COPY into an identical table (same PK and FK) - the machine's limit
  (b) db.loader into an empty table
  (c) db.loader re-loading the same rows (all unchanged): how many rows were rewritten
  (d) dlt with its defaults, the rows as dicts (skipped when dlt is not installed)

and the peak RSS of a loader process for 100k and for N rows. Every rate includes generating
the rows (the "generator only" line shows that cost on its own).
"""

from __future__ import annotations

import argparse
import importlib.util
import operator
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from psycopg import sql

from bench.common import (
    agency_database,
    bench_engine,
    bench_table,
    checkpoint,
    make_tenant_rows,
    message_rows,
    pages,
)
from db.loader import LoadCounts, TableLoader, Tenant

TARGETS = {"b/a": 0.8, "c/a": 0.75, "b/d": 4.0}
RSS_GROWTH = 1.25


def _tables(engine: sa.Engine, *names: str) -> list[sa.Table]:
    meta = sa.MetaData()
    tables = [bench_table(name, meta) for name in names]
    with engine.begin() as conn:
        for table in tables:
            table.drop(conn, checkfirst=True)
            table.create(conn)
    return tables


def _checkpoint(engine: sa.Engine, *vacuum: sa.Table) -> None:
    """Start each contender from a clean slate: the previous one's tables vacuumed (so that
    autovacuum does not wake up in the middle of the next timing on a 2-core machine) and no
    dirty buffers left to flush."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in vacuum:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {table.name}"))  # bench-owned names
    checkpoint(engine)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def generate_only(rows: int) -> int:
    return sum(len(page.records) for page in pages(rows))


def raw_copy(engine: sa.Engine, table: sa.Table, agency: int, integration: int, rows: int) -> int:
    """One binary COPY of every row straight into the target: no staging, no upsert."""
    tenant_cols = ["integration_id", "agency_id", "client_id", "deleted_at"]
    data_cols = [c.name for c in table.columns if c.name not in (*tenant_cols, "synced_at")]
    getter = operator.itemgetter(*data_cols)
    head = (integration, agency, None, None)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        oids = [
            oid
            for (oid,) in raw.execute(
                "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attname"
                " = ANY(%s) ORDER BY array_position(%s, attname::text)",
                [table.name, tenant_cols + data_cols, tenant_cols + data_cols],
            )
        ]
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(map(sql.Identifier, tenant_cols + data_cols)),
        )
        with raw.cursor().copy(stmt) as copy:
            copy.set_types(oids)
            for page in pages(rows):
                for record in page.records:
                    copy.write_row(head + getter(record))
        conn.commit()
    return rows


def loader_run(engine: sa.Engine, table: sa.Table, tenant: Tenant, rows: int) -> LoadCounts:
    return TableLoader(engine, table, tenant).load(pages(rows))


def rewritten_since(engine: sa.Engine, table: sa.Table, xid: int) -> int:
    """Rows whose current version was written after transaction ``xid`` (xmin is 32-bit)."""
    stmt = sql.SQL("SELECT count(*) FROM {} WHERE xmin::text::bigint > %s").format(
        sql.Identifier(table.name)
    )
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        return int(raw.execute(stmt, [xid % 2**32]).fetchone()[0])  # type: ignore[index]


def current_xid(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())


def dlt_run(engine: sa.Engine, rows: int) -> int | None:
    if importlib.util.find_spec("dlt") is None:
        return None
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS dlt_bench CASCADE"))
    with tempfile.TemporaryDirectory() as workdir:
        pipeline = dlt.pipeline(
            pipeline_name="aos_bench",
            destination=dlt.destinations.postgres(credentials=url),
            dataset_name="dlt_bench",
            pipelines_dir=workdir,
        )
        pipeline.run(message_rows(rows), table_name="bench_messages_dlt")
    return rows


def rss_child(rows: int) -> None:
    """Load ``rows`` in this (fresh) process and print its peak RSS in KiB."""
    control = bench_engine()
    agency, integration = make_tenant_rows(control)
    engine = agency_database(control, agency, integration)
    (table,) = _tables(engine, "bench_messages_rss")
    loader_run(engine, table, Tenant(agency, integration), rows)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _peak_rss(rows: int) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", "--rss-child", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dlt-rows", type=int, default=200_000, help="rows for dlt (slow)")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0

    n = args.rows
    control = bench_engine()
    agency, integration = make_tenant_rows(control)
    engine = agency_database(control, agency, integration)  # where an agency's rows go
    tenant = Tenant(agency, integration)
    raw_table, table = _tables(engine, "bench_messages_raw", "bench_messages")
    print(f"rows: {n:,}  database: {engine.url.render_as_string(hide_password=True)}")

    secs, _ = _timed(lambda: generate_only(n))
    print(f"generator only           {n / secs:>10,.0f} rows/s")

    _checkpoint(engine)
    secs, _ = _timed(lambda: raw_copy(engine, raw_table, agency, integration, n))
    rate_a = n / secs
    print(f"(a) raw binary COPY      {rate_a:>10,.0f} rows/s  ({secs:.1f} s)")

    _checkpoint(engine, raw_table)
    secs, counts = _timed(lambda: loader_run(engine, table, tenant, n))
    rate_b = n / secs
    print(f"(b) loader, empty table  {rate_b:>10,.0f} rows/s  ({secs:.1f} s)  {counts}")

    _checkpoint(engine, table)
    marker = current_xid(engine)
    secs, counts = _timed(lambda: loader_run(engine, table, tenant, n))
    rate_c = n / secs
    rewritten = rewritten_since(engine, table, marker)  # counted before any vacuum
    print(f"(c) loader, re-load      {rate_c:>10,.0f} rows/s  ({secs:.1f} s)  {counts}")
    print(f"    rows rewritten by the re-load: {rewritten}")

    _checkpoint(engine)
    dlt_rows = min(n, args.dlt_rows)
    secs, done = _timed(lambda: dlt_run(engine, dlt_rows))
    rate_d = dlt_rows / secs if done else None
    if rate_d:
        print(
            f"(d) dlt defaults         {rate_d:>10,.0f} rows/s  ({secs:.1f} s, {dlt_rows:,} rows)"
        )
    else:
        print('(d) dlt: not installed - skipped (.venv/bin/pip install "dlt[postgres]")')

    small = min(100_000, n)
    rss_small, rss_big = _peak_rss(small), _peak_rss(n)
    print(f"peak RSS of the loader: {small:,} rows {rss_small / 1024:.0f} MiB, "
          f"{n:,} rows {rss_big / 1024:.0f} MiB")  # fmt: skip

    ratios = {"b/a": rate_b / rate_a, "c/a": rate_c / rate_a}
    if rate_d:
        ratios["b/d"] = rate_b / rate_d
    results = []
    for name, value in ratios.items():
        ok = value >= TARGETS[name] and (name != "c/a" or rewritten == 0)
        extra = f", rewritten {rewritten}" if name == "c/a" else ""
        results.append(ok)
        print(
            f"{'PASS' if ok else 'FAIL'}  {name} = {value:.2f} (target >= {TARGETS[name]}{extra})"
        )
    growth = rss_big / rss_small
    results.append(growth <= RSS_GROWTH)
    print(f"{'PASS' if growth <= RSS_GROWTH else 'FAIL'}  RSS({n:,}) / RSS({small:,}) = "
          f"{growth:.2f} (target <= {RSS_GROWTH})")  # fmt: skip
    if not rate_d:
        print("SKIP  b/d (dlt not installed)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
