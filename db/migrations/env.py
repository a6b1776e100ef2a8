"""Alembic environment: the URL comes from the caller (``db.migrate``) or the project settings."""

from __future__ import annotations

from alembic import context

from db.engine import database_url, make_engine
from db.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
