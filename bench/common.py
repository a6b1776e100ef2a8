"""Shared pieces of the benchmarks: a scratch database, bench tables, deterministic rows.

The rows are shaped like ``slack_messages`` plus a ``text[]`` column (mentions) and a bigint
(``reply_users``), generated lazily from the row number, so every contender loads exactly the
same data without any of them holding it in memory.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from db import schema
from db.engine import embedded, make_engine
from db.migrate import upgrade

__all__ = [
    "BENCH_DB",
    "checkpoint",
    "holds_written",
    "BenchPage",
    "ChildSandbox",
    "bench_engine",
    "agency_database",
    "bench_integration",
    "bench_table",
    "make_tenant_rows",
    "message_rows",
    "pages",
    "use_database",
]

BENCH_DB = "aos_bench"
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_TEXTS = [
    "Shipping the Q3 campaign report today, numbers attached.",
    "Can someone review the new ad creatives before 5pm?",
    "Client asked for a weekly summary of spend by channel :chart_with_upwards_trend:",
    "ok",
    "Reminder: standup moved to 10:30 tomorrow. " * 3,
]
_REACTIONS = [None, [{"name": "thumbsup", "count": 2, "users": ["U0001", "U0002"]}]]
_FILES = [None, None, None, [{"id": "F01", "name": "report.pdf", "mimetype": "application/pdf",
                              "size": 48213}]]  # fmt: skip


def bench_engine(database: str = BENCH_DB) -> sa.Engine:
    """``AOS_DATABASE_URL`` if set, else a scratch ``database`` on the embedded cluster (the
    server stays up: ``aos-sync db stop``); migrated."""
    url = os.environ.get("AOS_DATABASE_URL")
    if url:
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    else:
        pg = embedded()
        pg.ensure_running()
        url = pg.create_database(database, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    return engine


def checkpoint(engine: sa.Engine) -> None:
    """``CHECKPOINT`` (no dirty buffers left for the next timing to flush). It needs the
    superuser, which the application role is not: the embedded cluster's is used, and on a
    configured server without that right the checkpoint is left to the server."""
    url = None if os.environ.get("AOS_DATABASE_URL") else embedded().superuser_url(BENCH_DB)
    admin = make_engine(url) if url else engine
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CHECKPOINT"))
    except sa.exc.ProgrammingError:
        pass  # no pg_checkpoint right on a configured server
    finally:
        if admin is not engine:
            admin.dispose()


def bench_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """A provider-style table (tenant columns, PK agency + integration + natural key, FK)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("integration_id", sa.BigInteger, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("agency_id", sa.BigInteger, nullable=False),
        sa.Column("client_id", sa.BigInteger),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Text),
        sa.Column("bot_id", sa.Text),
        sa.Column("subtype", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("thread_ts", sa.Text),
        sa.Column("is_reply", sa.Boolean, nullable=False),
        sa.Column("reply_count", sa.Integer, nullable=False),
        sa.Column("reply_users", sa.BigInteger),
        sa.Column("latest_reply", sa.Text),
        sa.Column("edited_ts", sa.Text),
        sa.Column("reactions", JSONB),
        sa.Column("files", JSONB),
        sa.Column("mentions", ARRAY(sa.Text)),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),  # fmt: skip
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("agency_id", "integration_id", "channel_id", "ts"),
        sa.ForeignKeyConstraint(
            ["agency_id", "integration_id"],
            [schema.integration.c.agency_id, schema.integration.c.id],
            ondelete="CASCADE",
        ),
    )


def make_tenant_rows(engine: sa.Engine) -> tuple[int, int]:
    """(agency_id, integration_id) of the bench tenant, created once."""
    with engine.begin() as conn:
        agency = conn.execute(
            sa.text(
                "INSERT INTO agency (name) VALUES ('bench') ON CONFLICT (name) DO UPDATE "
                "SET name = EXCLUDED.name RETURNING id"
            )  # fmt: skip
        ).scalar_one()
        integration = conn.execute(
            sa.text(
                "INSERT INTO integration (agency_id, provider, name) VALUES (:a, 'slack', "
                "'bench') ON CONFLICT (agency_id, name) DO UPDATE SET name = EXCLUDED.name "
                "RETURNING id"
            ),  # fmt: skip
            {"a": agency},
        ).scalar_one()
    return agency, integration


def message_rows(n: int) -> Iterator[dict[str, Any]]:
    """``n`` Slack-message-shaped records; row ``i`` is always the same."""
    channels = [f"C{c:08d}" for c in range(50)]
    users = [f"U{u:05d}" for u in range(500)]
    second = dt.timedelta(seconds=1)
    for i in range(n):
        posted = _EPOCH + i * second
        ts = f"{1704067200 + i}.{i % 1_000_000:06d}"
        reply = i % 7 == 3
        yield {
            "channel_id": channels[i % 50],
            "ts": ts,
            "posted_at": posted,
            "user_id": users[i % 500],
            "bot_id": None,
            "subtype": None if i % 11 else "bot_message",
            "text": _TEXTS[i % 5],
            "thread_ts": ts if reply else None,
            "is_reply": reply,
            "reply_count": i % 4,
            "reply_users": i % 13,
            "latest_reply": None,
            "edited_ts": None,
            "reactions": _REACTIONS[i % 2],
            "files": _FILES[i % 4],
            "mentions": [users[(i * 7) % 500], users[(i * 11) % 500]] if i % 3 == 0 else [],
        }


@dataclass
class BenchPage:
    """Same attributes as ``connectors.common.Page`` (the loader only needs these)."""

    stream: str
    records: list[dict[str, Any]]
    partition: str = ""
    state: dict[str, Any] | None = None
    deleted_keys: list[tuple[Any, ...]] = field(default_factory=list)
    reconcile: None = None


def pages(n: int, page_size: int = 1000) -> Iterator[BenchPage]:
    """The rows of :func:`message_rows` in pages, each with a cursor, built one at a time."""
    rows = message_rows(n)
    done = 0
    while done < n:
        size = min(page_size, n - done)
        records = [next(rows) for _ in range(size)]
        done += size
        yield BenchPage("messages", records, state={"rows": done})


# -- end-to-end benches: a sandbox in its own process, a fresh integration per run ------------


def _sandbox_main(
    conn: Connection,
    providers: tuple[str, ...],
    seed: int,
    time_scale: float,
    setup: Callable[..., Any],
    kwargs: dict[str, Any],
) -> None:
    """The child: start the emulators, seed them with ``setup(sb, **kwargs)``, hand back the
    environment and whatever ``setup`` returned, then answer request counts until told to stop."""
    from sandbox import Sandbox

    with Sandbox(providers=providers, seed=seed, time_scale=time_scale) as sb:
        conn.send((sb.env, setup(sb, **kwargs)))
        while True:
            command = conn.recv()
            if command == "counts":
                counts: dict[str, int] = {}
                for entry in sb.log:
                    counts[entry.method] = counts.get(entry.method, 0) + 1
                conn.send(counts)
            elif isinstance(command, tuple) and command[0] == "call":
                function, call_kwargs = command[1], command[2]
                conn.send(function(sb, **call_kwargs))
            else:
                return


class ChildSandbox:
    """A :class:`sandbox.Sandbox` running in a spawned process, so that the peak RSS of the
    process that syncs is its own (the emulators hold the request log and render every
    response). ``setup`` must be a module-level function (it is pickled)."""

    def __init__(
        self,
        providers: tuple[str, ...],
        setup: Callable[..., Any],
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_sandbox_main,
            args=(child, providers, seed, time_scale, setup, kwargs),
            daemon=True,
        )
        self.env: dict[str, str] = {}
        self.info: Any = None

    def __enter__(self) -> ChildSandbox:
        self._process.start()
        if not self._conn.poll(600):
            raise RuntimeError("the sandbox process did not start within 600 s")
        self.env, self.info = self._conn.recv()
        return self

    def call(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        """``function(sandbox, **kwargs)`` in the sandbox process (a mutation between two
        runs, say); ``function`` must be module-level (it is pickled)."""
        self._conn.send(("call", function, kwargs))
        return self._conn.recv()

    def request_counts(self) -> dict[str, int]:
        """Requests the emulators logged so far, by API method (batch parts count each)."""
        self._conn.send("counts")
        counts: dict[str, int] = self._conn.recv()
        return counts

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def use_database(engine: sa.Engine) -> dict[str, str]:
    """Point this process's ``get_engine()`` and vault at ``engine``'s database (with a
    throwaway encryption key unless one is set); returns the variables, for subprocesses."""
    from db.engine import get_engine
    from db.vault import Keyring

    os.environ["AOS_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    os.environ.setdefault("AOS_ENCRYPTION_KEY", Keyring.generate_key("bench"))
    get_engine.cache_clear()
    return {k: os.environ[k] for k in ("AOS_DATABASE_URL", "AOS_ENCRYPTION_KEY")}


def bench_integration(
    engine: sa.Engine,
    provider: str,
    *,
    credentials: dict[str, Any],
    config: dict[str, Any],
    external_account_id: str | None = None,
) -> int:
    """A new integration of the ``bench`` agency, its earlier ones (and their rows) dropped,
    so each run starts with empty tables and no cursor."""
    from db import tenancy
    from db.engine import default_vault

    with engine.begin() as conn:
        agency = conn.execute(
            sa.text(
                "INSERT INTO agency (name) VALUES ('bench') ON CONFLICT (name) DO UPDATE "
                "SET name = EXCLUDED.name RETURNING id"
            )  # fmt: skip
        ).scalar_one()
        old = conn.scalars(
            sa.delete(schema.integration)
            .where(
                schema.integration.c.agency_id == agency,
                schema.integration.c.provider == provider,
                schema.integration.c.name.like("bench-e2e-%"),
            )
            .returning(schema.integration.c.id)
        ).all()
        integration_id = tenancy.add_integration(
            conn,
            agency,
            provider,
            f"bench-e2e-{provider}-{uuid.uuid4().hex[:8]}",
            external_account_id=external_account_id,
            config=config,
        )
        default_vault().put(conn, integration_id, credentials)
    # The dropped integrations' rows go with their partitions of the agency's database.
    from db import agencydb, readers

    data = agencydb.engine_for(engine, agency)
    with data.begin() as conn:
        for gone in old:
            agencydb.drop_partitions(conn, gone)
    readers.refresh(engine, agency)
    with data.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE)"))
    return integration_id


def agency_database(engine: sa.Engine, agency: int, integration: int) -> sa.Engine:
    """The bench agency's own database, with its copy of the integration (what the bench
    tables' foreign key refers to there)."""
    from db import readers

    return readers.attach(engine, agency, integration, [])


def holds_written(engine: sa.Engine, integration_id: int) -> int:
    """Pauses and quota stops the integration's runs wrote (``provider_hold`` rows): none on
    an account or project the provider did not throttle."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM provider_hold WHERE integration_id = :i"),
                {"i": integration_id},
            ).scalar()
            or 0
        )
