"""Shared fixtures: one embedded PostgreSQL cluster per test session, a fresh database per module.

The cluster lives in ``.aos/test-cluster`` (reused between runs, fsync off) unless
``AOS_TEST_DATABASE_URL`` names a server to use instead. Migrations run once into a template
database; each module gets ``CREATE DATABASE ... TEMPLATE`` (about 0.1 s).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "aos_test_template"


class Cluster:
    """Creates databases on the test server (embedded, or ``AOS_TEST_DATABASE_URL``)."""

    def __init__(self) -> None:
        external = os.environ.get("AOS_TEST_DATABASE_URL")
        if external:
            self._base = sa.make_url(external).set(drivername="postgresql+psycopg")
        else:
            pg = EmbeddedPostgres(ROOT / ".aos" / "test-cluster", durable=False)
            self._base = sa.make_url(pg.ensure_running())

    def url(self, database: str) -> str:
        return self._base.set(database=database).render_as_string(hide_password=False)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        u = self._base
        return psycopg.connect(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password,
            dbname="postgres",
            autocommit=True,
        )

    def create(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(stmt)
        return self.url(name)

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    c = Cluster()
    url = c.create(TEMPLATE)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return c


def _fresh(cluster: Cluster) -> Iterator[sa.Engine]:
    name = f"aos_t_{uuid.uuid4().hex[:10]}"
    engine = make_engine(cluster.create(name, template=TEMPLATE))
    try:
        yield engine
    finally:
        engine.dispose()
        cluster.drop(name)


@pytest.fixture(scope="module")
def engine(cluster: Cluster) -> Iterator[sa.Engine]:
    """A migrated database shared by the tests of one module."""
    yield from _fresh(cluster)


@pytest.fixture
def fresh_engine(cluster: Cluster) -> Iterator[sa.Engine]:
    """A migrated database of the test's own."""
    yield from _fresh(cluster)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (it takes ~15 s to start)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
