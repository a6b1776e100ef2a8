"""meta ads tables

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00

The Meta Ads provider's tables: ad accounts, campaigns, ad sets, ads and daily ad insights.
Like every provider table since 0004: keys and indexes lead with ``agency_id``, the
integration is referenced as ``(agency_id, integration_id)``, and analysts read their slice
through row-level security.

Frozen: the SQL is written out here (no application imports), so this revision keeps doing
what it did whatever later code says.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TENANT_HEAD = """
    integration_id bigint NOT NULL,
{key_columns}
    agency_id bigint NOT NULL,
    client_id bigint,
"""
TENANT_TAIL = """
    synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT pk_{table} PRIMARY KEY (agency_id, integration_id, {key}),
    CONSTRAINT fk_{table}_integration FOREIGN KEY (agency_id, integration_id)
        REFERENCES integration (agency_id, id) ON DELETE CASCADE
"""
# (table, natural key with its types, the provider's own columns)
TABLES = (
    (
        "meta_ad_accounts",
        (("account_id", "text"),),
        """
    name text NOT NULL,
    currency text NOT NULL,
    timezone_name text NOT NULL,
    account_status integer NOT NULL,
    business_id text,""",
    ),
    (
        "meta_campaigns",
        (("campaign_id", "text"),),
        """
    account_id text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    effective_status text NOT NULL,
    objective text,
    created_time timestamptz,
    updated_time timestamptz,""",
    ),
    (
        "meta_ad_sets",
        (("adset_id", "text"),),
        """
    account_id text NOT NULL,
    campaign_id text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    effective_status text NOT NULL,
    daily_budget bigint,
    created_time timestamptz,
    updated_time timestamptz,""",
    ),
    (
        "meta_ads",
        (("ad_id", "text"),),
        """
    account_id text NOT NULL,
    campaign_id text NOT NULL,
    adset_id text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    effective_status text NOT NULL,
    created_time timestamptz,
    updated_time timestamptz,""",
    ),
    (
        "meta_ad_insights_daily",
        (("ad_id", "text"), ("date_start", "date")),
        """
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
    attribution_setting text NOT NULL,""",
    ),
)

# Frozen: the row-level security of every provider table, as 0004 spelled it.
POLICY_SQL = """
ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analyst_read ON public.{table};
CREATE POLICY analyst_read ON public.{table} FOR SELECT TO aos_analyst USING (
  agency_id = (SELECT aos_rls.analyst_agency())
  AND ((SELECT aos_rls.analyst_sees_all_clients())
       OR {client_column} = ANY ((SELECT aos_rls.analyst_clients())::bigint[]))
);
GRANT SELECT ON public.{table} TO aos_analyst;
"""


def upgrade() -> None:
    for table, key, columns in TABLES:
        key_columns = "\n".join(f"    {name} {kind} NOT NULL," for name, kind in key)
        head = TENANT_HEAD.format(key_columns=key_columns)
        tail = TENANT_TAIL.format(table=table, key=", ".join(name for name, _ in key))
        op.execute(f"CREATE TABLE {table} ({head.rstrip()}{columns}{tail})")
        op.execute(f"CREATE INDEX ix_{table}_agency_client ON {table} (agency_id, client_id)")
        op.execute(POLICY_SQL.format(table=table, client_column="client_id"))
    op.execute(
        "CREATE INDEX ix_meta_ad_insights_daily_account_day ON meta_ad_insights_daily "
        "(agency_id, integration_id, account_id, date_start)"
    )


def downgrade() -> None:
    for table, _, _ in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
