"""The analytics views, written once for every reader of an agency's database.

``db/readers.py`` creates them twice over: in schema ``analytics`` over the agency's whole
tables (``public``), for owners, admins and managers; and in each member login's own schema over
that member's views of its clients' partitions. The SQL names its source schema ``{s}``, so both
are the same views over different relations. ``docs/data-dictionary.md`` ("Analytics views")
documents every column.

* ``ad_performance_daily``: what analysts reach for first, so its rows add up to each account's
  numbers: one row per integration, platform, account-local day and ad (``level`` 'ad'; Meta ad
  sets are ad groups), plus for Google Ads one ``level`` 'campaign' row (no ad group or ad) per
  campaign and day that says more than its ads' rows: the rest of the campaign's own numbers,
  all of them for Performance Max, which has no ads. ``campaign_performance_daily``: one row per
  campaign, from campaign data for Google Ads and from every ad's insights for Meta (deleted and
  archived ads are synced, so the sum is the campaign); ``client_activity_daily``: Slack and
  Gmail messages per client and UTC day.
* ``is_final``: the day is older than the account's local today minus the integration's re-read
  window (``integration.lookback_days``, else the provider's default: 30 days for Google Ads, 28
  for Meta), so no run reads it again. An account whose time zone is not known yet counts from
  UTC-12 (``Etc/GMT+12``, the earliest today on Earth): a day is never called final early.
"""

from __future__ import annotations

from psycopg import sql

__all__ = ["VIEW_NAMES", "view_statements"]

META_AD_SQL = """
SELECT i.agency_id, i.client_id, c.name AS client_name, i.integration_id,
       'meta_ads'::text AS platform, 'ad'::text AS level, i.date_start AS day,
       i.account_id, a.name AS account_name, i.currency, a.timezone_name AS time_zone,
       i.campaign_id, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.objective AS campaign_type,
       i.adset_id AS ad_group_id, s.name AS ad_group_name, s.status AS ad_group_status,
       i.ad_id, d.name AS ad_name, d.status AS ad_status, NULL::text AS ad_type,
       i.impressions, i.clicks, i.spend, i.conversions, i.conversion_value,
       (i.date_start < (pg_catalog.now() AT TIME ZONE coalesce(a.timezone_name, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 28)) AS is_final,
       i.synced_at
  FROM {s}.meta_ad_insights_daily AS i
  LEFT JOIN {s}.meta_ad_accounts AS a
    ON a.agency_id = i.agency_id AND a.integration_id = i.integration_id
   AND a.account_id = i.account_id
  LEFT JOIN {s}.meta_campaigns AS ca
    ON ca.agency_id = i.agency_id AND ca.integration_id = i.integration_id
   AND ca.campaign_id = i.campaign_id
  LEFT JOIN {s}.meta_ad_sets AS s
    ON s.agency_id = i.agency_id AND s.integration_id = i.integration_id
   AND s.adset_id = i.adset_id
  LEFT JOIN {s}.meta_ads AS d
    ON d.agency_id = i.agency_id AND d.integration_id = i.integration_id AND d.ad_id = i.ad_id
  LEFT JOIN {s}.client AS c ON c.agency_id = i.agency_id AND c.id = i.client_id
  LEFT JOIN {s}.integration AS w ON w.agency_id = i.agency_id AND w.id = i.integration_id
 WHERE i.deleted_at IS NULL
"""

META_CAMPAIGN_SQL = """
SELECT i.agency_id, i.client_id, c.name AS client_name, i.integration_id,
       'meta_ads'::text AS platform, i.day,
       i.account_id, a.name AS account_name, i.currency, a.timezone_name AS time_zone,
       i.campaign_id, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.objective AS campaign_type,
       i.impressions, i.clicks, i.spend, i.conversions, i.conversion_value,
       (i.day < (pg_catalog.now() AT TIME ZONE coalesce(a.timezone_name, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 28)) AS is_final,
       i.synced_at
  FROM (SELECT agency_id, client_id, integration_id, account_id, campaign_id, currency,
               date_start AS day, sum(impressions)::bigint AS impressions,
               sum(clicks)::bigint AS clicks, sum(spend) AS spend,
               sum(conversions) AS conversions, sum(conversion_value) AS conversion_value,
               max(synced_at) AS synced_at
          FROM {s}.meta_ad_insights_daily
         WHERE deleted_at IS NULL
         GROUP BY agency_id, client_id, integration_id, account_id, campaign_id, currency,
                  date_start) AS i
  LEFT JOIN {s}.meta_ad_accounts AS a
    ON a.agency_id = i.agency_id AND a.integration_id = i.integration_id
   AND a.account_id = i.account_id
  LEFT JOIN {s}.meta_campaigns AS ca
    ON ca.agency_id = i.agency_id AND ca.integration_id = i.integration_id
   AND ca.campaign_id = i.campaign_id
  LEFT JOIN {s}.client AS c ON c.agency_id = i.agency_id AND c.id = i.client_id
  LEFT JOIN {s}.integration AS w ON w.agency_id = i.agency_id AND w.id = i.integration_id
"""

# Google Ads. Every row ``f`` is one campaign (or one of its ads) on one day, with the
# columns of the metrics tables; these pieces are shared by the queries below.
_GOOGLE_HEAD = """
SELECT f.agency_id, f.client_id, c.name AS client_name, f.integration_id,
       'google_ads'::text AS platform,"""
_GOOGLE_CAMPAIGN = """
       f.customer_id::text AS account_id, cu.name AS account_name, f.currency,
       cu.time_zone,
       f.campaign_id::text, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.advertising_channel_type AS campaign_type,"""
_GOOGLE_METRICS = """
       f.impressions, f.clicks, f.cost AS spend, f.conversions,
       f.conversions_value AS conversion_value,
       (f.date < (pg_catalog.now() AT TIME ZONE coalesce(cu.time_zone, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 30)) AS is_final,
       f.synced_at"""
_GOOGLE_JOINS = """
  LEFT JOIN {s}.google_ads_customers AS cu
    ON cu.agency_id = f.agency_id AND cu.integration_id = f.integration_id
   AND cu.customer_id = f.customer_id
  LEFT JOIN {s}.google_ads_campaigns AS ca
    ON ca.agency_id = f.agency_id AND ca.integration_id = f.integration_id
   AND ca.campaign_id = f.campaign_id
  LEFT JOIN {s}.client AS c ON c.agency_id = f.agency_id AND c.id = f.client_id
  LEFT JOIN {s}.integration AS w ON w.agency_id = f.agency_id AND w.id = f.integration_id"""

GOOGLE_AD_SQL = (
    _GOOGLE_HEAD
    + " 'ad'::text AS level, f.date AS day,"
    + _GOOGLE_CAMPAIGN
    + """
       f.ad_group_id::text, g.name AS ad_group_name, g.status AS ad_group_status,
       f.ad_id::text, d.name AS ad_name, d.status AS ad_status, d.type AS ad_type,"""
    + _GOOGLE_METRICS
    + "\n  FROM {s}.google_ads_ad_daily AS f"
    + _GOOGLE_JOINS
    + """
  LEFT JOIN {s}.google_ads_ad_groups AS g
    ON g.agency_id = f.agency_id AND g.integration_id = f.integration_id
   AND g.ad_group_id = f.ad_group_id
  LEFT JOIN {s}.google_ads_ads AS d
    ON d.agency_id = f.agency_id AND d.integration_id = f.integration_id
   AND d.ad_group_id = f.ad_group_id AND d.ad_id = f.ad_id
 WHERE f.deleted_at IS NULL
"""
)

# The part of a Google campaign's day that no ad row carries: its campaign-level numbers minus
# the sum of its ads' rows that day. That is all of it for Performance Max (no ads), and for
# other campaigns what was served at campaign or ad group level only. Only campaign-days whose
# campaign row says more than its ads get such a row, so nothing is counted twice and the rows
# of ``ad_performance_daily`` add up to the campaigns' (so the account's) numbers. Grouped
# without ``client_id`` and ``currency`` (both taken from the campaign row): a campaign row and
# ad rows attributed apart, mid-way through a re-attribution, still net out. The row is negative
# where a run read the ads after late conversions the campaign row it read had not yet got (the
# next run re-reads the day).
GOOGLE_CAMPAIGN_REST_SQL = (
    _GOOGLE_HEAD  # noqa: S608 - fixed text; only the schema name is put in, as an Identifier
    + " 'campaign'::text AS level, f.date AS day,"
    + _GOOGLE_CAMPAIGN
    + """
       NULL::text AS ad_group_id, NULL::text AS ad_group_name, NULL::text AS ad_group_status,
       NULL::text AS ad_id, NULL::text AS ad_name, NULL::text AS ad_status, NULL::text AS ad_type,"""
    + _GOOGLE_METRICS
    + """
  FROM (SELECT agency_id, integration_id, customer_id, campaign_id, date,
               max(client_id) FILTER (WHERE whole) AS client_id,
               max(currency) FILTER (WHERE whole) AS currency,
               sum(impressions)::bigint AS impressions, sum(clicks)::bigint AS clicks,
               sum(cost) AS cost, sum(conversions) AS conversions,
               sum(conversions_value) AS conversions_value, max(synced_at) AS synced_at
          FROM (SELECT agency_id, integration_id, customer_id, campaign_id, date, client_id,
                       currency, true AS whole, impressions, clicks, cost, conversions,
                       conversions_value, synced_at
                  FROM {s}.google_ads_campaign_daily
                 WHERE deleted_at IS NULL
                UNION ALL
                SELECT agency_id, integration_id, customer_id, campaign_id, date, client_id,
                       currency, false, -impressions, -clicks, -cost, -conversions,
                       -conversions_value, synced_at
                  FROM {s}.google_ads_ad_daily
                 WHERE deleted_at IS NULL) AS u
         GROUP BY agency_id, integration_id, customer_id, campaign_id, date
        HAVING bool_or(whole)
           AND (sum(impressions) <> 0 OR sum(clicks) <> 0 OR sum(cost) <> 0
                OR sum(conversions) <> 0 OR sum(conversions_value) <> 0)) AS f"""
    + _GOOGLE_JOINS
)

GOOGLE_CAMPAIGN_SQL = (
    _GOOGLE_HEAD
    + " f.date AS day,"
    + _GOOGLE_CAMPAIGN
    + _GOOGLE_METRICS
    + "\n  FROM {s}.google_ads_campaign_daily AS f"
    + _GOOGLE_JOINS
    + "\n WHERE f.deleted_at IS NULL\n"
)

ACTIVITY_SQL = """
WITH slack AS (
  SELECT m.agency_id, m.client_id, (m.posted_at AT TIME ZONE 'UTC')::date AS day,
         count(*) AS slack_messages, max(m.posted_at) AS last_at
    FROM {s}.slack_messages AS m
   WHERE m.deleted_at IS NULL AND m.client_id IS NOT NULL
     AND m.subtype IS DISTINCT FROM 'channel_join' AND m.subtype IS DISTINCT FROM 'channel_leave'
   GROUP BY 1, 2, 3
), mail AS (
  SELECT g.agency_id, g.client_id, (g.internal_date AT TIME ZONE 'UTC')::date AS day,
         count(*) AS gmail_messages,
         count(*) FILTER (WHERE g.inbound) AS gmail_inbound,
         count(*) FILTER (WHERE NOT g.inbound AND g.to_client) AS gmail_outbound,
         max(g.internal_date) AS last_at
    FROM (SELECT e.agency_id, e.client_id, e.internal_date,
                 coalesce(pg_catalog.split_part(e.from_address, '@', 2)
                          = ANY (k.email_domains), false) AS inbound,
                 EXISTS (SELECT 1 FROM pg_catalog.unnest(e.to_addresses || e.cc_addresses) AS r(a)
                          WHERE pg_catalog.split_part(r.a, '@', 2) = ANY (k.email_domains))
                   AS to_client
            FROM {s}.gmail_messages AS e
            JOIN {s}.client AS k ON k.agency_id = e.agency_id AND k.id = e.client_id
           WHERE e.deleted_at IS NULL
             AND NOT (e.label_ids && ARRAY['DRAFT', 'SPAM']::text[])) AS g
   GROUP BY 1, 2, 3
)
SELECT coalesce(s.agency_id, m.agency_id) AS agency_id,
       coalesce(s.client_id, m.client_id) AS client_id,
       c.name AS client_name,
       coalesce(s.day, m.day) AS day,
       coalesce(s.slack_messages, 0) AS slack_messages,
       coalesce(m.gmail_messages, 0) AS gmail_messages,
       coalesce(m.gmail_inbound, 0) AS gmail_inbound,
       coalesce(m.gmail_outbound, 0) AS gmail_outbound,
       GREATEST(s.last_at, m.last_at) AS last_activity_at
  FROM slack AS s
  FULL JOIN mail AS m
    ON m.agency_id = s.agency_id AND m.client_id = s.client_id AND m.day = s.day
  JOIN {s}.client AS c
    ON c.agency_id = coalesce(s.agency_id, m.agency_id)
   AND c.id = coalesce(s.client_id, m.client_id)
"""

VIEW_NAMES = ("ad_performance_daily", "campaign_performance_daily", "client_activity_daily")


def _union(*parts: str) -> str:
    return "\nUNION ALL\n".join(part.strip() for part in parts)


def view_statements(schema: str, source: str) -> list[sql.Composed]:
    """``CREATE VIEW`` of every analytics view in ``schema``, reading ``source``."""
    bodies = {
        "ad_performance_daily": _union(META_AD_SQL, GOOGLE_AD_SQL, GOOGLE_CAMPAIGN_REST_SQL),
        "campaign_performance_daily": _union(META_CAMPAIGN_SQL, GOOGLE_CAMPAIGN_SQL),
        "client_activity_daily": ACTIVITY_SQL,
    }
    src = sql.Identifier(source).as_string(None)
    return [
        sql.SQL("CREATE VIEW {}.{} AS\n").format(sql.Identifier(schema), sql.Identifier(name))
        + sql.SQL(body.replace("{s}", src))  # type: ignore[arg-type]
        for name, body in bodies.items()
    ]
