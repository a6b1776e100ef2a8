"""What every command needs: the engine (migrated in embedded mode) and the vault."""

from __future__ import annotations

import argparse
import functools
import os

import sqlalchemy as sa

from db.engine import get_engine
from db.migrate import upgrade

__all__ = [
    "embedded_mode",
    "engine",
    "integration_ref",
    "resolve_agency",
    "resolve_integration",
    "vault",
]


def embedded_mode() -> bool:
    return not os.environ.get("AOS_DATABASE_URL")


@functools.cache
def engine() -> sa.Engine:
    """The project database. The embedded one is migrated on first use, so commands just work;
    a configured server is migrated only by ``aos-sync db upgrade`` (deploys decide when)."""
    eng = get_engine()
    if embedded_mode():
        with eng.connect() as conn:
            shared = conn.execute(sa.text("SELECT to_regclass('public.sync_state')")).scalar()
        if shared:  # an installation of the shared layout: move its rows first
            from db.relayout import upgrade_installation

            upgrade_installation(eng)
        else:
            upgrade(eng)
    return eng


def vault():
    from db.engine import default_vault

    return default_vault()


def integration_ref(text: str) -> int | str:
    """An argparse type for ``--integration``: an id, or an integration's name."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected an integration id or name, got ''")
    return int(text) if text.isdigit() else text


def resolve_integration(ref: int | str) -> int:
    """The id ``ref`` names: an id as is, a name when exactly one integration has it."""
    if isinstance(ref, int):
        return ref
    from cli.output import CliError
    from db.schema import integration

    with engine().connect() as conn:
        ids = conn.scalars(
            sa.select(integration.c.id).where(integration.c.name == ref).order_by(integration.c.id)
        ).all()
    if not ids:
        raise CliError(f"no integration named {ref!r} (see `aos-sync integration list`)")
    if len(ids) > 1:
        raise CliError(
            f"{len(ids)} integrations are named {ref!r} (ids {', '.join(map(str, ids))}): "
            "pass the id"
        )
    return int(ids[0])


def resolve_agency(ref: str | None) -> int | None:
    """The id of the agency ``--agency`` names (its id or its name, like every command that
    takes one); ``None`` for none."""
    if ref is None:
        return None
    from db.tenancy import find_agency

    with engine().connect() as conn:
        return int(find_agency(conn, ref).id)
