"""Printing for humans (aligned tables) or scripts (``--json``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["CliError", "Parser", "emit", "iso_date", "not_future", "to_plain", "whole_number"]


class CliError(Exception):
    """An error for the user: printed as one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors shaped like every other error of the command line: one line
    ``error: ...`` naming the option and what it expects, then where the help is. Exit status
    2, argparse's own for a usage error."""

    def error(self, message: str) -> Any:  # argparse's signature; never returns
        self.exit(2, f"error: {message}\n(see `{self.prog} --help`)\n")


def iso_date(text: str) -> date:
    """An argparse type: ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date as YYYY-MM-DD, got {text[:40]!r}"
        ) from None


def not_future(day: date | None, option: str) -> None:
    """A day after tomorrow (UTC; an account's local day may be ahead of UTC) holds no data:
    say so rather than run a sync that reads nothing or write an empty file."""
    if day is not None and day > datetime.now(UTC).date() + timedelta(days=1):
        raise CliError(f"{option} {day} is in the future; nothing has happened there yet")


def whole_number(text: str) -> int:
    """An argparse type: an id or a count, a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text[:40]!r}"
        )
    return value


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def emit(
    value: Any,
    *,
    as_json: bool,
    columns: Sequence[str] | None = None,
    max_width: int | None = None,
) -> None:
    """Print ``value`` (a dict, or a list of dicts/dataclasses) as JSON or as a table; with
    ``max_width``, the table's last column is cut (``...``) so no line is wider."""
    plain = to_plain(value)
    if as_json:
        json.dump(plain, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if isinstance(plain, dict):
        width = max((len(k) for k in plain), default=0)
        for key, val in plain.items():
            print(f"{key.ljust(width)}  {val}")
        return
    rows = list(plain)
    if not rows:
        print("(none)")
        return
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    if max_width is not None:
        room = max(max_width - sum(w + 2 for w in widths[:-1]), len(cols[-1]), 4)
        if widths[-1] > room:
            widths[-1] = room
            for row in cells:
                if len(row[-1]) > room:
                    row[-1] = row[-1][: room - 3] + "..."
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
