"""tests/plugins/leftovers.py: a test run that leaves a process alive fails, and the process is
stopped; one that cleans up passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

LEAKY = """
import subprocess, sys

def test_starts_a_daemon(tmp_path):
    # Double fork, as a daemonising server does: the sleeper's parent becomes PID 1.
    code = "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
    code += "'import time; time.sleep(120)'], start_new_session=True, "
    code += "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    (tmp_path.parent.parent / "daemon.pid").write_text(out.stdout.strip())
"""

TIDY = """
import subprocess, sys

def test_stops_what_it_starts():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc.terminate()
    proc.wait()
"""


def _run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_it.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p"]
        + ["tests.plugins.leftovers", "-c", str(tmp_path / "pytest.ini"), "--rootdir"]
        + [str(tmp_path), "--basetemp", str(tmp_path / "base"), str(tmp_path / "test_it.py")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AOS_TEST_LEFTOVERS_GRACE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_that_leaves_a_daemon_fails_and_the_daemon_is_stopped(tmp_path: Path) -> None:
    done = _run(tmp_path, LEAKY)
    pid = int((tmp_path / "daemon.pid").read_text())
    try:
        assert done.returncode == 1, done.stdout + done.stderr
        assert "1 passed" in done.stdout
        assert "1 process(es) the test run started are still alive" in done.stdout
        assert f"pid {pid} (parent 1)" in done.stdout
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()


def test_a_run_that_stops_what_it_starts_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, TIDY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "still alive" not in done.stdout
