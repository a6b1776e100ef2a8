"""Flow tests: one Prefect test harness per session, a sandbox and a seeded agency per test."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from db import agencydb, tenancy
from db import engine as db_engine
from sandbox import Sandbox

W = TypeVar("W", bound="World")
TEST_KEY = "test:" + base64.b64encode(b"k" * 32).decode()


@dataclass
class World:
    """One agency with two clients and users of every role, wired to a sandbox."""

    engine: sa.Engine
    sandbox: Sandbox
    agency_id: int
    clients: dict[str, int]
    users: dict[str, str]
    other_agency_user: str
    integrations: dict[str, int] = field(default_factory=dict)
    workspaces: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> sa.Engine:
        """The agency's own database: its synced rows, cursors and quarantine."""
        return agencydb.engine_for(self.engine, self.agency_id)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess worker pointed at this world."""
        from prefect.settings import PREFECT_API_URL

        return {
            **os.environ,
            **self.sandbox.env,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "AOS_DATABASE_URL": self.engine.url.render_as_string(hide_password=False),
            "AOS_ENCRYPTION_KEY": TEST_KEY,
        }

    def add_slack(self, key: str, *, client: str | None, **workspace: Any) -> int:
        # The sandbox runs provider minutes at time_scale speed; pace the connector the same.
        config = {"rate_scale": self.sandbox.time_scale, **(workspace.pop("config", None) or {})}
        ws = self.sandbox.slack.add_workspace(name=f"ws-{key}", **workspace)
        with self.engine.begin() as conn:
            iid = tenancy.add_integration(
                conn,
                self.agency_id,
                "slack",
                f"slack-{key}",
                client_id=self.clients[client] if client else None,
                external_account_id=ws.team_id,
                config=config,
            )
            db_engine.default_vault().put(conn, iid, dict(ws.credentials))
        self.integrations[key] = iid
        self.workspaces[key] = ws
        return iid


def at_once(call: Callable[[int], Any], *, count: int = 2, timeout: float = 180) -> list[Any]:
    """``call(0)`` ... ``call(count - 1)`` in threads released together (a barrier): what each
    returned, or the exception it raised (for the caller to assert on)."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = [None] * count

    def run(slot: int) -> None:
        barrier.wait()
        try:
            outcomes[slot] = call(slot)
        except Exception as exc:  # recorded for the caller
            outcomes[slot] = exc

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return outcomes


@contextlib.contextmanager
def seeded_world(
    cls: type[W],
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    *,
    providers: tuple[str, ...],
    time_scale: float,
    seed: int,
    client_domains: dict[str, str] | None = None,
) -> Iterator[W]:
    """A started sandbox, the project pointed at it and at ``engine``, and agency "Acme" with
    clients globex and initech, users of every role (member: write on globex; reader: read on
    globex) and a rival agency's owner."""
    domains = client_domains or {}
    with Sandbox(providers=providers, seed=seed, time_scale=time_scale) as sb:
        for k, v in sb.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AOS_DATABASE_URL", engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("AOS_ENCRYPTION_KEY", TEST_KEY)
        monkeypatch.delenv("AOS_RUN_GRANT_KEY", raising=False)
        db_engine.get_engine.cache_clear()
        with engine.begin() as conn:
            agency = tenancy.create_agency(conn, "Acme")
            other = tenancy.create_agency(conn, "Rival")
            clients = {
                n: tenancy.add_client(
                    conn, agency, n, email_domains=[domains[n]] if n in domains else ()
                )
                for n in ("globex", "initech")
            }
            users = {role: f"{role}@acme.test" for role in ("owner", "admin", "manager", "member")}
            for role, email in users.items():
                tenancy.add_user(conn, agency, email, role)
            users["reader"] = "reader@acme.test"
            tenancy.add_user(conn, agency, users["reader"], "member")
            for who, permission in (("member", "write"), ("reader", "read")):
                tenancy.grant_access(
                    conn, tenancy.find_user(conn, users[who]).id, clients["globex"], permission
                )
            tenancy.add_user(conn, other, "owner@rival.test", "owner")
        try:
            yield cls(engine, sb, agency, clients, users, "owner@rival.test")
        finally:
            db_engine.get_engine.cache_clear()


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    with seeded_world(
        World, fresh_engine, monkeypatch, providers=("slack",), time_scale=60, seed=11
    ) as w:
        yield w


def kill_cli_midway(
    env: Mapping[str, str],
    args: Sequence[str],
    ready: Callable[[], bool],
    *,
    timeout: float = 180,
    poll: float = 0.05,
) -> None:
    """Run ``aos-sync ARGS`` in a worker process of its own, wait until ``ready()`` says it is
    mid-way (rows committed, chunks done), then SIGKILL its whole process group: nothing of it
    gets to clean up, as when a machine dies. Fails when the worker ended before that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(poll)
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else b""
            raise AssertionError(f"the worker ended before it could be killed: {output!r}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
