"""One local Prefect server, started on demand and reused, like the embedded PostgreSQL.

Without ``PREFECT_API_URL`` every Prefect process starts a temporary server of its own (8-12 s,
even for a run that is refused at once) and its runs vanish with it. So the commands that run
flows (``aos-sync sync``, ``backfill``, ``demo``) start one server in ``AOS_HOME/prefect`` the
first time, on 127.0.0.1, and reuse it afterwards; the UI at its address shows every run.
``aos-sync db stop`` stops it with the database. A configured ``PREFECT_API_URL`` (a real
server, Prefect Cloud, the test harness) always wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx

__all__ = ["LocalPrefect", "use_local_prefect"]


def _configured() -> bool:
    """Whether Prefect already has an API: the environment, the active Prefect profile, or (when
    Prefect is already imported, e.g. under a test harness) its current settings, which this
    process can no longer redirect anyway."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" in sys.modules:
        return True
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPrefect:
    """The server's state lives in ``home`` (its database, its log, ``server.json``), a folder
    of ``AOS_HOME``; both are made 0700 when absent."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._state = home / "server.json"

    def url(self) -> str | None:
        """The running server's API URL, or None."""
        try:
            state = json.loads(self._state.read_text())
        except (OSError, ValueError):
            return None
        api = f"http://127.0.0.1:{int(state['port'])}/api"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return api
        return None

    def ensure(self, timeout: float = 120.0) -> str:
        """Start the server unless it runs; return its API URL."""
        from db.embedded import make_private_home

        make_private_home(self.home.parent)  # AOS_HOME, when this is the first to need it
        make_private_home(self.home)
        with self._lock():
            url = self.url()
            if url:
                return url
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
            env.update(
                PREFECT_HOME=str(self.home),
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
            )
            prefect = Path(sys.executable).parent / "prefect"
            with open(self.home / "server.log", "ab") as log:
                proc = subprocess.Popen(
                    [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # outlives this command; stopped by `db stop`
                )
            self._state.write_text(json.dumps({"port": port, "pid": proc.pid}))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"the local Prefect server exited (see {self.home / 'server.log'})"
                    )
                url = self.url()
                if url:
                    return url
                time.sleep(0.3)
            raise RuntimeError(f"the local Prefect server did not start within {timeout:.0f} s")

    def stop(self) -> bool:
        """Stop the server if it runs; True when something was stopped."""
        try:
            state = json.loads(self._state.read_text())
        except (OSError, ValueError):
            return False
        pid = int(state["pid"])
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            self._state.unlink(missing_ok=True)
            return False
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self._state.unlink(missing_ok=True)
        return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def use_local_prefect(home: Path) -> str | None:
    """Point this process at the local server (started if needed), unless Prefect is already
    configured; returns the UI's address when the local server is used."""
    if _configured():
        return None
    api = LocalPrefect(home).ensure()
    os.environ["PREFECT_API_URL"] = api
    return api.removesuffix("/api")
