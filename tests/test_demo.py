"""The main job, reduced: ``aos-sync demo --size tiny``, twice, against a fresh database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli import context
from cli.demo import DEMO_AGENCIES, run_demo
from db import engine as db_engine

ROOT = Path(__file__).resolve().parent.parent

# The whole demo twice, then the quick start with its own local Prefect server: minutes.
pytestmark = pytest.mark.slow


def quick_start_commands() -> str:
    """The README's quick start, exactly as written (its first bash block)."""
    text = (ROOT / "README.md").read_text()
    return text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def run_quick_start(engine: sa.Engine) -> str:
    """Run the quick start in bash from the checkout, stopping at the first failing command;
    return its output. Its sandbox, and the local Prefect server its `aos-sync sync` started in
    AOS_HOME, are stopped even when a command fails."""
    aos = str(Path(sys.executable).parent / "aos-sync")
    try:
        done = subprocess.run(
            ["bash", "-e", "-c", quick_start_commands()],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        subprocess.run([aos, "sandbox", "stop"], capture_output=True, timeout=60, check=False)
        stopped = subprocess.run(
            [aos, "--json", "db", "stop"], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["prefect_stopped"]  # the quick start's sync started it
    from db import agencydb

    with engine.connect() as conn:
        agency_id, integration_id = conn.execute(
            sa.text("SELECT agency_id, id FROM integration WHERE name = 'Acme Globex Slack'")
        ).one()
    with agencydb.engine_for(engine, agency_id).connect() as conn:
        loaded = conn.execute(
            sa.text("SELECT count(*) FROM slack_messages WHERE integration_id = :i"),
            {"i": integration_id},
        ).scalar()
    assert loaded, "the quick start's sync loaded nothing"
    # The backfill read rows of its window (the sandbox's recent days, not an empty month).
    fetched = [
        int(line.split()[1])
        for line in done.stdout.splitlines()
        if line.startswith("messages@") and len(line.split()) > 1
    ]
    assert fetched and sum(fetched) > 0, done.stdout[-3000:]
    # The export wrote a file pandas reads back with the documented types.
    import pandas as pd

    out = ROOT / "activity.parquet"
    try:
        activity = pd.read_parquet(out)
    finally:
        out.unlink(missing_ok=True)
    assert 0 < int(activity["slack_messages"].sum()) <= loaded
    assert all(type(d) is date for d in activity["day"])
    assert str(activity["last_activity_at"].dtype).startswith("datetime64") and str(
        activity["last_activity_at"].dtype
    ).endswith("UTC]")
    return done.stdout + done.stderr


def _rows_per_agency_and_provider(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Live rows per (agency, provider), each agency's from its own database."""
    from cli.demo import _provider_tables
    from db import agencydb

    counts: dict[tuple[str, str], int] = {}
    with engine.connect() as conn:
        agencies = conn.execute(sa.text("SELECT id, name FROM agency ORDER BY id")).all()
    for agency_id, agency in agencies:
        with agencydb.engine_for(engine, agency_id).connect() as conn:
            for provider, tables in _provider_tables().items():
                for table in tables:
                    n = conn.execute(
                        sa.text(f"SELECT count(*) FROM {table} WHERE deleted_at IS NULL")  # noqa: S608
                    ).scalar_one()
                    if n:
                        counts[(agency, provider)] = counts.get((agency, provider), 0) + n
    return counts


def test_demo_twice(
    tmp_path: Path,
    fresh_engine: sa.Engine,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every provider for both agencies; the second run is incremental; then the README's
    quick start, as written, against the same database."""
    from connectors import registry

    monkeypatch.setenv("AOS_HOME", str(tmp_path))
    monkeypatch.setenv("AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ENCRYPTION_KEY", "demo:" + "B" * 43 + "=")
    for name in registry.names():
        for setting in registry.get(name).settings:
            monkeypatch.delenv(setting.env, raising=False)
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()
    try:
        first = run_demo("tiny")
        out, progress = capsys.readouterr()
        counts = _rows_per_agency_and_provider(fresh_engine)
        with fresh_engine.connect() as conn:
            roles = conn.execute(sa.text("SELECT count(*) FROM user_role")).scalar()
            first_run = conn.execute(sa.text("SELECT max(id) FROM sync_run")).scalar()
        second = run_demo("tiny")
        out2 = capsys.readouterr().out
        with fresh_engine.connect() as conn:
            runs = conn.execute(
                sa.text("SELECT status, count(*) FROM sync_run GROUP BY status")
            ).all()
            inserted_second = conn.execute(
                sa.text(
                    "SELECT coalesce(sum((s.value->>'inserted')::int), 0) FROM sync_run r, "
                    "jsonb_each(r.streams) AS s WHERE r.id > :first"
                ),
                {"first": first_run},
            ).scalar()
        recount = _rows_per_agency_and_provider(fresh_engine)
        # After the demo, the README's quick start works as written (no hard-coded ids).
        quick = run_quick_start(fresh_engine)
    finally:
        db_engine.get_engine.cache_clear()
        context.engine.cache_clear()

    n = first["integrations"]
    assert n == 16 and first["failed"] == 0 and second == {**second, "integrations": n, "failed": 0}
    agencies = {name for name, _, _ in DEMO_AGENCIES}
    assert {(a, p) for (a, p), rows in counts.items() if rows} == {
        (a, p) for a in agencies for p in registry.names()
    }, counts
    assert roles == 8
    assert runs == [("succeeded", 2 * n)]
    assert inserted_second == 0 and recount == counts  # the second run is incremental
    # Quiet: Prefect's task chatter stays in the UI and the log file (AOS_HOME/logs).
    printed = (out + progress).splitlines()
    assert len(printed) <= 60, "\n".join(printed)
    assert not [line for line in printed if "Finished in state" in line or "elemetry" in line]
    assert sum(1 for line in printed if line.startswith("[")) == n  # one line per integration
    assert "Finished in state Completed()" in (tmp_path / "logs" / "aos-sync.log").read_text()
    for text in (out, out2):
        assert f"Synced {n} integrations, 0 failed" in text
        assert "Northwind Agency (agency" in text and "google_ads_ad_daily" in text
        assert "psql" in text and "Prefect UI on these runs" in text
    # The analyst login's password is the same on both runs: the first psql line still works.
    passwords = {t.split("PGPASSWORD=")[1].split()[0] for t in (out, out2)}
    assert len(passwords) == 1
    # Both analyst queries ran as the member and show only the member's granted client.
    analyst_block = out.split("==> Analyst queries")[1].split("==> Next")[0]
    assert "FROM ad_performance_daily" in analyst_block
    assert "FROM client_activity_daily" in analyst_block
    assert "google_ads" in analyst_block and "meta_ads" in analyst_block
    assert "Fabrikam" in analyst_block and "Contoso" not in analyst_block
    assert "Acme Globex Slack" in quick and "stopped  True" in quick
