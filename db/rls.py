"""Row-level security: analysts see only their agency's rows (members: their granted clients).

An analyst is a PostgreSQL login role listed in ``analyst_binding`` (role -> agency, user). The
policies call three ``SECURITY DEFINER`` functions that read that binding for ``session_user``,
which a non-superuser cannot change (``SET ROLE`` / ``SET SESSION AUTHORIZATION`` do not move
it), so there is no setting an analyst could flip to widen what they see. A member's clients
come live from ``member_client_access``: revoking a grant hides the rows at once.

Every migration that adds a tenant table calls :func:`enable_tenant_rls` for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["ANALYST_GROUP", "FUNCTIONS_SQL", "enable_tenant_rls", "tenant_policy_sql"]

ANALYST_GROUP = "aos_analyst"  # spelled out in FUNCTIONS_SQL too
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

FUNCTIONS_SQL = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aos_analyst') THEN
    CREATE ROLE aos_analyst NOLOGIN;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION aos_analyst_agency() RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT agency_id FROM analyst_binding WHERE role_name = session_user
$$;

CREATE OR REPLACE FUNCTION aos_analyst_sees_all_clients() RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(bool_or(r.level > (SELECT level FROM role WHERE name = 'member')), false)
      FROM analyst_binding b
      JOIN user_role ur ON ur.user_id = b.user_id
      JOIN role r ON r.name = ur.role_name
     WHERE b.role_name = session_user
$$;

CREATE OR REPLACE FUNCTION aos_analyst_clients() RETURNS bigint[]
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(array_agg(a.client_id), '{}')
      FROM analyst_binding b
      JOIN member_client_access a ON a.user_id = b.user_id
     WHERE b.role_name = session_user
$$;

REVOKE ALL ON FUNCTION aos_analyst_agency(), aos_analyst_sees_all_clients(),
  aos_analyst_clients() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_analyst_agency(), aos_analyst_sees_all_clients(),
  aos_analyst_clients() TO aos_analyst;
"""


def tenant_policy_sql(table: str, client_column: str = "client_id") -> str:
    """SQL that turns on RLS for ``table`` and lets analysts read their slice of it.

    The sub-selects make PostgreSQL evaluate each function once per query, not once per row.
    """
    if not _IDENTIFIER.fullmatch(table) or not _IDENTIFIER.fullmatch(client_column):
        raise ValueError(f"not a plain identifier: {table!r} / {client_column!r}")
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analyst_read ON {table};
CREATE POLICY analyst_read ON {table} FOR SELECT TO aos_analyst USING (
  agency_id = (SELECT aos_analyst_agency())
  AND ((SELECT aos_analyst_sees_all_clients())
       OR {client_column} = ANY ((SELECT aos_analyst_clients())::bigint[]))
);
GRANT SELECT ON {table} TO aos_analyst;
"""


def enable_tenant_rls(
    execute: Callable[[str], object], table: str, client_column: str = "client_id"
) -> None:
    """Apply :func:`tenant_policy_sql` through ``execute`` (e.g. ``op.execute`` in Alembic)."""
    execute(tenant_policy_sql(table, client_column))
