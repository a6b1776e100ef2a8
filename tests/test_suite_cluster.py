"""The suite's own PostgreSQL: parallel sessions share one cluster, and it is stopped when the
last of them ends (when the run started it), so a test run leaves no server behind."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_parallel_sessions_share_the_cluster_and_the_last_one_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "cluster"
    env = {**os.environ, "AOS_TEST_HOME": str(home)}
    env.pop("AOS_TEST_DATABASE_URL", None)  # the embedded cluster, whatever this run uses
    try:
        _run_and_check(home, env)
    finally:  # neither a server nor its data is left behind (as root the data is in /var/tmp)
        from db.embedded import EmbeddedPostgres

        EmbeddedPostgres(home, durable=False).purge()


def _run_and_check(home: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
        + ["--dist", "loadfile", "tests/test_smoke_db.py", "tests/test_status.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b[1-9][0-9]* passed in ", done.stdout), done.stdout[-3000:]  # tests ran
    state = json.loads((home / "postgres.json").read_text())
    assert not _listening(state["port"]), "the test run left its PostgreSQL running"
    assert not (home / ".started-by-tests").exists()
