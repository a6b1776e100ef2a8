#!/usr/bin/env python3
"""The README's two commands: ``python3 run.py demo`` and ``python3 run.py test``.

Needs only Python 3.11+. Creates ``.venv`` with the project and its dev tools (again whenever
pyproject.toml changes), then runs ``aos-sync demo`` or the test suite inside it. Any other
arguments after ``aos`` go to the ``aos-sync`` command line: ``python3 run.py aos db status``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".aos-installed"


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python3 the user has
        sys.exit(f"AudienceOS Sync needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    if not (BIN / "python").exists():
        print("==> creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    print(
        "==> installing the project and its dev tools into .venv (first time: ~1-2 min)", flush=True
    )
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(_fingerprint())


def _parallel(args: list[str]) -> list[str]:
    """pytest-xdist workers, one more than the CPUs (at most 4): most of a test's time is spent
    waiting on a server (PostgreSQL, Prefect, an emulator), so 3 workers on 2 cores finish the
    suite in well under half the time of one. A file's tests stay on one worker (they share
    module fixtures). Pass ``-n 0`` (or your own ``-n N``) to choose."""
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args):
        return []
    workers = max(2, min(4, (os.cpu_count() or 1) + 1))
    return ["-n", str(workers), "--dist", "loadfile"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "aos"}:
        print(__doc__)
        return 2
    ensure_venv()
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    os.chdir(ROOT)
    if argv[0] == "test":
        cmd = [str(BIN / "python"), "-m", "pytest", *_parallel(argv[1:]), *argv[1:]]
    elif argv[0] == "demo":
        cmd = [str(BIN / "aos-sync"), "demo", *argv[1:]]
    else:
        cmd = [str(BIN / "aos-sync"), *argv[1:]]
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
