"""meta ads breakdowns

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 07:30:00

The Meta Ads opt-in breakdown table ``meta_ad_insights_breakdown_daily``: one ad on one
account-local day in one bucket of one set of breakdowns. The key holds the set's name
(``breakdown``, e.g. ``age,gender``) and every dimension column, ``''`` where the set does not
break down by it, so rows of different sets never collide. Like every provider table since
0004: the key and indexes lead with ``agency_id``, the integration is referenced as
``(agency_id, integration_id)``, and analysts read their slice through row-level security.

Frozen: the SQL is written out here (no application imports), so this revision keeps doing
what it did whatever later code says.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE_SQL = """
CREATE TABLE meta_ad_insights_breakdown_daily (
    integration_id bigint NOT NULL,
    ad_id text NOT NULL,
    date_start date NOT NULL,
    breakdown text NOT NULL,
    age text NOT NULL,
    gender text NOT NULL,
    country text NOT NULL,
    publisher_platform text NOT NULL,
    agency_id bigint NOT NULL,
    client_id bigint,
    account_id text NOT NULL,
    campaign_id text NOT NULL,
    adset_id text NOT NULL,
    impressions bigint NOT NULL,
    clicks bigint NOT NULL,
    reach bigint,
    spend numeric NOT NULL,
    currency text NOT NULL,
    conversions numeric NOT NULL,
    conversion_value numeric NOT NULL,
    actions jsonb,
    action_values jsonb,
    attribution_setting text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT pk_meta_ad_insights_breakdown_daily PRIMARY KEY (
        agency_id, integration_id, ad_id, date_start, breakdown, age, gender, country,
        publisher_platform
    ),
    CONSTRAINT fk_meta_ad_insights_breakdown_daily_integration FOREIGN KEY (agency_id, integration_id)
        REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
"""
INDEX_SQL = (
    "CREATE INDEX ix_meta_ad_insights_breakdown_daily_agency_client "
    "ON meta_ad_insights_breakdown_daily (agency_id, client_id)",
    "CREATE INDEX ix_meta_ad_insights_breakdown_daily_account_day "
    "ON meta_ad_insights_breakdown_daily (agency_id, integration_id, account_id, date_start)",
)
# Frozen: the row-level security of every provider table, as 0004 spelled it.
POLICY_SQL = """
ALTER TABLE public.meta_ad_insights_breakdown_daily ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analyst_read ON public.meta_ad_insights_breakdown_daily;
CREATE POLICY analyst_read ON public.meta_ad_insights_breakdown_daily FOR SELECT TO aos_analyst
USING (
  agency_id = (SELECT aos_rls.analyst_agency())
  AND ((SELECT aos_rls.analyst_sees_all_clients())
       OR client_id = ANY ((SELECT aos_rls.analyst_clients())::bigint[]))
);
GRANT SELECT ON public.meta_ad_insights_breakdown_daily TO aos_analyst;
"""


def upgrade() -> None:
    op.execute(TABLE_SQL)
    for statement in INDEX_SQL:
        op.execute(statement)
    op.execute(POLICY_SQL)


def downgrade() -> None:
    op.execute("DROP TABLE meta_ad_insights_breakdown_daily")
