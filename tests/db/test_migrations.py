"""Migrations and the SQLAlchemy tables describe the same databases, both ways: the control
database (``metadata``) and an agency's own (``agency_metadata``)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db import agencydb, tenancy
from db.migrate import alembic_config, upgrade
from db.schema import agency_metadata, metadata


def _agency_engine(control: sa.Engine) -> sa.Engine:
    with control.begin() as conn:
        agency_id = tenancy.create_agency(conn, "Migrations")
    return agencydb.engine_for(control, agency_id)


def test_migrated_databases_match_the_tables(fresh_engine: sa.Engine) -> None:
    with fresh_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    with _agency_engine(fresh_engine).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), agency_metadata) == []


def test_the_shared_tables_do_not_come_back(fresh_engine: sa.Engine) -> None:
    """Below revision 0021 agencies shared tables; going back there would lose the boundary."""
    url = fresh_engine.url.render_as_string(hide_password=False)
    with pytest.raises(NotImplementedError, match="do not come back"):
        command.downgrade(alembic_config(url), "0020")
    with fresh_engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "slack_messages" not in tables and "agency" in tables


def test_agency_chain_down_to_base_and_back(fresh_engine: sa.Engine) -> None:
    agency = _agency_engine(fresh_engine)
    url = agency.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url, kind="agency"), "base")
    with agency.connect() as conn:
        left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert left == set()
    command.upgrade(alembic_config(url, kind="agency"), "head")
    with agency.connect() as conn:
        assert {"slack_messages", "gmail_messages", "sync_state"} <= set(
            sa.inspect(conn).get_table_names()
        )
        partitioned = conn.execute(sa.text("SELECT count(*) FROM pg_partitioned_table")).scalar()
    assert partitioned == len([t for t in agency_metadata.tables.values() if "synced_at" in t.c])
    upgrade(fresh_engine)  # the control database at head is left alone
