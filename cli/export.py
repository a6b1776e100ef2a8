"""``aos-sync export VIEW --since DAY --until DAY --format csv|parquet --out FILE``.

Reads as an analyst, never as the application: ``--as EMAIL`` (the login ``aos-sync analyst
create --user EMAIL`` made on this machine, ``cli/logins.py``), ``--url`` (default
``AOS_ANALYST_URL``) or ``--as-analyst ROLE`` (password from ``AOS_ANALYST_PASSWORD``, on the
project's database).
Streams through a server-side cursor (``aos_sync/export.py``), so a year of ads takes no more
memory than a week.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cli.output import CliError, iso_date, not_future, whole_number
from db.analytics import VIEWS

__all__ = ["register"]


_NO_LOGIN = (
    "no analyst login given: pass --as EMAIL (after `aos-sync analyst create --user EMAIL`), "
    "--as-analyst ROLE (password in AOS_ANALYST_PASSWORD) or --url, or set AOS_ANALYST_URL"
)


def _login(a: argparse.Namespace) -> dict[str, Any]:
    """``connect()``'s arguments for the login the options (or the environment) name."""
    if a.as_ is not None:
        from cli.context import engine
        from cli.logins import recall

        saved = recall(engine().url, a.as_)
        if saved is None:
            raise CliError(
                f"--as {a.as_}: no analyst login of that user was created on this machine; "
                f"run `aos-sync analyst create --user {a.as_}` (or pass --as-analyst / --url)"
            )
        return {"role": saved[0], "password": saved[1]}
    if a.url or a.as_analyst:
        return {"url": a.url, "role": a.as_analyst}
    if os.environ.get("AOS_ANALYST_URL") or os.environ.get("AOS_ANALYST_ROLE"):
        return {}
    raise CliError(_NO_LOGIN)


def cmd_export(a: argparse.Namespace) -> Any:
    from aos_sync.analytics import connect
    from aos_sync.export import export

    fmt = a.format or _format_of(a.out)
    if a.since and a.until and a.since > a.until:
        raise CliError(f"--since {a.since} is after --until {a.until}; expected since <= until")
    not_future(a.since, "--since")
    out = Path(a.out)
    if not out.parent.is_dir():
        raise CliError(f"--out {a.out}: folder {str(out.parent)!r} does not exist")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise CliError(f"--out {a.out}: not writable")
    with connect(**_login(a)) as conn:
        try:
            result = export(
                conn,
                a.view,
                out,
                fmt,
                a.since,
                a.until,
                batch_rows=a.batch_rows,
                client_ids=a.client or None,
            )
        except OSError as exc:  # the file the user typed, not the .partial one next to it
            raise CliError(f"--out {a.out}: {exc.strerror or exc}") from None
    return result


def _format_of(out: str) -> str:
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix in ("csv", "parquet"):
        return suffix
    raise CliError(
        f"--format: expected csv or parquet (it cannot be told from --out {out!r}, which ends "
        "neither in .csv nor in .parquet)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export",
        help="write an analytics view to a CSV or Parquet file, as an analyst",
        description="Write rows of an analytics view for a range of days (both included) to a "
        "file, read as an analyst login so row-level security applies. Views: "
        + "; ".join(f"{v.name}: {v.summary}" for v in VIEWS.values()),
    )
    p.add_argument("view", choices=list(VIEWS), metavar="VIEW", help=", ".join(VIEWS))
    p.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD", help="first day (included)")
    p.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD", help="last day (included)")
    p.add_argument(
        "--format",
        choices=("csv", "parquet"),
        help="file format (default: from the --out file's extension)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--as",
        dest="as_",
        metavar="EMAIL",
        help="the analyst login `aos-sync analyst create --user EMAIL` made on this machine",
    )
    who.add_argument(
        "--url",
        metavar="URL",
        help="the analyst's connection URL (default: AOS_ANALYST_URL, better: a password on "
        "the command line is visible to other users of the machine)",
    )
    who.add_argument(
        "--as-analyst",
        metavar="ROLE",
        help="the analyst login on the project's database (password: AOS_ANALYST_PASSWORD)",
    )
    p.add_argument(
        "--client",
        type=whole_number,
        action="append",
        metavar="ID",
        help="only this client id (repeatable)",
    )
    p.add_argument(
        "--batch-rows",
        type=whole_number,
        default=20_000,
        metavar="N",
        help="rows per fetch and per Parquet row group (default 20000)",
    )
    p.set_defaults(func=cmd_export)
