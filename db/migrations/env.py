"""Alembic environment: the URL comes from the caller (``db.migrate``) or the project settings.

One environment serves both kinds of database: the control database (``versions/``) and each
agency's own (``agency/versions/``, chosen by ``db.migrate`` through ``version_locations``)."""

from __future__ import annotations

from alembic import context

from db.engine import database_url, make_engine
from db.schema import agency_metadata, metadata

config = context.config
target = agency_metadata if config.attributes.get("kind") == "agency" else metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
