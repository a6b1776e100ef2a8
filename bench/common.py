"""Shared pieces of the benchmarks: a scratch database, bench tables, deterministic rows.

The rows are shaped like ``slack_messages`` plus a ``text[]`` column (mentions) and a bigint
(``reply_users``), generated lazily from the row number, so every contender loads exactly the
same data without any of them holding it in memory.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from db import schema
from db.engine import embedded, make_engine
from db.migrate import upgrade

__all__ = [
    "BENCH_DB",
    "BenchPage",
    "bench_engine",
    "bench_table",
    "make_tenant_rows",
    "message_rows",
    "pages",
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


def bench_engine() -> sa.Engine:
    """``AOS_DATABASE_URL`` if set, else a scratch database on the embedded cluster; migrated."""
    url = os.environ.get("AOS_DATABASE_URL")
    if url:
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    else:
        pg = embedded()
        pg.ensure_running()
        url = pg.create_database(BENCH_DB, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    return engine


def bench_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """A provider-style table (tenant columns, PK integration_id + natural key, FK)."""
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "integration_id",
            sa.BigInteger,
            sa.ForeignKey(schema.integration.c.id, ondelete="CASCADE"),
            primary_key=True,
        ),  # fmt: skip
        sa.Column("channel_id", sa.Text, primary_key=True),
        sa.Column("ts", sa.Text, primary_key=True),
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
