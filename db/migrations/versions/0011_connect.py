"""connect

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 07:30:00

Connecting accounts through OAuth. ``connect_state`` holds one row per consent screen in
flight: the nonce of the signed state, who asked, the browser it is bound to (a hash of the
cookie), the redirect URI and the PKCE verifier; a row is spent (``used_at``) by the first
callback that presents it and deleted some time after it expired. Not a tenant table: analysts
have no grant on it. A unique index keeps one integration per (agency, provider, external
account), so connecting an account again can only ever replace its credentials.

Frozen: the SQL is written out here (no application imports), so this revision keeps doing
what it did whatever later code says.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE connect_state (
    nonce text NOT NULL,
    agency_id bigint NOT NULL,
    client_id bigint,
    integration_id bigint,
    provider text NOT NULL,
    principal text NOT NULL,
    browser text NOT NULL,
    redirect_uri text NOT NULL,
    code_verifier text,
    attempt integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    CONSTRAINT pk_connect_state PRIMARY KEY (nonce),
    CONSTRAINT fk_connect_state_agency_id_agency FOREIGN KEY (agency_id)
        REFERENCES agency (id) ON DELETE CASCADE
);
CREATE INDEX ix_connect_state_expires_at ON connect_state (expires_at);
REVOKE ALL ON connect_state FROM PUBLIC;
CREATE UNIQUE INDEX uq_integration_external_account
    ON integration (agency_id, provider, external_account_id)
    WHERE external_account_id IS NOT NULL;
""")


def downgrade() -> None:
    op.execute("DROP INDEX uq_integration_external_account")
    op.execute("DROP TABLE connect_state")
