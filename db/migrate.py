"""Run Alembic migrations from code (``aos-sync db upgrade``, tests, the demo).

Two chains: the control database's (``migrations/versions``) and every agency database's
(``migrations/agency/versions``, see ``db/agencydb.py``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

__all__ = ["AGENCY_HEAD", "agency_head", "alembic_config", "upgrade", "upgrade_agency"]

MIGRATIONS = Path(__file__).parent / "migrations"
AGENCY_HEAD = "head"


def alembic_config(url: str | None = None, *, kind: str = "control") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    versions = MIGRATIONS / ("agency/versions" if kind == "agency" else "versions")
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(versions))
    cfg.attributes["kind"] = kind
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def agency_head() -> str:
    """The newest revision of the agency chain (what a new agency database is made at)."""
    head = ScriptDirectory.from_config(alembic_config(kind="agency")).get_current_head()
    assert head is not None
    return head


def _upgrade(conn: sa.Connection, kind: str, revision: str) -> None:
    cfg = alembic_config(kind=kind)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the control database at ``engine`` to ``revision``; an advisory lock serialises
    callers (no analyst can connect to the control database, so none can hold it)."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(727272)"))
        _upgrade(conn, "control", revision)


def upgrade_agency(conn: sa.Connection, revision: str = "head") -> None:
    """Bring an agency database to ``revision`` in the caller's transaction. The caller holds
    the agency's lock in the control database (``db/agencydb.py``): a lock taken in the agency
    database itself could be held by an analyst."""
    _upgrade(conn, "agency", revision)
