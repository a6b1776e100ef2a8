"""``aos-sync sandbox``: the provider emulators, for trying the project without accounts.

* ``serve``: in the foreground until Ctrl-C, printing the settings and fake credentials;
* ``start`` / ``stop``: the same in the background, kept in ``AOS_HOME/sandbox.json`` (0600),
  so a shell session can use it: ``eval "$(aos-sync sandbox env)"`` points that shell at the
  emulators and ``aos-sync sandbox credentials slack`` prints a seeded account's credentials in
  the form ``aos-sync integration add --credentials-file -`` reads.

The credentials are fake tokens of a local emulator; these commands exist to hand them out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.output import CliError, whole_number

__all__ = ["register"]

START_TIMEOUT = 60.0
#: The demo's pace: quota windows and waits of a provider minute last one real second, so the
#: quick start's syncs take seconds. Integrations on it pace alike with ``rate_scale``.
SANDBOX_TIME_SCALE = 60.0


def _state_file() -> Path:
    from db.engine import aos_home

    return aos_home() / "sandbox.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running() -> dict[str, Any] | None:
    """The background sandbox's state, or ``None`` when none is running."""
    path = _state_file()
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(state.get("pid", 0))):
        path.unlink(missing_ok=True)  # left by a sandbox that was killed
        return None
    return state


def _need_running() -> dict[str, Any]:
    state = _running()
    if state is None:
        raise CliError("no sandbox is running; start one with `aos-sync sandbox start`")
    return state


def cmd_sandbox_serve(a: argparse.Namespace) -> Any:
    from sandbox.cli import serve

    serve(a)
    return None


def cmd_sandbox_start(a: argparse.Namespace) -> Any:
    state = _running()
    if state is None:
        path = _state_file()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = path.with_suffix(".log")
        argv = [sys.executable, "-m", "sandbox", "serve", "--state-file", str(path)]
        argv += ["--providers", a.providers, "--seed", str(a.seed), "--size", a.size]
        argv += ["--time-scale", str(a.time_scale)]
        log.unlink(missing_ok=True)  # it prints the fake credentials: readable by us only
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command and its terminal's Ctrl-C
            )
        deadline = time.monotonic() + START_TIMEOUT
        while (state := _running()) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise CliError(f"the sandbox did not start: {tail[0]} (log: {log})")
            time.sleep(0.1)
    return {
        "pid": state["pid"],
        "providers": ", ".join(state["accounts"]),
        "accounts": ", ".join(f"{p}: {len(rows)}" for p, rows in state["accounts"].items()),
        "next": 'eval "$(aos-sync sandbox env)"   # point this shell at it',
    }


def cmd_sandbox_stop(a: argparse.Namespace) -> Any:
    state = _running()
    if state is None:
        return {"stopped": False}
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _state_file().unlink(missing_ok=True)
    return {"stopped": True}


def cmd_sandbox_env(a: argparse.Namespace) -> Any:
    state = _need_running()
    for name, value in sorted(state["env"].items()):
        print(f"export {name}={shlex.quote(value)}")
    return None


def cmd_sandbox_credentials(a: argparse.Namespace) -> Any:
    state = _need_running()
    rows = state["accounts"].get(a.provider)
    if rows is None:
        raise CliError(
            f"the running sandbox has no {a.provider} emulator "
            f"(it has: {', '.join(state['accounts'])}); restart it with --providers"
        )
    if not 1 <= a.account <= len(rows):
        raise CliError(f"--account: the {a.provider} emulator has accounts 1 to {len(rows)}")
    print(json.dumps(rows[a.account - 1]["credentials"]))
    return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from sandbox.cli import add_serve_arguments
    from sandbox.core import known_providers

    sandbox = sub.add_parser("sandbox", help="the provider emulators on 127.0.0.1")
    commands = sandbox.add_subparsers(dest="sub", required=True)
    serve = commands.add_parser(
        "serve", help="start the emulators, print the AOS_* settings, wait for Ctrl-C"
    )
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_sandbox_serve)

    start = commands.add_parser(
        "start",
        help="start the emulators in the background (a provider minute lasts a second, as in "
        "the demo: --time-scale 1 for real time)",
    )
    add_serve_arguments(start)
    start.set_defaults(func=cmd_sandbox_start, time_scale=SANDBOX_TIME_SCALE)
    commands.add_parser("stop", help="stop the background emulators").set_defaults(
        func=cmd_sandbox_stop
    )
    commands.add_parser(
        "env", help='the settings that point a shell at them: eval "$(aos-sync sandbox env)"'
    ).set_defaults(func=cmd_sandbox_env)
    creds = commands.add_parser(
        "credentials", help="a seeded account's credentials, as `integration add` reads them"
    )
    creds.add_argument("provider", choices=known_providers())
    creds.add_argument(
        "--account", type=whole_number, default=1, help="which seeded account (default 1)"
    )
    creds.set_defaults(func=cmd_sandbox_credentials)
