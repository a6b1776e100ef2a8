"""provider holds

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12 10:00:00

``provider_hold``: the pauses and stops providers announce (a throttled Meta ad account, a
Google Ads project whose daily operations quota is spent), kept in the control database so
that every stream, run and worker skips the held account or project until the provider's
time instead of spending a call to be refused again (``db/holds.py``). One row per
(provider, scope, integration that was told or met it). Not a tenant table: analysts have no
grant on it.

Frozen: the SQL is written out here (no application imports).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE provider_hold (
    provider text NOT NULL,
    scope text NOT NULL,
    integration_id bigint NOT NULL,
    agency_id bigint NOT NULL,
    until timestamptz NOT NULL,
    reason text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_provider_hold PRIMARY KEY (provider, scope, integration_id)
);
REVOKE ALL ON provider_hold FROM PUBLIC;
""")


def downgrade() -> None:
    op.execute("DROP TABLE provider_hold")
