"""agency databases

Revision ID: 0020
Revises: 0011
Create Date: 2026-12-07 18:40:00

Each agency's synced rows move to a database of its own (``db/agencydb.py``); this database
becomes the control database, which no analyst may connect to. Here: where each agency's
database is (a random name that says nothing about the agency, and optionally another server),
and one row of installation secrets, the salt of advisory lock keys, so that ``pg_locks``
(readable by every login of the cluster) tells nobody which integration is syncing.

The synced rows still in this database's provider tables are moved by ``aos-sync db upgrade``
(``db/relayout.py``) before revision 0021 drops those tables.

Frozen: the SQL is written out here (no application imports).
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE agency ADD COLUMN database_name text, ADD COLUMN database_url text;
ALTER TABLE agency ADD CONSTRAINT uq_agency_database_name UNIQUE (database_name);
CREATE TABLE aos_installation (
    id boolean DEFAULT true NOT NULL,
    lock_salt text NOT NULL,
    CONSTRAINT pk_aos_installation PRIMARY KEY (id),
    CONSTRAINT ck_aos_installation_one_row CHECK (id)
);
REVOKE ALL ON aos_installation FROM PUBLIC;
INSERT INTO aos_installation (lock_salt)
VALUES (replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''));
DO $$ BEGIN
  EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO CURRENT_USER', current_database());
END $$;
""")


def downgrade() -> None:
    op.execute("DROP TABLE aos_installation")
    op.execute("ALTER TABLE agency DROP COLUMN database_url, DROP COLUMN database_name")
