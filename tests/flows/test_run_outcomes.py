"""What a run leaves in Prefect, read back through Prefect's API: mistakes the command line
catches create no run; a refusal ends its run Cancelled ("Refused"), tagged, logged once; a
``sync_all`` run's artifacts are its own and its task runs carry their stream names."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.sorting import FlowRunSort

from cli import context
from cli.main import main
from db import schema
from db.rbac import PermissionDenied
from flows import backfill, sync_all, sync_slack
from tests.flows.conftest import World, seeded_world

START = datetime.now(UTC) - timedelta(days=6)


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    with seeded_world(
        World, fresh_engine, monkeypatch, providers=("slack",), time_scale=60, seed=31
    ) as w:
        context.engine.cache_clear()
        yield w
        context.engine.cache_clear()


def _slack(world: World) -> int:
    return world.add_slack(
        "a", client="globex", users=3, channels=2, messages_per_channel=8, start=START, span_days=5
    )


def _flow_run_ids() -> set[str]:
    with get_client(sync_client=True) as client:
        return {str(r.id) for r in client.read_flow_runs(limit=200)}


def _latest_run(flow_name: str) -> Any:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
        flow_ids = {f.id: f.name for f in client.read_flows(limit=200)}
    return next(r for r in runs if flow_ids.get(r.flow_id) == flow_name)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_mistakes_are_caught_before_a_run_is_created(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    iid = _slack(world)
    owner = world.users["owner"]
    cases = {
        "a Slack integration given to sync gmail": (
            ("sync", "gmail", "--integration", str(iid), "--as", owner),
            "is a slack integration, not gmail",
        ),
        "a backfill whose end is not after its start": (
            (
                "backfill",
                "--integration",
                str(iid),
                "--start",
                "2026-03-01",
                "--end",
                "2026-03-01",
                "--as",
                owner,
            ),  # fmt: skip
            "--end 2026-03-01 is not after --start 2026-03-01",
        ),
        "an unknown --as user": (
            ("sync", "slack", "--integration", str(iid), "--as", "nobody@acme.test"),
            "--as nobody@acme.test: no user has that email",
        ),
        "a sync since a future day": (
            ("sync", "slack", "--integration", str(iid), "--as", owner, "--since", "2030-01-01"),
            "--since 2030-01-01 is in the future",
        ),
        "a backfill in the future": (
            (
                "backfill",
                "--integration",
                str(iid),
                "--start",
                "2030-01-01",
                "--end",
                "2030-02-01",
                "--as",
                owner,
            ),  # fmt: skip
            "--start 2030-01-01 is in the future",
        ),
        "an export since a future day": (
            ("export", "client_activity_daily", "--since", "2030-01-01", "--out", "/tmp/x.csv"),
            "--since 2030-01-01 is in the future",
        ),
    }
    before = _flow_run_ids()
    for what, (args, says) in cases.items():
        code, out, err = _cli(monkeypatch, capsys, *args)
        assert code == 1 and out == "", what
        assert err.splitlines() == [err.strip()] and err.startswith("error: "), (what, err)
        assert says in err, (what, err)
        assert _flow_run_ids() == before, f"{what}: a Prefect run was created"


def test_a_refusal_ends_its_run_cancelled_tagged_and_logged_once(world: World) -> None:
    iid = _slack(world)
    with pytest.raises(PermissionDenied) as refused:  # a caller still gets the typed refusal
        sync_slack(integration_id=iid, requested_by=world.other_agency_user)
    with pytest.raises(PermissionDenied):
        backfill(
            integration_id=iid,
            start=START.date(),
            end=START.date() + timedelta(days=2),
            requested_by=world.users["reader"],
        )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    for flow_name, provider in (("sync_slack", "slack"), ("backfill", "slack")):
        run = _latest_run(flow_name)
        assert run.state.type.value == "CANCELLED" and run.state.name == "Refused", run.state
        assert run.state.message.startswith("permission denied")
        assert {provider, f"agency:{world.agency_id}"} <= set(run.tags)
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
            )
        about_it = [entry.message for entry in logs if "permission denied" in entry.message]
        assert len(about_it) == 1, about_it
        assert not [entry for entry in logs if "Traceback" in entry.message]
    assert str(refused.value).startswith("permission denied")


def test_sync_all_artifacts_are_the_flow_runs_and_task_runs_name_their_stream(
    world: World,
) -> None:
    iid = _slack(world)
    sync_all(integration_ids=[iid])
    run = _latest_run("sync_all")
    assert run.name == f"sync-all-every-provider-{datetime.now(UTC).date().isoformat()}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    own = {a.key for a in artifacts if a.task_run_id is None}
    assert {"sync-all", "integration-health"} <= own, [(a.key, a.task_run_id) for a in artifacts]
    names = {t.name for t in task_runs}
    assert {"sync-stream-users", "sync-stream-channels", "sync-stream-messages"} <= names, names

    # A sync of its own: its summary is the flow run's too.
    sync_slack(integration_id=iid, requested_by=world.users["owner"])
    single = _latest_run("sync_slack")
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[single.id]))
        )
    assert [a.key for a in artifacts if a.task_run_id is None] == [f"slack-sync-integration-{iid}"]


def test_a_provider_down_prints_one_warning_per_retry_and_one_error(world: World) -> None:
    """Slack unreachable: no SDK connection errors, no traceback, no Prefect state lines at
    the terminal; a warning per task retry naming the integration and stream, then the error."""
    import socket
    import subprocess

    iid = _slack(world)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**world.env(), "AOS_SLACK_API_URL": f"http://127.0.0.1:{port}/api/"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "sync",
            "slack",
            "--integration",
            str(iid),
            "--as",
            world.users["owner"],
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 1 and lines[-1].startswith("error: "), done.stderr
    retries = [line for line in lines if line.startswith("warning: ")]
    assert retries and all(f"integration {iid} sync-stream-" in line for line in retries), lines
    assert all("retry " in line for line in retries)
    # Each stream's task retries twice at most (tasks/sync.py): a warning each, nothing else.
    assert len(retries) <= 2 * 3 and len(lines) <= len(retries) + 2, lines
    assert "slack_sdk" not in done.stderr and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr  # no live board in a pipe


def _in_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as stdin, stdout and stderr; its exit code and all it
    wrote (carriage returns dropped)."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode().replace("\r", "")


def test_a_terminal_gets_a_live_board_per_integration_a_pipe_plain_lines(world: World) -> None:
    """At a terminal the run is drawn as a board, one line per integration, redrawn in place
    (cursor up, erase) and left on screen at the end with each stream's rows and the run's
    requests; piped, the same command writes no escape sequence at all. No telemetry notice
    either way."""
    import re
    import subprocess

    iid = _slack(world)
    args = [
        sys.executable, "-m", "cli.main", "sync", "slack",
        "--integration", str(iid), "--as", world.users["owner"],
    ]  # fmt: skip
    env = {**world.env(), "TERM": "xterm", "COLUMNS": "250"}
    code, out = _in_a_terminal(args, env)
    assert code == 0, out
    assert "anonymous usage" not in out  # Prefect's client telemetry notice
    assert re.search(r"\x1b\[\d+F\x1b\[J", out), out  # redrawn in place
    final = [line for line in out.split("\x1b[J")[-1].splitlines() if "integration" in line]
    (board,) = [line for line in final if line.startswith(f"  slack integration {iid} done: ")]
    shown = dict(re.findall(r"(\w+) ([\d,]+)", board.split("| rows ", 1)[1]))
    with world.data.connect() as conn:
        for stream, table in (("users", "slack_users"), ("messages", "slack_messages")):
            rows = schema.agency_metadata.tables[table]
            stored = conn.execute(
                sa.select(sa.func.count()).where(rows.c.integration_id == iid)
            ).scalar()
            assert int(shown[stream].replace(",", "")) == stored, (stream, board)
    requests = int(board.split(" done: ", 1)[1].split(" requests", 1)[0].replace(",", ""))
    assert requests == world.sandbox.log.count(), board  # every Slack call of the run

    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout + piped.stderr
