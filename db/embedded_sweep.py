"""Removing embedded clusters whose ``AOS_HOME`` is gone.

As root with an ``AOS_HOME`` the server account cannot reach, a cluster lives in a private
``aos-sync-*`` directory of the system's temporary directory (see :mod:`db.embedded`), which
deleting the ``AOS_HOME`` leaves behind: one day of test runs, demos and benchmarks left 15 of
them (1.6 GB, none running). So each private directory records the ``AOS_HOME`` it belongs to
(:data:`OWNER_FILE`, written by us, 0600), and any ``ensure_running`` sweeps away the
directories whose ``AOS_HOME`` no longer exists and whose server is not running.

Only directories that are plainly ours are touched: a real directory (not a symlink) named
``aos-sync-*``, owned by the server account, mode 0700, with an owner record that is a regular
file of the user running this. Directories of older versions (no record) are left alone.
``shutil.rmtree`` does not follow symlinks planted inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["OWNER_FILE", "private_bases", "read_owner", "record_owner", "sweep_orphans"]

#: In a private cluster directory: the absolute path of the ``AOS_HOME`` it belongs to.
OWNER_FILE = "aos-home"
_PREFIX = "aos-sync-"

log = logging.getLogger(__name__)


def private_bases() -> list[Path]:
    """Where private cluster directories are made (``/var/tmp`` first, see db.embedded)."""
    bases = [Path("/var/tmp"), Path(tempfile.gettempdir())]
    return [b for i, b in enumerate(bases) if b.is_dir() and b not in bases[:i]]


def record_owner(private: Path, home: Path) -> None:
    """Write ``private/OWNER_FILE`` (0600, ours, never through a symlink)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(private / OWNER_FILE, flags, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(home) + "\n")


def read_owner(private: Path) -> Path | None:
    """The recorded ``AOS_HOME``, or None when there is no record we wrote."""
    try:
        fd = os.open(private / OWNER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        text = fh.read().strip()
    return Path(text) if text.startswith("/") else None


def _server_running(private: Path) -> bool:
    """True when ``postmaster.pid`` names a live process (a stale file after a crash does not
    count); unsure is running."""
    pidfile = private / "data" / "postmaster.pid"
    try:
        first = pidfile.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        os.kill(int(first), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


def _orphaned_from(private: Path, server_uid: int) -> Path | None:
    """The gone ``AOS_HOME`` that ``private`` belonged to, when it is ours to remove."""
    try:
        st = os.lstat(private)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != server_uid or stat.S_IMODE(st.st_mode) != 0o700:
        return None
    owner = read_owner(private)
    if owner is None or os.path.lexists(owner) or _server_running(private):
        return None
    return owner


def sweep_orphans(server_uid: int, bases: list[Path] | None = None) -> list[Path]:
    """Remove the private cluster directories whose ``AOS_HOME`` is gone; return them."""
    removed = []
    for base in private_bases() if bases is None else bases:
        with contextlib.suppress(OSError):
            for private in sorted(base.glob(_PREFIX + "*")):
                owner = _orphaned_from(private, server_uid)
                if owner is None:
                    continue
                shutil.rmtree(private, ignore_errors=True)
                if not os.path.lexists(private):
                    log.info("removed %s: its AOS_HOME %s is gone", private, owner)
                    removed.append(private)
    return removed
