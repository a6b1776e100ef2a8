"""``python -m sandbox serve``: run the emulators in the foreground until Ctrl-C.

Prints ``export AOS_...`` lines for the project and the seeded workspaces' credentials. These
are fake tokens of a local emulator; this is the only place the sandbox ever prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sandbox.core import Sandbox, known_providers

__all__ = ["accounts", "add_serve_arguments", "main", "serve", "serve_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the emulators and wait for Ctrl-C")
    add_serve_arguments(serve)
    return parser


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--providers",
        default="slack",
        help=f"comma-separated, from: {', '.join(known_providers())}",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", default="small", help="tiny | small | demo | large | huge")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="60 makes a provider minute last one second"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="also write the settings and the seeded accounts' credentials here (JSON, 0600), "
        "for `aos-sync sandbox env` / `credentials`",
    )


def accounts(sb: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Per provider, its seeded accounts: ``{"name", "external_id", "credentials"}`` each, the
    credentials as ``aos-sync integration add --credentials-file`` takes them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, emulator in sb.emulators.items():
        rows: list[dict[str, Any]] = []
        for attr, label, ident in (
            ("workspaces", "name", "team_id"),  # slack
            ("mailboxes", "email", "email"),  # gmail
            ("businesses", "name", "id"),  # meta
        ):
            for account in getattr(emulator, attr, {}).values():
                rows.append(
                    {
                        "name": str(getattr(account, label)),
                        "external_id": str(getattr(account, ident)),
                        "credentials": dict(account.credentials),
                    }
                )
        logins = getattr(emulator, "logins", None)  # google_ads
        if logins is not None and hasattr(emulator, "credentials"):
            for login in logins.values():
                rows.append(
                    {
                        "name": login.email,
                        "external_id": login.email,
                        "credentials": dict(emulator.credentials(login)),
                    }
                )
        found[name] = rows
    return found


def _write_state(path: Path, sb: Sandbox) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "env": sb.env, "accounts": accounts(sb)}, fh)
    tmp.replace(path)


def describe(sb: Sandbox, out: TextIO) -> None:
    for name, value in sorted(sb.env.items()):
        print(f"export {name}={value}", file=out)
    if "slack" in sb.emulators:
        app = sb.slack.app
        print(f"# slack app: client_id={app.client_id} client_secret={app.client_secret}", file=out)
        for ws in sb.slack.workspaces.values():
            creds = " ".join(
                f"{k}={v}"
                for k, v in ws.credentials.items()
                if k not in ("client_id", "client_secret")
            )
            print(f"# slack {ws.name} team_id={ws.team_id} tier={ws.tier} {creds}", file=out)
    if "gmail" in sb.emulators:
        oauth = sb.gmail.oauth
        print(
            f"# google oauth client: client_id={oauth.client_id} "
            f"client_secret={oauth.client_secret}",
            file=out,
        )
        for mb in sb.gmail.mailboxes.values():
            print(
                f"# gmail {mb.email} refresh_token={mb.refresh_token} "
                f"access_token={mb.access_token}",
                file=out,
            )
    print("# admin: GET <base>/_sandbox/health | /_sandbox/log ; POST /_sandbox/faults", file=out)


def serve_main(
    argv: Sequence[str] | None = None,
    *,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
) -> int:
    """Arguments of ``serve`` (without the word itself); blocks until Ctrl-C or ``stop``."""
    parser = argparse.ArgumentParser(prog="sandbox serve")
    add_serve_arguments(parser)
    return serve(parser.parse_args(list(argv) if argv is not None else None), stop=stop, out=out)


def serve(
    args: argparse.Namespace,
    *,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the emulators ``args`` (from :func:`add_serve_arguments`) name until Ctrl-C,
    SIGTERM or ``stop``."""
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    stop = stop or threading.Event()
    out = out or sys.stdout
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state: Path | None = getattr(args, "state_file", None)
    with Sandbox(providers, seed=args.seed, time_scale=args.time_scale, size=args.size) as sb:
        describe(sb, out)
        if state is not None:
            _write_state(state, sb)
        out.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if state is not None:
                state.unlink(missing_ok=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        _parser().parse_args(args)  # prints usage and exits
        return 2
    return serve_main(args[1:])
