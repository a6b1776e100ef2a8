"""drop the tables agencies shared

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 18:40:00

Provider tables, sync state, quarantine and the analytics views now live in each agency's own
database (revision 0020, ``db/agencydb.py``). Row-level security over tables every agency shared
was never a boundary against someone who writes SQL (the analyst's own predicates may run before
the policy, and whether the policy's sub-plans ran tells what matched), so it goes with them:
analysts lose every grant here, and their logins' CONNECT on this database.

Refuses while any of those tables still holds a row: ``aos-sync db upgrade`` moves them into
the agencies' databases first (``db/relayout.py``).

Frozen: the SQL is written out here (no application imports).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

PROVIDER_TABLES = (
    "slack_users",
    "slack_channels",
    "slack_messages",
    "gmail_labels",
    "gmail_messages",
    "meta_ad_accounts",
    "meta_campaigns",
    "meta_ad_sets",
    "meta_ads",
    "meta_ad_insights_daily",
    "meta_ad_insights_breakdown_daily",
    "google_ads_customers",
    "google_ads_campaigns",
    "google_ads_ad_groups",
    "google_ads_ads",
    "google_ads_campaign_daily",
    "google_ads_ad_group_daily",
    "google_ads_ad_daily",
)
MOVED = (*PROVIDER_TABLES, "sync_state", "sync_reject")


def upgrade() -> None:
    conn = op.get_bind()
    for table in MOVED:
        probe = text(f"SELECT EXISTS (SELECT FROM public.{table})")  # noqa: S608
        if conn.execute(probe).scalar():
            raise RuntimeError(
                f"table {table} still holds rows of agencies; run `aos-sync db upgrade`, which "
                "moves them into each agency's own database before this step"
            )
    op.execute("DROP SCHEMA IF EXISTS analytics CASCADE")
    op.execute("DROP TABLE " + ", ".join(f"public.{t}" for t in MOVED))
    for table in ("client", "integration", "sync_run"):
        op.execute(f"DROP POLICY IF EXISTS analyst_read ON public.{table}")
        op.execute(f"DROP POLICY IF EXISTS analytics_lookback ON public.{table}")
        op.execute(f"ALTER TABLE public.{table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP SCHEMA IF EXISTS aos_rls CASCADE")
    op.execute("""
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
  LOOP
    EXECUTE format('REVOKE ALL ON public.%I FROM PUBLIC', r.relname);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_analyst') THEN
      EXECUTE format('REVOKE ALL ON public.%I FROM aos_analyst', r.relname);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_analytics') THEN
      EXECUTE format('REVOKE ALL ON public.%I FROM aos_analytics', r.relname);
    END IF;
  END LOOP;
  FOR r IN SELECT b.role_name FROM public.analyst_binding b
            JOIN pg_catalog.pg_roles g ON g.rolname = b.role_name
  LOOP
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), r.role_name);
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_analyst') THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM aos_analyst', current_database());
    REVOKE ALL ON SCHEMA public FROM aos_analyst;
  END IF;
END $$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
""")


def downgrade() -> None:
    raise NotImplementedError("the shared tenant tables do not come back; restore a backup")
