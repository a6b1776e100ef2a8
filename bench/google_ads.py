"""Google Ads end to end: ``python -m bench.google_ads [--accounts 50 --ads 500 --days 90]``.

Emulator (gRPC + TLS, in a spawned process) -> the real google-ads client -> PostgreSQL,
through the task code path a flow runs (``tasks.sync.sync_stream``, its plain function, as in
``bench.slack``) with the database quota ledger in the loop. One manager with ``--accounts``
client accounts of ``--ads`` ads each (10 ads per ad group, 5 ad groups per campaign) and
``--days`` days of history; every account in its own time zone and currency.

1. A first sync of every stream: rows/s over all seven streams, operations used (queries, as
   Google counts them), peak RSS of the syncing process.
2. 2% of the ad-days of the last 30 days gain late conversions upstream; a second,
   incremental run re-reads the 30-day conversion window: rows/s, and the rows rewritten per
   level, which must be exactly the changed ones (an ad-day, its ad group's day and its
   campaign's day).
3. The same first sync with ``--accounts / 10`` in a fresh process: PASS when the peak RSS of
   the full run is within 25% of the small one's (the connector streams query batches and the
   loader holds one batch, so memory must not grow with the sync).

``--accounts 5 --ads 50 --days 30`` runs in seconds; the defaults are the issue's size
(~2.25M ad-day rows before days without delivery).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from bench.common import bench_engine, bench_integration, holds_written, use_database

STREAMS = (
    "customers",
    "campaigns",
    "ad_groups",
    "ads",
    "campaign_daily",
    "ad_group_daily",
    "ad_daily",
)
DAILY = ("campaign_daily", "ad_group_daily", "ad_daily")
ADS_PER_GROUP, GROUPS_PER_CAMPAIGN = 10, 5
CHANGED_SHARE = 0.02
WINDOW_DAYS = 30
RSS_GROWTH = 1.25


# -- the emulator process -------------------------------------------------------------------
def _seed(ads: Any, accounts: int, per_account: int, days: int) -> dict[str, Any]:
    from sandbox.google_ads.data import LOCALES

    today = datetime.now(UTC).date()
    start = today - timedelta(days=days + 1)  # every time zone has ``days`` past days
    manager = ads.add_account("Bench Agency", manager=True, history_start=start)
    per_campaign = ADS_PER_GROUP * GROUPS_PER_CAMPAIGN
    for n in range(accounts):
        currency, zone = LOCALES[n % len(LOCALES)]
        account = ads.add_account(
            f"Bench Client {n + 1}",
            parent=manager,
            currency=currency,
            time_zone=zone,
            history_start=start,
        )
        for _ in range(max(1, per_account // per_campaign)):
            account.add_campaign(
                channel="SEARCH",
                ad_groups=GROUPS_PER_CAMPAIGN,
                ads_per_group=min(ADS_PER_GROUP, per_account),
                start=start,
            )
    login = ads.add_login("bench@agency.test", manager)
    ads.daily_operations = 10**9
    return {"credentials": ads.credentials(login), "manager": manager.id}


def _mutate(ads: Any, share: float, seed: int) -> dict[str, int]:
    """Late conversions on ``share`` of the ad-days with delivery in the last 30 complete
    days; returns how many rows that changes at each level."""
    rng = random.Random(seed)
    changed: dict[str, set[tuple[int, ...]]] = {level: set() for level in DAILY}
    for account in ads.accounts.values():
        if account.manager:
            continue
        today = account.today()
        days = [today - timedelta(days=n) for n in range(1, WINDOW_DAYS + 1)]
        for campaign in account.campaigns:
            for group in campaign.ad_groups:
                for ad in group.ads:
                    for day in days:
                        if rng.random() >= share or account.ad_day(ad, day).empty:
                            continue
                        ads.add_late_conversions(ad, day, 1.0, 25.0)
                        changed["ad_daily"].add((ad.id, day.toordinal()))
                        changed["ad_group_daily"].add((group.id, day.toordinal()))
                        changed["campaign_daily"].add((campaign.id, day.toordinal()))
    return {level: len(keys) for level, keys in changed.items()}


def _emulator_main(conn: Connection, accounts: int, per_account: int, days: int) -> None:
    from sandbox import Sandbox

    with Sandbox(providers=("google_ads",), seed=2026) as sb:
        info = _seed(sb.google_ads, accounts, per_account, days)
        conn.send((sb.env, info))
        while True:
            command, argument = conn.recv()
            if command == "mutate":
                conn.send(_mutate(sb.google_ads, argument, seed=7))
            elif command == "operations":
                conn.send(sb.google_ads.operations_used())
            else:
                return


class EmulatorProcess:
    """The Google Ads emulator in a spawned process (its rendering is not our RSS)."""

    def __init__(self, accounts: int, per_account: int, days: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_emulator_main, args=(child, accounts, per_account, days), daemon=True
        )
        self.env: dict[str, str] = {}
        self.info: dict[str, Any] = {}

    def __enter__(self) -> EmulatorProcess:
        self._process.start()
        if not self._conn.poll(600):
            raise RuntimeError("the emulator process did not start within 600 s")
        self.env, self.info = self._conn.recv()
        return self

    def ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send(("stop", None))
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# -- the syncing process --------------------------------------------------------------------
def _sync(iid: int) -> tuple[dict[str, Any], float]:
    from tasks.sync import sync_stream

    started = time.perf_counter()
    streams = {stream: sync_stream.fn(iid, stream) for stream in STREAMS}
    return streams, time.perf_counter() - started


def run(accounts: int, per_account: int, days: int, *, rerun: bool) -> dict[str, Any]:
    """Seed an emulator, sync a fresh integration (and, with ``rerun``, change 2% upstream
    and sync again); the figures as a dict."""
    from tasks.sync import refresh_credentials

    engine = bench_engine()
    use_database(engine)
    os.environ.setdefault("AOS_GOOGLE_ADS_DAILY_OPERATIONS", str(10**7))
    with EmulatorProcess(accounts, per_account, days) as emulator:
        os.environ.update(emulator.env)
        iid = bench_integration(
            engine,
            "google_ads",
            credentials=emulator.info["credentials"],
            external_account_id=str(emulator.info["manager"]),
            config={"initial_days": days},
        )
        refresh_credentials.fn(iid, "google_ads")
        first, seconds = _sync(iid)
        figures: dict[str, Any] = {
            "accounts": accounts,
            "ads": per_account,
            "days": days,
            "rows": {s: first[s]["inserted"] for s in STREAMS},
            "seconds": round(seconds, 2),
            "operations": sum(first[s]["operations_used"] for s in STREAMS),
            "emulator_operations": emulator.ask("operations"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rate_limited": sum(first[s]["rate_limited"] for s in STREAMS),
            "paused": holds_written(engine, iid),
        }
        total = sum(figures["rows"].values())
        figures["rows_total"] = total
        figures["rows_per_s"] = round(total / seconds)
        if rerun:
            changed = emulator.ask("mutate", CHANGED_SHARE)
            second, seconds = _sync(iid)
            fetched = sum(second[s]["fetched"] for s in STREAMS)
            figures["rerun"] = {
                "seconds": round(seconds, 2),
                "fetched": fetched,
                "rows_per_s": round(fetched / seconds),
                "operations": sum(second[s]["operations_used"] for s in STREAMS),
                "changed_upstream": changed,
                "rewritten": {
                    s: second[s]["updated"] + second[s]["inserted"] + second[s]["deleted"]
                    for s in STREAMS
                },
                "updated": {s: second[s]["updated"] for s in STREAMS},
            }
    return figures


def _child(accounts: int, per_account: int, days: int, rerun: bool) -> dict[str, Any]:
    """:func:`run` in a fresh interpreter (its own peak RSS)."""
    args = ["--accounts", str(accounts), "--ads", str(per_account), "--days", str(days)]
    out = subprocess.run(
        [sys.executable, "-m", "bench.google_ads", "--child", *args]
        + (["--rerun"] if rerun else []),
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _report(f: dict[str, Any]) -> None:
    rows = ", ".join(f"{s} {n:,}" for s, n in f["rows"].items() if n)
    print(f"  rows loaded       {f['rows_total']:>12,}  ({rows})")
    print(f"  seconds           {f['seconds']:>12,.2f}  (all seven streams)")
    print(f"  rows/s            {f['rows_per_s']:>12,}")
    print(
        f"  operations        {f['operations']:>12,}  (queries; the emulator counted "
        f"{f['emulator_operations']:,})"
    )
    print(f"  peak RSS          {f['peak_rss_mb']:>12,.1f} MB")
    print(
        f"  quota stops       {f['paused']:>12,}  (provider_hold rows; "
        f"{f['rate_limited']:,} rate-limited answers)  {'ok' if _unpaused(f) else 'X'}"
    )


def _unpaused(f: dict[str, Any]) -> bool:
    """A project within its quota is never stopped nor refused."""
    return bool(f["paused"] == 0 and f["rate_limited"] == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--ads", type=int, default=500, help="ads per account")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--skip-rss", action="store_true", help="no 10x smaller comparison run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rerun", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run(args.accounts, args.ads, args.days, rerun=args.rerun)))
        return 0

    print(
        f"Google Ads emulator -> PostgreSQL: {args.accounts} accounts x {args.ads} ads x "
        f"{args.days} days (gRPC + TLS, google-ads v26, tasks.sync.sync_stream.fn, "
        "emulator in its own process)"
    )
    full = _child(args.accounts, args.ads, args.days, rerun=True)
    _report(full)
    again = full["rerun"]
    print(f"Re-read of the {WINDOW_DAYS}-day window after {CHANGED_SHARE:.0%} of ad-days changed:")
    print(f"  rows read         {again['fetched']:>12,}  in {again['seconds']:.2f} s")
    print(f"  rows/s            {again['rows_per_s']:>12,}")
    print(f"  operations        {again['operations']:>12,}")
    verdict = "PASS" if _unpaused(full) else "FAIL"
    for level in DAILY:
        want, got = again["changed_upstream"][level], again["rewritten"][level]
        ok = want == got
        verdict = verdict if ok else "FAIL"
        print(
            f"  rewritten {level:<15} {got:>9,}  (changed upstream {want:,}) {'ok' if ok else 'X'}"
        )
    others = sum(again["rewritten"][s] for s in STREAMS if s not in DAILY)
    print(f"  rewritten entities      {others:>9,}  (nothing changed upstream)")
    verdict = verdict if others == 0 else "FAIL"
    if not args.skip_rss:
        small = _child(max(1, args.accounts // 10), args.ads, args.days, rerun=False)
        ratio = full["peak_rss_mb"] / small["peak_rss_mb"]
        print(
            f"  peak RSS @ {small['rows_total']:>9,} rows: {small['peak_rss_mb']:8.1f} MB "
            f"({small['rows_per_s']:,} rows/s)"
        )
        print(f"  peak RSS @ {full['rows_total']:>9,} rows: {full['peak_rss_mb']:8.1f} MB")
        ok = ratio <= RSS_GROWTH
        verdict = verdict if ok else "FAIL"
        print(f"  RSS ratio {ratio:.2f} (target <= {RSS_GROWTH})  {'ok' if ok else 'X'}")
    print(verdict)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
