"""analytics views

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 07:30:00

Schema ``analytics``: cross-channel views for analysts, documented column by column in
``docs/data-dictionary.md`` ("Analytics views").

* ``ad_performance_daily``: one row per integration, platform, account-local day and ad
  (Meta ad sets are ad groups); ``campaign_performance_daily``: the same per campaign, from
  campaign-level data for Google Ads (Performance Max has no ad rows) and from every ad's
  insights for Meta (deleted and archived ads are synced, so the sum is the campaign);
  ``client_activity_daily``: Slack and Gmail messages per client and UTC day.
* They are ``security_invoker`` views: the querying analyst's row-level security applies to
  every table they read, exactly as if the analyst queried the tables.
* Whether a day is final depends on the integration's lookback window, kept in
  ``integration.config``; a member analyst may not read an agency-wide integration row. The
  helper view ``analytics.integration_lookback`` reads only ``(agency_id, id, client_id,
  provider, config)`` of ``integration`` as the ``NOLOGIN`` role ``aos_analytics``, whose one
  policy lets an analyst see the windows of their own agency's integrations that are
  agency-wide or of their clients, and exposes nothing of the config but the window. It is
  not ``security_invoker`` (that is its point) and is ``security_barrier``.
* Analysts get ``USAGE`` on the schema and ``SELECT`` on the views, and still create nothing.

Frozen: the SQL is written out here (no application imports).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA_SQL = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_analytics') THEN
    CREATE ROLE aos_analytics NOLOGIN NOINHERIT;
  END IF;
END $$;
GRANT aos_analytics TO CURRENT_USER;
CREATE SCHEMA analytics;
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;
GRANT USAGE ON SCHEMA analytics TO aos_analyst;
GRANT USAGE ON SCHEMA public, aos_rls TO aos_analytics;
GRANT EXECUTE ON FUNCTION aos_rls.analyst_agency(), aos_rls.analyst_sees_all_clients(),
  aos_rls.analyst_clients() TO aos_analytics;
GRANT SELECT (agency_id, id, client_id, provider, config) ON public.integration TO aos_analytics;
CREATE POLICY analytics_lookback ON public.integration FOR SELECT TO aos_analytics USING (
  NOT pg_catalog.pg_has_role(session_user, 'aos_analyst', 'MEMBER')
  OR (agency_id = (SELECT aos_rls.analyst_agency())
      AND ((SELECT aos_rls.analyst_sees_all_clients())
           OR client_id IS NULL
           OR client_id = ANY ((SELECT aos_rls.analyst_clients())::bigint[])))
);
"""

# The lookback window of each integration, from its config when that holds a whole number
# (Google Ads: ``conversion_window_days``; Meta Ads: ``lookback_days``), else NULL (the views
# then use the provider's default: 30 and 28 days).
LOOKBACK_SQL = r"""
CREATE VIEW analytics.integration_lookback WITH (security_barrier = true) AS
SELECT i.agency_id,
       i.id AS integration_id,
       i.provider,
       CASE WHEN pg_catalog.jsonb_typeof(i.config -> k.key) = 'number'
                 AND (i.config ->> k.key) ~ '^[0-9]{1,4}$'
            THEN (i.config ->> k.key)::integer END AS lookback_days
  FROM public.integration AS i
 CROSS JOIN LATERAL (SELECT CASE i.provider WHEN 'google_ads' THEN 'conversion_window_days'
                                            ELSE 'lookback_days' END AS key) AS k;
GRANT CREATE ON SCHEMA analytics TO aos_analytics;  -- a new owner needs it, for the moment
ALTER VIEW analytics.integration_lookback OWNER TO aos_analytics;
REVOKE CREATE ON SCHEMA analytics FROM aos_analytics;
"""

# ``is_final`` (in each part below): the day is older than the account's local today minus the
# lookback window, so no run reads it again. An account whose time zone is not known yet counts
# from UTC-12 (``Etc/GMT+12``, the earliest today on Earth): a day is never called final early.
META_AD_SQL = """
SELECT i.agency_id, i.client_id, c.name AS client_name, i.integration_id,
       'meta_ads'::text AS platform, i.date_start AS day,
       i.account_id, a.name AS account_name, i.currency, a.timezone_name AS time_zone,
       i.campaign_id, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.objective AS campaign_type,
       i.adset_id AS ad_group_id, s.name AS ad_group_name, s.status AS ad_group_status,
       i.ad_id, d.name AS ad_name, d.status AS ad_status, NULL::text AS ad_type,
       i.impressions, i.clicks, i.spend, i.conversions, i.conversion_value,
       (i.date_start < (pg_catalog.now() AT TIME ZONE coalesce(a.timezone_name, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 28)) AS is_final,
       i.synced_at
  FROM public.meta_ad_insights_daily AS i
  LEFT JOIN public.meta_ad_accounts AS a
    ON a.agency_id = i.agency_id AND a.integration_id = i.integration_id
   AND a.account_id = i.account_id
  LEFT JOIN public.meta_campaigns AS ca
    ON ca.agency_id = i.agency_id AND ca.integration_id = i.integration_id
   AND ca.campaign_id = i.campaign_id
  LEFT JOIN public.meta_ad_sets AS s
    ON s.agency_id = i.agency_id AND s.integration_id = i.integration_id
   AND s.adset_id = i.adset_id
  LEFT JOIN public.meta_ads AS d
    ON d.agency_id = i.agency_id AND d.integration_id = i.integration_id AND d.ad_id = i.ad_id
  LEFT JOIN public.client AS c ON c.agency_id = i.agency_id AND c.id = i.client_id
  LEFT JOIN analytics.integration_lookback AS w
    ON w.agency_id = i.agency_id AND w.integration_id = i.integration_id
 WHERE i.deleted_at IS NULL
"""

GOOGLE_AD_SQL = """
SELECT f.agency_id, f.client_id, c.name AS client_name, f.integration_id,
       'google_ads'::text AS platform, f.date AS day,
       f.customer_id::text AS account_id, cu.name AS account_name, f.currency,
       cu.time_zone,
       f.campaign_id::text, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.advertising_channel_type AS campaign_type,
       f.ad_group_id::text, g.name AS ad_group_name, g.status AS ad_group_status,
       f.ad_id::text, d.name AS ad_name, d.status AS ad_status, d.type AS ad_type,
       f.impressions, f.clicks, f.cost AS spend, f.conversions,
       f.conversions_value AS conversion_value,
       (f.date < (pg_catalog.now() AT TIME ZONE coalesce(cu.time_zone, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 30)) AS is_final,
       f.synced_at
  FROM public.google_ads_ad_daily AS f
  LEFT JOIN public.google_ads_customers AS cu
    ON cu.agency_id = f.agency_id AND cu.integration_id = f.integration_id
   AND cu.customer_id = f.customer_id
  LEFT JOIN public.google_ads_campaigns AS ca
    ON ca.agency_id = f.agency_id AND ca.integration_id = f.integration_id
   AND ca.campaign_id = f.campaign_id
  LEFT JOIN public.google_ads_ad_groups AS g
    ON g.agency_id = f.agency_id AND g.integration_id = f.integration_id
   AND g.ad_group_id = f.ad_group_id
  LEFT JOIN public.google_ads_ads AS d
    ON d.agency_id = f.agency_id AND d.integration_id = f.integration_id
   AND d.ad_group_id = f.ad_group_id AND d.ad_id = f.ad_id
  LEFT JOIN public.client AS c ON c.agency_id = f.agency_id AND c.id = f.client_id
  LEFT JOIN analytics.integration_lookback AS w
    ON w.agency_id = f.agency_id AND w.integration_id = f.integration_id
 WHERE f.deleted_at IS NULL
"""

# Meta: every ad's insights of the day, deleted and archived ads included (all are synced).
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
          FROM public.meta_ad_insights_daily
         WHERE deleted_at IS NULL
         GROUP BY agency_id, client_id, integration_id, account_id, campaign_id, currency,
                  date_start) AS i
  LEFT JOIN public.meta_ad_accounts AS a
    ON a.agency_id = i.agency_id AND a.integration_id = i.integration_id
   AND a.account_id = i.account_id
  LEFT JOIN public.meta_campaigns AS ca
    ON ca.agency_id = i.agency_id AND ca.integration_id = i.integration_id
   AND ca.campaign_id = i.campaign_id
  LEFT JOIN public.client AS c ON c.agency_id = i.agency_id AND c.id = i.client_id
  LEFT JOIN analytics.integration_lookback AS w
    ON w.agency_id = i.agency_id AND w.integration_id = i.integration_id
"""

GOOGLE_CAMPAIGN_SQL = """
SELECT f.agency_id, f.client_id, c.name AS client_name, f.integration_id,
       'google_ads'::text AS platform, f.date AS day,
       f.customer_id::text AS account_id, cu.name AS account_name, f.currency,
       cu.time_zone,
       f.campaign_id::text, ca.name AS campaign_name, ca.status AS campaign_status,
       ca.advertising_channel_type AS campaign_type,
       f.impressions, f.clicks, f.cost AS spend, f.conversions,
       f.conversions_value AS conversion_value,
       (f.date < (pg_catalog.now() AT TIME ZONE coalesce(cu.time_zone, 'Etc/GMT+12'))::date
        - coalesce(w.lookback_days, 30)) AS is_final,
       f.synced_at
  FROM public.google_ads_campaign_daily AS f
  LEFT JOIN public.google_ads_customers AS cu
    ON cu.agency_id = f.agency_id AND cu.integration_id = f.integration_id
   AND cu.customer_id = f.customer_id
  LEFT JOIN public.google_ads_campaigns AS ca
    ON ca.agency_id = f.agency_id AND ca.integration_id = f.integration_id
   AND ca.campaign_id = f.campaign_id
  LEFT JOIN public.client AS c ON c.agency_id = f.agency_id AND c.id = f.client_id
  LEFT JOIN analytics.integration_lookback AS w
    ON w.agency_id = f.agency_id AND w.integration_id = f.integration_id
 WHERE f.deleted_at IS NULL
"""

# Days are UTC days. Slack: every live message but channel joins and leaves. Gmail: every live
# message but drafts and spam; inbound when sent from one of the client's domains, outbound
# when not and some To/Cc address is in one of them.
ACTIVITY_SQL = """
CREATE VIEW analytics.client_activity_daily WITH (security_invoker = true) AS
WITH slack AS (
  SELECT m.agency_id, m.client_id, (m.posted_at AT TIME ZONE 'UTC')::date AS day,
         count(*) AS slack_messages, max(m.posted_at) AS last_at
    FROM public.slack_messages AS m
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
            FROM public.gmail_messages AS e
            JOIN public.client AS k ON k.agency_id = e.agency_id AND k.id = e.client_id
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
  JOIN public.client AS c
    ON c.agency_id = coalesce(s.agency_id, m.agency_id)
   AND c.id = coalesce(s.client_id, m.client_id);
"""

VIEWS = ("ad_performance_daily", "campaign_performance_daily", "client_activity_daily")


def _union(*parts: str) -> str:
    return "\nUNION ALL\n".join(part.strip() for part in parts)


def upgrade() -> None:
    op.execute(SCHEMA_SQL)
    op.execute(LOOKBACK_SQL)
    op.execute(
        "CREATE VIEW analytics.ad_performance_daily WITH (security_invoker = true) AS\n"
        + _union(META_AD_SQL, GOOGLE_AD_SQL)
    )
    op.execute(
        "CREATE VIEW analytics.campaign_performance_daily WITH (security_invoker = true) AS\n"
        + _union(META_CAMPAIGN_SQL, GOOGLE_CAMPAIGN_SQL)
    )
    op.execute(ACTIVITY_SQL)
    names = ", ".join(f"analytics.{v}" for v in (*VIEWS, "integration_lookback"))
    op.execute(f"REVOKE ALL ON {names} FROM PUBLIC")
    op.execute(f"GRANT SELECT ON {names} TO aos_analyst")


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
    op.execute("DROP POLICY analytics_lookback ON public.integration")
    op.execute(
        "REVOKE SELECT (agency_id, id, client_id, provider, config) ON public.integration "
        "FROM aos_analytics"
    )
    op.execute(
        "REVOKE EXECUTE ON FUNCTION aos_rls.analyst_agency(), aos_rls.analyst_sees_all_clients(), "
        "aos_rls.analyst_clients() FROM aos_analytics"
    )
    op.execute("REVOKE USAGE ON SCHEMA public, aos_rls FROM aos_analytics")
