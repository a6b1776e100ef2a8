"""Two agencies of every kind of reader, seeded once per module (``world.py``), and analyst
connections opened for a test and closed after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.isolation.world import Seeded, seed_agency


@pytest.fixture(scope="module")
def agencies(engine: sa.Engine) -> dict[str, Seeded]:
    return {name: seed_agency(engine, name) for name in ("A", "B")}


@pytest.fixture
def login(agencies: dict[str, Seeded]) -> Iterator[Any]:
    """``login(agency, who)``: an autocommit connection as that analyst."""
    opened: list[psycopg.Connection[Any]] = []

    def connect(agency: str, who: str, **kw: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(agencies[agency].logins[who]["url"], autocommit=True, **kw)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
