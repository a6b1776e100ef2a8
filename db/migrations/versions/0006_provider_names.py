"""integration.provider: any registered provider, not a fixed list

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 06:30:00

The list of providers lives in the provider registry (connectors/registry.py); a fixed list in
a CHECK constraint meant editing the database's definition for every new provider. The column
keeps a shape check; which names have a connector is the registry's business (the command line
and the flows refuse unknown ones).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE integration DROP CONSTRAINT ck_integration_provider, "
        "ADD CONSTRAINT ck_integration_provider_name CHECK (provider ~ '^[a-z][a-z0-9_]*$')"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE integration DROP CONSTRAINT ck_integration_provider_name, "
        "ADD CONSTRAINT ck_integration_provider "
        "CHECK (provider IN ('gmail', 'slack', 'google_ads', 'meta_ads'))"
    )
