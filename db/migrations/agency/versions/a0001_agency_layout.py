"""an agency's own database

Revision ID: a0001
Revises:
Create Date: 2026-12-07 18:30:00

The first revision of an agency database (``db/agencydb.py``): every provider table, each
partitioned by integration (an integration's partitions are made when it is attached), the sync
state and quarantine, and the copy of the agency's own clients and integrations. The database
is the agency's alone; nothing in it is granted to PUBLIC.

Frozen: the SQL is written out here (no application imports).
"""

from __future__ import annotations

from alembic import op

revision = "a0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES_SQL = """
CREATE TABLE client (
    agency_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    email_domains TEXT[] DEFAULT '{}' NOT NULL,
    CONSTRAINT pk_client PRIMARY KEY (agency_id, id)
);

CREATE TABLE integration (
    agency_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    client_id BIGINT,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    lookback_days INTEGER,
    CONSTRAINT pk_integration PRIMARY KEY (agency_id, id)
);

CREATE TABLE gmail_labels (
    integration_id BIGINT NOT NULL,
    label_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    messages_total INTEGER,
    messages_unread INTEGER,
    threads_total INTEGER,
    threads_unread INTEGER,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_gmail_labels PRIMARY KEY (agency_id, integration_id, label_id),
    CONSTRAINT fk_gmail_labels_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_gmail_labels_agency_client ON gmail_labels (agency_id, client_id);

CREATE TABLE gmail_messages (
    integration_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    thread_id TEXT NOT NULL,
    history_id BIGINT NOT NULL,
    internal_date TIMESTAMP WITH TIME ZONE NOT NULL,
    from_address TEXT,
    from_name TEXT,
    to_addresses TEXT[] NOT NULL,
    cc_addresses TEXT[] NOT NULL,
    subject TEXT,
    snippet TEXT,
    label_ids TEXT[] NOT NULL,
    size_estimate INTEGER NOT NULL,
    has_attachments BOOLEAN NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_gmail_messages PRIMARY KEY (agency_id, integration_id, message_id),
    CONSTRAINT fk_gmail_messages_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_gmail_messages_agency_client ON gmail_messages (agency_id, client_id);

CREATE TABLE google_ads_ad_daily (
    integration_id BIGINT NOT NULL,
    ad_group_id BIGINT NOT NULL,
    ad_id BIGINT NOT NULL,
    date DATE NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    campaign_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    currency TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    cost NUMERIC NOT NULL,
    conversions NUMERIC NOT NULL,
    conversions_value NUMERIC NOT NULL,
    all_conversions NUMERIC NOT NULL,
    view_through_conversions BIGINT NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_ad_daily PRIMARY KEY (agency_id, integration_id, ad_group_id, ad_id, date),
    CONSTRAINT fk_google_ads_ad_daily_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_ad_daily_agency_client ON google_ads_ad_daily (agency_id, client_id);

CREATE INDEX ix_google_ads_ad_daily_customer_day ON google_ads_ad_daily (agency_id, integration_id, customer_id, date);

CREATE TABLE google_ads_ad_group_daily (
    integration_id BIGINT NOT NULL,
    ad_group_id BIGINT NOT NULL,
    date DATE NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    campaign_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    currency TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    cost NUMERIC NOT NULL,
    conversions NUMERIC NOT NULL,
    conversions_value NUMERIC NOT NULL,
    all_conversions NUMERIC NOT NULL,
    view_through_conversions BIGINT NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_ad_group_daily PRIMARY KEY (agency_id, integration_id, ad_group_id, date),
    CONSTRAINT fk_google_ads_ad_group_daily_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_ad_group_daily_agency_client ON google_ads_ad_group_daily (agency_id, client_id);

CREATE INDEX ix_google_ads_ad_group_daily_customer_day ON google_ads_ad_group_daily (agency_id, integration_id, customer_id, date);

CREATE TABLE google_ads_ad_groups (
    integration_id BIGINT NOT NULL,
    ad_group_id BIGINT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    customer_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    type TEXT,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_ad_groups PRIMARY KEY (agency_id, integration_id, ad_group_id),
    CONSTRAINT fk_google_ads_ad_groups_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_ad_groups_agency_client ON google_ads_ad_groups (agency_id, client_id);

CREATE TABLE google_ads_ads (
    integration_id BIGINT NOT NULL,
    ad_group_id BIGINT NOT NULL,
    ad_id BIGINT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    customer_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    name TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    final_urls TEXT[],
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_ads PRIMARY KEY (agency_id, integration_id, ad_group_id, ad_id),
    CONSTRAINT fk_google_ads_ads_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_ads_agency_client ON google_ads_ads (agency_id, client_id);

CREATE TABLE google_ads_campaign_daily (
    integration_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    date DATE NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    customer_id BIGINT NOT NULL,
    currency TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    cost NUMERIC NOT NULL,
    conversions NUMERIC NOT NULL,
    conversions_value NUMERIC NOT NULL,
    all_conversions NUMERIC NOT NULL,
    view_through_conversions BIGINT NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_campaign_daily PRIMARY KEY (agency_id, integration_id, campaign_id, date),
    CONSTRAINT fk_google_ads_campaign_daily_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_campaign_daily_agency_client ON google_ads_campaign_daily (agency_id, client_id);

CREATE INDEX ix_google_ads_campaign_daily_customer_day ON google_ads_campaign_daily (agency_id, integration_id, customer_id, date);

CREATE TABLE google_ads_campaigns (
    integration_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    customer_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    advertising_channel_type TEXT,
    advertising_channel_sub_type TEXT,
    bidding_strategy_type TEXT,
    start_date DATE,
    end_date DATE,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_campaigns PRIMARY KEY (agency_id, integration_id, campaign_id),
    CONSTRAINT fk_google_ads_campaigns_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_campaigns_agency_client ON google_ads_campaigns (agency_id, client_id);

CREATE TABLE google_ads_customers (
    integration_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    name TEXT,
    currency TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    status TEXT NOT NULL,
    manager BOOLEAN NOT NULL,
    test_account BOOLEAN,
    manager_path BIGINT[],
    login_customer_id BIGINT,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_google_ads_customers PRIMARY KEY (agency_id, integration_id, customer_id),
    CONSTRAINT fk_google_ads_customers_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_google_ads_customers_agency_client ON google_ads_customers (agency_id, client_id);

CREATE TABLE meta_ad_accounts (
    integration_id BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    timezone_name TEXT NOT NULL,
    account_status INTEGER NOT NULL,
    business_id TEXT,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_ad_accounts PRIMARY KEY (agency_id, integration_id, account_id),
    CONSTRAINT fk_meta_ad_accounts_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_ad_accounts_agency_client ON meta_ad_accounts (agency_id, client_id);

CREATE TABLE meta_ad_insights_breakdown_daily (
    integration_id BIGINT NOT NULL,
    ad_id TEXT NOT NULL,
    date_start DATE NOT NULL,
    breakdown TEXT NOT NULL,
    age TEXT NOT NULL,
    gender TEXT NOT NULL,
    country TEXT NOT NULL,
    publisher_platform TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    account_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    adset_id TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    reach BIGINT,
    spend NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    conversions NUMERIC NOT NULL,
    conversion_value NUMERIC NOT NULL,
    actions JSONB,
    action_values JSONB,
    attribution_setting TEXT NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_ad_insights_breakdown_daily PRIMARY KEY (agency_id, integration_id, ad_id, date_start, breakdown, age, gender, country, publisher_platform),
    CONSTRAINT fk_meta_ad_insights_breakdown_daily_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_ad_insights_breakdown_daily_account_day ON meta_ad_insights_breakdown_daily (agency_id, integration_id, account_id, date_start);

CREATE INDEX ix_meta_ad_insights_breakdown_daily_agency_client ON meta_ad_insights_breakdown_daily (agency_id, client_id);

CREATE TABLE meta_ad_insights_daily (
    integration_id BIGINT NOT NULL,
    ad_id TEXT NOT NULL,
    date_start DATE NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    account_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    adset_id TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    reach BIGINT,
    spend NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    conversions NUMERIC NOT NULL,
    conversion_value NUMERIC NOT NULL,
    actions JSONB,
    action_values JSONB,
    attribution_setting TEXT NOT NULL,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_ad_insights_daily PRIMARY KEY (agency_id, integration_id, ad_id, date_start),
    CONSTRAINT fk_meta_ad_insights_daily_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_ad_insights_daily_account_day ON meta_ad_insights_daily (agency_id, integration_id, account_id, date_start);

CREATE INDEX ix_meta_ad_insights_daily_agency_client ON meta_ad_insights_daily (agency_id, client_id);

CREATE TABLE meta_ad_sets (
    integration_id BIGINT NOT NULL,
    adset_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    account_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    effective_status TEXT NOT NULL,
    daily_budget BIGINT,
    created_time TIMESTAMP WITH TIME ZONE,
    updated_time TIMESTAMP WITH TIME ZONE,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_ad_sets PRIMARY KEY (agency_id, integration_id, adset_id),
    CONSTRAINT fk_meta_ad_sets_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_ad_sets_agency_client ON meta_ad_sets (agency_id, client_id);

CREATE TABLE meta_ads (
    integration_id BIGINT NOT NULL,
    ad_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    account_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    adset_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    effective_status TEXT NOT NULL,
    created_time TIMESTAMP WITH TIME ZONE,
    updated_time TIMESTAMP WITH TIME ZONE,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_ads PRIMARY KEY (agency_id, integration_id, ad_id),
    CONSTRAINT fk_meta_ads_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_ads_agency_client ON meta_ads (agency_id, client_id);

CREATE TABLE meta_campaigns (
    integration_id BIGINT NOT NULL,
    campaign_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    effective_status TEXT NOT NULL,
    objective TEXT,
    created_time TIMESTAMP WITH TIME ZONE,
    updated_time TIMESTAMP WITH TIME ZONE,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_meta_campaigns PRIMARY KEY (agency_id, integration_id, campaign_id),
    CONSTRAINT fk_meta_campaigns_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_meta_campaigns_agency_client ON meta_campaigns (agency_id, client_id);

CREATE TABLE slack_channels (
    integration_id BIGINT NOT NULL,
    channel_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    name TEXT NOT NULL,
    is_private BOOLEAN NOT NULL,
    is_archived BOOLEAN NOT NULL,
    is_member BOOLEAN NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    creator_id TEXT,
    topic TEXT,
    purpose TEXT,
    num_members INTEGER,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_slack_channels PRIMARY KEY (agency_id, integration_id, channel_id),
    CONSTRAINT fk_slack_channels_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_slack_channels_agency_client ON slack_channels (agency_id, client_id);

CREATE TABLE slack_messages (
    integration_id BIGINT NOT NULL,
    channel_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    posted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    user_id TEXT,
    bot_id TEXT,
    subtype TEXT,
    text TEXT,
    thread_ts TEXT,
    is_reply BOOLEAN NOT NULL,
    reply_count INTEGER NOT NULL,
    latest_reply TEXT,
    edited_ts TEXT,
    reactions JSONB,
    files JSONB,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_slack_messages PRIMARY KEY (agency_id, integration_id, channel_id, ts),
    CONSTRAINT fk_slack_messages_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_slack_messages_agency_client ON slack_messages (agency_id, client_id);

CREATE INDEX ix_slack_messages_thread ON slack_messages (agency_id, integration_id, channel_id, thread_ts);

CREATE TABLE slack_users (
    integration_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    agency_id BIGINT NOT NULL,
    client_id BIGINT,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    real_name TEXT,
    display_name TEXT,
    email TEXT,
    is_bot BOOLEAN NOT NULL,
    is_admin BOOLEAN NOT NULL,
    is_deleted BOOLEAN NOT NULL,
    tz TEXT,
    updated_at TIMESTAMP WITH TIME ZONE,
    synced_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_slack_users PRIMARY KEY (agency_id, integration_id, user_id),
    CONSTRAINT fk_slack_users_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
)
 PARTITION BY LIST (integration_id);

CREATE INDEX ix_slack_users_agency_client ON slack_users (agency_id, client_id);

CREATE TABLE sync_reject (
    agency_id BIGINT NOT NULL,
    integration_id BIGINT NOT NULL,
    table_name TEXT NOT NULL,
    record_key JSONB NOT NULL,
    stream TEXT NOT NULL,
    reason TEXT NOT NULL,
    record JSONB,
    record_bytes INTEGER NOT NULL,
    attempts INTEGER DEFAULT '1' NOT NULL,
    first_seen TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_seen TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_sync_reject PRIMARY KEY (agency_id, integration_id, table_name, record_key),
    CONSTRAINT fk_sync_reject_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
);

CREATE TABLE sync_state (
    integration_id BIGINT NOT NULL,
    agency_id BIGINT NOT NULL,
    stream TEXT NOT NULL,
    partition TEXT DEFAULT '' NOT NULL,
    cursor JSONB NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_sync_state PRIMARY KEY (integration_id, stream, partition),
    CONSTRAINT fk_sync_state_integration FOREIGN KEY(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE
);
"""

TABLES = (
    "client",
    "integration",
    "gmail_labels",
    "gmail_messages",
    "google_ads_ad_daily",
    "google_ads_ad_group_daily",
    "google_ads_ad_groups",
    "google_ads_ads",
    "google_ads_campaign_daily",
    "google_ads_campaigns",
    "google_ads_customers",
    "meta_ad_accounts",
    "meta_ad_insights_breakdown_daily",
    "meta_ad_insights_daily",
    "meta_ad_sets",
    "meta_ads",
    "meta_campaigns",
    "slack_channels",
    "slack_messages",
    "slack_users",
    "sync_reject",
    "sync_state",
)


def upgrade() -> None:
    op.execute(TABLES_SQL)
    op.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
    op.execute("REVOKE ALL ON " + ", ".join(TABLES) + " FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE " + ", ".join(reversed(TABLES)) + " CASCADE")
