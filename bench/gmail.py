"""Gmail end to end: ``python -m bench.gmail [--messages 100000]`` prints rates and peak RSS.

Sandbox -> PostgreSQL through the task code path a flow runs (``tasks.sync.sync_stream``, its
plain function, as in ``bench.slack``): ``users.getProfile``, ``messages.list`` pages of 500
ids and ``messages.get`` (``format=full`` with a field mask) in multipart batches of 50, into
``gmail_messages``. The emulator runs in a spawned process with its per-user quota disabled,
and the connector's quota pacing is off, so the figure is the pipeline's own speed, not
Gmail's 250 units/s (which allows about 50 ``messages.get`` a second per mailbox: 100k
messages take ~35 min against the real API whatever the pipeline does).

"requests" counts what Gmail's quota counts (every batch part is a call) and, separately,
the HTTP round trips (a batch envelope is one).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

from bench.common import ChildSandbox, bench_engine, bench_integration, use_database

BATCH_SIZE = 50


def seed_mailbox(sb: Any, *, messages: int) -> dict[str, Any]:
    """Runs in the sandbox process: one mailbox of ``messages`` messages, no quota."""
    mb = sb.gmail.add_mailbox(
        "bench@acme-agency.test", messages=messages, quota=False, span_days=365
    )
    visible = mb.stats()["messages"] - sum(
        mb.stats()["labels"].get(label, (0,))[0] for label in ("SPAM", "TRASH")
    )
    return {"credentials": dict(mb.credentials), "email": mb.email, "visible": visible}


def run_sync(messages: int) -> dict[str, Any]:
    from tasks.sync import refresh_credentials, sync_stream

    engine = bench_engine()
    use_database(engine)
    with ChildSandbox(("gmail",), seed_mailbox, messages=messages) as sb:
        os.environ.update(sb.env)
        iid = bench_integration(
            engine,
            "gmail",
            credentials=sb.info["credentials"],
            external_account_id=sb.info["email"],
            config={"quota_units_per_second": None, "batch_size": BATCH_SIZE},
        )
        refresh_credentials.fn(iid, "gmail")
        labels = sync_stream.fn(iid, "labels")
        started = time.perf_counter()
        result = sync_stream.fn(iid, "messages")
        seconds = time.perf_counter() - started
        counts = sb.request_counts()
    api_calls = sum(v for k, v in counts.items() if k != "batch")
    round_trips = counts.get("batch", 0) + sum(
        v for k, v in counts.items() if k not in ("batch", "users.messages.get", "users.labels.get")
    )
    return {
        "messages": messages,
        "visible": sb.info["visible"],
        "loaded": result["inserted"],
        "seconds": round(seconds, 2),
        "messages_per_s": round(result["inserted"] / seconds),
        "api_calls": api_calls,
        "round_trips": round_trips,
        "by_method": counts,
        "connector_requests": result["requests"] + labels["requests"],
        "rate_limited": result["rate_limited"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(
        f"Gmail sandbox -> PostgreSQL, one mailbox of {args.messages:,} messages "
        f"(batches of {BATCH_SIZE}, quota off; tasks.sync.sync_stream.fn, emulator in its "
        "own process)"
    )
    f = run_sync(args.messages)
    print(f"  messages loaded   {f['loaded']:>12,}  (of {f['visible']:,} outside spam/trash)")
    print(f"  seconds           {f['seconds']:>12,.2f}  (messages stream)")
    print(f"  messages/s        {f['messages_per_s']:>12,}")
    print(
        f"  requests          {f['api_calls']:>12,}  API calls as Gmail's quota counts them "
        f"({', '.join(f'{k} {v}' for k, v in sorted(f['by_method'].items()) if k != 'batch')})"
    )
    print(
        f"  HTTP round trips  {f['round_trips']:>12,}  ({f['by_method'].get('batch', 0):,} "
        "batch envelopes)"
    )
    print(f"  rate limited      {f['rate_limited']:>12,}")
    print(f"  peak RSS          {f['peak_rss_mb']:>12,.1f} MB")
    return 0 if f["loaded"] == f["visible"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
