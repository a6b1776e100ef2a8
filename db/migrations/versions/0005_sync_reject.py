"""sync_reject: records set aside instead of blocking a sync

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:00:00

A record PostgreSQL cannot take (after the connectors' sanitising) used to fail its whole batch
on every run, so its partition's cursor never moved again. Such records are now kept here with
the reason, in the batch's transaction, and tried again on later runs. Not readable by analysts
(no grant): it holds raw provider records.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE sync_reject (
    agency_id bigint NOT NULL,
    integration_id bigint NOT NULL,
    table_name text NOT NULL,
    record_key jsonb NOT NULL,
    stream text NOT NULL,
    reason text NOT NULL,
    record jsonb,
    record_bytes integer NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_sync_reject PRIMARY KEY (agency_id, integration_id, table_name, record_key),
    CONSTRAINT fk_sync_reject_integration FOREIGN KEY (agency_id, integration_id)
        REFERENCES integration (agency_id, id) ON DELETE CASCADE
);
REVOKE ALL ON sync_reject FROM PUBLIC;
""")


def downgrade() -> None:
    op.execute("DROP TABLE sync_reject")
