"""``GoogleAdsConnector`` against the emulator (real gRPC + TLS, the real google-ads client),
without Prefect or a database: discovery, the quota stop and what a refusal leaves unclaimed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from connectors.common import Page, Secret
from connectors.google_ads import GoogleAdsConfig, GoogleAdsConnector
from sandbox import Sandbox
from sandbox.google_ads import SEARCH_STREAM, AdsAccount, GoogleAdsEmulator


class Running:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.ads: GoogleAdsEmulator = sb.google_ads
        self.manager: AdsAccount = self.ads.populate("small")
        self.token = Secret(
            self.ads.credentials(self.ads.logins["ads@acme-agency.test"])["access_token"]
        )

    def connector(self, budget: Any = None, holds: Any = None, **config: Any) -> GoogleAdsConnector:
        return GoogleAdsConnector(self.token, GoogleAdsConfig(**config), budget=budget, holds=holds)


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    with Sandbox(providers=("google_ads",), seed=17, time_scale=10) as sb:
        for key, value in sb.env.items():
            monkeypatch.setenv(key, value)
        yield Running(sb)


def read_all(connector: GoogleAdsConnector, stream: str) -> list[Page]:
    return list(connector.read(stream, {}))


class Allowance:
    """A budget that allows ``n`` operations, then says no (as the database ledger does)."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.used = 0

    def reserve(self, operations: int = 1) -> bool:
        if self.left < operations:
            return False
        self.left -= operations
        self.used += operations
        return True

    def status(self) -> Mapping[str, int]:
        return {"operations_used": self.used, "operations_left": self.left}


def test_a_manager_that_does_not_answer_claims_no_account_gone(running: Running) -> None:
    sub = next(a for a in running.manager.children if a.manager)
    running.sb.faults.add(
        "google_ads",
        kind="500",
        method=SEARCH_STREAM,
        times=20,
        match={"customer_id": str(sub.id)},
    )
    connector = running.connector(retry_backoff=0.01)
    pages = read_all(connector, "customers")
    found = {r["customer_id"] for p in pages for r in p.records}
    assert sub.id in found  # listed by its parent
    assert not any(c.id in found for c in sub.children)  # its own listing failed
    assert all(p.reconcile is None for p in pages)  # so nothing is claimed gone
    assert any(str(sub.id) in w for w in connector.stats.warnings)

    running.sb.faults.clear()
    pages = read_all(running.connector(), "customers")
    assert pages[-1].reconcile is not None
    assert {k[0] for k in pages[-1].reconcile.alive_keys} == {
        a.id for a, _ in running.manager.descendants()
    }


def test_a_spent_share_stops_cleanly_and_claims_nothing(running: Running) -> None:
    allowance = Allowance(4)  # the account listing, two manager listings, one more query
    connector = running.connector(budget=allowance)
    customers = read_all(connector, "customers")
    assert customers[-1].reconcile is not None
    campaigns = read_all(connector, "campaigns")
    assert sum(len(p.records) for p in campaigns) > 0
    assert all(p.reconcile is None or p.reconcile.where for p in campaigns)
    claimed = {p.reconcile.where["customer_id"] for p in campaigns if p.reconcile}
    assert len(claimed) == 1  # the one account whose listing completed
    assert any("share" in w and "next run resumes" in w for w in connector.stats.warnings)
    # Every later stream of this reader ends at once, without a query.
    before = len(running.sb.log)
    assert read_all(connector, "ad_daily") == []
    assert len(running.sb.log) == before
    assert allowance.status() == {"operations_used": 4, "operations_left": 0}
    assert connector.quota_status() == allowance.status()


def test_the_daily_quota_holds_the_project_for_every_reader_sharing_the_holds(
    running: Running,
) -> None:
    """Google's daily-quota refusal holds the OAuth client's project for its retry delay
    (``connectors.kit.holds``): a second reader given the same holds -- the next stream of
    a run, a later run, another integration -- sends no query, while a reader of its own
    holds asks once and is refused (as the database's holds make every worker do)."""
    from connectors.kit.holds import PROJECT, LocalHolds

    shared = LocalHolds()
    running.ads.daily_operations = 5
    first = running.connector(holds=shared)
    assert read_all(first, "customers")
    assert read_all(first, "campaigns") is not None
    held = shared.get(PROJECT)
    assert held is not None and "RESOURCE_EXHAUSTED" in held.reason
    assert 8000 < held.left <= 86_400 / 10  # the emulator's window at time_scale 10
    refused = [e for e in running.sb.log.entries(method=SEARCH_STREAM) if e.status == 429]
    assert len(refused) == 1

    before = len(running.sb.log)
    later = running.connector(holds=shared)
    for stream in ("campaigns", "ad_daily"):
        assert read_all(later, stream) == []
    assert len(running.sb.log) == before
    assert all("held until" in w for w in later.stats.warnings) and later.stats.warnings
    alone = running.connector()
    assert read_all(alone, "ad_daily") == []
    assert len(running.sb.log) == before + 1  # asked, and refused again


def test_max_requests_stops_a_run_with_cursors_of_complete_days_only(running: Running) -> None:
    from datetime import UTC, datetime, timedelta

    # 1 account listing + 2 manager listings, then three 10-day chunks of the first account.
    connector = running.connector(max_requests=6, chunk_days=10)
    pages = read_all(connector, "campaign_daily")
    assert any("max_requests=6" in w for w in connector.stats.warnings)
    assert connector.stats.requests == 6
    cursors = {p.partition: p.state["through"] for p in pages if p.state}
    assert len(cursors) == 1
    ((partition, through),) = cursors.items()
    account = running.ads.account(partition)
    first = account.today(datetime.now(UTC)) - timedelta(days=90)
    assert through == (first + timedelta(days=29)).isoformat()
    days = {r["date"] for p in pages for r in p.records}
    assert min(days) >= first and max(days) <= first + timedelta(days=29)


def test_entity_cursors_choose_change_status_or_a_snapshot() -> None:
    from datetime import UTC, datetime, timedelta

    from connectors.google_ads.entities import CURSOR, EntityReader, _local
    from connectors.google_ads.records import Customer

    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    since = EntityReader.since
    assert since(None, now) is None and since({}, now) is None  # first sync, full refresh
    recent = now - timedelta(days=3)
    assert since({CURSOR: recent.isoformat()}, now) == recent - timedelta(minutes=5)
    assert since({CURSOR: (now - timedelta(days=89)).isoformat()}, now) is None  # too old
    with pytest.raises(ValueError, match="change_status_limit"):
        GoogleAdsConfig(change_status_limit=10_001)

    # Times are the account's wall clock; across a clock change the start moves back by the
    # difference, so the range stays ordered (New York fell back on 2026-11-01 at 02:00).
    york = Customer(1, None, "USD", "America/New_York", "ENABLED", False, False, False, (), 2)
    before, after = (
        datetime(2026, 11, 1, 5, 50, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 10, tzinfo=UTC),
    )
    assert _local(after, after, york) == "2026-11-01 01:10:00"
    assert _local(before, after, york) == "2026-11-01 00:50:00"  # 01:50 EDT, an hour earlier
    assert _local(before, before, york) == "2026-11-01 01:50:00"


def test_changed_entities_that_come_back_empty_are_zero_rows(running: Running) -> None:
    """``change_status`` may list an entity the by-id query no longer returns; that query's
    stream then carries no message at all (the real server's empty SearchStream), and the
    account's read is zero rows with its cursor moved, not a failed stream."""
    from datetime import UTC, datetime, timedelta

    from connectors.google_ads.entities import CURSOR

    account = next(
        a
        for a, _ in running.manager.descendants()
        if a.campaigns and not a.manager and a.status == "ENABLED"
    )
    campaign = account.campaigns[0]
    before = datetime.now(UTC) - timedelta(hours=1)
    account.record_change(campaign, "CHANGED", datetime.now(UTC))
    account.campaigns.remove(campaign)  # listed as changed, gone from every query
    connector = running.connector()
    state = {str(account.id): {CURSOR: before.isoformat()}}
    pages = list(connector.read("campaigns", state))
    mine = [p for p in pages if p.partition == str(account.id)]
    assert mine and sum(len(p.records) for p in mine) == 0
    assert mine[-1].state is not None and mine[-1].state[CURSOR] > before.isoformat()
    assert not connector.stats.warnings


def test_a_refused_token_is_renewed_once_and_the_read_goes_on(running: Running) -> None:
    """An access token that died mid-run (Google's live an hour) is refused with
    ``GOOGLE_ACCOUNT_COOKIE_INVALID``, whose handling is "Request a new token" (common-errors
    guide, developers.google.com/google-ads/api/docs/get-started/common-errors): the call --
    a unary one, then a SearchStream -- is sent again with a token from ``renew``, once, and
    the read lands what a read with a live token lands."""
    login = running.ads.logins["ads@acme-agency.test"]
    refused: list[str] = []

    def renew(token: Secret) -> Secret:
        refused.append(token.reveal())
        return Secret(running.ads.credentials(login)["access_token"])

    running.ads.oauth.expire(running.token.reveal())
    connector = GoogleAdsConnector(running.token, GoogleAdsConfig(), renew=renew)
    customers = read_all(connector, "customers")
    assert refused == [running.token.reveal()]
    assert {r["customer_id"] for p in customers for r in p.records} == {
        a.id for a, _ in running.manager.descendants()
    }
    assert customers[-1].reconcile is not None  # every listing answered
    # The renewed token dies too; the stream query it was refused on is sent again.
    running.ads.oauth.expire_subject(login.email)
    campaigns = read_all(connector, "campaigns")
    assert len(refused) == 2 and refused[1] != refused[0]
    expected = {
        c.id
        for a, _ in running.manager.descendants()
        if not a.manager and a.status == "ENABLED" and not a.test_account
        for c in a.campaigns
    }
    assert {r["campaign_id"] for p in campaigns for r in p.records} == expected
    assert not connector.stats.warnings and not connector.stats.skipped
    statuses = [(e.method, e.status) for e in running.sb.log.entries(provider="google_ads")]
    assert statuses.count(("CustomerService.ListAccessibleCustomers", 401)) == 1
    assert [s for _, s in statuses].count(401) == 2


@pytest.mark.parametrize("renewal", ["refused_again", "refresh_refused"])
def test_a_token_refused_after_its_renewal_fails_the_stream(running: Running, renewal: str) -> None:
    """One renewal per refused call: a fresh token refused too, or a refresh Google refuses
    (``invalid_grant``), raises :class:`AuthError` -- the task layer's ``needs_reauth``."""
    from connectors.common import AuthError
    from connectors.google_auth import refresh_google_token

    login = running.ads.logins["ads@acme-agency.test"]
    asked: list[str] = []

    def renew(token: Secret) -> Secret:
        asked.append(token.reveal())
        if renewal == "refresh_refused":
            running.ads.oauth.revoke_subject(login.email)
            info = running.ads.credentials_info(login)
            refresh_google_token(
                info["client_id"],
                Secret(info["client_secret"]),
                Secret(info["refresh_token"]),
                info["token_uri"],
            )
        return Secret("ya29.never-issued")

    running.ads.oauth.expire(running.token.reveal())
    connector = GoogleAdsConnector(running.token, GoogleAdsConfig(), renew=renew)
    with pytest.raises(AuthError) as raised:
        read_all(connector, "customers")
    assert asked == [running.token.reveal()]
    calls = running.sb.log.count(method="CustomerService.ListAccessibleCustomers")
    if renewal == "refresh_refused":
        assert raised.value.code == "invalid_grant" and calls == 1
    else:
        assert "access token" in str(raised.value) and calls == 2
