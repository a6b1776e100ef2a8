"""Orchestration overhead: ``python -m bench.dispatch [--integrations 200]``.

200 Slack integrations (tiny sandbox workspaces, already synced, nothing new to fetch) are
synced twice in one run:

* direct: the same task functions without Prefect (``refresh_credentials.fn`` and
  ``sync_stream.fn`` per stream), one integration after the other;
* ``sync_all`` under a running ``prefect server`` (started here on 127.0.0.1): every
  integration through ``sync_slack`` with its authorize, lock, ledger, tasks and artifact —
  once one at a time (so the difference is the per-integration overhead) and once with the
  default 4 at a time.

Prints wall times, the per-integration overhead and the ratio; PASS when the overhead of a
no-op incremental sync is under 0.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import ChildSandbox, bench_engine, use_database

AGENCY = "bench-dispatch"
TARGET_OVERHEAD_S = 0.5
STREAMS = ("users", "channels", "messages")


def seed_workspaces(sb: Any, *, count: int) -> list[dict[str, Any]]:
    """Runs in the sandbox process: ``count`` tiny workspaces whose history is old, so an
    incremental sync has nothing new to fetch (only the lists and one history call each)."""
    start = datetime.now(UTC) - timedelta(days=120)
    out = []
    for i in range(count):
        ws = sb.slack.add_workspace(
            f"ws{i}",
            users=3,
            channels=2,
            messages_per_channel=4,
            thread_ratio=0.0,
            tier="unlimited",
            start=start,
            span_days=2,
        )
        out.append({"credentials": dict(ws.credentials), "team_id": ws.team_id})
    return out


def _integrations(engine: sa.Engine, workspaces: list[dict[str, Any]]) -> tuple[int, list[int]]:
    from db import tenancy
    from db.engine import default_vault

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM agency WHERE name = :n"), {"n": AGENCY})
        agency = tenancy.create_agency(conn, AGENCY)
        ids = []
        for i, ws in enumerate(workspaces):
            iid = tenancy.add_integration(
                conn,
                agency,
                "slack",
                f"bench-{i}",
                external_account_id=ws["team_id"],
                config={"tier": "unlimited", "auto_join": True},
            )
            default_vault().put(conn, iid, ws["credentials"])
            ids.append(iid)
    return agency, ids


def _direct(ids: list[int]) -> float:
    from tasks.sync import refresh_credentials, sync_stream

    began = time.perf_counter()
    for iid in ids:
        refresh_credentials.fn(iid, "slack")
        for stream in STREAMS:
            sync_stream.fn(iid, stream)
    return time.perf_counter() - began


@contextlib.contextmanager
def prefect_server() -> Any:
    """``prefect server start`` on 127.0.0.1 with its default SQLite database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tempfile.mkdtemp(prefix="aos-bench-prefect-")
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    prefect = str(Path(sys.executable).parent / "prefect")
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("prefect server did not start")
        yield url, home
        if "prefect" in sys.modules:
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()  # send queued run logs before the server goes away
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _dispatch(agency: int, workers: int) -> tuple[float, list[dict[str, Any]]]:
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows import sync_all

    flow = sync_all.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))  # type: ignore[arg-type]
    began = time.perf_counter()
    outcomes = flow(provider="slack", agency_id=agency, via_deployments=False)
    return time.perf_counter() - began, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--integrations", type=int, default=200)
    args = parser.parse_args(argv)
    n = args.integrations

    # The server first, so nothing in this process ever starts Prefect's ephemeral one.
    with prefect_server() as (url, home):
        os.environ.update(PREFECT_API_URL=url, PREFECT_HOME=home, PREFECT_LOGGING_LEVEL="WARNING")
        engine = bench_engine()
        use_database(engine)
        with ChildSandbox(("slack",), seed_workspaces, count=n, time_scale=60) as sb:
            os.environ.update(sb.env)
            agency, ids = _integrations(engine, sb.info)
            warm = _direct(ids)  # first sync: everything is new; not part of the comparison
            direct = _direct(ids)
            _dispatch(agency, 4)  # warm-up: client, server caches, first flow registration
            serial, outcomes = _dispatch(agency, 1)
            parallel, outcomes4 = _dispatch(agency, 4)
            requests = sb.request_counts()
    failed = [o for o in outcomes + outcomes4 if o["outcome"] != "succeeded"]
    overhead = (serial - direct) / n
    print(
        f"sync_all over {n} Slack integrations with nothing new to fetch "
        f"(first sync, not compared: {warm:.1f} s)"
    )
    print(
        f"  direct, no Prefect            {direct:8.1f} s   {direct / n * 1000:7.1f} ms/integration"
    )
    print(
        f"  sync_all, 1 at a time         {serial:8.1f} s   {serial / n * 1000:7.1f} ms/integration"
    )
    print(
        f"  sync_all, 4 at a time         {parallel:8.1f} s   {parallel / n * 1000:7.1f} ms/integration"
    )
    print(
        f"  Prefect overhead              {overhead * 1000:8.1f} ms/integration "
        f"(ratio serial/direct {serial / direct:.2f}x)"
    )
    print(f"  requests to the sandbox       {sum(requests.values()):,}")
    print(f"  failed integrations           {len(failed)}")
    ok = overhead < TARGET_OVERHEAD_S and not failed
    print(
        f"  {'PASS' if ok else 'FAIL'}: per-integration overhead < {TARGET_OVERHEAD_S} s "
        "with a running Prefect server"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
