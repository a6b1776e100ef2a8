"""Where the database is: ``AOS_DATABASE_URL``, or the project's own embedded PostgreSQL."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import sqlalchemy as sa

from db.embedded import EmbeddedPostgres

__all__ = [
    "agency_engine",
    "aos_home",
    "database_url",
    "default_vault",
    "embedded",
    "get_engine",
    "make_engine",
]


def aos_home() -> Path:
    """The project's local state folder (embedded cluster, development key).

    ``AOS_HOME`` when set; else ``.aos`` in the checkout the code runs from, whatever the
    current directory (a command run from another folder must find the same database, not
    quietly start an empty one); for an installed (non-checkout) package,
    ``$XDG_DATA_HOME/aos-sync`` (``~/.local/share/aos-sync``)."""
    if env := os.environ.get("AOS_HOME"):
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".aos"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "aos-sync"


def embedded() -> EmbeddedPostgres:
    return EmbeddedPostgres(aos_home())


def database_url() -> str:
    """``AOS_DATABASE_URL`` when set; otherwise start (or reuse) the embedded server."""
    url = os.environ.get("AOS_DATABASE_URL")
    if url:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return embedded().ensure_running()


def make_engine(url: str, **kw: object) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True, future=True, **kw)  # type: ignore[arg-type]


@functools.cache
def get_engine() -> sa.Engine:
    return make_engine(database_url())


def agency_engine(agency_id: int) -> sa.Engine:
    """An engine on the agency's own database (``db/agencydb.py``), made on first use."""
    from db.agencydb import engine_for

    return engine_for(get_engine(), agency_id)


def default_vault():
    """The credential vault with keys from ``AOS_ENCRYPTION_KEY``; in embedded (demo) mode a
    local development key in ``AOS_HOME`` is used when the variable is unset."""
    from db.vault import Keyring, Vault

    home = None if os.environ.get("AOS_DATABASE_URL") else aos_home()
    return Vault(Keyring.from_env(os.environ, home=home))
