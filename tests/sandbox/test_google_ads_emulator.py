# ruff: noqa: S608 -- the f-strings build GAQL queries for the emulator, not SQL
"""The Google Ads API v26 emulator, driven by the real google-ads client over gRPC + TLS.

Expected values come from the emulator's own data (``AdsAccount`` and its ``*_day`` methods),
never from connector code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.api_core import exceptions as core_exceptions
from google.oauth2.credentials import Credentials

from sandbox.google_ads import (
    ENDPOINT_ENV,
    ROOTS_ENV,
    SEARCH,
    SEARCH_STREAM,
    AdsAccount,
    GoogleAdsEmulator,
)
from sandbox.google_ads.errors import FAILURE_KEY

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
METRICS = (
    "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, "
    "metrics.conversions_value, metrics.all_conversions, metrics.view_through_conversions"
)


class Running:
    def __init__(self, ads: GoogleAdsEmulator, manager: AdsAccount) -> None:
        self.ads = ads
        self.manager = manager
        self.sub = manager.children[0]
        self.client1 = manager.children[1]  # enabled, with a Performance Max campaign
        self.login = ads.logins["ads@acme-agency.test"]

    def client(
        self, login_customer_id: AdsAccount | None = None, token: str | None = None
    ) -> GoogleAdsClient:
        info = self.ads.credentials_info(self.login)
        if token is not None:  # a fixed access token, no refresh token
            info = {"token_uri": info["token_uri"]}
        return GoogleAdsClient(
            credentials=Credentials(token, **info),
            developer_token="unused-since-2026",
            login_customer_id=str(login_customer_id.id) if login_customer_id else None,
            use_proto_plus=True,
            version="v26",
            endpoint=os.environ[ENDPOINT_ENV],
        )

    def stream(
        self, customer: AdsAccount, query: str, login: AdsAccount | None = None
    ) -> list[Any]:
        svc = self.client(self.manager if login is None else login).get_service("GoogleAdsService")
        return [
            row
            for batch in svc.search_stream(customer_id=str(customer.id), query=query)
            for row in batch.results
        ]


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    ads = GoogleAdsEmulator(seed=11, time_scale=60)
    ads.now = lambda: NOW
    manager = ads.populate("small")
    ads.start()
    env = ads.env()
    assert env[ROOTS_ENV] and env[ENDPOINT_ENV].startswith("127.0.0.1:")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        yield Running(ads, manager)
    finally:
        ads.stop()


def error_code(exc: GoogleAdsException) -> tuple[str, str]:
    code = exc.failure.errors[0].error_code
    family = ads_errors.ErrorCode.pb(code).WhichOneof("error_code")
    return family, getattr(code, family).name


def test_list_accessible_customers_and_manager_tree(sb: Running) -> None:
    names = sb.client().get_service("CustomerService").list_accessible_customers().resource_names
    assert list(names) == [f"customers/{sb.manager.id}"]

    rows = sb.stream(
        sb.manager,
        "SELECT customer_client.id, customer_client.level, customer_client.manager, "
        "customer_client.status, customer_client.test_account, customer_client.hidden, "
        "customer_client.currency_code, customer_client.time_zone FROM customer_client "
        "WHERE customer_client.level <= 2",
    )
    expected = {a.id: (level, a) for a, level in sb.manager.descendants()}
    assert {r.customer_client.id for r in rows} == set(expected)
    for r in rows:
        level, account = expected[r.customer_client.id]
        assert r.customer_client.level == level
        assert r.customer_client.manager == account.manager
        assert r.customer_client.status.name == account.status
        assert r.customer_client.time_zone == account.time_zone
        assert r.customer_client.resource_name.startswith(f"customers/{sb.manager.id}/")
    flags = {
        (r.customer_client.hidden, r.customer_client.test_account, r.customer_client.status.name)
        for r in rows
    }
    assert (True, False, "ENABLED") in flags and (False, True, "ENABLED") in flags
    assert any(r.customer_client.status.name == "CANCELED" for r in rows)
    level1 = sb.stream(
        sb.manager, "SELECT customer_client.id FROM customer_client WHERE customer_client.level = 1"
    )
    assert {r.customer_client.id for r in level1} == {a.id for a in sb.manager.children}

    log = sb.ads.log.entries(method=SEARCH_STREAM)
    assert log[-1].params["customer_id"] == str(sb.manager.id)
    assert log[-1].params["login_customer_id"] == str(sb.manager.id)
    assert "customer_client.level = 1" in log[-1].params["query"]


def test_customer_campaigns_ad_groups_and_ads(sb: Running) -> None:
    acc = sb.client1
    [cust] = sb.stream(
        acc,
        "SELECT customer.id, customer.currency_code, customer.time_zone, customer.manager FROM customer",
    )
    assert (cust.customer.currency_code, cust.customer.time_zone, cust.customer.manager) == (
        acc.currency,
        acc.time_zone,
        False,
    )

    rows = sb.stream(
        acc,
        "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type FROM campaign ORDER BY campaign.id",
    )
    assert [r.campaign.id for r in rows] == sorted(c.id for c in acc.campaigns)
    pmax = [c for c in acc.campaigns if c.channel == "PERFORMANCE_MAX"]
    assert pmax and not pmax[0].ad_groups
    assert {r.campaign.advertising_channel_type.name for r in rows} >= {"PERFORMANCE_MAX", "SEARCH"}

    groups = sb.stream(
        acc,
        "SELECT ad_group.id, ad_group.name, campaign.id FROM ad_group WHERE campaign.status = ENABLED",
    )
    assert {(r.ad_group.id, r.campaign.id) for r in groups} == {
        (g.id, c.id) for c in acc.campaigns for g in c.ad_groups
    }

    ads = sb.stream(
        acc,
        "SELECT ad_group_ad.ad.id, ad_group_ad.ad.type, ad_group_ad.ad.final_urls, ad_group_ad.status, "
        "ad_group.id FROM ad_group_ad WHERE ad_group_ad.status IN (ENABLED, PAUSED)",
    )
    want = {a.id: a for c in acc.campaigns for g in c.ad_groups for a in g.ads}
    assert {r.ad_group_ad.ad.id for r in ads} == set(want)
    for r in ads:
        ad = want[r.ad_group_ad.ad.id]
        assert list(r.ad_group_ad.ad.final_urls) == ad.final_urls
        assert r.ad_group_ad.ad.type_.name == ad.type
        assert r.ad_group_ad.resource_name == ad.resource_name
    assert len({a.type for a in want.values()}) >= 2


def test_daily_metrics_over_a_date_range(sb: Running) -> None:
    acc = sb.client1
    first, last = date(2026, 1, 5), date(2026, 1, 11)
    where = f"WHERE segments.date BETWEEN '{first}' AND '{last}'"
    rows = sb.stream(acc, f"SELECT campaign.id, segments.date, {METRICS} FROM campaign {where}")
    got = {(r.campaign.id, r.segments.date): r.metrics for r in rows}
    days = [first + timedelta(n) for n in range(7)]
    for c in acc.campaigns:
        for day in days:
            m = acc.campaign_day(c, day)
            if m.empty:
                assert (c.id, day.isoformat()) not in got
                continue
            row = got[(c.id, day.isoformat())]
            assert (row.impressions, row.clicks, row.cost_micros) == (
                m.impressions,
                m.clicks,
                m.cost_micros,
            )
            assert row.conversions == pytest.approx(m.conversions)
            assert row.all_conversions == pytest.approx(m.all_conversions)
    ad_rows = sb.stream(
        acc, f"SELECT ad_group_ad.ad.id, segments.date, metrics.clicks FROM ad_group_ad {where}"
    )
    group_rows = sb.stream(
        acc, f"SELECT ad_group.id, segments.date, metrics.clicks FROM ad_group {where}"
    )
    pmax = next(c for c in acc.campaigns if c.channel == "PERFORMANCE_MAX")
    campaign_clicks = sum(r.metrics.clicks for r in rows)
    pmax_clicks = sum(r.metrics.clicks for r in rows if r.campaign.id == pmax.id)
    assert pmax_clicks > 0
    # Performance Max has no ad groups: ad-level totals fall short by exactly its clicks.
    assert sum(r.metrics.clicks for r in ad_rows) == sum(r.metrics.clicks for r in group_rows)
    assert sum(r.metrics.clicks for r in ad_rows) == campaign_clicks - pmax_clicks

    total = sb.stream(
        acc, f"SELECT campaign.id, metrics.clicks FROM campaign {where} AND campaign.id = {pmax.id}"
    )
    assert [r.metrics.clicks for r in total] == [pmax_clicks]
    # DURING presets are days in the account's time zone, today excluded.
    week = sb.stream(
        acc,
        "SELECT campaign.id, segments.date, metrics.clicks FROM campaign WHERE segments.date DURING LAST_7_DAYS",
    )
    today = acc.today(NOW)
    assert {r.segments.date for r in week} <= {
        (today - timedelta(n)).isoformat() for n in range(1, 8)
    }


def test_search_paging_and_page_token(sb: Running) -> None:
    sb.ads.page_size = 3
    acc = sb.client1
    svc = sb.client(sb.manager).get_service("GoogleAdsService")
    pager = svc.search(
        customer_id=str(acc.id),
        query="SELECT ad_group_ad.ad.id FROM ad_group_ad ORDER BY ad_group_ad.ad.id",
    )
    ids = [r.ad_group_ad.ad.id for r in pager]
    assert ids == sorted(a.id for c in acc.campaigns for g in c.ad_groups for a in g.ads)
    calls = sb.ads.log.entries(method=SEARCH)
    assert len(calls) == -(-len(ids) // 3) and all(c.params.get("page_token") for c in calls[1:])
    assert sb.ads.operations_used() == 1  # one query = one operation, however many pages


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_login_customer_id", ("authorization_error", "USER_PERMISSION_DENIED")),
        ("manager_metrics", ("query_error", "REQUESTED_METRICS_FOR_MANAGER")),
        ("cancelled", ("authorization_error", "CUSTOMER_NOT_ENABLED")),
        ("unknown_field", ("query_error", "UNRECOGNIZED_FIELD")),
        ("or_clause", ("query_error", "UNEXPECTED_INPUT")),
        ("date_without_range", ("query_error", "EXPECTED_FILTERS_ON_DATE_RANGE")),
        ("bad_token", ("authentication_error", "OAUTH_TOKEN_INVALID")),
    ],
)
def test_error_rules_raise_google_ads_exception(
    sb: Running, case: str, expected: tuple[str, str]
) -> None:
    acc, login, query = sb.client1, sb.manager, "SELECT campaign.id FROM campaign"
    cancelled = next(a for a, _ in sb.manager.descendants() if a.status == "CANCELED")
    if case == "no_login_customer_id":
        svc = sb.client(None).get_service("GoogleAdsService")
    elif case == "bad_token":
        svc = sb.client(login, token="ya29.not-a-token").get_service("GoogleAdsService")
    else:
        svc = sb.client(login).get_service("GoogleAdsService")
    if case == "manager_metrics":
        acc, query = sb.manager, "SELECT customer.id, metrics.clicks FROM customer"
    elif case == "cancelled":
        acc = cancelled
    elif case == "unknown_field":
        query = "SELECT campaign.idd FROM campaign"
    elif case == "or_clause":
        query = "SELECT campaign.id FROM campaign WHERE campaign.id = 1 OR campaign.id = 2"
    elif case == "date_without_range":
        query = "SELECT campaign.id, segments.date, metrics.clicks FROM campaign"
    with pytest.raises(GoogleAdsException) as info:
        list(svc.search_stream(customer_id=str(acc.id), query=query))
    assert error_code(info.value) == expected
    assert info.value.request_id.startswith("gads-")


def test_short_lived_access_tokens_on_request_expire_as_googles_do(sb: Running) -> None:
    """``access_token_ttl`` at or below the minimum scaled life is real seconds: the token
    works, then dies, and its refusal is the common-errors guide's answer for an expired
    access token, ``GOOGLE_ACCOUNT_COOKIE_INVALID`` ("The access token in the request header is
    either invalid or has expired"; developers.google.com/google-ads/api/docs/get-started/
    common-errors). A revoked or unknown token stays ``OAUTH_TOKEN_INVALID``."""
    sb.ads.oauth.access_token_ttl = 1.0
    token = sb.ads.credentials(sb.login)["access_token"]
    svc = sb.client(sb.manager, token=token).get_service("GoogleAdsService")
    query = "SELECT campaign.id FROM campaign"
    assert list(svc.search_stream(customer_id=str(sb.client1.id), query=query))
    time.sleep(1.2)
    with pytest.raises(GoogleAdsException) as info:
        list(svc.search_stream(customer_id=str(sb.client1.id), query=query))
    assert error_code(info.value) == ("authentication_error", "GOOGLE_ACCOUNT_COOKIE_INVALID")
    assert info.value.error.code().name == "UNAUTHENTICATED"
    # The refresh token still works: Google answers a short life in expires_in too.
    fresh = sb.ads.oauth.token_endpoint(
        {"grant_type": "refresh_token", **sb.ads.credentials_info(sb.login)}, {}
    )
    assert fresh["expires_in"] == 1
    svc = sb.client(sb.manager, token=fresh["access_token"]).get_service("GoogleAdsService")
    assert list(svc.search_stream(customer_id=str(sb.client1.id), query=query))
    sb.ads.oauth.revoke_token(fresh["access_token"])
    with pytest.raises(GoogleAdsException) as info:
        list(svc.search_stream(customer_id=str(sb.client1.id), query=query))
    assert error_code(info.value) == ("authentication_error", "OAUTH_TOKEN_INVALID")


def test_mid_stream_failure_after_some_rows(sb: Running) -> None:
    sb.ads.stream_chunk_size = 2
    sb.ads.faults.add("google_ads", kind="500", method=SEARCH_STREAM, options={"after_rows": 4})
    svc = sb.client(sb.manager).get_service("GoogleAdsService")
    got: list[Any] = []
    with pytest.raises(core_exceptions.InternalServerError):
        for batch in svc.search_stream(
            customer_id=str(sb.client1.id), query="SELECT ad_group_ad.ad.id FROM ad_group_ad"
        ):
            got.extend(batch.results)
    assert len(got) == 4
    sb.ads.faults.add("google_ads", kind="503", method=SEARCH_STREAM, options={"after_rows": 1})
    with pytest.raises(core_exceptions.ServiceUnavailable):
        list(
            svc.search_stream(
                customer_id=str(sb.client1.id), query="SELECT ad_group_ad.ad.id FROM ad_group_ad"
            )
        )
    assert [e.fault for e in sb.ads.log.entries(method=SEARCH_STREAM)] == ["500", "503"]


def _quota_failure(exc: core_exceptions.ResourceExhausted) -> ads_errors.GoogleAdsFailure:
    trailers = dict(exc.response.trailing_metadata())  # type: ignore[union-attr]
    return ads_errors.GoogleAdsFailure.deserialize(trailers[FAILURE_KEY])


def test_quota_short_retry_delay_and_daily_operations(sb: Running) -> None:
    svc = sb.client(sb.manager).get_service("GoogleAdsService")
    query, customer = "SELECT campaign.id FROM campaign", str(sb.client1.id)
    sb.ads.faults.add("google_ads", kind="429", retry_after=7)
    with pytest.raises(core_exceptions.ResourceExhausted) as info:
        list(svc.search_stream(customer_id=customer, query=query))
    failure = _quota_failure(info.value)
    # A short-term limit is RESOURCE_EXHAUSTED too; only its short retry_delay and its
    # per-account rate tell it from the daily quota.
    assert failure.errors[0].error_code.quota_error.name == "RESOURCE_EXHAUSTED"
    details = failure.errors[0].details.quota_error_details
    assert details.retry_delay.seconds == 7 and details.rate_name == "Requests per account"

    # The daily budget belongs to the OAuth client project: every account reached through
    # it spends from the same pool.
    sb.ads.daily_operations = 3
    list(svc.search_stream(customer_id=customer, query=query))
    list(svc.search_stream(customer_id=str(sb.manager.children[2].id), query=query))
    sb.client(sb.manager).get_service("CustomerService").list_accessible_customers()
    with pytest.raises(core_exceptions.ResourceExhausted) as info:
        list(svc.search_stream(customer_id=customer, query=query))
    failure = _quota_failure(info.value)
    assert failure.errors[0].error_code.quota_error.name == "RESOURCE_EXHAUSTED"
    delay = failure.errors[0].details.quota_error_details.retry_delay.seconds
    assert 1000 < delay <= 86_400 / 60  # the sliding day, at time_scale 60


def test_mutations_new_entities_removal_and_late_conversions(sb: Running) -> None:
    acc = sb.client1
    campaign = sb.ads.add_campaign(acc.id, name="Spring Sale", ad_groups=1, ads_per_group=1)
    group = campaign.ad_groups[0]
    ad = sb.ads.add_ad(
        group, type="RESPONSIVE_SEARCH_AD", final_urls=["https://shop.example/spring"]
    )
    old = next(c for c in acc.campaigns if c.channel == "SEARCH")
    sb.ads.set_status(old, "REMOVED")
    rows = sb.stream(acc, "SELECT campaign.id, campaign.status FROM campaign")
    statuses = {r.campaign.id: r.campaign.status.name for r in rows}
    assert statuses[campaign.id] == "ENABLED" and statuses[old.id] == "REMOVED"
    live = sb.stream(acc, "SELECT campaign.id FROM campaign WHERE campaign.status != REMOVED")
    assert old.id not in {r.campaign.id for r in live}
    urls = sb.stream(
        acc, f"SELECT ad_group_ad.ad.final_urls FROM ad_group_ad WHERE ad_group_ad.ad.id = {ad.id}"
    )
    assert list(urls[0].ad_group_ad.ad.final_urls) == ["https://shop.example/spring"]

    day = date(2026, 1, 20)
    target = old.ad_groups[0].ads[0]
    q = f"SELECT campaign.id, metrics.conversions FROM campaign WHERE segments.date = '{day}' AND campaign.id = {old.id}"
    before = sb.stream(acc, q)[0].metrics.conversions
    sb.ads.add_late_conversions(target, day, 5, 250.0)
    after = sb.stream(acc, q)[0].metrics.conversions
    assert after == pytest.approx(before + 5)
    assert after == pytest.approx(acc.campaign_day(old, day).conversions)


def test_a_sandbox_hosts_it_beside_gmail_on_one_google_oauth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sandbox import Sandbox

    with Sandbox(providers=("gmail", "google_ads"), seed=3, time_scale=10) as sb:
        ads = sb.google_ads
        manager = ads.populate("tiny")
        env = sb.env
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # One OAuth store: the token URL the project is given is Gmail's server, and an
        # access token it issues for the Ads login is good on the gRPC emulator.
        assert env["AOS_GOOGLE_TOKEN_URL"] == sb.base_url("gmail") + "/token"
        assert env[ENDPOINT_ENV] == ads.endpoint and env[ROOTS_ENV] == ads.roots_file
        assert ads.oauth is sb.gmail.oauth
        login = ads.logins["ads@acme-agency.test"]
        info = {**ads.credentials_info(login), "token_uri": env["AOS_GOOGLE_TOKEN_URL"]}
        client = GoogleAdsClient(
            credentials=Credentials(None, **info),
            use_proto_plus=True,
            version="v26",
            endpoint=env[ENDPOINT_ENV],
        )
        service = client.get_service("CustomerService")
        assert list(service.list_accessible_customers().resource_names) == [
            f"customers/{manager.id}"
        ]
        # The sandbox's fault rules and request log are the emulator's.
        sb.faults.add("google_ads", kind="503", method="CustomerService.ListAccessibleCustomers")
        with pytest.raises(core_exceptions.ServiceUnavailable):
            service.list_accessible_customers()
        methods = [(e.provider, e.method, e.status) for e in sb.log]
        assert methods == [
            ("gmail", "oauth2.token", 200),
            ("google_ads", "CustomerService.ListAccessibleCustomers", 200),
            ("google_ads", "CustomerService.ListAccessibleCustomers", 503),
        ]
        assert sb.base_url("google_ads") == ads.base_url
    with pytest.raises(RuntimeError):
        _ = ads.endpoint  # stopped with the sandbox


CHANGES = (
    "SELECT change_status.resource_name, change_status.last_change_date_time, "
    "change_status.resource_type, change_status.resource_status, change_status.campaign, "
    "change_status.ad_group, change_status.ad_group_ad FROM change_status"
)
TIME = "change_status.last_change_date_time"


def _local(account: AdsAccount, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(account.time_zone)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("LIMIT 100", "CHANGE_DATE_RANGE_INFINITE"),
        ("WHERE {time} >= '{week_ago}' LIMIT 100", "CHANGE_DATE_RANGE_INFINITE"),
        ("WHERE {time} BETWEEN '{too_old}' AND '{now}' LIMIT 100", "START_DATE_TOO_OLD"),
        ("WHERE {time} BETWEEN '{now}' AND '{week_ago}' LIMIT 100", "CHANGE_DATE_RANGE_NEGATIVE"),
        ("WHERE {time} >= '{week_ago}' AND {time} <= '{now}'", "LIMIT_NOT_SPECIFIED"),
        ("WHERE {time} BETWEEN '{week_ago}' AND '{now}' LIMIT 10001", "INVALID_LIMIT_CLAUSE"),
    ],
)
def test_change_status_needs_a_finite_recent_range_and_a_limit(
    sb: Running, where: str, code: str
) -> None:
    acc = sb.client1
    query = f"{CHANGES} " + where.format(
        time=TIME,
        now=_local(acc, NOW),
        week_ago=_local(acc, NOW - timedelta(days=7)),
        too_old=_local(acc, NOW - timedelta(days=91)),
    )
    svc = sb.client(sb.manager).get_service("GoogleAdsService")
    with pytest.raises(GoogleAdsException) as info:
        list(svc.search_stream(customer_id=str(acc.id), query=query))
    assert error_code(info.value) == ("change_status_error", code)
    assert info.value.request_id.startswith("gads-")


def test_change_status_lists_what_the_mutations_changed(sb: Running) -> None:
    acc = sb.client1
    window = (
        f"WHERE {TIME} BETWEEN '{_local(acc, NOW - timedelta(days=89))}' AND '{_local(acc, NOW)}'"
    )
    assert sb.stream(acc, f"{CHANGES} {window} LIMIT 10000") == []  # the seeded tree is old

    early, late = NOW - timedelta(hours=3), NOW - timedelta(minutes=10)
    sb.ads.now = lambda: early
    campaign = sb.ads.add_campaign(acc.id, name="Spring", ad_groups=1, ads_per_group=1)
    old = next(c for c in acc.campaigns if c.channel == "SEARCH" and c is not campaign)
    sb.ads.rename(old, "Evergreen")
    sb.ads.now = lambda: late
    removed = old.ad_groups[0].ads[0]
    sb.ads.set_status(removed, "REMOVED")
    sb.ads.set_status(old, "PAUSED")
    new_ad = sb.ads.add_ad(old.ad_groups[0])
    sb.ads.now = lambda: NOW

    rows = sb.stream(acc, f"{CHANGES} {window} ORDER BY {TIME} LIMIT 10000")
    got = {
        r.change_status.campaign
        if r.change_status.resource_type.name == "CAMPAIGN"
        else r.change_status.ad_group
        if r.change_status.resource_type.name == "AD_GROUP"
        else r.change_status.ad_group_ad: (
            r.change_status.resource_type.name,
            r.change_status.resource_status.name,
            r.change_status.last_change_date_time,
        )
        for r in rows
    }
    group, ad = campaign.ad_groups[0], campaign.ad_groups[0].ads[0]
    assert got == {
        campaign.resource_name: ("CAMPAIGN", "ADDED", _local(acc, early)),
        group.resource_name: ("AD_GROUP", "ADDED", _local(acc, early)),
        ad.resource_name: ("AD_GROUP_AD", "ADDED", _local(acc, early)),
        old.resource_name: ("CAMPAIGN", "CHANGED", _local(acc, late)),  # renamed, then paused
        removed.resource_name: ("AD_GROUP_AD", "REMOVED", _local(acc, late)),
        new_ad.resource_name: ("AD_GROUP_AD", "ADDED", _local(acc, late)),
    }
    times = [r.change_status.last_change_date_time for r in rows]
    assert times == sorted(times)
    # An ad's row names its ad group and campaign too.
    row = next(r for r in rows if r.change_status.ad_group_ad == removed.resource_name)
    assert row.change_status.ad_group == removed.ad_group.resource_name
    assert row.change_status.campaign == old.resource_name

    # The range and the other conditions filter; LIMIT cuts.
    since = f"WHERE {TIME} >= '{_local(acc, late)}' AND {TIME} <= '{_local(acc, NOW)}'"
    recent = sb.stream(acc, f"{CHANGES} {since} LIMIT 100")
    assert {r.change_status.resource_status.name for r in recent} == {"CHANGED", "REMOVED", "ADDED"}
    assert len(recent) == 3
    ads_only = sb.stream(
        acc, f"{CHANGES} {window} AND change_status.resource_type IN (AD_GROUP_AD) LIMIT 100"
    )
    assert len(ads_only) == 3
    assert len(sb.stream(acc, f"{CHANGES} {window} LIMIT 2")) == 2
    # Another account saw none of it.
    assert sb.stream(sb.manager.children[2], f"{CHANGES} {window} LIMIT 100") == []


def test_a_query_with_no_match_streams_no_message_at_all(sb: Running) -> None:
    """The real server ends an empty SearchStream without a single message
    (googleads/google-ads-python issue 851; google-ads-dotnet issue 197)."""
    svc = sb.client(sb.manager).get_service("GoogleAdsService")
    query = "SELECT campaign.id FROM campaign WHERE campaign.id = 1"
    assert list(svc.search_stream(customer_id=str(sb.client1.id), query=query)) == []
    # A match streams its rows as before.
    some = "SELECT campaign.id FROM campaign"
    batches = list(svc.search_stream(customer_id=str(sb.client1.id), query=some))
    assert batches and sum(len(b.results) for b in batches) == len(sb.client1.campaigns)
