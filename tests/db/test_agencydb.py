"""An agency's database under concurrent first syncs: integrations of one agency starting
together each get their partitions, with no catalog race between them."""

from __future__ import annotations

import sqlalchemy as sa

from connectors import registry
from db import readers, tenancy
from db.schema import agency_metadata
from tests.flows.conftest import at_once


def test_integrations_starting_together_all_get_their_partitions(fresh_engine: sa.Engine) -> None:
    """Eight integrations (two per provider) of a new agency attach at the same moment, each to
    every provider table: before the agency's DDL was serialised (``agencydb.ddl_lock``), a
    thread still migrating the new database GRANTed on parent tables while another ATTACHed
    partitions to them, and one failed with "tuple concurrently updated" (seen in the demo)."""
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Together")
        ids = [
            tenancy.add_integration(conn, agency, provider, f"{provider}-{n}")
            for provider in registry.names()
            for n in (1, 2)
        ]
    tables = sorted(t.name for t in agency_metadata.tables.values() if "synced_at" in t.c)
    outcomes = at_once(
        lambda slot: readers.attach(fresh_engine, agency, ids[slot], tables), count=len(ids)
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    data = readers.attach(fresh_engine, agency, ids[0], tables)
    with data.connect() as conn:
        attached = {
            (parent, child)
            for parent, child in conn.execute(
                sa.text(
                    "SELECT p.relname, c.relname FROM pg_inherits i"
                    " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE c.relkind IN ('r', 'p')"
                )
            )
        }
    assert {(t, f"{t}_i{iid}") for t in tables for iid in ids} <= attached
