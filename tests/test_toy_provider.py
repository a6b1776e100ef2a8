"""A provider is one package plus one registry entry: a toy provider (its own tiny emulator, one
stream, one table) is added here through the registry alone and synced end to end under Prefect
through the same flow machinery, command-line choices and sandbox as Slack and Gmail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors import registry
from db import agencydb, schema, tenancy
from db import engine as db_engine
from sandbox import Sandbox
from tests.flows.conftest import TEST_KEY

TOY = registry.ProviderEntry(
    name="toy",
    title="Toy",
    streams=("items",),
    windowed=(),
    reader="tests.toy.connector:build_reader",
    emulator="tests.toy.emulator:ToyEmulator",
    schedule="0 * * * *",
    settings=(registry.Setting("AOS_TOY_API_URL", "https://toy.invalid/v1/", "Toy API"),),
)


@pytest.fixture
def toy() -> Iterator[sa.Table]:
    """The provider's parts outside the registry: its table (declared like every provider
    table; made in the agency's database below, as its migration would) and its registry
    entry."""
    table = schema.provider_table(
        "toy_items", [sa.Column("item_id", sa.Text)], sa.Column("title", sa.Text, nullable=False)
    )
    try:
        registry.register(TOY)
        yield table
    finally:
        registry.unregister("toy")
        schema.agency_metadata.remove(table)


def test_a_toy_provider_syncs_end_to_end(
    toy: sa.Table,
    fresh_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    prefect_harness: None,
) -> None:
    from cli.main import build_parser
    from flows import flow_for, sync_all

    with Sandbox(providers=("toy",), seed=3) as sb:
        for k, v in sb.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv(
            "AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False)
        )
        monkeypatch.setenv("AOS_ENCRYPTION_KEY", TEST_KEY)
        db_engine.get_engine.cache_clear()
        emulator = sb.emulators["toy"]
        with fresh_engine.begin() as conn:
            agency = tenancy.create_agency(conn, "Toyland")
            tenancy.add_user(conn, agency, "owner@toy.test", "owner")
            iid = tenancy.add_integration(conn, agency, "toy", "toy account")
            db_engine.default_vault().put(conn, iid, {"access_token": emulator.token})
        data = agencydb.engine_for(fresh_engine, agency)
        with data.begin() as conn:
            toy.create(conn)

        result = flow_for("toy")(integration_id=iid, requested_by="owner@toy.test")
        assert result["status"] == "succeeded"
        with data.connect() as conn:
            stored = dict(
                conn.execute(
                    sa.select(toy.c.item_id, toy.c.title).where(toy.c.deleted_at.is_(None))
                ).all()
            )
        assert stored == emulator.items  # the emulator's truth, as it serves it

        # Upstream changes; the scheduled dispatcher picks the provider up from the registry.
        del emulator.items["item-3"]
        emulator.items["item-9"] = "new"
        outcomes = sync_all(provider="toy")
        assert [o["outcome"] for o in outcomes] == ["succeeded"]
        with data.connect() as conn:
            live = dict(
                conn.execute(
                    sa.select(toy.c.item_id, toy.c.title).where(toy.c.deleted_at.is_(None))
                ).all()
            )
        assert live == emulator.items
        # The command line offers it too (argparse would exit on an unknown provider).
        args = build_parser().parse_args(
            ["sync", "toy", "--integration", str(iid), "--as", "owner@toy.test"]
        )
        assert args.provider == "toy"
    db_engine.get_engine.cache_clear()
