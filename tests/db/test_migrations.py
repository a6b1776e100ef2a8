"""Migrations and the SQLAlchemy tables describe the same database, both ways."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.migrate import alembic_config, upgrade
from db.schema import metadata


def test_migrated_database_matches_the_tables(fresh_engine: sa.Engine) -> None:
    with fresh_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_downgrade_to_base_and_back(fresh_engine: sa.Engine) -> None:
    url = fresh_engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "base")
    with fresh_engine.connect() as conn:
        left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert left == set()
    upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        assert {"slack_messages", "gmail_messages", "sync_state"} <= set(
            sa.inspect(conn).get_table_names()
        )
        rls = conn.execute(sa.text("SELECT count(*) FROM pg_class WHERE relrowsecurity")).scalar()
    assert rls >= 8
