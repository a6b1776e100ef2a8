"""Export benchmark: ``python -m bench.export [--rows N]`` prints time and peak RSS of
``aos-sync export ad_performance_daily`` over N rows and over N/10 rows, and PASS/FAIL.

A scratch database (``aos_bench_export`` on the embedded cluster, or ``AOS_DATABASE_URL``)
gets one agency with an agency-wide Meta Ads and an agency-wide Google Ads integration, whose
ads have one metrics row per day, written straight into the provider tables by SQL (half Meta,
half Google, so the export reads both branches of the view). Each export is the real command
in a child process, as the agency owner's analyst login, so row-level security and the view's
joins are paid as an analyst pays them; the child's peak RSS comes from ``wait4``.

Flat memory means the big export's peak RSS is within 25% of the small one's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import bench_engine
from db import agencydb, readers, schema, tenancy
from db.analyst import create_analyst

RSS_GROWTH = 1.25
DATABASE = "aos_bench_export"
DAYS = 1000
FIRST_DAY = date(2023, 1, 1)
AOS_SYNC = Path(sys.executable).parent / "aos-sync"

SEED_META = """
INSERT INTO meta_ad_accounts (integration_id, account_id, agency_id, client_id, name, currency,
                              timezone_name, account_status)
VALUES (:i, '9001', :a, :c, 'Bench Meta', 'USD', 'America/New_York', 1);
INSERT INTO meta_campaigns (integration_id, campaign_id, agency_id, client_id, account_id, name,
                            status, effective_status, objective)
SELECT :i, 'c' || g, :a, :c, '9001', 'Campaign ' || g, 'ACTIVE', 'ACTIVE', 'OUTCOME_SALES'
  FROM generate_series(1, 10) AS g;
INSERT INTO meta_ad_sets (integration_id, adset_id, agency_id, client_id, account_id,
                          campaign_id, name, status, effective_status)
SELECT :i, 's' || g, :a, :c, '9001', 'c' || (g % 10 + 1), 'Set ' || g, 'ACTIVE', 'ACTIVE'
  FROM generate_series(1, 100) AS g;
INSERT INTO meta_ads (integration_id, ad_id, agency_id, client_id, account_id, campaign_id,
                      adset_id, name, status, effective_status)
SELECT :i, 'ad' || g, :a, :c, '9001', 'c' || (g % 100 % 10 + 1), 's' || (g % 100 + 1),
       'Ad number ' || g, 'ACTIVE', 'ACTIVE'
  FROM generate_series(1, :ads) AS g;
INSERT INTO meta_ad_insights_daily (integration_id, ad_id, date_start, agency_id, client_id,
       account_id, campaign_id, adset_id, impressions, clicks, spend, currency, conversions,
       conversion_value, attribution_setting)
SELECT :i, 'ad' || g, :first + d, :a, :c, '9001', 'c' || (g % 100 % 10 + 1),
       's' || (g % 100 + 1), 1000 + (g * d) % 977, (g + d) % 53,
       round(((g * 7 + d * 13) % 10000) / 100.0, 2), 'USD', (g + d) % 7 + 0.5,
       ((g * d) % 5000) / 10.0, '7d_click_1d_view'
  FROM generate_series(1, :ads) AS g CROSS JOIN generate_series(0, :days - 1) AS d;
"""

SEED_GOOGLE = """
INSERT INTO google_ads_customers (integration_id, customer_id, agency_id, client_id, name,
                                  currency, time_zone, status, manager)
VALUES (:i, 7001, :a, :c, 'Bench Google', 'EUR', 'Europe/Berlin', 'ENABLED', false);
INSERT INTO google_ads_campaigns (integration_id, campaign_id, agency_id, client_id,
                                  customer_id, name, status, advertising_channel_type)
SELECT :i, g, :a, :c, 7001, 'Search ' || g, 'ENABLED', 'SEARCH' FROM generate_series(1, 10) g;
INSERT INTO google_ads_ad_groups (integration_id, ad_group_id, agency_id, client_id,
                                  customer_id, campaign_id, name, status)
SELECT :i, 100 + g, :a, :c, 7001, g % 10 + 1, 'Group ' || g, 'ENABLED'
  FROM generate_series(1, 100) AS g;
INSERT INTO google_ads_ads (integration_id, ad_group_id, ad_id, agency_id, client_id,
                            customer_id, campaign_id, name, type, status)
SELECT :i, 100 + g % 100 + 1, 100000 + g, :a, :c, 7001, (g % 100 + 1) % 10 + 1,
       'Ad ' || g, 'RESPONSIVE_SEARCH_AD', 'ENABLED'
  FROM generate_series(1, :ads) AS g;
INSERT INTO google_ads_ad_daily (integration_id, ad_group_id, ad_id, "date", agency_id,
       client_id, campaign_id, customer_id, currency, impressions, clicks, cost, conversions,
       conversions_value, all_conversions, view_through_conversions)
SELECT :i, 100 + g % 100 + 1, 100000 + g, :first + d, :a, :c, (g % 100 + 1) % 10 + 1, 7001,
       'EUR', 1000 + (g * d) % 977, (g + d) % 53, ((g * 7 + d * 13) % 10000000) / 1000000.0,
       ((g + d) % 9) / 3.0, ((g * d) % 5000) / 10.0, (g + d) % 9, (g + d) % 4
  FROM generate_series(1, :ads) AS g CROSS JOIN generate_series(0, :days - 1) AS d;
"""


def seed(engine: sa.Engine, rows: int) -> dict[str, str]:
    """``rows`` ad-days (half per platform) over ``DAYS`` days, once; the owner's login."""
    ads = max(1, rows // (2 * DAYS))
    with engine.begin() as conn:
        have = conn.execute(
            sa.text("SELECT id FROM agency WHERE name = :n"), {"n": f"bench-export-{ads}"}
        ).scalar()
        if have is None:
            agency = tenancy.create_agency(conn, f"bench-export-{ads}")
            client = tenancy.add_client(conn, agency, "Bench client")
            tenancy.add_user(conn, agency, f"owner@bench-export-{ads}.test", "owner")
            params = {"a": agency, "c": client, "ads": ads, "days": DAYS, "first": FIRST_DAY}
            made = [
                (tenancy.add_integration(conn, agency, p, f"bench {p}"), script, p)
                for p, script in (("meta_ads", SEED_META), ("google_ads", SEED_GOOGLE))
            ]
        else:
            made = []
    for integration, script, provider in made:
        prefix = "meta_" if provider == "meta_ads" else "google_ads_"
        tables = [t for t in schema.agency_metadata.tables if t.startswith(prefix)]
        data = readers.attach(engine, int(str(params["a"])), integration, tables)
        with data.begin() as conn:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(sa.text(statement), {**params, "i": integration})
    login = create_analyst(engine, f"owner@bench-export-{ads}.test")
    engine = agencydb.engine_for(engine, login.agency_id)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    url = engine.url.set(drivername="postgresql", username=login.role_name, password=login.password)
    return {"AOS_ANALYST_URL": url.render_as_string(hide_password=False)}


def run_export(env: dict[str, str], days: int, fmt: str, out: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS in MiB) of one ``aos-sync export`` child over ``days`` days."""
    until = FIRST_DAY + timedelta(days=days - 1)
    args = [str(AOS_SYNC), "--json", "export", "ad_performance_daily", "--since",
            FIRST_DAY.isoformat(), "--until", until.isoformat(), "--format", fmt,
            "--out", str(out)]  # fmt: skip
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(args, env={**os.environ, **env}, stdout=stdout, stderr=stderr)
        # wait4, not Popen.wait: it also returns the child's own resource usage.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"export failed: {stderr.read().decode(errors='replace')}")
        rows = int(json.loads(stdout.read())["rows"])
    return rows, seconds, usage.ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the big export")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)
    engine = bench_engine(DATABASE)
    try:
        t0 = time.perf_counter()
        env = seed(engine, args.rows)
        print(f"seeded / reused {args.rows:,} ad-days in {time.perf_counter() - t0:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            results = {}
            for days in (DAYS // 10, DAYS):
                out = Path(tmp) / f"ads-{days}.{args.format}"
                rows, seconds, rss = run_export(env, days, args.format, out)
                size = out.stat().st_size / 2**20
                results[days] = (rows, rss)
                print(f"export {rows:>9,} rows ({days:>4} days) as {args.format}: "
                      f"{seconds:6.1f} s, {rows / seconds:>8,.0f} rows/s, peak RSS "
                      f"{rss:6.1f} MiB, file {size:6.1f} MiB")  # fmt: skip
        (small_rows, small), (big_rows, big) = results[DAYS // 10], results[DAYS]
        growth = big / small
        ok = growth <= RSS_GROWTH and big_rows == 10 * small_rows
        print(f"{'PASS' if ok else 'FAIL'}  RSS({big_rows:,}) / RSS({small_rows:,}) = "
              f"{growth:.2f} (target <= {RSS_GROWTH})")  # fmt: skip
        return 0 if ok else 1
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
