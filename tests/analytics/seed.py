"""Two agencies with ads, Slack and Gmail rows, and what each analytics view must show.

The rows are written straight into the provider tables of each agency's own database (the
views only read them). An integration of the specs below that holds rows of several clients is
stored as one integration per client (bound to it) plus an agency-wide one for rows of no
client, as connecting each client's account would make them: a member reads the integrations of
its granted clients, never agency-wide ones. The expected view rows are computed here in Python from the same plain specs, with an independent
idea of each rule (``zoneinfo`` for an account's local today, Python sets for domains), never
by running the views' SQL.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from db import agencydb, readers, schema, tenancy
from db.agencydb import placement
from db.analyst import create_analyst

TODAY = datetime.now(UTC).date()
DAYS_AGO = (0, 2, 4, 10, 40)
SEARCH_ADDS_UP_DAYS_AGO = 4  # the day a Google Search campaign's ads carry all its numbers
AD_KEYS = ("platform", "integration_id", "level", "campaign_id", "ad_group_id", "ad_id", "day")
CAMPAIGN_KEYS = ("platform", "integration_id", "account_id", "campaign_id", "day")
ACTIVITY_KEYS = ("client_id", "day")


@dataclass(frozen=True)
class Account:
    platform: str
    account_id: str
    client: int | None
    time_zone: str
    currency: str


@dataclass
class Agency:
    id: int
    tag: str
    clients: list[int]
    client_names: dict[int, str]
    domains: dict[int, str]
    integrations: dict[str, int] = field(default_factory=dict)
    lookback: dict[str, int | None] = field(default_factory=dict)
    ad_rows: list[dict[str, Any]] = field(default_factory=list)  # expected ad_performance_daily
    campaign_rows: list[dict[str, Any]] = field(default_factory=list)
    activity: dict[tuple[int, date], dict[str, Any]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)


def local_today(time_zone: str) -> date:
    return datetime.now(ZoneInfo(time_zone)).date()


def is_final(day: date, time_zone: str, lookback: int) -> bool:
    return day < local_today(time_zone) - timedelta(days=lookback)


#: Rows waiting for their agency's database: (table, rows), written by :func:`_flush`.
_PENDING: list[tuple[str, list[dict[str, Any]]]] = []
#: (agency-wide integration, client) -> the integration bound to that client.
_SPLIT: dict[tuple[int, int | None], int] = {}


def _insert(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    _PENDING.append((table, [_routed(r) for r in rows]))


def _routed(row: dict[str, Any]) -> dict[str, Any]:
    """The row in the integration of its own client (see the module docstring)."""
    key = (row["integration_id"], row.get("client_id"))
    return {**row, "integration_id": _SPLIT.get(key, row["integration_id"])}


def _integration(
    conn: sa.Connection,
    agency: Agency,
    provider: str,
    name: str,
    config: dict[str, Any] | None = None,
) -> int:
    """An agency-wide integration and one bound to each client, for rows of that client."""
    wide = tenancy.add_integration(conn, agency.id, provider, name, config=config)
    for client in agency.clients:
        _SPLIT[(wide, client)] = tenancy.add_integration(
            conn, agency.id, provider, f"{name}-{client}", client_id=client, config=config
        )
    return wide


def _flush(engine: sa.Engine, agency: Agency) -> None:
    """Write the pending rows into the agency's database (partitions made first)."""
    by_integration: dict[int, set[str]] = {}
    for table, rows in _PENDING:
        for row in rows:
            by_integration.setdefault(row["integration_id"], set()).add(table)
    for integration, tables in sorted(by_integration.items()):
        data = readers.attach(engine, agency.id, integration, sorted(tables))
    data = agencydb.engine_for(engine, agency.id)
    with data.begin() as conn:
        for table, rows in _PENDING:
            if rows:
                conn.execute(schema.agency_metadata.tables[table].insert(), rows)
    _PENDING.clear()
    for rows in (agency.ad_rows, agency.campaign_rows):
        for row in rows:
            row.update(_routed(row))


def seed_agency(
    conn: sa.Connection, tag: str, n: int, meta_lookback: int | None, google_window: int | None
) -> Agency:
    """Agency ``tag`` with clients c0 and c1; ``n`` (1 or 2) keeps ids apart between agencies."""
    agency_id = tenancy.create_agency(conn, f"Agency {tag}")
    names = [f"{tag}-client-{k}" for k in range(2)]
    domains = [f"{tag}-c{k}.example" for k in range(2)]
    clients = [
        tenancy.add_client(conn, agency_id, names[k], email_domains=[domains[k]]) for k in range(2)
    ]
    agency = Agency(
        agency_id,
        tag,
        clients,
        dict(zip(clients, names, strict=True)),
        dict(zip(clients, domains, strict=True)),
    )
    for role in ("owner", "member"):
        email = f"{role}@{tag}.test"
        tenancy.add_user(conn, agency_id, email, role)
        agency.users[role] = email
    if tag == "b":
        tenancy.add_user(conn, agency_id, "manager@b.test", "manager")
        agency.users["manager"] = "manager@b.test"
    member = tenancy.find_user(conn, agency.users["member"])
    tenancy.grant_access(conn, member.id, clients[0], "read")
    _seed_meta(conn, agency, n, meta_lookback)
    _seed_google(conn, agency, n, google_window)
    _seed_activity(conn, agency)
    return agency


# --- ads --------------------------------------------------------------------------------------
def _metrics(seed: int) -> dict[str, Any]:
    return {
        "impressions": 1000 + 37 * seed,
        "clicks": 10 + seed % 17,
        "spend": Decimal(seed * 131 % 9973) / 100,
        "conversions": Decimal(seed % 5) + Decimal("0.25"),
        "conversion_value": Decimal(seed * 7 % 1000) + Decimal("0.5"),
    }


def _seed_meta(conn: sa.Connection, agency: Agency, n: int, lookback: int | None) -> None:
    c0, c1 = agency.clients
    config = {} if lookback is None else {"lookback_days": lookback}
    integration = _integration(conn, agency, "meta_ads", f"{agency.tag}-meta", config)
    agency.integrations["meta_ads"] = integration
    agency.lookback["meta_ads"] = lookback
    window = 28 if lookback is None else lookback
    accounts = [
        Account("meta_ads", f"{n}01", c0, "America/Los_Angeles", "USD"),
        Account("meta_ads", f"{n}02", c1, "Asia/Tokyo", "JPY"),
        Account("meta_ads", f"{n}03", None, "UTC", "EUR"),
    ]
    tenant = {"agency_id": agency.id, "integration_id": integration}
    insights: list[dict[str, Any]] = []
    campaign_totals: dict[tuple[str, str, date], dict[str, Any]] = {}
    for a_i, acc in enumerate(accounts):
        t = {**tenant, "client_id": acc.client}
        cmp_id, set_id = f"{acc.account_id}-cmp", f"{acc.account_id}-set"
        _insert(conn, "meta_ad_accounts", [{**t, "account_id": acc.account_id,
                "name": f"Account {acc.account_id}", "currency": acc.currency,
                "timezone_name": acc.time_zone, "account_status": 1}])  # fmt: skip
        _insert(conn, "meta_campaigns", [{**t, "campaign_id": cmp_id,
                "account_id": acc.account_id, "name": f"Campaign {cmp_id}", "status": "ACTIVE",
                "effective_status": "ACTIVE", "objective": "OUTCOME_SALES"}])  # fmt: skip
        _insert(conn, "meta_ad_sets", [{**t, "adset_id": set_id, "account_id": acc.account_id,
                "campaign_id": cmp_id, "name": f"Set {set_id}", "status": "PAUSED",
                "effective_status": "PAUSED"}])  # fmt: skip
        for ad_i, status in enumerate(("ACTIVE", "DELETED")):
            ad_id = f"{acc.account_id}-ad{ad_i}"
            _insert(conn, "meta_ads", [{**t, "ad_id": ad_id, "account_id": acc.account_id,
                    "campaign_id": cmp_id, "adset_id": set_id, "name": f"Ad {ad_id}",
                    "status": status, "effective_status": status}])  # fmt: skip
            for k in DAYS_AGO:
                day = TODAY - timedelta(days=k)
                m = _metrics(n * 1000 + a_i * 100 + ad_i * 50 + k)
                insights.append({**t, "ad_id": ad_id, "date_start": day,
                                 "account_id": acc.account_id, "campaign_id": cmp_id,
                                 "adset_id": set_id, "currency": acc.currency,
                                 "attribution_setting": "7d_click_1d_view", **m})  # fmt: skip
                final = is_final(day, acc.time_zone, window)
                agency.ad_rows.append({
                    "agency_id": agency.id, "client_id": acc.client,
                    "client_name": agency.client_names.get(acc.client or 0),
                    "integration_id": integration, "platform": "meta_ads", "level": "ad",
                    "day": day, "account_id": acc.account_id,
                    "account_name": f"Account {acc.account_id}",
                    "currency": acc.currency, "time_zone": acc.time_zone,
                    "campaign_id": cmp_id, "campaign_name": f"Campaign {cmp_id}",
                    "campaign_status": "ACTIVE", "campaign_type": "OUTCOME_SALES",
                    "ad_group_id": set_id, "ad_group_name": f"Set {set_id}",
                    "ad_group_status": "PAUSED", "ad_id": ad_id, "ad_name": f"Ad {ad_id}",
                    "ad_status": status, "ad_type": None, **m, "is_final": final,
                })  # fmt: skip
                total = campaign_totals.setdefault(
                    (acc.account_id, cmp_id, day),
                    {"agency_id": agency.id, "client_id": acc.client,
                     "client_name": agency.client_names.get(acc.client or 0),
                     "integration_id": integration, "platform": "meta_ads", "day": day,
                     "account_id": acc.account_id, "account_name": f"Account {acc.account_id}",
                     "currency": acc.currency, "time_zone": acc.time_zone,
                     "campaign_id": cmp_id, "campaign_name": f"Campaign {cmp_id}",
                     "campaign_status": "ACTIVE", "campaign_type": "OUTCOME_SALES",
                     "impressions": 0, "clicks": 0, "spend": Decimal(0),
                     "conversions": Decimal(0), "conversion_value": Decimal(0),
                     "is_final": final},
                )  # fmt: skip
                for key in ("impressions", "clicks", "spend", "conversions", "conversion_value"):
                    total[key] += m[key]
    # A soft-deleted insights row counts nowhere.
    gone = dict(insights[0], date_start=TODAY - timedelta(days=300))
    gone["deleted_at"] = datetime.now(UTC)
    _insert(conn, "meta_ad_insights_daily", insights)
    _insert(conn, "meta_ad_insights_daily", [gone])
    agency.campaign_rows.extend(campaign_totals.values())


def _seed_google(conn: sa.Connection, agency: Agency, n: int, window: int | None) -> None:
    """A manager account over two client accounts; each has a Search campaign (one ad group, an
    enabled and a removed ad) and a Performance Max campaign (campaign-level metrics only).
    Campaign-level metrics exceed the sum of the ads' (not every click belongs to an ad row):
    ``ad_performance_daily`` shows the difference as a campaign-level row, and all of
    Performance Max so."""
    c0, c1 = agency.clients
    config = {} if window is None else {"conversion_window_days": window}
    integration = _integration(conn, agency, "google_ads", f"{agency.tag}-google", config)
    agency.integrations["google_ads"] = integration
    agency.lookback["google_ads"] = window
    days = 30 if window is None else window
    t = {"agency_id": agency.id, "integration_id": integration}
    manager = n * 10_000
    _insert(conn, "google_ads_customers", [{**t, "client_id": None, "customer_id": manager,
            "name": "Manager", "currency": "USD", "time_zone": "UTC", "status": "ENABLED",
            "manager": True}])  # fmt: skip
    accounts = [
        Account("google_ads", str(manager + 1), c0, "Europe/Berlin", "EUR"),
        Account("google_ads", str(manager + 2), c1, "America/New_York", "USD"),
    ]
    ad_daily, campaign_daily = [], []
    for a_i, acc in enumerate(accounts):
        customer = int(acc.account_id)
        tc = {**t, "client_id": acc.client, "customer_id": customer}
        search, pmax, group = customer * 10 + 1, customer * 10 + 2, customer * 10 + 3
        _insert(conn, "google_ads_customers", [{**t, "client_id": acc.client,
                "customer_id": customer, "name": f"Customer {customer}",
                "currency": acc.currency, "time_zone": acc.time_zone, "status": "ENABLED",
                "manager": False, "manager_path": [manager]}])  # fmt: skip
        _insert(conn, "google_ads_campaigns", [
            {**tc, "campaign_id": search, "name": f"Search {search}", "status": "ENABLED",
             "advertising_channel_type": "SEARCH"},
            {**tc, "campaign_id": pmax, "name": f"PMax {pmax}", "status": "ENABLED",
             "advertising_channel_type": "PERFORMANCE_MAX"},
        ])  # fmt: skip
        _insert(conn, "google_ads_ad_groups", [{**tc, "ad_group_id": group,
                "campaign_id": search, "name": f"Group {group}", "status": "ENABLED",
                "type": "SEARCH_STANDARD"}])  # fmt: skip
        ads = [(group * 10 + 1, "ENABLED"), (group * 10 + 2, "REMOVED")]
        _insert(conn, "google_ads_ads", [
            {**tc, "ad_group_id": group, "ad_id": ad_id, "campaign_id": search,
             "name": None if status == "REMOVED" else f"Ad {ad_id}",
             "type": "RESPONSIVE_SEARCH_AD", "status": status}
            for ad_id, status in ads
        ])  # fmt: skip
        for k in DAYS_AGO:
            day = TODAY - timedelta(days=k)
            final = is_final(day, acc.time_zone, days)
            search_total = _metrics(0)
            for key in search_total:
                search_total[key] = 0 if key in ("impressions", "clicks") else Decimal(0)
            for ad_i, (ad_id, status) in enumerate(ads):
                m = _metrics(n * 3000 + a_i * 100 + ad_i * 50 + k)
                ad_daily.append({**tc, "ad_group_id": group, "ad_id": ad_id, "date": day,
                                 "campaign_id": search, "currency": acc.currency,
                                 "impressions": m["impressions"], "clicks": m["clicks"],
                                 "cost": m["spend"], "conversions": m["conversions"],
                                 "conversions_value": m["conversion_value"],
                                 "all_conversions": m["conversions"],
                                 "view_through_conversions": 1})  # fmt: skip
                agency.ad_rows.append({
                    "agency_id": agency.id, "client_id": acc.client,
                    "client_name": agency.client_names[acc.client],
                    "integration_id": integration, "platform": "google_ads", "level": "ad",
                    "day": day, "account_id": acc.account_id,
                    "account_name": f"Customer {customer}",
                    "currency": acc.currency, "time_zone": acc.time_zone,
                    "campaign_id": str(search), "campaign_name": f"Search {search}",
                    "campaign_status": "ENABLED", "campaign_type": "SEARCH",
                    "ad_group_id": str(group), "ad_group_name": f"Group {group}",
                    "ad_group_status": "ENABLED", "ad_id": str(ad_id),
                    "ad_name": None if status == "REMOVED" else f"Ad {ad_id}",
                    "ad_status": status, "ad_type": "RESPONSIVE_SEARCH_AD", **m,
                    "is_final": final,
                })  # fmt: skip
                for key in search_total:
                    search_total[key] += m[key]
            # Campaign level: Search has more than its ads (but for one day, when they add up
            # exactly); Performance Max has no ads at all.
            extra = {
                "impressions": 500,
                "clicks": 7,
                "spend": Decimal("3.21"),
                "conversions": Decimal("1.5"),
                "conversion_value": Decimal("42"),
            }
            if k == SEARCH_ADDS_UP_DAYS_AGO:
                extra = dict.fromkeys(extra, 0)
            pmax_m = _metrics(n * 5000 + a_i * 100 + k)
            for campaign, name, kind, m, beyond_ads in (
                (search, f"Search {search}", "SEARCH",
                 {key: search_total[key] + extra[key] for key in extra}, extra),
                (pmax, f"PMax {pmax}", "PERFORMANCE_MAX", pmax_m, pmax_m),
            ):  # fmt: skip
                campaign_daily.append({**tc, "campaign_id": campaign, "date": day,
                                       "currency": acc.currency,
                                       "impressions": m["impressions"], "clicks": m["clicks"],
                                       "cost": m["spend"], "conversions": m["conversions"],
                                       "conversions_value": m["conversion_value"],
                                       "all_conversions": m["conversions"],
                                       "view_through_conversions": 0})  # fmt: skip
                agency.campaign_rows.append({
                    "agency_id": agency.id, "client_id": acc.client,
                    "client_name": agency.client_names[acc.client],
                    "integration_id": integration, "platform": "google_ads", "day": day,
                    "account_id": acc.account_id, "account_name": f"Customer {customer}",
                    "currency": acc.currency, "time_zone": acc.time_zone,
                    "campaign_id": str(campaign), "campaign_name": name,
                    "campaign_status": "ENABLED", "campaign_type": kind, **m,
                    "is_final": final,
                })  # fmt: skip
                # ad_performance_daily: what no ad row carries, as one campaign-level row
                # (all of Performance Max, the extra of Search), where there is any.
                if not any(beyond_ads.values()):
                    continue
                agency.ad_rows.append({
                    **agency.campaign_rows[-1], **beyond_ads, "level": "campaign",
                    "ad_group_id": None, "ad_group_name": None, "ad_group_status": None,
                    "ad_id": None, "ad_name": None, "ad_status": None, "ad_type": None,
                })  # fmt: skip
    _insert(conn, "google_ads_ad_daily", ad_daily)
    _insert(conn, "google_ads_campaign_daily", campaign_daily)
    gone = dict(ad_daily[0], date=TODAY - timedelta(days=300), deleted_at=datetime.now(UTC))
    _insert(conn, "google_ads_ad_daily", [gone])


# --- Slack and Gmail --------------------------------------------------------------------------
def _at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour, minute), tzinfo=UTC)


def _seed_activity(conn: sa.Connection, agency: Agency) -> None:
    c0, c1 = agency.clients
    tag = agency.tag
    slack = _integration(conn, agency, "slack", f"{tag}-slack")
    gmail = _integration(conn, agency, "gmail", f"{tag}-gmail")
    c1_mailbox = tenancy.add_integration(conn, agency.id, "gmail", f"{tag}-gmail-c1", client_id=c1)
    agency.integrations.update(slack=slack, gmail=gmail, gmail_c1=c1_mailbox)
    counts: dict[tuple[int, date], dict[str, Any]] = defaultdict(
        lambda: {"slack_messages": 0, "gmail_messages": 0, "gmail_inbound": 0,
                 "gmail_outbound": 0, "last_activity_at": None}
    )  # fmt: skip

    def count(client: int, at: datetime, column: str) -> None:
        row = counts[(client, at.astimezone(UTC).date())]
        row[column] += 1
        last = row["last_activity_at"]
        row["last_activity_at"] = at if last is None else max(last, at)

    messages = []
    # (client, channel, at, subtype, deleted, counted)
    plan = [
        (c0, 0, _at(0, 9), None, False, True),
        (c0, 0, _at(0, 23, 59), "bot_message", False, True),
        (c0, 0, _at(1, 0, 1), None, False, True),  # the next UTC day
        (c0, 0, _at(1, 5), "channel_join", False, False),
        (c0, 0, _at(1, 6), None, True, False),  # deleted upstream
        (c1, 1, _at(3, 12), None, False, True),
        (c1, 1, _at(3, 13), "thread_broadcast", False, True),
        (None, 2, _at(3, 14), None, False, False),  # no client: not client activity
    ]
    for i, (client, channel, at, subtype, deleted, counted) in enumerate(plan):
        messages.append({"agency_id": agency.id, "integration_id": slack, "client_id": client,
                         "channel_id": f"C{tag}{channel}", "ts": f"{1700000000 + i}.000100",
                         "posted_at": at, "user_id": "U1", "subtype": subtype,
                         "is_reply": False, "reply_count": 0,
                         "deleted_at": datetime.now(UTC) if deleted else None})  # fmt: skip
        if counted and client is not None:
            count(client, at, "slack_messages")
    _insert(conn, "slack_messages", messages)

    agency_domain = f"{tag}-agency.example"
    d0, d1 = agency.domains[c0], agency.domains[c1]
    # (integration, client, at, from, to, cc, labels, deleted)
    mail = [
        (gmail, c0, _at(0, 8), f"ann@{d0}", [f"me@{agency_domain}"], [], ["INBOX"], False),
        (gmail, c0, _at(0, 9), f"me@{agency_domain}", [f"ann@{d0}"], [], ["SENT"], False),
        (gmail, c0, _at(0, 10), f"me@{agency_domain}", [f"x@{agency_domain}"], [f"bob@{d0}"],
         ["SENT"], False),  # cc to the client: outbound
        (gmail, c0, _at(0, 11), f"me@{agency_domain}", [f"ann@{d0}"], [], ["DRAFT"], False),
        (gmail, c0, _at(0, 12), f"ann@{d0}", [f"me@{agency_domain}"], [], ["SPAM"], False),
        (gmail, c0, _at(0, 13), f"ann@{d0}", [f"me@{agency_domain}"], [], ["INBOX"], True),
        (gmail, c0, _at(5, 7), f"ann@sub.{d0}", [f"me@{agency_domain}"], [], ["INBOX"], False),
        (gmail, None, _at(5, 7), "z@elsewhere.example", [f"me@{agency_domain}"], [], ["INBOX"],
         False),
        # The client's own mailbox: agency-internal mail is activity, neither in nor out.
        (c1_mailbox, c1, _at(2, 15), f"me@{agency_domain}", [f"you@{agency_domain}"], [],
         ["INBOX"], False),
        (c1_mailbox, c1, _at(2, 16), f"cat@{d1}", [f"me@{agency_domain}"], [], ["INBOX"], False),
        (c1_mailbox, c1, _at(2, 17), None, [f"cat@{d1}"], [], ["SENT"], False),
    ]  # fmt: skip
    rows = []
    for i, (integ, client, at, sender, to, cc, labels, deleted) in enumerate(mail):
        rows.append({"agency_id": agency.id, "integration_id": integ, "client_id": client,
                     "message_id": f"m{tag}{i}", "thread_id": f"t{tag}{i}", "history_id": i,
                     "internal_date": at, "from_address": sender, "to_addresses": to,
                     "cc_addresses": cc, "label_ids": labels, "size_estimate": 100,
                     "has_attachments": False,
                     "deleted_at": datetime.now(UTC) if deleted else None})  # fmt: skip
        if client is None or deleted or {"DRAFT", "SPAM"} & set(labels):
            continue
        domains = {agency.domains[client]}
        count(client, at, "gmail_messages")
        if sender is not None and sender.split("@")[1] in domains:
            count(client, at, "gmail_inbound")
        elif {a.split("@")[1] for a in to + cc} & domains:
            count(client, at, "gmail_outbound")
    _insert(conn, "gmail_messages", rows)
    for (client, day), row in counts.items():
        agency.activity[(client, day)] = {
            "agency_id": agency.id,
            "client_id": client,
            "client_name": agency.client_names[client],
            "day": day,
            **row,
        }


# --- the world --------------------------------------------------------------------------------
@dataclass
class World:
    engine: sa.Engine
    a: Agency
    b: Agency
    logins: dict[str, dict[str, Any]]

    def url(self, who: str) -> str:
        login = self.logins[who]
        return (
            sa.make_url(login["url"])
            .set(drivername="postgresql", username=login["role"], password=login["password"])
            .render_as_string(hide_password=False)
        )


def build_world(engine: sa.Engine) -> World:
    with engine.begin() as conn:
        a = seed_agency(conn, "a", 1, meta_lookback=3, google_window=5)
    _flush(engine, a)
    with engine.begin() as conn:
        b = seed_agency(conn, "b", 2, meta_lookback=None, google_window=None)
    _flush(engine, b)
    logins = {}
    for who, agency, email in (
        ("owner", a, a.users["owner"]),
        ("member", a, a.users["member"]),
        ("b_manager", b, b.users["manager"]),
    ):
        role = create_analyst(engine, email)
        logins[who] = {
            "role": role.role_name,
            "password": role.password,
            "url": placement(engine, agency.id).url,
        }
    return World(engine, a, b, logins)


def expected(world: World, view: str, who: str) -> list[dict[str, Any]]:
    """The rows ``who`` must see in ``view``."""
    agency = world.b if who == "b_manager" else world.a
    rows = {
        "ad_performance_daily": agency.ad_rows,
        "campaign_performance_daily": agency.campaign_rows,
        "client_activity_daily": list(agency.activity.values()),
    }[view]
    if who == "member":
        rows = [r for r in rows if r["client_id"] == agency.clients[0]]
    return rows


KEYS = {
    "ad_performance_daily": AD_KEYS,
    "campaign_performance_daily": CAMPAIGN_KEYS,
    "client_activity_daily": ACTIVITY_KEYS,
}
