"""What every command needs: the engine (migrated in embedded mode) and the vault."""

from __future__ import annotations

import functools
import os

import sqlalchemy as sa

from db.engine import get_engine
from db.migrate import upgrade

__all__ = ["engine", "embedded_mode", "vault"]


def embedded_mode() -> bool:
    return not os.environ.get("AOS_DATABASE_URL")


@functools.cache
def engine() -> sa.Engine:
    """The project database. The embedded one is migrated on first use, so commands just work;
    a configured server is migrated only by ``aos-sync db upgrade`` (deploys decide when)."""
    eng = get_engine()
    if embedded_mode():
        upgrade(eng)
    return eng


def vault():
    from db.engine import default_vault

    return default_vault()
