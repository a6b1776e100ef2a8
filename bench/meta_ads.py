"""Meta Ads end to end: ``python -m bench.meta_ads [--accounts 20 --ads 1000 --days 90]``.

Sandbox -> PostgreSQL through the task code path a flow runs (``tasks.sync.sync_stream``, its
plain function: no Prefect server in the measured process). The Meta emulator runs in a
spawned process (``bench.common.ChildSandbox``), so the peak RSS reported is the syncing
process's alone. One business with ``accounts`` ad accounts of ``ads`` ads each, ``days`` of
history; a fresh integration per run.

1. First sync: ``days`` of daily ad insights, longer than ``sync_max_days``, so every account
   is read through async report runs (one per 30-day chunk): rows/s, requests, peak RSS, and
   the accounts' usage of a new app's hourly budget: with Meta's usage headers on every answer,
   no account may be paused or rate-limited (FAIL otherwise).
2. Then 2% of the ad-days inside the 28-day lookback get late conversions, and the incremental
   run re-reads the lookback: rows/s, rows rewritten (the rest are left alone).
3. The first sync again in a fresh process with 10x fewer ad accounts: PASS/FAIL for peak
   RSS(full) <= 1.25 x RSS(10x fewer): the connector yields page by page and the loader holds
   one batch, so memory must not grow with the size of the sync.

Each measured run is a fresh interpreter (its own peak RSS). ``--size small`` runs the whole
thing on 2 accounts x 100 ads x 40 days in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import ChildSandbox, bench_engine, bench_integration, holds_written, use_database

PAGE_LIMIT = 5000  # the emulator recomputes a synchronous range per page: few, large pages
LOOKBACK_DAYS = 28
CHANGED_SHARE = 0.02
RSS_GROWTH = 1.25
SIZES = {"full": (20, 1000, 90), "small": (2, 100, 40)}


def seed_business(sb: Any, *, accounts: int, ads: int, days: int) -> dict[str, Any]:
    """Runs in the sandbox process: one business of ``accounts`` accounts x ``ads`` ads."""
    campaigns = max(1, ads // 100)
    business = sb.meta_ads.add_business(
        "Bench Agency",
        owned=accounts,
        clients=0,
        campaigns=campaigns,
        adsets_per_campaign=max(1, min(10, ads // 10)),
        ads_per_adset=max(1, ads // (campaigns * max(1, min(10, ads // 10)))),
        days=days,
    )
    for account in business.accounts:
        # A new app's budget (Marketing API Rate Limiting, Business Use Case limits,
        # ads_management at the Limited / development tier: 300 + 40 x active ads calls an
        # hour): ordinary answers carry usage headers as Meta sends them at low usage
        # (reset_time_duration > 0), which must never pause an account.
        account.call_budget = 300 + 40 * len(account.ads)
    return {
        "credentials": dict(business.credentials),
        "business_id": business.id,
        "ads": sum(len(a.ads) for a in business.accounts),
    }


def change_lookback(sb: Any, *, share: float, lookback: int) -> int:
    """Runs in the sandbox process: late conversions on ``share`` of the ad-days with
    delivery inside the lookback (picked by a hash of the ad and day); how many."""
    from sandbox.ids import derive_key, unit

    meta = sb.meta_ads
    changed = 0
    for account in meta.accounts.values():
        today = account.today(meta.now())
        for ad in account.ads.values():
            for back in range(lookback + 1):
                day = today - timedelta(days=back)
                if unit(derive_key(7, "bench-change", ad.id, day.isoformat())) >= share:
                    continue
                if not ad.delivers_on(day, today) or account.ad_day(ad, day) is None:
                    continue
                meta.add_late_conversions(ad.id, day, count=1, value="25.00")
                changed += 1
    return changed


def peak_usage(sb: Any) -> float:
    """Runs in the sandbox process: the highest share of its hourly budget an account used."""
    meta = sb.meta_ads
    return max(
        (
            100.0 * budget.used / max(1, meta.accounts[account].call_budget)
            for account, budget in meta._budgets.items()
            if account in meta.accounts
        ),
        default=0.0,
    )


def _stream(iid: int, stream: str) -> tuple[dict[str, Any], float]:
    from tasks.sync import sync_stream

    started = time.perf_counter()
    result = sync_stream.fn(iid, stream)
    return result, time.perf_counter() - started


def run_sync(accounts: int, ads: int, days: int, *, second: bool) -> dict[str, Any]:
    """Seed a sandbox, run the first sync into a fresh integration and (``second``) the
    incremental re-read after changes; the figures."""
    from tasks.sync import refresh_credentials

    engine = bench_engine()
    use_database(engine)
    shape = {"accounts": accounts, "ads": ads, "days": days}
    with ChildSandbox(("meta_ads",), seed_business, **shape) as sb:
        os.environ.update(sb.env)
        iid = bench_integration(
            engine,
            "meta_ads",
            credentials=sb.info["credentials"],
            external_account_id=sb.info["business_id"],
            config={
                "initial_days": days - 1,
                "page_limit": PAGE_LIMIT,
                "poll_interval": 0.05,
                "max_poll_interval": 0.5,
            },
        )
        refresh_credentials.fn(iid, "meta_ads")
        waits = 0
        for stream in ("ad_accounts", "campaigns", "ad_sets", "ads"):
            waits += _stream(iid, stream)[0]["rate_limited"]
        first, seconds = _stream(iid, "insights_daily")
        waits += first["rate_limited"]
        requests = sb.request_counts()
        figures: dict[str, Any] = {
            **shape,
            "ads_total": sb.info["ads"],
            "rows": first["inserted"],
            "seconds": round(seconds, 2),
            "rows_per_s": round(first["inserted"] / seconds),
            "requests": first["requests"],
            "requests_by_method": requests,
            "report_runs": requests.get("insights.async", 0),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_usage_pct": round(sb.call(peak_usage), 2),
            "rate_limited": waits,
            "paused": holds_written(engine, iid),
        }
        if second:
            changed = sb.call(change_lookback, share=CHANGED_SHARE, lookback=LOOKBACK_DAYS)
            again, seconds = _stream(iid, "insights_daily")
            figures["second"] = {
                "changed_upstream": changed,
                "rows_read": again["fetched"],
                "rows_rewritten": again["updated"] + again["inserted"],
                "unchanged": again["unchanged"],
                "seconds": round(seconds, 2),
                "rows_per_s": round(again["fetched"] / seconds),
                "requests": again["requests"],
            }
            figures["peak_rss_mb_after_second"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
    return figures


def _child(accounts: int, ads: int, days: int, second: bool) -> dict[str, Any]:
    """:func:`run_sync` in a fresh interpreter (its own peak RSS)."""
    argv = [sys.executable, "-m", "bench.meta_ads", "--child", f"{accounts},{ads},{days}"]
    out = subprocess.run(
        [*argv, *(["--second"] if second else [])], check=True, capture_output=True, text=True
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--accounts", type=int, help="ad accounts (default: the size's)")
    parser.add_argument("--ads", type=int, help="ads per account, a multiple of 100")
    parser.add_argument("--days", type=int, help="days of history read by the first sync")
    parser.add_argument("--skip-rss", action="store_true", help="no 10x smaller run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--second", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        accounts, ads, days = (int(v) for v in args.child.split(","))
        print(json.dumps(run_sync(accounts, ads, days, second=args.second)))
        return 0

    default_accounts, default_ads, default_days = SIZES[args.size]
    accounts = args.accounts or default_accounts
    ads, days = args.ads or default_ads, args.days or default_days
    print(
        f"Meta sandbox -> PostgreSQL, {accounts} accounts x {ads:,} ads x {days} days "
        f"(async report runs, page_limit {PAGE_LIMIT}; tasks.sync.sync_stream.fn, emulator in "
        f"its own process; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    )
    big = _child(accounts, ads, days, second=True)
    print(f"  first sync: {big['rows']:,} rows ({big['ads_total']:,} ads)")
    print(f"    seconds         {big['seconds']:>12,.2f}  (insights_daily)")
    print(f"    rows/s          {big['rows_per_s']:>12,}")
    by_method = ", ".join(f"{k} {v}" for k, v in sorted(big["requests_by_method"].items()))
    print(f"    requests        {big['requests']:>12,}  (all streams: {by_method})")
    print(f"    report runs     {big['report_runs']:>12,}")
    print(f"    peak RSS        {big['peak_rss_mb']:>12,.1f} MB")
    unpaused = big["paused"] == 0 and big["rate_limited"] == 0
    print(
        f"    account usage   {big['peak_usage_pct']:>11,.2f}%  (peak, of 300 + 40 x ads calls/h); "
        f"{big['paused']} paused, {big['rate_limited']} rate-limited  {'ok' if unpaused else 'X'}"
    )
    again = big["second"]
    print(
        f"  second run: re-read {LOOKBACK_DAYS} days, {again['changed_upstream']:,} ad-days changed"
    )
    print(f"    rows read       {again['rows_read']:>12,}")
    print(
        f"    rows rewritten  {again['rows_rewritten']:>12,}  ({again['unchanged']:,} left alone)"
    )
    print(f"    seconds         {again['seconds']:>12,.2f}")
    print(f"    rows/s          {again['rows_per_s']:>12,}")
    print(f"    requests        {again['requests']:>12,}")
    if args.skip_rss:
        return 0 if unpaused else 1
    small = _child(max(1, accounts // 10), ads, days, second=False)
    ratio = big["peak_rss_mb"] / small["peak_rss_mb"]
    for f in (small, big):
        print(
            f"  peak RSS @ {f['accounts']:>3} accounts: {f['peak_rss_mb']:8.1f} MB "
            f"({f['rows']:,} rows in {f['seconds']:.1f} s, {f['rows_per_s']:,} rows/s)"
        )
    verdict = "PASS" if ratio <= RSS_GROWTH and unpaused else "FAIL"
    print(
        f"  RSS(full) / RSS(10x fewer accounts) = {ratio:.2f}  (target <= {RSS_GROWTH})  {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
