"""``aos-sync status``: every integration's health, and a non-zero exit an alert can use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db import schema, tenancy
from tests.test_cli import aos  # noqa: F401 - the in-process CLI fixture

NOW = datetime.now(UTC)


def _run(
    conn: sa.Connection,
    agency: int,
    iid: int,
    status: str,
    ago: timedelta,
    error: str | None = None,
) -> None:
    conn.execute(
        schema.sync_run.insert().values(
            agency_id=agency,
            integration_id=iid,
            provider="slack",
            trigger="schedule",
            principal=f"scheduler:{agency}",
            started_at=NOW - ago,
            finished_at=NOW - ago + timedelta(seconds=30),
            status=status,
            error=error,
        )
    )


def test_status_names_the_failing_and_stale_and_exits_1(aos, fresh_engine: sa.Engine) -> None:  # noqa: F811
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme")
        client = tenancy.add_client(conn, agency, "Globex")
        ok, stale, reauth, failed, off = (
            tenancy.add_integration(conn, agency, "slack", name, client_id=client)
            for name in ("ok", "stale", "reauth", "failed", "off")
        )
        _run(conn, agency, ok, "succeeded", timedelta(minutes=5))
        _run(conn, agency, stale, "succeeded", timedelta(hours=3))  # slack runs every 15 min
        _run(conn, agency, failed, "succeeded", timedelta(minutes=20))
        _run(conn, agency, failed, "failed", timedelta(minutes=2), "messages: boom")
        tenancy.set_integration_status(conn, reauth, "needs_reauth", reason="invalid_auth")
        tenancy.set_integration_status(conn, off, "disabled")
        conn.execute(schema.integration.update().values(created_at=NOW - timedelta(days=1)))

    code, out, err = aos("--json", "status")
    rows = {r["integration"]: r for r in json.loads(out)}
    assert {i: rows[i]["health"] for i in rows} == {
        ok: "ok",
        stale: "stale",
        reauth: "failing",
        failed: "failing",
        off: "ok",
    }
    assert rows[failed]["last_error"] == "messages: boom"
    assert rows[reauth]["status"] == "needs_reauth (invalid_auth)"
    assert rows[stale]["lag"] == "2 h" and rows[ok]["client"] == "Globex"
    assert code == 1 and err.splitlines() == [
        f"error: 3 integration(s) need attention (failing: [{reauth}, {failed}]; stale: [{stale}])"
    ]

    # Fixed: the failing ones disabled, the stale one synced. Now status exits 0.
    with fresh_engine.begin() as conn:
        for iid in (reauth, failed):
            tenancy.set_integration_status(conn, iid, "disabled")
        _run(conn, agency, stale, "succeeded", timedelta(minutes=1))
    code, out, err = aos("--json", "status")
    assert code == 0 and err == ""
    assert {r["health"] for r in json.loads(out)} == {"ok"}


def test_status_shows_token_expiry_and_shared_quota_use(aos, fresh_engine: sa.Engine) -> None:  # noqa: F811
    """The token expiry the vault knows, and the operations of a shared provider quota the
    integration used in the last 24 hours (older use does not count)."""
    from db.engine import default_vault

    expires = NOW + timedelta(days=5)
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme")
        ads = tenancy.add_integration(conn, agency, "google_ads", "ads")
        chat = tenancy.add_integration(conn, agency, "slack", "chat")
        default_vault().put(conn, ads, {"access_token": "t"}, expires_at=expires)
        for ago, operations in (
            (timedelta(hours=1), 7),
            (timedelta(hours=2), 5),
            (timedelta(hours=30), 100),
        ):
            conn.execute(
                schema.provider_quota_use.insert().values(
                    provider="google_ads",
                    project="client-1",
                    agency_id=agency,
                    integration_id=ads,
                    used_at=NOW - ago,
                    operations=operations,
                )
            )
    _, out, _ = aos("--json", "status")
    rows = {r["integration"]: r for r in json.loads(out)}
    assert rows[ads]["quota_24h"] == 12 and rows[chat]["quota_24h"] is None
    assert datetime.fromisoformat(rows[ads]["token_expires"]) == expires
    assert rows[chat]["token_expires"] is None


def test_status_fits_100_columns_wide_shows_all_and_errors_are_whole(
    aos,  # noqa: F811
    fresh_engine: sa.Engine,
) -> None:
    """The default table fits 100 columns whatever the error; ``--wide`` has every column;
    ``--json`` and ``--integration`` carry the whole error; ``--agency`` takes a name."""
    error = "messages: the provider answered 500 " + "with a very long explanation " * 12
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme Agency With A Long Name")
        other = tenancy.create_agency(conn, "Other")
        failed = tenancy.add_integration(conn, agency, "slack", "A Slack workspace named at length")
        tenancy.add_integration(conn, other, "slack", "theirs")
        _run(conn, agency, failed, "failed", timedelta(minutes=2), error)

    code, out, _ = aos("status", "--agency", "Acme Agency With A Long Name")
    lines = out.splitlines()
    assert code == 1 and len(lines) == 3  # the header, Acme's one integration, Slack's limit
    assert max(len(line) for line in lines) <= 100, lines
    assert "failing" in lines[1] and lines[1].endswith("...")
    assert lines[2].startswith("Slack limit: ")

    _, wide, _ = aos("status", "--wide", "--agency", str(agency))
    header = wide.splitlines()[0].split()
    assert {"last_success", "lag", "token_expires", "quota_24h", "last_error"} <= set(header)

    _, out, _ = aos("--json", "status", "--agency", "Acme Agency With A Long Name")
    assert [r["last_error"] for r in json.loads(out)] == [error]
    _, one, _ = aos("status", "--integration", "A Slack workspace named at length")
    assert error.strip() in one


def test_status_shows_the_provider_hold_of_each_integration(aos, fresh_engine: sa.Engine) -> None:  # noqa: F811
    """An integration a provider's pause or quota stop holds says so (the one ending last,
    and how many more), whether it was told or met the hold; an ended hold is not shown."""
    from db.holds import ProviderHolds

    reason = "Meta throttled campaigns (HTTP 400, code 80004/2446079)"
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme")
        told, met, chat = (
            tenancy.add_integration(conn, agency, provider, name)
            for provider, name in (("meta_ads", "told"), ("meta_ads", "met"), ("slack", "chat"))
        )
        _run(conn, agency, told, "succeeded", timedelta(minutes=5))
    first = ProviderHolds(fresh_engine, "meta_ads", agency, told)
    first.put("act_1@42", 3600, reason)
    first.put("act_2@42", 600, "shorter")
    first.put("act_3@42", 0, "over")
    ProviderHolds(fresh_engine, "meta_ads", agency, met).get("act_2@42")

    code, out, _ = aos("--json", "status")
    rows = {r["integration"]: r for r in json.loads(out)}
    assert rows[told]["hold"].startswith("act_1@42 until ")
    assert rows[told]["hold"].endswith(f" UTC (+1 more): {reason}")
    assert rows[met]["hold"].startswith("act_2@42 until ") and "shorter" in rows[met]["hold"]
    assert rows[chat]["hold"] is None
    assert code == 0 and rows[told]["health"] == "ok"  # a hold is no failure

    _, table, _ = aos("status")
    [line] = [line for line in table.splitlines() if line.split()[0] == str(told)]
    assert "held: act_1@42 until" in line and len(line) <= 100


def test_status_shows_the_limits_runs_are_paced_to(
    aos,  # noqa: F811
    fresh_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new customer's limits unless configured: the Google Ads project's Explorer access
    (2,880 operations a day, developers.google.com/google-ads/api/docs/api-policy/
    access-levels) and a non-Marketplace Slack app's tier (docs.slack.dev/apis/web-api/
    rate-limits). The table says each provider's, with the setting to change; each
    integration's own (a config tier) is in ``--json``; a wrong setting is shown, not a crash."""
    for name in ("AOS_GOOGLE_ADS_DAILY_OPERATIONS", "AOS_SLACK_TIER"):
        monkeypatch.delenv(name, raising=False)
    with fresh_engine.begin() as conn:
        agency = tenancy.create_agency(conn, "Acme")
        ads = tenancy.add_integration(conn, agency, "google_ads", "ads")
        chat = tenancy.add_integration(conn, agency, "slack", "chat")
        internal = tenancy.add_integration(conn, agency, "slack", "own", config={"tier": "tier3"})
        mail = tenancy.add_integration(conn, agency, "gmail", "mail")
    _, out, _ = aos("status")
    lines = out.splitlines()
    assert lines[-2:] == [
        "Google Ads limit: 2,880 ops/24h (Explorer; AOS_GOOGLE_ADS_DAILY_OPERATIONS)",
        "Slack limit: non_marketplace_2025: 1 req/min, 15/page (AOS_SLACK_TIER)",
    ]
    assert max(len(line) for line in lines) <= 100
    _, out, _ = aos("--json", "status")
    limits = {r["integration"]: r["limit"] for r in json.loads(out)}
    assert limits == {
        ads: "2,880 ops/24h (Explorer; AOS_GOOGLE_ADS_DAILY_OPERATIONS)",
        chat: "non_marketplace_2025: 1 req/min, 15/page (AOS_SLACK_TIER)",
        internal: "tier3: 50 req/min (config tier)",
        mail: None,
    }

    monkeypatch.setenv("AOS_GOOGLE_ADS_DAILY_OPERATIONS", "15000")
    monkeypatch.setenv("AOS_SLACK_TIER", "tier3")
    _, out, _ = aos("status")
    assert out.splitlines()[-2:] == [
        "Google Ads limit: 15,000 ops/24h (Basic; AOS_GOOGLE_ADS_DAILY_OPERATIONS)",
        "Slack limit: tier3: 50 req/min (AOS_SLACK_TIER)",
    ]
    monkeypatch.setenv("AOS_GOOGLE_ADS_DAILY_OPERATIONS", "lots")
    _, out, _ = aos("status")
    [line] = [x for x in out.splitlines() if x.startswith("Google Ads limit:")]
    assert "misconfigured: AOS_GOOGLE_ADS_DAILY_OPERATIONS='lots' is not a whole number" in line
