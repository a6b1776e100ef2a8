"""Fail the test run when a process it started is still alive at its end.

A server a test forgets to stop outlives the run: daemonised, its parent becomes PID 1, so
looking at the children of pytest is not enough (the demo's local Prefect server, about 240 MB,
was found that way). Instead the first pytest process of a run adds a fresh id to
``AOS_TEST_RUNS`` in its environment before anything starts; every process the run starts,
xdist workers and whatever they start, daemonised or not, inherits it. At the end (after the
workers are gone and every fixture is torn down) the processes that still carry the id, and
the pytest process's own descendants, are the leftovers: reported, the run failed, then stopped
so that one forgetful test does not leave them on the machine.
"""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest

ENV = "AOS_TEST_RUNS"
#: How long processes that are on their way out (a server told to stop) get to finish.
GRACE_SECONDS = float(os.environ.get("AOS_TEST_LEFTOVERS_GRACE") or 10)

_run_id: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _run_id
    if hasattr(config, "workerinput"):  # an xdist worker: the controller checks for the run
        return
    _run_id = uuid.uuid4().hex[:12]
    runs = [r for r in os.environ.get(ENV, "").split(":") if r]
    os.environ[ENV] = ":".join([*runs, _run_id])  # a pytest run inside a test keeps the outer id


def _started_by_this_run(run_id: str) -> list[psutil.Process]:
    me = psutil.Process()
    found: dict[int, psutil.Process] = {p.pid: p for p in me.children(recursive=True)}
    for proc in psutil.process_iter():
        if proc.pid == me.pid or proc.pid in found:
            continue
        try:
            if run_id in proc.environ().get(ENV, "").split(":"):
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found.values() if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        cmdline = " ".join(proc.cmdline())[:160]
        return f"pid {proc.pid} (parent {proc.ppid()}): {cmdline or proc.name()}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"pid {proc.pid}"


def _stop(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


@pytest.hookimpl(trylast=True)  # after xdist has shut its workers down and fixtures are gone
def pytest_sessionfinish(session: pytest.Session) -> None:
    if _run_id is None:
        return
    deadline = time.monotonic() + GRACE_SECONDS
    leftovers = _started_by_this_run(_run_id)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.5)
        leftovers = [p for p in leftovers if _alive(p)]
    if not leftovers:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{len(leftovers)} process(es) the test run started are still alive:"]
    lines += [f"  {_describe(p)}" for p in leftovers]
    lines.append("(stopped now; the test that started them must stop them)")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    _stop(leftovers)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
