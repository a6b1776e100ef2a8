"""The analyst logins ``aos-sync analyst create`` made on this machine, kept for ``aos-sync
export --as EMAIL``.

A login's password is shown once; the command line also keeps it in
``AOS_HOME/analyst-logins.json`` (mode 0600, like the development encryption key there), per
database and user, so the person who created it can export without pasting it back. The demo
keeps its analyst's login here too, which is how the ``psql`` line it prints stays good.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = ["recall", "remember"]


def _file() -> Path:
    from db.engine import aos_home

    return aos_home() / "analyst-logins.json"


def _database(url: sa.URL) -> str:
    return f"{url.host}:{url.port}/{url.database}"


def _read() -> dict[str, Any]:
    try:
        known = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def recall(url: sa.URL, email: str) -> tuple[str, str] | None:
    """(role, password) of ``email``'s login on the database at ``url``, if kept here."""
    saved = _read().get(_database(url), {}).get(email.lower())
    return (saved["role"], saved["password"]) if saved else None


def remember(url: sa.URL, email: str, role: str, password: str) -> None:
    known = _read()
    known.setdefault(_database(url), {})[email.lower()] = {"role": role, "password": password}
    path = _file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(known, fh)
    tmp.replace(path)
