#!/usr/bin/env python3
"""The README's two commands: ``python3 run.py demo`` and ``python3 run.py test``.

Needs only Python 3.11 or 3.12 (3.13+ only with PostgreSQL installed on the machine, or
``AOS_DATABASE_URL``). Creates ``.venv`` from ``requirements.lock`` (exact versions, checked by
hash) plus the project itself, again whenever the lock or pyproject.toml changes, then runs
``aos-sync demo`` or the test suite inside it.

    python3 run.py demo [--size tiny]   the demo
    python3 run.py test [PYTEST ARGS]   lint (ruff, mypy), then the tests; --no-lint skips lint
    python3 run.py aos ARGS...          the ``aos-sync`` command line: ``run.py aos db status``
    python3 run.py lock                 refresh requirements.lock from pyproject.toml
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".aos-installed"
LOCK = ROOT / "requirements.lock"
#: The installer itself, exactly (``pip freeze`` leaves it out, but it decides what is built).
PIP = "pip==26.3"
#: What ``python3 run.py lock`` runs: every platform and Python from 3.11 in one file, with the
#: hashes of every file of each pinned release, so pip refuses anything else. Pins already in
#: the lock are kept unless ``--upgrade`` (or ``--upgrade-package NAME``) is passed on.
LOCK_COMMAND = [
    "uv",
    "pip",
    "compile",
    "pyproject.toml",
    "--extra",
    "dev",
    "--universal",
    "--python-version",
    "3.11",
    "--generate-hashes",
    "--index-url",
    "https://pypi.org/simple",
    "--custom-compile-command",
    "python3 run.py lock",
    "--output-file",
    "requirements.lock",
]
#: Run before the tests (fail fast); the same commands as the Development section of README.md.
LINT = [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _system_postgres() -> bool:
    """PostgreSQL server binaries where db/embedded.py looks for them (or a configured URL)."""
    if os.environ.get("AOS_DATABASE_URL") or os.environ.get("AOS_PG_BINDIR"):
        return True
    if shutil.which("pg_config") or shutil.which("initdb"):
        return True
    places = ("/usr/lib/postgresql/*/bin", "/opt/homebrew/opt/postgresql*/bin")
    places += ("/usr/local/opt/postgresql*/bin",)
    return any(glob.glob(f"{place}/initdb") for place in places)


def check_python(command: str, version: tuple[int, int] = sys.version_info[:2]) -> None:
    """Stop at once on a Python the project cannot run on here, saying why."""
    shown = f"{version[0]}.{version[1]}"
    if version < (3, 11):
        sys.exit(f"AudienceOS Sync needs Python 3.11 or newer (this is {shown})")
    if version >= (3, 13) and not _system_postgres():
        message = (
            f"Python {shown}: the embedded PostgreSQL fallback (the pgserver wheel) exists only "
            "for Python 3.11 and 3.12, and this machine has no PostgreSQL server binaries "
            "(AOS_PG_BINDIR, pg_config, initdb on PATH, /usr/lib/postgresql/*/bin, Homebrew) "
            "nor AOS_DATABASE_URL. Install PostgreSQL, set AOS_DATABASE_URL, or run "
            "run.py with python3.12 or python3.11."
        )
        if command in {"demo", "test"}:
            sys.exit(message)
        print(f"warning: {message} Commands that need the database will fail.", file=sys.stderr)


def ensure_venv() -> None:
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    # Made anew each time, so nothing a previous lock installed stays behind.
    print("==> creating .venv", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print(
        "==> installing requirements.lock and the project into .venv (first time: ~1-2 min)",
        flush=True,
    )
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", PIP], check=True)
    # Exactly the lock, nothing resolved here: a release made since cannot change the install.
    subprocess.run([*pip, "install", "-q", "--require-hashes", "-r", str(LOCK)], check=True)
    # setuptools warns about every editable install in a 10-line box (a folder named like the
    # package could shadow it); the output is shown only when the install fails.
    done = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"run.py: installing the project into .venv failed ({done.returncode})")
    STAMP.write_text(_fingerprint())


def _parallel(args: list[str]) -> list[str]:
    """pytest-xdist workers, two more than the CPUs (at most 4): most of a test's time is spent
    waiting on a server (PostgreSQL, Prefect, an emulator), so 4 workers on 2 cores finish the
    suite in well under half the time of one (430 s against 462 s with 3 workers). A file's
    tests stay on one worker (they share module fixtures). Pass ``-n 0`` (or your own ``-n N``)
    to choose."""
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args):
        return []
    workers = max(2, min(4, (os.cpu_count() or 1) + 2))
    return ["-n", str(workers), "--dist", "loadfile"]


def _names_tests(args: list[str]) -> bool:
    """True when the arguments pick test files or tests: then lint is not run before them."""
    return any("::" in a or (not a.startswith("-") and (ROOT / a).exists()) for a in args)


def lint(env: dict[str, str]) -> int:
    for command in LINT:
        print(f"==> {' '.join(command)}", flush=True)
        code = subprocess.call([str(BIN / command[0]), *command[1:]], env=env, cwd=ROOT)
        if code:
            print(f"==> lint failed ({' '.join(command)}): the tests were not run", flush=True)
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "aos", "lock"}:
        print(__doc__)
        return 2
    check_python(argv[0])
    ensure_venv()
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    os.chdir(ROOT)
    if argv[0] == "lock":
        return subprocess.call([str(BIN / LOCK_COMMAND[0]), *LOCK_COMMAND[1:], *argv[1:]], env=env)
    if argv[0] == "test":
        args = argv[1:]
        if "--no-lint" in args:
            args.remove("--no-lint")
        elif not _names_tests(args) and (code := lint(env)):
            return code
        cmd = [str(BIN / "python"), "-m", "pytest", *_parallel(args), *args]
    elif argv[0] == "demo":
        cmd = [str(BIN / "aos-sync"), "demo", *argv[1:]]
    else:
        cmd = [str(BIN / "aos-sync"), *argv[1:]]
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
