"""prefect.yaml for real: ``prefect server start``, ``prefect deploy --all``, a process worker,
``prefect deployment run`` -> rows land, runs and artifacts visible through the API. Also
``aos-sync serve`` serving the same deployments from one process, until Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.flows.conftest import World
from tests.flows.test_sync_slack import assert_equal_to_truth

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
START = datetime(2026, 10, 1, tzinfo=UTC)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def wait_healthy(self, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health").status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError("Prefect server did not become healthy")

    def wait_run(self, run_id: str, seconds: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run = self.http.get(f"/flow_runs/{run_id}").json()
            if run["state"] and run["state"]["type"] in {
                "COMPLETED",
                "FAILED",
                "CRASHED",
                "CANCELLED",
            }:
                return run
            time.sleep(0.5)
        raise TimeoutError(f"flow run {run_id} did not finish")

    def why(self, run: dict[str, Any]) -> str:
        """The run's state and its last log lines, for an assertion's message."""
        logs = self.http.post(
            "/logs/filter",
            json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_ASC"},
        ).json()
        lines = "\n".join(f"{entry['level']} {entry['message']}" for entry in logs[-30:])
        return f"{run['state']}\n{lines}"

    def create_run(self, deployment_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """POST create_flow_run, retrying what a busy SQLite-backed server answers with 5xx."""
        for attempt in range(5):
            answer = self.http.post(
                f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters}
            )
            if answer.status_code < 500:
                break
            time.sleep(1 + attempt)
        assert answer.status_code in (200, 201), f"{answer.status_code}: {answer.text[:500]}"
        return dict(answer.json())

    def artifacts(self, key: str) -> list[dict[str, Any]]:
        return self.http.post(
            "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}
        ).json()


@pytest.fixture
def prefect_server(tmp_path: Path, world: World) -> Iterator[tuple[Api, dict[str, str]]]:
    port = _free_port()
    env = {
        **world.env(),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "AOS_PROJECT_DIR": str(ROOT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
    }
    # The deployments' crons must not start runs of their own: a scheduled sync_all landing on
    # a quarter hour would hold an integration's lock while the test's manual run asks for it.
    server_env = {**env, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = Api(env["PREFECT_API_URL"])
    try:
        api.wait_healthy(server)
        yield api, env
    finally:
        _stop(server)


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return done.stdout


def test_deploy_worker_and_run(world: World, prefect_server: tuple[Api, dict[str, str]]) -> None:
    api, env = prefect_server
    first = world.add_slack(
        "dep1",
        client="globex",
        users=4,
        channels=3,
        messages_per_channel=60,
        start=START,
        span_days=10,
        config={"auto_join": True},
    )
    second = world.add_slack(
        "dep2",
        client="initech",
        users=4,
        channels=2,
        messages_per_channel=40,
        start=START,
        span_days=10,
        config={"auto_join": True},
    )
    _run([PREFECT, "work-pool", "create", "aos-process", "--type", "process"], env)
    out = _run([PREFECT, "--no-prompt", "deploy", "--all"], env)
    assert "sync_slack/sync-slack" in out or "sync-slack" in out
    scheduled = api.http.get("/deployments/name/sync_all/sync-all-slack").json()
    assert (
        scheduled["schedules"] and scheduled["schedules"][0]["schedule"]["cron"] == "*/15 * * * *"
    )

    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "aos-process", "--limit", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = _run(
            [
                PREFECT,
                "deployment",
                "run",
                "sync_slack/sync-slack",
                "--param",
                f"integration_id={first}",
                "--param",
                f"requested_by={world.users['owner']}",
            ],
            env,
        )
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        run = api.wait_run(run_id)
        assert run["state"]["type"] == "COMPLETED", api.why(run)
        assert_equal_to_truth(world, "dep1")
        assert api.artifacts(f"slack-sync-integration-{first}")

        out = _run([PREFECT, "deployment", "run", "sync_all/sync-all-slack"], env)
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        run = api.wait_run(run_id)
        assert run["state"]["type"] == "COMPLETED", api.why(run)
        assert_equal_to_truth(world, "dep2")
        (table,) = [
            a["data"] if isinstance(a["data"], dict | list) else json.loads(a["data"])
            for a in api.artifacts("sync-all")
            if a["flow_run_id"] == run_id
        ]
        # The first integration was synced a moment ago and is read again incrementally.
        assert {row["integration"]: row["outcome"] for row in table} == {
            first: "succeeded",
            second: "succeeded",
        }
        runs = api.http.post("/flow_runs/filter", json={}).json()
        # The manual run and sync_all, which runs each integration in-process (no subflows).
        assert sorted(r["name"] for r in runs) == [
            f"slack-integration-{first}",
            f"sync-all-slack-{datetime.now(UTC):%Y-%m-%d}",
        ]
    finally:
        _stop(worker)


def test_serve_runs_the_same_deployments(
    world: World, prefect_server: tuple[Api, dict[str, str]]
) -> None:
    api, env = prefect_server
    iid = world.add_slack(
        "serve",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=30,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )
    served = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        deployment = None
        while time.monotonic() < deadline and deployment is None:
            assert served.poll() is None, served.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            found = api.http.get("/deployments/name/sync_slack/sync-slack")
            deployment = found.json() if found.status_code == 200 else None
            time.sleep(0.5)
        assert deployment, "aos-sync serve did not register its deployments"
        run = api.create_run(
            deployment["id"], {"integration_id": iid, "requested_by": world.users["owner"]}
        )
        try:
            finished = api.wait_run(run["id"])
        except TimeoutError:
            _stop(served)
            tail = served.stdout.read().decode()[-4000:]  # type: ignore[union-attr]
            raise AssertionError(
                f"served run did not finish; aos-sync serve said:\n{tail}"
            ) from None
        assert finished["state"]["type"] == "COMPLETED", api.why(finished)
        assert_equal_to_truth(world, "serve")
        # Ctrl-C at the terminal: SIGINT to the foreground process group.
        os.killpg(served.pid, signal.SIGINT)
        said = served.communicate(timeout=60)[0].decode()
        assert served.returncode == 130, said[-3000:]
        assert "Traceback" not in said and said.rstrip().endswith("stopped serving"), said[-3000:]
    finally:
        _stop(served)
