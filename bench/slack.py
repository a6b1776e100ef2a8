"""Slack end to end: ``python -m bench.slack [--messages 200000]`` prints rates, RSS, PASS/FAIL.

Sandbox -> PostgreSQL through the task code path a flow runs (``tasks.sync.sync_stream``, its
plain function: no Prefect server in the measured process, so its startup and memory are not
counted; the flow adds one authorize/lock/ledger round trip per run, not per row). The Slack
emulator runs in a spawned process (``bench.common.ChildSandbox``), so the peak RSS reported
is the syncing process's alone. One workspace on the ``unlimited`` rate tier, 20 channels,
few threads, ``page_limit`` 1000; a fresh integration per run.

Then the peak RSS (``ru_maxrss``) of a fresh sync process for 100k and for 1M messages, and
PASS/FAIL for RSS(1M) <= 1.25 x RSS(100k): the connector yields page by page and the loader
holds one batch, so memory must not grow with the size of the workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from bench.common import ChildSandbox, bench_engine, bench_integration, use_database

CHANNELS = 20
THREAD_RATIO = 0.002
PAGE_LIMIT = 1000
RSS_GROWTH = 1.25
RSS_SIZES = (100_000, 1_000_000)


def seed_workspace(sb: Any, *, messages: int, channels: int) -> dict[str, Any]:
    """Runs in the sandbox process: one unlimited-tier workspace of ``messages`` messages."""
    ws = sb.slack.add_workspace(
        "Bench",
        users=50,
        channels=channels,
        messages_per_channel=messages // channels,
        thread_ratio=THREAD_RATIO,
        tier="unlimited",
        span_days=120,
    )
    return {"credentials": dict(ws.credentials), "team_id": ws.team_id}


def run_sync(messages: int) -> dict[str, Any]:
    """Seed a sandbox of ``messages`` messages, sync users, channels and messages into a
    fresh integration, and return the figures."""
    from tasks.sync import refresh_credentials, sync_stream

    engine = bench_engine()
    use_database(engine)
    with ChildSandbox(("slack",), seed_workspace, messages=messages, channels=CHANNELS) as sb:
        os.environ.update(sb.env)
        iid = bench_integration(
            engine,
            "slack",
            credentials=sb.info["credentials"],
            external_account_id=sb.info["team_id"],
            config={"tier": "unlimited", "page_limit": PAGE_LIMIT, "auto_join": True},
        )
        refresh_credentials.fn(iid, "slack")
        streams = {}
        for stream in ("users", "channels"):
            streams[stream] = sync_stream.fn(iid, stream)
        started = time.perf_counter()
        streams["messages"] = sync_stream.fn(iid, "messages")
        seconds = time.perf_counter() - started
        requests = sb.request_counts()
    loaded = streams["messages"]["inserted"]
    return {
        "messages": messages,
        "loaded": loaded,
        "seconds": round(seconds, 2),
        "rows_per_s": round(loaded / seconds),
        "requests": sum(requests.values()),
        "requests_by_method": requests,
        "connector_requests": sum(s["requests"] for s in streams.values()),
        "rate_limited": sum(s["rate_limited"] for s in streams.values()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _child_figures(messages: int) -> dict[str, Any]:
    """:func:`run_sync` in a fresh interpreter (its own peak RSS)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.slack", "--rss-child", str(messages)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--skip-rss", action="store_true", help="only the main measurement")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps(run_sync(args.rss_child)))
        return 0

    print(
        f"Slack sandbox -> PostgreSQL, {args.messages:,} messages "
        f"({CHANNELS} channels, thread ratio {THREAD_RATIO}, page_limit {PAGE_LIMIT}, "
        "tier unlimited; tasks.sync.sync_stream.fn, emulator in its own process)"
    )
    figures = run_sync(args.messages)
    print(f"  messages loaded   {figures['loaded']:>12,}  (reachable channels only)")
    print(f"  seconds           {figures['seconds']:>12,.2f}  (messages stream)")
    print(f"  rows/s            {figures['rows_per_s']:>12,}")
    print(
        f"  requests          {figures['requests']:>12,}  "
        f"({', '.join(f'{k} {v}' for k, v in sorted(figures['requests_by_method'].items()))})"
    )
    print(f"  rate limited      {figures['rate_limited']:>12,}")
    print(f"  peak RSS          {figures['peak_rss_mb']:>12,.1f} MB")
    if args.skip_rss:
        return 0

    small, large = (_child_figures(n) for n in RSS_SIZES)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    for f in (small, large):
        print(
            f"  peak RSS @ {f['messages']:>9,} messages: {f['peak_rss_mb']:8.1f} MB "
            f"({f['loaded']:,} rows in {f['seconds']:.1f} s, {f['rows_per_s']:,} rows/s)"
        )
    verdict = "PASS" if ratio <= RSS_GROWTH else "FAIL"
    print(f"  RSS(1M) / RSS(100k) = {ratio:.2f}  (target <= {RSS_GROWTH})  {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
