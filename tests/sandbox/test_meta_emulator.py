"""The Meta Graph API emulator, driven by the real facebook-business SDK over sockets.

Expected values come from the emulator's own objects (``MetaAccount.ad_day`` and the ads
tree), never from connector code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.business import Business
from facebook_business.adobjects.user import User
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from sandbox.faults import FaultInjector
from sandbox.meta import MetaBusiness, MetaEmulator
from sandbox.meta.data import MetaAccount
from sandbox.requestlog import RequestLog
from sandbox.server import ProviderServer

START = date(2026, 1, 1)


class Running:
    def __init__(self, emulator: MetaEmulator, server: ProviderServer) -> None:
        self.meta = emulator
        self.server = server
        self.url = server.base_url

    def api(self, token: str) -> FacebookAdsApi:
        api = FacebookAdsApi.init(
            app_id=self.meta.app_id,
            app_secret=self.meta.app_secret,
            access_token=token,
            crash_log=False,
            api_version="v26.0",
        )
        api._session.GRAPH = self.url
        return api


@pytest.fixture
def sb() -> Iterator[Running]:
    emulator = MetaEmulator(seed=7, time_scale=60)
    server = ProviderServer(emulator, faults=FaultInjector(7), log=RequestLog(), time_scale=60)
    server.start()
    emulator.bind(server.base_url)
    try:
        yield Running(emulator, server)
    finally:
        server.stop()


def agency(sb: Running, **kwargs: Any) -> tuple[MetaBusiness, FacebookAdsApi]:
    params: dict[str, Any] = {"owned": 1, "clients": 2, "start": START}
    business = sb.meta.add_business("Acme Agency", **{**params, **kwargs})
    return business, sb.api(business.credentials["access_token"])


def error_of(call: Any, *args: Any, **kwargs: Any) -> FacebookRequestError:
    with pytest.raises(FacebookRequestError) as caught:
        call(*args, **kwargs)
    return caught.value


def expected_ad_rows(account: MetaAccount, since: date, until: date) -> dict[tuple[str, str], Any]:
    today = account.today(sb_now())
    out = {}
    for ad in account.ads.values():
        if ad.effective_status == "DELETED":
            continue
        day = since
        while day <= until:
            if ad.delivers_on(day, today):
                numbers = account.ad_day(ad, day)
                if numbers is not None:
                    out[(ad.id, day.isoformat())] = numbers
            day += timedelta(days=1)
    return out


def busy_day(account: MetaAccount) -> date:
    """A day on which an ACTIVE ad of the account delivers (ads start on different days)."""
    return min(a.first_day for a in account.ads.values() if a.status == "ACTIVE") + timedelta(
        days=1
    )


def sb_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# -- accounts and paging ------------------------------------------------------------------
def test_env_and_ad_accounts_with_paging(sb: Running) -> None:
    assert sb.meta.env(sb.url) == {
        "AOS_META_GRAPH_URL": sb.url,
        "AOS_META_CLIENT_ID": sb.meta.app_id,
        "AOS_META_CLIENT_SECRET": sb.meta.app_secret,
    }
    business, api = agency(sb, clients=4)
    fields = ["id", "account_id", "name", "currency", "timezone_name", "account_status"]
    me = User("me", api=api)
    accounts = list(me.get_ad_accounts(fields=fields, params={"limit": 2}))
    assert [a["id"] for a in accounts] == [a.id for a in business.accounts]
    first = business.accounts[0]
    assert accounts[0]["currency"] == first.currency
    assert accounts[0]["timezone_name"] == first.timezone_name
    assert accounts[0]["account_status"] == 1
    assert accounts[0]["account_id"] == first.account_id
    biz = Business(business.id, api=api)
    owned = [a["id"] for a in biz.get_owned_ad_accounts(fields=["id"])]
    clients = [a["id"] for a in biz.get_client_ad_accounts(fields=["id"], params={"limit": 3})]
    assert owned == [a.id for a in business.owned]
    assert clients == [a.id for a in business.clients]
    # 3 pages of 2: every request of the cursor walk was logged
    assert sb.server.log.count(method="me.adaccounts") == 3


def test_next_url_is_absolute_and_complete(sb: Running) -> None:
    business, _ = agency(sb)
    import httpx

    token = business.credentials["access_token"]
    url = f"{sb.url}/v26.0/me/adaccounts"
    params: dict[str, Any] | None = {"access_token": token, "fields": "id,name", "limit": 1}
    seen = []
    while url:
        body = httpx.get(url, params=params).json()
        seen += [a["id"] for a in body["data"]]
        url, params = body.get("paging", {}).get("next"), None
        assert url is None or url.startswith(sb.url + "/v26.0/me/adaccounts?")
    assert seen == [a.id for a in business.accounts]


def test_campaigns_and_ads_hide_deleted_and_archived_by_default(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    act = AdAccount(account.id, api=api)
    campaigns = list(act.get_campaigns(fields=["id", "name", "status", "effective_status"]))
    assert [c["id"] for c in campaigns] == list(account.campaigns)
    fields = ["id", "name", "status", "effective_status", "adset_id", "updated_time"]
    ads = list(act.get_ads(fields=fields, params={"limit": 3}))
    visible = [
        a.id for a in account.ads.values() if a.effective_status not in ("DELETED", "ARCHIVED")
    ]
    assert [a["id"] for a in ads] == visible
    assert {a["effective_status"] for a in ads} <= {"ACTIVE", "PAUSED"}
    everything = list(
        act.get_ads(
            fields=["id", "effective_status"],
            params={
                "filtering": [
                    {
                        "field": "ad.effective_status",
                        "operator": "IN",
                        "value": ["ACTIVE", "PAUSED", "ARCHIVED", "DELETED"],
                    }
                ]
            },
        )
    )
    assert [a["id"] for a in everything] == list(account.ads)
    statuses = {a["effective_status"] for a in everything}
    assert {"ACTIVE", "PAUSED", "ARCHIVED", "DELETED"} <= statuses
    adsets = list(act.get_ad_sets(fields=["id", "campaign_id", "daily_budget"]))
    assert [s["id"] for s in adsets] == list(account.adsets)


def test_updated_time_filter(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    ad = next(a for a in account.ads.values() if a.status == "ACTIVE")
    cutoff = max(a.updated_time for a in account.ads.values())
    sb.meta.pause_ad(ad.id)
    act = AdAccount(account.id, api=api)
    changed = list(
        act.get_ads(
            fields=["id", "status"],
            params={
                "filtering": [
                    {
                        "field": "updated_time",
                        "operator": "GREATER_THAN",
                        "value": int(cutoff.timestamp()),
                    }
                ]
            },
        )
    )
    assert [(a["id"], a["status"]) for a in changed] == [(ad.id, "PAUSED")]


def test_empty_page_with_next(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    sb.meta.set_empty_pages("ads", 1)
    act = AdAccount(account.id, api=api)
    # The SDK's Cursor stops at the first empty page although "next" is there ...
    truncated = [a["id"] for a in act.get_ads(fields=["id"], params={"limit": 2})]
    assert len(truncated) == 2
    # ... the wire answer is a real empty page with a cursor that resumes where it stopped.
    cursor = act.get_ads(fields=["id"], params={"limit": 2})  # loads the first page
    after = cursor.params["after"]
    body = api.call("GET", (account.id, "ads"), {"fields": "id", "limit": 2, "after": after}).json()
    assert body["data"] == [] and "next" in body["paging"]
    rest = api.call(
        "GET",
        (account.id, "ads"),
        {"fields": "id", "limit": 50, "after": body["paging"]["cursors"]["after"]},
    ).json()
    visible = [
        a.id for a in account.ads.values() if a.effective_status not in ("DELETED", "ARCHIVED")
    ]
    assert truncated + [a["id"] for a in rest["data"]] == visible


# -- insights -----------------------------------------------------------------------------
def test_sync_insights_daily_per_ad(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    since = busy_day(account) - timedelta(days=2)
    until = since + timedelta(days=6)
    act = AdAccount(account.id, api=api)
    rows = list(
        act.get_insights(
            fields=[
                "ad_id",
                "adset_id",
                "campaign_id",
                "impressions",
                "clicks",
                "reach",
                "spend",
                "actions",
                "action_values",
            ],
            params={
                "level": "ad",
                "time_increment": 1,
                "time_range": {"since": since.isoformat(), "until": until.isoformat()},
                "action_attribution_windows": ["7d_click", "1d_view"],
                "limit": 7,
            },
        )
    )
    expected = expected_ad_rows(account, since, until)
    assert len(expected) > 5
    got = {(r["ad_id"], r["date_start"]): r for r in rows}
    assert set(got) == set(expected) and len(rows) == len(expected)
    for key, numbers in expected.items():
        row = got[key]
        assert row["date_stop"] == row["date_start"]
        assert row["impressions"] == str(numbers.impressions)
        assert row["clicks"] == str(numbers.clicks)
        assert row["reach"] == str(numbers.reach)
        assert row["spend"] == account.money(numbers.spend)
        purchases = [
            a
            for a in row.get("actions", [])
            if a["action_type"] == "offsite_conversion.fb_pixel_purchase"
        ]
        if "offsite_conversion.fb_pixel_purchase" in numbers.actions:
            windows = numbers.actions["offsite_conversion.fb_pixel_purchase"]
            assert purchases[0]["value"] == str(windows["value"])
            assert purchases[0].get("7d_click", "0") == str(windows["7d_click"])
            assert "28d_click" not in purchases[0]
    assert all(isinstance(r["impressions"], str) for r in rows)


def test_breakdowns_add_up(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[1]
    day = busy_day(account)
    act = AdAccount(account.id, api=api)
    params = {
        "level": "ad",
        "time_increment": 1,
        "time_range": {"since": day.isoformat(), "until": day.isoformat()},
        "breakdowns": ["age", "gender"],
        "limit": 500,
    }
    rows = list(act.get_insights(fields=["ad_id", "impressions", "spend"], params=params))
    assert rows and all("age" in r and "gender" in r for r in rows)
    for (ad_id, _), numbers in expected_ad_rows(account, day, day).items():
        mine = [r for r in rows if r["ad_id"] == ad_id]
        assert sum(int(r["impressions"]) for r in mine) == numbers.impressions
        assert len({(r["age"], r["gender"]) for r in mine}) == len(mine)


def test_late_conversions_and_deleted_ads(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    ad = next(a for a in account.ads.values() if a.status == "ACTIVE")
    day = ad.first_day + timedelta(days=1)
    while account.ad_day(ad, day) is None:
        day += timedelta(days=1)
    before = account.ad_day(ad, day)
    assert before is not None
    sb.meta.add_late_conversions(ad.id, day, count=3, value="90.00")
    act = AdAccount(account.id, api=api)
    params: dict[str, Any] = {
        "level": "ad",
        "time_increment": 1,
        "time_range": {"since": day.isoformat(), "until": day.isoformat()},
    }
    rows = {
        r["ad_id"]: r
        for r in act.get_insights(fields=["ad_id", "actions", "action_values"], params=params)
    }
    purchase = next(
        a
        for a in rows[ad.id]["actions"]
        if a["action_type"] == "offsite_conversion.fb_pixel_purchase"
    )
    old = before.actions.get("offsite_conversion.fb_pixel_purchase", {}).get("value", 0)
    assert int(purchase["value"]) == old + 3
    sb.meta.delete_ad(ad.id)
    rows = {r["ad_id"] for r in act.get_insights(fields=["ad_id"], params=params)}
    assert ad.id not in rows  # level=ad leaves deleted ads out by default
    filtered = {
        **params,
        "filtering": [{"field": "ad.effective_status", "operator": "IN", "value": ["DELETED"]}],
    }
    rows = {r["ad_id"] for r in act.get_insights(fields=["ad_id"], params=filtered)}
    assert ad.id in rows
    assert ad.delivers_on(account.today(sb_now()), account.today(sb_now()))  # still accruing


# -- async report runs --------------------------------------------------------------------
def test_async_report_run_states(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    sb.meta.script_next_report(("Job Running", 100), ("Job Running", 100), ("Job Completed", 100))
    since = busy_day(account)
    act = AdAccount(account.id, api=api)
    params = {
        "level": "ad",
        "time_increment": 1,
        "time_range": {
            "since": since.isoformat(),
            "until": (since + timedelta(days=6)).isoformat(),
        },
    }
    job = act.get_insights(fields=["ad_id", "impressions"], params=params, is_async=True)
    assert isinstance(job, AdReportRun)
    early = error_of(job.get_insights, params={"limit": 5})
    assert (early.api_error_code(), early.api_error_subcode()) == (2601, 1815107)
    assert early.api_transient_error() is True
    seen = []
    while True:
        job.api_get()
        seen.append((job["async_status"], job["async_percent_completion"]))
        if job["async_status"] == "Job Completed":
            break
    assert seen == [("Job Running", 100), ("Job Running", 100), ("Job Completed", 100)]
    rows = list(job.get_insights(params={"limit": 5}))
    expected = expected_ad_rows(account, since, since + timedelta(days=6))
    assert expected and {(r["ad_id"], r["date_start"]) for r in rows} == set(expected)


def test_async_report_run_failed(sb: Running) -> None:
    business, api = agency(sb)
    sb.meta.script_next_report(("Job Started", 0), ("Job Failed", 30))
    job = AdAccount(business.accounts[0].id, api=api).get_insights(
        fields=["impressions"], params={"date_preset": "last_7d"}, is_async=True
    )
    job.api_get()
    job.api_get()
    assert job["async_status"] == "Job Failed"
    assert (job["error_code"], job["error_subcode"]) == (-2, 2490547)
    assert error_of(job.get_insights).api_error_code() == 2601


# -- throttling and errors ----------------------------------------------------------------
def test_call_budget_throttles_with_usage_headers(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    sb.meta.set_call_budget(account.id, 2)
    act = AdAccount(account.id, api=api)
    cursor = act.get_campaigns(fields=["id"])
    list(cursor)
    usage = json.loads(cursor.headers()["x-ad-account-usage"])
    assert usage["acc_id_util_pct"] == 50.0
    act.get_campaigns(fields=["id"]).load_next_page()
    error = error_of(lambda: list(act.get_campaigns(fields=["id"])))
    assert (error.api_error_code(), error.api_error_subcode()) == (17, 2446079)
    assert error.http_status() == 400
    assert error.api_transient_error() is False
    headers = {k.lower(): v for k, v in error.http_headers().items()}
    buc = json.loads(headers["x-business-use-case-usage"])[business.id][0]
    assert buc["call_count"] == 100 and buc["estimated_time_to_regain_access"] >= 1
    assert json.loads(headers["x-ad-account-usage"])["reset_time_duration"] >= 1
    assert "call_count" in json.loads(headers["x-app-usage"])
    # another account of the same business is not affected
    list(AdAccount(business.accounts[1].id, api=api).get_campaigns(fields=["id"]))


def test_forced_buc_throttle_on_insights(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    sb.meta.throttle(account.id, code=80000, subcode=2446079, minutes=120)
    error = error_of(
        lambda: list(AdAccount(account.id, api=api).get_insights(fields=["impressions"]))
    )
    assert error.api_error_code() == 80000 and error.api_error_subcode() == 2446079
    headers = {k.lower(): v for k, v in error.http_headers().items()}
    buc = json.loads(headers["x-business-use-case-usage"])[business.id][0]
    assert buc["type"] == "ads_insights"
    assert buc["estimated_time_to_regain_access"] == 2  # 120 provider minutes at 60x
    assert json.loads(headers["x-fb-ads-insights-throttle"])["acc_id_util_pct"] == 100.0


def test_fault_injector_answers_meta_errors(sb: Running) -> None:
    business, api = agency(sb)
    sb.server.faults.add("meta", kind="429", method="campaigns", options={"code": 613})
    sb.server.faults.add("meta", kind="500", method="campaigns")
    act = AdAccount(business.accounts[0].id, api=api)
    assert error_of(lambda: list(act.get_campaigns())).api_error_code() == 613
    failure = error_of(lambda: list(act.get_campaigns()))
    assert failure.http_status() == 500 and failure.api_transient_error() is True
    assert list(act.get_campaigns())


def test_expired_and_invalidated_tokens(sb: Running) -> None:
    business, api = agency(sb)
    token = business.credentials["access_token"]
    sb.meta.expire_token(token)
    error = error_of(lambda: list(User("me", api=api).get_ad_accounts()))
    assert (error.api_error_code(), error.api_error_subcode()) == (190, 463)
    assert error.api_error_type() == "OAuthException"
    other = sb.meta.issue_token(business, kind="SYSTEM_USER")
    sb.meta.invalidate_token(other.token)
    error = error_of(lambda: list(User("me", api=sb.api(other.token)).get_ad_accounts()))
    assert (error.api_error_code(), error.api_error_subcode()) == (190, 460)
    bad = error_of(lambda: list(User("me", api=sb.api("EAABnope")).get_ad_accounts()))
    assert bad.api_error_code() == 190


def test_debug_token_and_exchange(sb: Running) -> None:
    business, _ = agency(sb)
    short = sb.meta.issue_token(business)  # a two-hour login token
    api = sb.api(short.token)
    app_token = f"{sb.meta.app_id}|{sb.meta.app_secret}"
    data = api.call(
        "GET", ("debug_token",), {"input_token": short.token, "access_token": app_token}
    ).json()["data"]
    assert data["is_valid"] is True and data["expires_at"] == int(short.expires_at.timestamp())  # type: ignore[union-attr]
    assert "ads_read" in data["scopes"] and data["data_access_expires_at"] > 0
    system = api.call(
        "GET",
        ("debug_token",),
        {"input_token": business.credentials["access_token"], "access_token": app_token},
    ).json()["data"]
    assert system["expires_at"] == 0 and system["type"] == "SYSTEM_USER"
    # Anyone but the app (or one of its developers) is refused (Graph API, "Debug Token").
    with pytest.raises(FacebookRequestError) as refused:
        api.call("GET", ("debug_token",), {"input_token": short.token})
    assert refused.value.api_error_code() == 100
    assert "app access token" in (refused.value.api_error_message() or "")
    short.app_developer = True
    mine = api.call("GET", ("debug_token",), {"input_token": short.token}).json()["data"]
    assert mine["is_valid"] is True
    exchanged = api.call(
        "GET",
        ("oauth", "access_token"),
        {
            "grant_type": "fb_exchange_token",
            "client_id": sb.meta.app_id,
            "client_secret": sb.meta.app_secret,
            "fb_exchange_token": short.token,
        },
    ).json()
    assert exchanged["expires_in"] == 5_183_944 and exchanged["token_type"] == "bearer"
    long_lived = sb.meta.tokens[exchanged["access_token"]]
    assert long_lived.expires_at is not None and long_lived.user_id == short.user_id
    accounts = list(User("me", api=sb.api(exchanged["access_token"])).get_ad_accounts())
    assert len(accounts) == len(business.accounts)
    sb.meta.expire_token(short.token)
    data = api.call(
        "GET", ("debug_token",), {"input_token": short.token, "access_token": app_token}
    ).json()["data"]
    assert data["is_valid"] is False and data["error"]["subcode"] == 463


def test_same_seed_same_data() -> None:
    one = MetaEmulator(seed=3).add_business("A", start=START)
    two = MetaEmulator(seed=3).add_business("A", start=START)
    a, b = one.accounts[0], two.accounts[0]
    assert list(a.ads) == list(b.ads)
    day = START + timedelta(days=1)
    assert [a.ad_day(x, day) is None for x in a.ads.values()] == [
        b.ad_day(x, day) is None for x in b.ads.values()
    ]


def test_read_deleted_ad_by_id_and_change_status_over_the_wire(sb: Running) -> None:
    business, api = agency(sb)
    account = business.accounts[0]
    deleted = next(a for a in account.ads.values() if a.status == "DELETED")
    node = api.call("GET", (deleted.id,), {"fields": "id,effective_status,adset_id"}).json()
    assert node == {"id": deleted.id, "effective_status": "DELETED", "adset_id": deleted.adset.id}
    active = next(a for a in account.ads.values() if a.status == "ACTIVE")
    assert api.call("POST", (active.id,), {"status": "PAUSED"}).json() == {"success": True}
    assert account.ads[active.id].status == "PAUSED"
    error = error_of(api.call, "GET", ("1",), {"fields": "id"})
    assert (error.api_error_code(), error.api_error_subcode()) == (100, 33)
    old = error_of(api.call, "GET", (account.id, "campaigns"), {}, api_version="v19.0")
    assert old.api_error_code() == 2635


# -- answers too heavy, attribution, breakdown combinations -------------------------------
REDUCE = "Please reduce the amount of data you're asking for, then retry your request"


def test_too_much_data_is_code_1_every_time_until_less_is_asked(sb: Running) -> None:
    """Meta's answer to a page too heavy to produce: HTTP 500, code 1, no subcode, "Please
    reduce the amount of data you're asking for, then retry your request"
    (facebook-python-business-sdk#470, singer-io/tap-facebook#65), again for the same request;
    a smaller page is answered. A synchronous query over too many rows is refused whatever
    its page size, while a report run computes it and holds its result pages to the same
    page limit."""
    business, api = agency(sb)
    account = business.accounts[0]
    since = account.today(sb_now()) - timedelta(days=10)
    until = since + timedelta(days=9)
    expected = expected_ad_rows(account, since, until)
    assert len(expected) > 12
    fields = ["ad_id", "impressions", "spend"]
    params: dict[str, Any] = {
        "level": "ad",
        "time_increment": 1,
        "time_range": {"since": since.isoformat(), "until": until.isoformat()},
    }
    sb.meta.set_data_limit(account.id, page_cells=8 * len(fields))
    query = {**params, "fields": ",".join(fields), "limit": 10}
    for _ in range(2):  # the same request gets the same answer
        error = error_of(api.call, "GET", (account.id, "insights"), query)
        assert (error.http_status(), error.api_error_code()) == (500, 1)
        assert error.api_error_subcode() is None and error.api_transient_error() is False
        assert error.api_error_message() == REDUCE
    act = AdAccount(account.id, api=api)
    rows = list(act.get_insights(fields=fields, params={**params, "limit": 8}))
    assert {(r["ad_id"], r["date_start"]) for r in rows} == set(expected)

    sb.meta.set_data_limit(account.id, page_cells=8 * len(fields), query_rows=len(expected) - 1)
    small = error_of(api.call, "GET", (account.id, "insights"), {**query, "limit": 1})
    assert (small.http_status(), small.api_error_code()) == (500, 1)
    job = act.get_insights(fields=fields, params=params, is_async=True)
    while job.api_get()["async_status"] != "Job Completed":
        pass
    heavy = error_of(api.call, "GET", (job["id"], "insights"), {"limit": 10})
    assert (heavy.http_status(), heavy.api_error_code()) == (500, 1)
    results = list(job.get_insights(params={"limit": 8}))
    assert {(r["ad_id"], r["date_start"]) for r in results} == set(expected)


_EVENTS = {"CLICK_THROUGH": "click", "VIEW_THROUGH": "view"}


def test_each_actions_value_follows_its_ad_sets_attribution_setting(sb: Running) -> None:
    """Since June 10, 2025 the Insights API answers as Ads Manager does, whatever
    ``use_unified_attribution_setting`` says (Insights API, "Discrepancy with Ads Manager"):
    an action's ``value`` counts the windows of the ad set's attribution setting, which the
    ``attribution_setting`` field names (``7d_click_1d_view``) -- that field only with
    ``use_unified_attribution_setting=true``, null otherwise (airbytehq/airbyte#29894). The
    attribution parameters must still be well formed. Expected values: the ad set's
    ``attribution_spec`` (AdSet reference) applied to the emulator's per-window counts."""
    business, api = agency(sb, campaigns=3)
    purchase = "offsite_conversion.fb_pixel_purchase"
    account = max(
        business.accounts,
        key=lambda a: sum(
            s.attribution_spec != (("CLICK_THROUGH", 7), ("VIEW_THROUGH", 1))
            for s in a.adsets.values()
        ),
    )
    since = busy_day(account)
    until = since + timedelta(days=6)
    expected = expected_ad_rows(account, since, until)
    act = AdAccount(account.id, api=api)
    fields = ["ad_id", "adset_id", "actions", "attribution_setting"]
    params: dict[str, Any] = {
        "level": "ad",
        "time_increment": 1,
        "time_range": {"since": since.isoformat(), "until": until.isoformat()},
        "action_attribution_windows": ["1d_click", "7d_click", "1d_view"],
        "limit": 500,
    }
    answers = [
        [dict(r) for r in act.get_insights(fields=fields, params={**params, **extra})]
        for extra in (
            {"use_unified_attribution_setting": True},
            {"use_unified_attribution_setting": False, "action_report_time": "impression"},
            {},
        )
    ]
    assert all("attribution_setting" in r for r in answers[0])
    assert not any("attribution_setting" in r for r in answers[1] + answers[2])
    plain = [{k: v for k, v in r.items() if k != "attribution_setting"} for r in answers[0]]
    assert plain == answers[1] == answers[2]
    differs = 0
    for row in answers[0]:
        adset = account.adsets[row["adset_id"]]
        windows = [f"{days}d_{_EVENTS[event]}" for event, days in adset.attribution_spec]
        assert row["attribution_setting"] == "_".join(windows)
        counts = expected[(row["ad_id"], row["date_start"])].actions.get(purchase)
        if counts:
            [item] = [a for a in row["actions"] if a["action_type"] == purchase]
            assert int(item["value"]) == sum(counts[w] for w in windows)
            differs += int(item["value"]) != counts["7d_click"] + counts["1d_view"]
    assert differs  # some ad sets count other windows than 7-day click and 1-day view
    spec = api.call("GET", (row["adset_id"],), {"fields": "attribution_spec"}).json()
    assert spec["attribution_spec"] == [
        {"event_type": e, "window_days": d} for e, d in adset.attribution_spec
    ]
    for bad in ({"use_unified_attribution_setting": "maybe"}, {"action_report_time": "later"}):
        error = error_of(api.call, "GET", (account.id, "insights"), {**params, **bad})
        assert error.api_error_code() == 100


def test_breakdowns_combine_only_as_metas_table_allows(sb: Running) -> None:
    """Insights API Breakdowns, "Combining breakdowns": only some permutations exist (age,
    gender, age+gender, country, publisher_platform, ...); another is refused with code 100,
    naming the columns -- ``action_type`` among them when action fields are asked for."""
    business, api = agency(sb)
    account = business.accounts[0]
    day = busy_day(account).isoformat()
    act = AdAccount(account.id, api=api)
    base: dict[str, Any] = {"level": "ad", "time_range": {"since": day, "until": day}}
    for ok in (["age", "gender"], ["country"], ["publisher_platform"]):
        assert list(act.get_insights(fields=["impressions"], params={**base, "breakdowns": ok}))
    for fields, columns in (
        (["impressions"], "age, country"),
        (["actions"], "action_type, age, country"),
    ):
        error = error_of(
            lambda f=fields: list(
                act.get_insights(fields=f, params={**base, "breakdowns": ["age", "country"]})
            )
        )
        assert error.api_error_code() == 100 and error.http_status() == 400
        message = error.api_error_message() or ""
        assert f"Current combination of data breakdown columns ({columns}) is invalid" in message
