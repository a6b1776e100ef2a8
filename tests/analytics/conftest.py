from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from tests.analytics.seed import World, build_world


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> World:
    return build_world(engine)


@pytest.fixture
def login(world: World) -> Iterator[object]:
    """``login(who)``: a psycopg connection (autocommit) as that analyst; closed after the test."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def connect(who: str) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(world.url(who), autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
