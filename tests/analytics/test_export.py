"""``aos-sync export``: the real command in a subprocess, as an analyst, to CSV and Parquet."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aos_sync.analytics import frame
from tests.analytics.seed import TODAY, World, expected

AOS_SYNC = Path(sys.executable).parent / "aos-sync"


def aos(
    world: World, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AOS_ANALYST")}
    base["AOS_DATABASE_URL"] = world.engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [str(AOS_SYNC), "--json", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
    )


def test_parquet_export_matches_the_view_with_exact_types(world: World, tmp_path: Path) -> None:
    out = tmp_path / "ads.parquet"
    done = aos(world, "export", "ad_performance_daily", "--out", str(out), "--url",
               world.url("member"), "--batch-rows", "7")  # fmt: skip
    assert done.returncode == 0, done.stderr
    want = expected(world, "ad_performance_daily", "member")
    table = pq.read_table(out)
    assert table.num_rows == len(want)
    # Streamed: one row group per batch of 7 rows.
    assert pq.ParquetFile(out).num_row_groups == -(-len(want) // 7)
    types = {f.name: f.type for f in table.schema}
    assert types["spend"] == types["conversion_value"] == pa.decimal128(38, 6)
    assert types["conversions"] == pa.decimal128(38, 12)
    assert types["day"] == pa.date32()
    assert types["impressions"] == pa.int64()
    assert types["synced_at"] == pa.timestamp("us", tz="UTC")
    assert types["is_final"] == pa.bool_()
    rows = table.to_pylist()
    assert {r["client_id"] for r in rows} == {world.a.clients[0]}

    def key(r: dict[str, Any]) -> tuple[Any, ...]:  # a campaign-level row has no ad id
        return (r["campaign_id"], r["ad_id"] or "", r["day"], r["spend"], r["is_final"])

    assert sorted(map(key, rows)) == sorted(map(key, want))
    assert not list(tmp_path.glob("*.partial"))


def test_csv_export_of_a_range_equals_the_frame(world: World, tmp_path: Path) -> None:
    since, until = TODAY - timedelta(days=4), TODAY
    out = tmp_path / "activity.csv"
    done = aos(world, "export", "client_activity_daily", "--since", since.isoformat(),
               "--until", until.isoformat(), "--out", str(out),
               env={"AOS_ANALYST_URL": world.url("owner")})  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    df = frame("client_activity_daily", since, until, url=world.url("owner"))
    assert len(rows) == len(df) > 0
    assert [r["day"] for r in rows] == [d.isoformat() for d in df["day"]]
    assert [int(r["gmail_inbound"]) for r in rows] == list(df["gmail_inbound"])
    assert rows[0]["last_activity_at"].endswith("+00:00")


def test_csv_money_and_flags_are_exact(world: World, tmp_path: Path) -> None:
    out = tmp_path / "campaigns.csv"
    login = world.logins["owner"]
    done = aos(world, "export", "campaign_performance_daily", "--format", "csv", "--out",
               str(out), "--as-analyst", login["role"],
               env={"AOS_ANALYST_PASSWORD": login["password"]})  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    want = {
        (r["campaign_id"], r["day"].isoformat()): r
        for r in expected(world, "campaign_performance_daily", "owner")
    }
    assert len(rows) == len(want)
    for row in rows:
        w = want[(row["campaign_id"], row["day"])]
        assert Decimal(row["spend"]) == w["spend"]
        assert row["is_final"] == ("true" if w["is_final"] else "false")
        assert row["client_id"] == ("" if w["client_id"] is None else str(w["client_id"]))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--since", "2026-13-01"],
            "argument --since: expected a date as YYYY-MM-DD, got '2026-13-01'",
        ),
        (
            ["--until", "yesterday"],
            "argument --until: expected a date as YYYY-MM-DD, got 'yesterday'",
        ),
        (["--format", "xlsx"], "argument --format: invalid choice: 'xlsx'"),
        (["--batch-rows", "0"], "argument --batch-rows: expected a whole number of at least 1"),
    ],
)
def test_bad_arguments_name_the_option_and_the_format(
    world: World, tmp_path: Path, args: list[str], says: str
) -> None:
    done = aos(world, "export", "ad_performance_daily", "--out", str(tmp_path / "x.csv"), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and says in done.stderr.splitlines()[0]
    assert not (tmp_path / "x.csv").exists()


def test_refusals_are_one_error_line(world: World, tmp_path: Path) -> None:
    cases = [
        (["ad_performance_daily", "--since", "2026-02-01", "--until", "2026-01-01",
          "--out", str(tmp_path / "x.csv"), "--url", world.url("owner")],
         "error: --since 2026-02-01 is after --until 2026-01-01"),
        (["ad_performance_daily", "--out", str(tmp_path / "x.txt"), "--url", world.url("owner")],
         "error: --format: expected csv or parquet"),
        (["ad_performance_daily", "--out", str(tmp_path / "x.csv"), "--url",
          world.engine.url.render_as_string(hide_password=False)],
         "is not an analyst login"),
        (["ad_performance_daily", "--out", str(tmp_path / "x.csv")], "no analyst login given"),
        (["ad_performance_daily", "--out", str(tmp_path / "nowhere" / "x.csv"), "--url",
          world.url("owner")], "error: --out"),
    ]  # fmt: skip
    for args, says in cases:
        done = aos(world, "export", *args)
        assert done.returncode == 1, (args, done.stdout)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_view_lists_the_views(world: World, tmp_path: Path) -> None:
    done = aos(world, "export", "client", "--out", str(tmp_path / "x.csv"))
    assert done.returncode == 2
    assert "argument VIEW: invalid choice: 'client'" in done.stderr
    assert "ad_performance_daily" in done.stderr


def test_a_failed_export_leaves_no_file(world: World, tmp_path: Path, monkeypatch: Any) -> None:
    from aos_sync import export as export_module
    from aos_sync.analytics import connect

    out = tmp_path / "ads.parquet"

    class Boom(RuntimeError):
        pass

    def fail(self: Any, batch: Any) -> None:
        raise Boom("disk full")

    monkeypatch.setattr(export_module._ParquetSink, "write", fail)
    with connect(world.url("owner")) as conn, pytest.raises(Boom):
        export_module.export(conn, "ad_performance_daily", out, "parquet", date(2000, 1, 1))
    assert list(tmp_path.iterdir()) == []


def test_one_type_per_column_on_every_path(world: World, tmp_path: Path) -> None:
    """``frame()``, a Parquet export read back with pandas and a CSV export read back with the
    documented converters agree value for value and type for type: days are ``date``, money
    has 6 decimal places everywhere (the seed's amounts, not a path's own rounding)."""
    import pandas as pd

    df = frame("ad_performance_daily", url=world.url("owner"))
    paths = {}
    for fmt in ("parquet", "csv"):
        paths[fmt] = tmp_path / f"ads.{fmt}"
        done = aos(world, "export", "ad_performance_daily", "--out", str(paths[fmt]), "--url",
                   world.url("owner"))  # fmt: skip
        assert done.returncode == 0, done.stderr
    parquet = pd.read_parquet(paths["parquet"])
    csv_frame = pd.read_csv(
        paths["csv"],
        dtype={"campaign_id": str, "ad_id": str},
        keep_default_na=False,  # an empty ad_id (a campaign-level row) stays ""
        converters={"day": date.fromisoformat, "spend": Decimal, "conversion_value": Decimal},
    )
    want = sorted(
        (r["campaign_id"], r["ad_id"] or "", r["day"], r["spend"])
        for r in expected(world, "ad_performance_daily", "owner")
    )
    for got in (df, parquet, csv_frame):
        assert all(type(d) is date for d in got["day"])
        for column in ("spend", "conversion_value"):
            assert {v.as_tuple().exponent for v in got[column]} == {-6}, column
        ad_ids = got["ad_id"].astype(object).where(got["ad_id"].notna(), "")
        rows = zip(got["campaign_id"], ad_ids, got["day"], got["spend"], strict=True)
        assert sorted(rows) == want
