"""Row-level security: analysts see only their agency's rows (members: their granted clients).

An analyst is a PostgreSQL login role listed in ``analyst_binding`` (role -> agency, user) and a
member of the group ``aos_analyst``. The policy on every tenant table calls three helper
functions in schema ``aos_rls`` that read that binding for ``session_user``, which a
non-superuser cannot change (``SET ROLE`` / ``SET SESSION AUTHORIZATION`` do not move it), so
there is no setting an analyst could flip to widen what they see. A member's clients come live
from ``member_client_access``: revoking a grant hides the rows at once.

Why the helpers look the way they do (each line closes an attack that worked once):

* they are ``SECURITY DEFINER`` (an analyst may not read the binding tables), owned by the
  ``NOLOGIN`` role ``aos_rls`` that may read exactly those four tables and nothing else, so even
  a hijacked helper could not reach credentials or the server's files;
* every object in them is schema-qualified and ``search_path`` is pinned to
  ``pg_catalog, pg_temp`` (``pg_temp`` last): a temp table or view named ``analyst_binding``
  can no longer stand in for the real one;
* analysts can create nothing at all: no TEMP on the database, no CREATE on any schema
  (:func:`db.analyst.create_analyst` re-asserts the database-level part, which ``CREATE
  DATABASE .. TEMPLATE`` does not copy);
* every key and index of a tenant table leads with ``agency_id``, so with the policy's
  ``agency_id = (SELECT aos_rls.analyst_agency())`` as an index condition no scan ever visits
  another agency's rows, and EXPLAIN ANALYZE has nothing of theirs to count.

Migrations are frozen (they never import this module); a migration that adds a tenant table
writes out :func:`tenant_policy_sql` for it. ``tests/security`` checks every tenant table
against these rules.
"""

from __future__ import annotations

import re

__all__ = ["ANALYST_GROUP", "HELPER_SCHEMA", "TENANT_TABLES", "tenant_policy_sql"]

ANALYST_GROUP = "aos_analyst"
HELPER_SCHEMA = "aos_rls"  # also the name of the role that owns the helpers
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

#: Tables analysts may read, with the column that names a row's client. Provider tables are
#: tenant tables by construction (``db.schema.provider_table``) and are listed by the tests
#: from the schema; these are the platform tables among them.
TENANT_TABLES = {"client": "id", "integration": "client_id", "sync_run": "client_id"}


def tenant_policy_sql(table: str, client_column: str = "client_id") -> str:
    """The SQL that puts ``table`` under row-level security and lets analysts read their slice.

    The sub-selects make PostgreSQL evaluate each helper once per query (an InitPlan), and
    let the agency predicate be an index condition.
    """
    if not _IDENTIFIER.fullmatch(table) or not _IDENTIFIER.fullmatch(client_column):
        raise ValueError(f"not a plain identifier: {table!r} / {client_column!r}")
    return f"""
ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analyst_read ON public.{table};
CREATE POLICY analyst_read ON public.{table} FOR SELECT TO aos_analyst USING (
  agency_id = (SELECT aos_rls.analyst_agency())
  AND ((SELECT aos_rls.analyst_sees_all_clients())
       OR {client_column} = ANY ((SELECT aos_rls.analyst_clients())::bigint[]))
);
GRANT SELECT ON public.{table} TO aos_analyst;
"""
