"""Shared fixtures: one embedded PostgreSQL cluster per test session, a fresh database per module.

The cluster lives in ``.aos/test-cluster`` (``AOS_TEST_HOME``; reused between runs, fsync off)
unless ``AOS_TEST_DATABASE_URL`` names a server to use instead. Migrations run once into a template
database; each module gets ``CREATE DATABASE ... TEMPLATE`` (about 0.1 s).

Like the application, the tests connect to the embedded cluster as ``aos_app`` (no superuser):
the superuser only creates the databases, owned by ``aos_app``, so a test passes here only if
it would pass with the rights the application really has. Sessions may run side by side (the
pytest-xdist workers of ``run.py test``): the last one to finish stops the cluster when a
session of the run started it, and leaves alone a server that was already running.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from db import agencydb
from db.embedded import EmbeddedPostgres
from db.engine import make_engine
from db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
# One template per session: sessions run side by side on the shared cluster, and one session
# rebuilding a shared template would pull it from under another's CREATE DATABASE.
TEMPLATE = f"aos_test_template_{uuid.uuid4().hex[:8]}"
TEST_HOME = Path(os.environ.get("AOS_TEST_HOME") or ROOT / ".aos" / "test-cluster")
# Present while a cluster some session of the test run started is up (a server that was already
# running before the run is left running).
STARTED_BY_TESTS = TEST_HOME / ".started-by-tests"
MIGRATION_LOCK = 0x414F535F4D4947  # any fixed key: the sessions' template migrations queue on it


class Cluster:
    """Creates databases on the test server (embedded, or ``AOS_TEST_DATABASE_URL``).

    Embedded: databases are made by the superuser ``OWNER aos_app`` and every URL handed out is
    ``aos_app``'s. External: the server's own URL and role, as before."""

    def __init__(self) -> None:
        self.pg: EmbeddedPostgres | None = None
        self._sessions: int | None = None
        external = os.environ.get("AOS_TEST_DATABASE_URL")
        if external:
            self._base = sa.make_url(external).set(drivername="postgresql+psycopg")
            return
        TEST_HOME.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(TEST_HOME, durable=False)
        # Held shared for the whole session: the session that started the server stops it at
        # the end only if it can take this lock exclusively, i.e. nobody else still uses it.
        self._sessions = os.open(
            TEST_HOME / ".sessions", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        fcntl.flock(self._sessions, fcntl.LOCK_SH)
        self._base = sa.make_url(self.pg.ensure_running())
        if self.pg.started:  # a session of this run started it: the last one out stops it
            STARTED_BY_TESTS.touch(mode=0o600)

    def url(self, database: str) -> str:
        return self._base.set(database=database).render_as_string(hide_password=False)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to database ``postgres`` that may create and drop databases (the
        embedded superuser; the external URL's own role)."""
        u = sa.make_url(self.pg.superuser_url("postgres")) if self.pg else self._base
        return psycopg.connect(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password,
            dbname="postgres",
            autocommit=True,
        )

    def create(self, name: str, template: str | None = None) -> str:
        """A new (emptied if it existed) database; returns the URL the tests connect with."""
        if self.pg:
            self.pg.drop_database(name)
            return self.pg.create_database(name, template=template)
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
        """Drop the database and the analyst logins bound in it (roles are cluster-wide and
        would otherwise pile up in the reused test cluster)."""
        roles: list[str] = []
        agencies: list[str] = []
        try:
            url = self._base.set(database=name, drivername="postgresql")
            with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
                roles = [r for (r,) in conn.execute("SELECT role_name FROM analyst_binding")]
                agencies = [
                    str(d)
                    for (d,) in conn.execute(
                        "SELECT database_name FROM agency"
                        " WHERE database_name IS NOT NULL AND database_url IS NULL"
                    )
                ]
        except psycopg.Error:
            pass  # gone already, or never migrated
        with self.admin() as conn:
            for database in (*agencies, name):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
            roles += [f"{database}_all" for database in agencies]
            for role in roles:
                try:
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
                except psycopg.Error:
                    pass  # still used elsewhere: leave it, it is bound to nothing

    def close(self) -> None:
        """The last session out stops the embedded server when a session of this run started
        it; a server that was already running is left as it was."""
        if self._sessions is None or self.pg is None:
            return
        try:
            try:
                fcntl.flock(self._sessions, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another session (a parallel worker) still uses it: the last one stops it
            if STARTED_BY_TESTS.exists():
                self.pg.stop()
                STARTED_BY_TESTS.unlink(missing_ok=True)
        finally:
            os.close(self._sessions)
            self._sessions = None


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    c = Cluster()
    request.addfinalizer(c.close)
    request.addfinalizer(lambda: c.drop(TEMPLATE))
    url = c.create(TEMPLATE)
    engine = make_engine(url)
    # Sessions side by side (pytest-xdist workers) migrate their templates one at a time: the
    # migrations also create cluster-wide roles, and two CREATE ROLE of one name at the same
    # moment fail on a fresh cluster however the migration checks first.
    with c.admin() as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            upgrade(engine)
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    engine.dispose()
    return c


def _fresh(cluster: Cluster) -> Iterator[sa.Engine]:
    name = f"aos_t_{uuid.uuid4().hex[:10]}"
    engine = make_engine(cluster.create(name, template=TEMPLATE))
    try:
        yield engine
    finally:
        engine.dispose()
        agencydb.forget_all()
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


#: Folders of files that take minutes each (flow runs against the emulators, attack sweeps).
HEAVY = ("flows", "isolation")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked ``slow`` first, then the files of :data:`HEAVY` folders, each file's tests
    still together and in order: pytest-xdist (``--dist loadfile``) hands files out in
    collection order, and the minute-long files collected last (the demo, a real Prefect
    server, the isolation attacks) were a run's tail on one worker while the others idled."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        if item.path in slow:
            return 0
        return 1 if item.path.parent.name in HEAVY else 2

    items.sort(key=rank)  # stable: the order is kept within each group
