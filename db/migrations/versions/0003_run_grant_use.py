"""run grants are single use

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:00:00

A run grant's nonce is recorded on first use, so a grant read back from a flow run's stored
parameters is worthless. Rows may be deleted once ``expires_at`` has passed: an expired grant is
refused by its signature check anyway. Not a tenant table: analysts have no grant on it.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE run_grant_use (
    nonce text NOT NULL,
    principal text NOT NULL,
    integration_id bigint NOT NULL,
    action text NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT pk_run_grant_use PRIMARY KEY (nonce)
);
CREATE INDEX ix_run_grant_use_expires_at ON run_grant_use (expires_at);
REVOKE ALL ON run_grant_use FROM PUBLIC;
""")


def downgrade() -> None:
    op.execute("DROP TABLE run_grant_use")
