"""Tables (SQLAlchemy Core), in two databases of their own kind.

* ``metadata``: the control database (migrations in ``db/migrations/versions``): what spans
  agencies. Tenancy (agency, app_user, role, client), access grants, integrations and their
  encrypted credentials, the run ledger, the audit log, quota ledgers, connect states. No
  analyst ever connects to it.
* ``agency_metadata``: each agency's own database (migrations in ``db/migrations/agency``):
  provider tables, all built by :func:`provider_table`, so every one carries the tenant columns
  (``agency_id``, ``integration_id``, ``client_id``), ``synced_at`` and ``deleted_at``, has the
  primary key ``integration_id`` + the provider's natural key and is partitioned by integration;
  their sync state (cursors commit with rows) and quarantine; a copy of the agency's clients
  and integrations. See ``db/agencydb.py``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, UUID

__all__ = [
    "ROLE_LEVELS",
    "TENANT_COLUMNS",
    "agency_metadata",
    "metadata",
    "provider_table",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: The tables of an agency's own database (``db/agencydb.py``): its provider tables (each
#: partitioned by integration), their sync state and quarantine, and a copy of the agency's own
#: clients and integrations for the analytics views. Nothing of another agency is ever in it.
agency_metadata = sa.MetaData(naming_convention=metadata.naming_convention)

ROLE_LEVELS = {"owner": 40, "admin": 30, "manager": 20, "member": 10}
INTEGRATION_STATUSES = ("connected", "needs_reauth", "error", "disabled")
TENANT_COLUMNS = ("agency_id", "integration_id", "client_id", "synced_at", "deleted_at")


def _created() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


agency = sa.Table(
    "agency",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    # The agency's own database (``db/agencydb.py``): a random name that says nothing about the
    # agency, and the server it lives on (NULL: the control database's server).
    sa.Column("database_name", sa.Text, unique=True),
    sa.Column("database_url", sa.Text),
    _created(),
)

# One row: secrets of this installation that no analyst can read (the control database is out
# of their reach), e.g. the salt of advisory lock keys (``db/locks.py``).
installation = sa.Table(
    "aos_installation",
    metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("lock_salt", sa.Text, nullable=False),
    sa.CheckConstraint("id", name="one_row"),
)

role = sa.Table(
    "role",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("level", sa.Integer, nullable=False, unique=True),
)

app_user = sa.Table(
    "app_user",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "agency_id",
        sa.BigInteger,
        sa.ForeignKey("agency.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text),
    _created(),
    sa.CheckConstraint("email = lower(email)", name="email_lower"),
)

user_role = sa.Table(
    "user_role",
    metadata,
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role_name", sa.Text, sa.ForeignKey("role.name"), nullable=False),
    sa.Column(
        "granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

client = sa.Table(
    "client",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column(
        "agency_id",
        sa.BigInteger,
        sa.ForeignKey("agency.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email_domains", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("slack_channel_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("ad_account_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    _created(),
    sa.PrimaryKeyConstraint("agency_id", "id"),
    sa.UniqueConstraint("agency_id", "name", name="uq_client_agency_name"),
)

member_client_access = sa.Table(
    "member_client_access",
    metadata,
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("client_id", sa.BigInteger, primary_key=True),
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("permission", sa.Text, nullable=False),
    sa.Column(
        "granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint("permission IN ('read', 'write')", name="permission"),
    sa.ForeignKeyConstraint(
        ["agency_id", "client_id"],
        ["client.agency_id", "client.id"],
        ondelete="CASCADE",
        name="fk_member_client_access_client",
    ),
)

integration = sa.Table(
    "integration",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column(
        "agency_id",
        sa.BigInteger,
        sa.ForeignKey("agency.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("client_id", sa.BigInteger),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("external_account_id", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="connected"),
    sa.Column("status_reason", sa.Text),
    sa.Column("config", JSONB, nullable=False, server_default="{}"),
    _created(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint("provider ~ '^[a-z][a-z0-9_]*$'", name="provider_name"),
    sa.CheckConstraint(_in("status", INTEGRATION_STATUSES), name="status"),
    sa.PrimaryKeyConstraint("agency_id", "id"),
    sa.UniqueConstraint("agency_id", "name", name="uq_integration_agency_name"),
    # An integration's client is one of its own agency's (a client with integrations cannot be
    # deleted until they are moved or removed; deleting the agency removes both).
    sa.ForeignKeyConstraint(
        ["agency_id", "client_id"],
        ["client.agency_id", "client.id"],
        name="fk_integration_client",
    ),
)


def _of_integration(table: str) -> sa.ForeignKeyConstraint:
    """The tenant-tagged reference to an integration: (agency_id, integration_id).

    Integrations are keyed by (agency_id, id) so that no index of a tenant table leads with
    anything but the tenant. The target resolves within the table's own MetaData: the control
    database's ``integration``, or an agency database's copy of it."""
    return sa.ForeignKeyConstraint(
        ["agency_id", "integration_id"],
        ["integration.agency_id", "integration.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_integration",
    )


integration_credential = sa.Table(
    "integration_credential",
    metadata,
    sa.Column("integration_id", sa.BigInteger, primary_key=True),
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("nonce", BYTEA, nullable=False),
    sa.Column("ciphertext", BYTEA, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    _of_integration("integration_credential"),
)

sync_run = sa.Table(
    "sync_run",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column(
        "agency_id", sa.BigInteger, sa.ForeignKey("agency.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("integration_id", sa.BigInteger, nullable=False),
    sa.Column("client_id", sa.BigInteger),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("principal", sa.Text, nullable=False),
    sa.Column("principal_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("flow_run_id", UUID(as_uuid=False)),
    sa.Column("params", JSONB, nullable=False, server_default="{}"),
    sa.Column(
        "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text, nullable=False, server_default="running"),
    sa.Column("streams", JSONB, nullable=False, server_default="{}"),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name="status"),
    sa.PrimaryKeyConstraint("agency_id", "id"),
    _of_integration("sync_run"),
)

audit_event = sa.Table(
    "audit_event",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("agency_id", sa.BigInteger, sa.ForeignKey("agency.id", ondelete="CASCADE")),
    sa.Column("principal", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("integration_id", sa.BigInteger),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("detail", JSONB, nullable=False, server_default="{}"),
)

analyst_binding = sa.Table(
    "analyst_binding",
    metadata,
    sa.Column("role_name", sa.Text, primary_key=True),
    sa.Column(
        "agency_id", sa.BigInteger, sa.ForeignKey("agency.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    ),
    _created(),
)


run_grant_use = sa.Table(
    "run_grant_use",
    metadata,
    sa.Column("nonce", sa.Text, primary_key=True),
    sa.Column("principal", sa.Text, nullable=False),
    sa.Column("integration_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# Connecting accounts through OAuth (db/connect.py): one row per consent screen in flight. The
# nonce is the signed state's; the PKCE verifier never leaves the server. Not a tenant table.
connect_state = sa.Table(
    "connect_state",
    metadata,
    sa.Column("nonce", sa.Text, primary_key=True),
    sa.Column(
        "agency_id", sa.BigInteger, sa.ForeignKey("agency.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("client_id", sa.BigInteger),
    sa.Column("integration_id", sa.BigInteger),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("principal", sa.Text, nullable=False),
    sa.Column("browser", sa.Text, nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("code_verifier", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    _created(),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("used_at", sa.DateTime(timezone=True)),
)

# One integration per external account of a provider in an agency: connecting it again replaces
# its credentials instead of adding a twin.
sa.Index(
    "uq_integration_external_account",
    integration.c.agency_id,
    integration.c.provider,
    integration.c.external_account_id,
    unique=True,
    postgresql_where=integration.c.external_account_id.isnot(None),
)


# --- an agency's own database (``agency_metadata``) --------------------------------------------
# The agency's clients and integrations as the analytics views need them, copied from the control
# database (``db/agencydb.py``); their ids are the control database's.
agency_client = sa.Table(
    "client",
    agency_metadata,
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email_domains", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.PrimaryKeyConstraint("agency_id", "id"),
)

agency_integration = sa.Table(
    "integration",
    agency_metadata,
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False),
    sa.Column("client_id", sa.BigInteger),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    # The integration's re-read window in days when its settings name one (Google Ads:
    # ``conversion_window_days``, Meta Ads: ``lookback_days``): when a day is final.
    sa.Column("lookback_days", sa.Integer),
    sa.PrimaryKeyConstraint("agency_id", "id"),
)


sync_state = sa.Table(
    "sync_state",
    agency_metadata,
    sa.Column("integration_id", sa.BigInteger, primary_key=True),
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("partition", sa.Text, primary_key=True, server_default=""),
    sa.Column("cursor", JSONB, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    _of_integration("sync_state"),
)

sync_reject = sa.Table(
    "sync_reject",
    agency_metadata,
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("integration_id", sa.BigInteger, nullable=False),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("record_key", JSONB, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", JSONB),
    sa.Column("record_bytes", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column(
        "first_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "last_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.PrimaryKeyConstraint("agency_id", "integration_id", "table_name", "record_key"),
    _of_integration("sync_reject"),
)


def provider_table(
    name: str, natural_key: list[sa.Column[object]], *columns: sa.Column[object] | sa.Index
) -> sa.Table:
    """A provider table with the tenant conventions (see module docstring), in an agency's own
    database and partitioned by integration: each integration's rows are a relation of their own
    (``db/agencydb.py`` creates it), so a member's views can name exactly their clients' rows."""
    tenant: list[sa.Column[Any]] = [
        sa.Column("integration_id", sa.BigInteger, nullable=False),
        *[sa.Column(c.name, c.type, nullable=False) for c in natural_key],
        sa.Column("agency_id", sa.BigInteger, nullable=False),
        sa.Column("client_id", sa.BigInteger),
    ]
    tail: list[sa.Column[Any]] = [
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    ]
    return sa.Table(
        name,
        agency_metadata,
        *tenant,
        *columns,
        *tail,
        sa.PrimaryKeyConstraint("agency_id", "integration_id", *(c.name for c in natural_key)),
        _of_integration(name),
        sa.Index(f"ix_{name}_agency_client", "agency_id", "client_id"),
        postgresql_partition_by="LIST (integration_id)",
    )


# --- Slack --------------------------------------------------------------------------------------
slack_users = provider_table(
    "slack_users",
    [sa.Column("user_id", sa.Text)],
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("real_name", sa.Text),
    sa.Column("display_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("is_bot", sa.Boolean, nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    sa.Column("tz", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

slack_channels = provider_table(
    "slack_channels",
    [sa.Column("channel_id", sa.Text)],
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("is_private", sa.Boolean, nullable=False),
    sa.Column("is_archived", sa.Boolean, nullable=False),
    sa.Column("is_member", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("creator_id", sa.Text),
    sa.Column("topic", sa.Text),
    sa.Column("purpose", sa.Text),
    sa.Column("num_members", sa.Integer),
)

slack_messages = provider_table(
    "slack_messages",
    [sa.Column("channel_id", sa.Text), sa.Column("ts", sa.Text)],
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_id", sa.Text),
    sa.Column("bot_id", sa.Text),
    sa.Column("subtype", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("thread_ts", sa.Text),
    sa.Column("is_reply", sa.Boolean, nullable=False),
    sa.Column("reply_count", sa.Integer, nullable=False),
    sa.Column("latest_reply", sa.Text),
    sa.Column("edited_ts", sa.Text),
    sa.Column("reactions", JSONB),
    sa.Column("files", JSONB),
)
sa.Index(
    "ix_slack_messages_thread",
    slack_messages.c.agency_id,
    slack_messages.c.integration_id,
    slack_messages.c.channel_id,
    slack_messages.c.thread_ts,
)
sa.Index("ix_sync_run_agency_started", sync_run.c.agency_id, sync_run.c.started_at)
sa.Index(
    "ix_sync_run_agency_integration",
    sync_run.c.agency_id,
    sync_run.c.integration_id,
    sync_run.c.started_at,
)


# --- Gmail --------------------------------------------------------------------------------------
gmail_labels = provider_table(
    "gmail_labels",
    [sa.Column("label_id", sa.Text)],
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("messages_total", sa.Integer),
    sa.Column("messages_unread", sa.Integer),
    sa.Column("threads_total", sa.Integer),
    sa.Column("threads_unread", sa.Integer),
)

gmail_messages = provider_table(
    "gmail_messages",
    [sa.Column("message_id", sa.Text)],
    sa.Column("thread_id", sa.Text, nullable=False),
    sa.Column("history_id", sa.BigInteger, nullable=False),
    sa.Column("internal_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("from_address", sa.Text),
    sa.Column("from_name", sa.Text),
    sa.Column("to_addresses", ARRAY(sa.Text), nullable=False),
    sa.Column("cc_addresses", ARRAY(sa.Text), nullable=False),
    sa.Column("subject", sa.Text),
    sa.Column("snippet", sa.Text),
    sa.Column("label_ids", ARRAY(sa.Text), nullable=False),
    sa.Column("size_estimate", sa.Integer, nullable=False),
    sa.Column("has_attachments", sa.Boolean, nullable=False),
)


# --- Meta Ads -----------------------------------------------------------------------------------
meta_ad_accounts = provider_table(
    "meta_ad_accounts",
    [sa.Column("account_id", sa.Text)],
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("timezone_name", sa.Text, nullable=False),
    sa.Column("account_status", sa.Integer, nullable=False),
    sa.Column("business_id", sa.Text),
)

meta_campaigns = provider_table(
    "meta_campaigns",
    [sa.Column("campaign_id", sa.Text)],
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("effective_status", sa.Text, nullable=False),
    sa.Column("objective", sa.Text),
    sa.Column("created_time", sa.DateTime(timezone=True)),
    sa.Column("updated_time", sa.DateTime(timezone=True)),
)

meta_ad_sets = provider_table(
    "meta_ad_sets",
    [sa.Column("adset_id", sa.Text)],
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("effective_status", sa.Text, nullable=False),
    sa.Column("daily_budget", sa.BigInteger),
    sa.Column("created_time", sa.DateTime(timezone=True)),
    sa.Column("updated_time", sa.DateTime(timezone=True)),
)

meta_ads = provider_table(
    "meta_ads",
    [sa.Column("ad_id", sa.Text)],
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("adset_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("effective_status", sa.Text, nullable=False),
    sa.Column("created_time", sa.DateTime(timezone=True)),
    sa.Column("updated_time", sa.DateTime(timezone=True)),
)


def _meta_insights(name: str, natural_key: list[sa.Column[object]]) -> sa.Table:
    """A Meta insights table: one ad on one account-local day (and, for breakdowns, one
    combination of breakdown values)."""
    table = provider_table(
        name,
        natural_key,
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("adset_id", sa.Text, nullable=False),
        sa.Column("impressions", sa.BigInteger, nullable=False),
        sa.Column("clicks", sa.BigInteger, nullable=False),
        sa.Column("reach", sa.BigInteger),
        sa.Column("spend", sa.Numeric, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("conversions", sa.Numeric, nullable=False),
        sa.Column("conversion_value", sa.Numeric, nullable=False),
        sa.Column("actions", JSONB),
        sa.Column("action_values", JSONB),
        sa.Column("attribution_setting", sa.Text, nullable=False),
    )
    sa.Index(
        f"ix_{name}_account_day",
        table.c.agency_id,
        table.c.integration_id,
        table.c.account_id,
        table.c.date_start,
    )
    return table


meta_ad_insights_daily = _meta_insights(
    "meta_ad_insights_daily", [sa.Column("ad_id", sa.Text), sa.Column("date_start", sa.Date)]
)
# Opt-in breakdowns: the key holds the set's name and every dimension ('' where the set does
# not break down by it), so rows of different sets never collide and are never summed.
meta_ad_insights_breakdown_daily = _meta_insights(
    "meta_ad_insights_breakdown_daily",
    [
        sa.Column("ad_id", sa.Text),
        sa.Column("date_start", sa.Date),
        sa.Column("breakdown", sa.Text),
        sa.Column("age", sa.Text),
        sa.Column("gender", sa.Text),
        sa.Column("country", sa.Text),
        sa.Column("publisher_platform", sa.Text),
    ],
)


# --- Google Ads ---------------------------------------------------------------------------------
def _google_ads_daily(name: str, natural_key: list[sa.Column[object]], *ids: str) -> sa.Table:
    """A Google Ads daily metrics table: one entity on one account-local day."""
    table = provider_table(
        name,
        natural_key,
        *[sa.Column[object](i, sa.BigInteger, nullable=False) for i in ids],
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("impressions", sa.BigInteger, nullable=False),
        sa.Column("clicks", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Numeric, nullable=False),
        sa.Column("conversions", sa.Numeric, nullable=False),
        sa.Column("conversions_value", sa.Numeric, nullable=False),
        sa.Column("all_conversions", sa.Numeric, nullable=False),
        sa.Column("view_through_conversions", sa.BigInteger, nullable=False),
    )
    sa.Index(
        f"ix_{name}_customer_day",
        table.c.agency_id,
        table.c.integration_id,
        table.c.customer_id,
        table.c.date,
    )
    return table


google_ads_customers = provider_table(
    "google_ads_customers",
    [sa.Column("customer_id", sa.BigInteger)],
    sa.Column("name", sa.Text),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("manager", sa.Boolean, nullable=False),
    sa.Column("test_account", sa.Boolean),
    sa.Column("manager_path", ARRAY(sa.BigInteger)),
    sa.Column("login_customer_id", sa.BigInteger),
)

google_ads_campaigns = provider_table(
    "google_ads_campaigns",
    [sa.Column("campaign_id", sa.BigInteger)],
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("advertising_channel_type", sa.Text),
    sa.Column("advertising_channel_sub_type", sa.Text),
    sa.Column("bidding_strategy_type", sa.Text),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
)

google_ads_ad_groups = provider_table(
    "google_ads_ad_groups",
    [sa.Column("ad_group_id", sa.BigInteger)],
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("campaign_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("type", sa.Text),
)

google_ads_ads = provider_table(
    "google_ads_ads",
    [sa.Column("ad_group_id", sa.BigInteger), sa.Column("ad_id", sa.BigInteger)],
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("campaign_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("final_urls", ARRAY(sa.Text)),
)

google_ads_campaign_daily = _google_ads_daily(
    "google_ads_campaign_daily",
    [sa.Column("campaign_id", sa.BigInteger), sa.Column("date", sa.Date)],
)
google_ads_ad_group_daily = _google_ads_daily(
    "google_ads_ad_group_daily",
    [sa.Column("ad_group_id", sa.BigInteger), sa.Column("date", sa.Date)],
    "campaign_id",
)
google_ads_ad_daily = _google_ads_daily(
    "google_ads_ad_daily",
    [
        sa.Column("ad_group_id", sa.BigInteger),
        sa.Column("ad_id", sa.BigInteger),
        sa.Column("date", sa.Date),
    ],
    "campaign_id",
)

# The operations quota a provider keeps per OAuth client project (Google Ads), shared by every
# tenant: one row per reservation. Not a tenant table: analysts are granted nothing on it.
provider_quota_use = sa.Table(
    "provider_quota_use",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("project", sa.Text, nullable=False),
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("integration_id", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("operations", sa.Integer, nullable=False),
    sa.CheckConstraint("operations > 0", name="operations"),
)
sa.Index(
    "ix_provider_quota_use_project_used_at",
    provider_quota_use.c.provider,
    provider_quota_use.c.project,
    provider_quota_use.c.used_at,
)

# Pauses and stops a provider announced (a throttled Meta ad account, a Google Ads project whose
# daily operations are spent), kept where every worker reads them (``db/holds.py``): one row per
# integration that was told or met the hold; the scope's hold is the latest ``until`` of its
# rows. Not a tenant table: analysts are granted nothing on it.
provider_hold = sa.Table(
    "provider_hold",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("integration_id", sa.BigInteger, primary_key=True),
    sa.Column("agency_id", sa.BigInteger, nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
