"""``sync_meta_ads`` end to end: the Meta Graph emulator over real sockets, the real
facebook-business SDK, real PostgreSQL and real Prefect.

Expected rows are built from the emulator's own objects (its ads tree and
``MetaAccount.ad_day``) through the mapping below, never through the connector's records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from db import engine as db_engine
from db import schema, tenancy
from flows import sync_meta_ads
from sandbox.meta import MetaBusiness, MetaEmulator
from sandbox.meta.data import MetaAccount
from tests.flows.conftest import World, seeded_world

CONVERSION_TYPES = {
    "offsite_conversion.fb_pixel_purchase",
    "onsite_conversion.purchase",
    "offsite_conversion.fb_pixel_lead",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_custom",
}
FIRST_SYNC_DAYS = 90  # the connector's default first-sync depth
LOOKBACK_DAYS = 28


@dataclass
class MetaWorld(World):
    business: MetaBusiness | None = None

    @property
    def meta(self) -> MetaEmulator:
        emulator = self.sandbox.emulators["meta_ads"]
        assert isinstance(emulator, MetaEmulator)
        return emulator

    def add_meta(self, key: str, *, config: dict[str, Any] | None = None) -> int:
        """An agency-wide integration over a business with one owned and two client ad
        accounts: globex's listed as ``act_<id>``, initech's as the bare id."""
        business = self.meta.add_business("Acme Agency", owned=1, clients=2)
        first, second = business.clients
        with self.engine.begin() as conn:
            for name, ids in (("globex", [first.id]), ("initech", [second.account_id])):
                conn.execute(
                    schema.client.update()
                    .where(schema.client.c.id == self.clients[name])
                    .values(ad_account_ids=ids)
                )
            iid = tenancy.add_integration(
                conn,
                self.agency_id,
                "meta_ads",
                f"meta-{key}",
                external_account_id=business.id,
                config=config or {},
            )
            db_engine.default_vault().put(conn, iid, dict(business.credentials))
        self.integrations[key] = iid
        self.business = business
        return iid


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[MetaWorld]:
    with seeded_world(
        MetaWorld, fresh_engine, monkeypatch, providers=("meta_ads",), time_scale=60, seed=23
    ) as w:
        yield w


# -- the emulator's truth, mapped to our columns ------------------------------------------------
def _time(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)  # Graph sends whole seconds


def _today(account: MetaAccount) -> date:
    return account.today(datetime.now(UTC))


def insight_truth(account: MetaAccount, since: date) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    today = _today(account)
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for ad in account.ads.values():  # DELETED and ARCHIVED ones too
        day = since
        while day <= today:
            late = any(a == ad.id and d == day for a, d, _ in account.late)
            numbers = account.ad_day(ad, day)
            if (ad.delivers_on(day, today) or late) and numbers is not None:
                conversions = sum(
                    (w["value"] for t, w in numbers.actions.items() if t in CONVERSION_TYPES), 0
                )
                value = sum(
                    (
                        Decimal(account.money(w["value"]))
                        for t, w in numbers.action_values.items()
                        if t in CONVERSION_TYPES
                    ),
                    Decimal(0),
                )
                rows[(ad.id, day)] = (
                    account.account_id,
                    ad.campaign.id,
                    ad.adset.id,
                    numbers.impressions,
                    numbers.clicks,
                    numbers.reach,
                    Decimal(account.money(numbers.spend)),
                    account.currency,
                    Decimal(conversions),
                    value,
                    "7d_click_1d_view",
                )
            day += timedelta(days=1)
    return rows


def truth(business: MetaBusiness) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    accounts = business.accounts
    out: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {
        "meta_ad_accounts": {
            (a.account_id,): (a.name, a.currency, a.timezone_name, a.account_status, business.id)
            for a in accounts
        },
        "meta_campaigns": {},
        "meta_ad_sets": {},
        "meta_ads": {},
        "meta_ad_insights_daily": {},
    }
    for a in accounts:
        for c in a.campaigns.values():
            out["meta_campaigns"][(c.id,)] = (
                a.account_id,
                c.name,
                c.status,
                c.effective_status,
                c.objective,
            )
        for s in a.adsets.values():
            out["meta_ad_sets"][(s.id,)] = (
                a.account_id,
                s.campaign.id,
                s.name,
                s.status,
                s.effective_status,
                s.daily_budget,
            )
        for ad in a.ads.values():
            out["meta_ads"][(ad.id,)] = (
                a.account_id,
                ad.campaign.id,
                ad.adset.id,
                ad.name,
                ad.status,
                ad.effective_status,
                _time(ad.created_time),
                _time(ad.updated_time),
            )
        since = _today(a) - timedelta(days=FIRST_SYNC_DAYS)
        out["meta_ad_insights_daily"].update(insight_truth(a, since))
    return out


COLUMNS = {
    "meta_ad_accounts": (
        ("account_id",),
        ("name", "currency", "timezone_name", "account_status", "business_id"),
    ),
    "meta_campaigns": (
        ("campaign_id",),
        ("account_id", "name", "status", "effective_status", "objective"),
    ),
    "meta_ad_sets": (
        ("adset_id",),
        ("account_id", "campaign_id", "name", "status", "effective_status", "daily_budget"),
    ),
    "meta_ads": (
        ("ad_id",),
        (
            "account_id",
            "campaign_id",
            "adset_id",
            "name",
            "status",
            "effective_status",
            "created_time",
            "updated_time",
        ),
    ),
    "meta_ad_insights_daily": (
        ("ad_id", "date_start"),
        (
            "account_id",
            "campaign_id",
            "adset_id",
            "impressions",
            "clicks",
            "reach",
            "spend",
            "currency",
            "conversions",
            "conversion_value",
            "attribution_setting",
        ),
    ),
}


def stored(engine: sa.Engine, iid: int) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for name, (key, columns) in COLUMNS.items():
            table = schema.metadata.tables[name]
            query = sa.select(*[table.c[k] for k in key], *[table.c[c] for c in columns]).where(
                table.c.integration_id == iid, table.c.deleted_at.is_(None)
            )
            out[name] = {tuple(r[: len(key)]): tuple(r[len(key) :]) for r in conn.execute(query)}
    return out


def assert_stored_is_truth(world: MetaWorld, iid: int) -> None:
    assert world.business is not None
    want, got = truth(world.business), stored(world.engine, iid)
    for table in COLUMNS:
        missing = want[table].keys() - got[table].keys()
        extra = got[table].keys() - want[table].keys()
        wrong = {
            k: (got[table][k], want[table][k])
            for k in want[table].keys() & got[table].keys()
            if got[table][k] != want[table][k]
        }
        assert not (missing or extra or wrong), (
            f"{table}: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ; "
            f"e.g. {list(missing)[:2]} {list(extra)[:2]} {list(wrong.items())[:2]}"
        )


def insight_ranges(world: MetaWorld) -> dict[str, list[tuple[str, str]]]:
    """(since, until) of every insights request, per ad account node."""
    ranges: dict[str, list[tuple[str, str]]] = {}
    for entry in world.sandbox.log.entries(method="insights"):
        if entry.params.get("after"):
            continue
        node = entry.path.strip("/").split("/")[1]
        span = json.loads(entry.params["time_range"])
        ranges.setdefault(node, []).append((span["since"], span["until"]))
    return ranges


# -- the tests --------------------------------------------------------------------------------
def test_full_sync_lands_the_truth_deleted_archived_and_past_empty_pages(
    world: MetaWorld,
) -> None:
    iid = world.add_meta("full", config={"page_limit": 3})
    world.meta.set_empty_pages("ads", 1)  # the second page of each ads listing: empty, "next"
    world.meta.set_empty_pages("insights", 1)
    result = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert result["status"] == "succeeded", result
    assert_stored_is_truth(world, iid)

    assert world.business is not None
    want = truth(world.business)
    statuses = {row[4] for row in want["meta_ads"].values()}
    assert {"ACTIVE", "PAUSED", "ARCHIVED", "DELETED"} <= statuses
    deleted = [k for k, row in want["meta_ads"].items() if row[4] == "DELETED"]
    assert any(k[0] == d[0] for k in want["meta_ad_insights_daily"] for d in deleted)
    # An ads listing of 8 objects at 3 a page, its second page empty: 4 requests per account.
    ads_pages = world.sandbox.log.entries(method="ads")
    assert len(ads_pages) == 4 * len(world.business.accounts)
    assert result["streams"]["insights_daily"]["inserted"] == len(want["meta_ad_insights_daily"])

    # Rows are attributed through the clients' ad accounts (act_ prefix or not).
    owned, first, second = world.business.accounts
    expected_client = {
        owned.account_id: None,
        first.account_id: world.clients["globex"],
        second.account_id: world.clients["initech"],
    }
    with world.engine.connect() as conn:
        for name in COLUMNS:
            table = schema.metadata.tables[name]
            pairs = set(conn.execute(sa.select(table.c.account_id, table.c.client_id).distinct()))
            assert pairs == set(expected_client.items()), name


def test_incremental_rereads_the_lookback_and_late_conversions(world: MetaWorld) -> None:
    iid = world.add_meta("inc")
    first = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert first["status"] == "succeeded"
    assert world.business is not None
    accounts = world.business.accounts

    # Nothing changed upstream: only the lookback is read again, and nothing is rewritten.
    world.sandbox.log.clear()
    second = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert second["status"] == "succeeded"
    ranges = insight_ranges(world)
    for account in accounts:
        today = _today(account)
        since = (today - timedelta(days=LOOKBACK_DAYS)).isoformat()
        assert ranges[account.id] == [(since, today.isoformat())]
    for stream in ("ad_accounts", "campaigns", "ad_sets", "ads", "insights_daily"):
        counts = second["streams"][stream]
        assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 0, 0), stream
    assert_stored_is_truth(world, iid)

    # Late conversions: inside the lookback they reach the stored day, outside they do not.
    account = accounts[0]
    today = _today(account)
    ad = next(
        a
        for a in account.ads.values()
        if a.status == "ACTIVE"
        and all(
            account.ad_day(a, today - timedelta(days=n)) is not None
            and a.delivers_on(today - timedelta(days=n), today)
            for n in (5, 40)
        )
    )
    inside, outside = today - timedelta(days=5), today - timedelta(days=40)
    table = schema.meta_ad_insights_daily

    def conversions(day: date) -> tuple[Decimal, Decimal]:
        with world.engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.conversions, table.c.conversion_value).where(
                    table.c.integration_id == iid,
                    table.c.ad_id == ad.id,
                    table.c.date_start == day,
                )
            ).one()
        return row[0], row[1]

    before_inside, before_outside = conversions(inside), conversions(outside)
    world.meta.add_late_conversions(ad.id, inside, count=3, value="90.00")
    world.meta.add_late_conversions(ad.id, outside, count=2, value="40.00")
    third = sync_meta_ads(integration_id=iid, requested_by=world.users["owner"])
    assert third["status"] == "succeeded"
    assert conversions(inside) == (before_inside[0] + 3, before_inside[1] + Decimal("90.00"))
    assert conversions(outside) == before_outside
    insights = third["streams"]["insights_daily"]
    assert (insights["inserted"], insights["updated"]) == (0, 1)
    # The stored table is the truth except for the day the lookback no longer reaches.
    want = truth(world.business)["meta_ad_insights_daily"]
    got = stored(world.engine, iid)["meta_ad_insights_daily"]
    differ = {k for k in want.keys() & got.keys() if want[k] != got[k]}
    assert differ == {(ad.id, outside)} and want.keys() == got.keys()
