"""The main job, reduced: ``aos-sync demo --size tiny``, twice, against a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from cli import context
from cli.demo import DEMO_AGENCIES, run_demo
from db import engine as db_engine


def test_demo_twice(
    tmp_path: Path,
    fresh_engine: sa.Engine,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AOS_HOME", str(tmp_path))
    monkeypatch.setenv("AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ENCRYPTION_KEY", "demo:" + "B" * 43 + "=")
    for var in ("AOS_SLACK_API_URL", "AOS_GMAIL_API_URL", "AOS_GOOGLE_TOKEN_URL"):
        monkeypatch.delenv(var, raising=False)
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()
    try:
        first = run_demo("tiny")
        out = capsys.readouterr().out
        with fresh_engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.text(
                        "SELECT a.name, count(m.*) FROM agency a JOIN slack_messages m ON m.agency_id = a.id "
                        "GROUP BY a.name"
                    )
                ).all()
            )
            roles = conn.execute(sa.text("SELECT count(*) FROM user_role")).scalar()
        second = run_demo("tiny")
        out2 = capsys.readouterr().out
        with fresh_engine.connect() as conn:
            runs = conn.execute(
                sa.text("SELECT status, count(*) FROM sync_run GROUP BY status")
            ).all()
            inserted_second = conn.execute(
                sa.text(
                    "SELECT sum((streams->'messages'->>'inserted')::int) FROM sync_run "
                    "WHERE id > (SELECT max(id) - 6 FROM sync_run)"
                )
            ).scalar()
            recount = dict(
                conn.execute(
                    sa.text(
                        "SELECT a.name, count(m.*) FROM agency a JOIN slack_messages m ON m.agency_id = a.id "
                        "GROUP BY a.name"
                    )
                ).all()
            )
    finally:
        db_engine.get_engine.cache_clear()
        context.engine.cache_clear()

    assert first == {**first, "integrations": 6, "failed": 0}
    assert second["integrations"] == 6 and second["failed"] == 0
    assert set(counts) == {name for name, _, _ in DEMO_AGENCIES} and min(counts.values()) > 100
    assert roles == 8
    assert runs == [("succeeded", 12)]
    assert inserted_second == 0 and recount == counts  # the second run is incremental
    for text in (out, out2):
        assert "Synced 6 integrations, 0 failed" in text
        assert "Northwind Agency (agency" in text and "slack_messages" in text
        assert "psql" in text and "Prefect UI on these runs" in text
    # The analyst login's password is the same on both runs: the first psql line still works.
    passwords = {t.split("PGPASSWORD=")[1].split()[0] for t in (out, out2)}
    assert len(passwords) == 1
    # The analyst example shows only the member's granted client.
    analyst_block = out.split("An analyst query")[1].split("==> Next")[0]
    assert "Contoso" in analyst_block and "Fabrikam" not in analyst_block
