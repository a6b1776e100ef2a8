"""tenant isolation against a hostile analyst

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:30:00

What 0001 set up let an analyst escape row-level security, so this revision rebuilds it:

* The policy helpers were SECURITY DEFINER functions owned by whoever ran the migration (the
  superuser, in the embedded default) with ``search_path = public``. PostgreSQL still searches
  ``pg_temp`` first for relations unless it is listed, so a temp table or view named
  ``analyst_binding`` replaced the binding, and a temp view over a temp function ran analyst
  code as the function's owner. Now the helpers live in schema ``aos_rls``, are owned by the
  ``NOLOGIN`` role ``aos_rls`` that may only read the four tables they need, name every object
  with its schema and pin ``search_path = pg_catalog, pg_temp``.
* Analysts may create nothing: no TEMP on the database, no CREATE on ``public``.
* An index that does not lead with ``agency_id`` lets EXPLAIN ANALYZE count another agency's
  rows (the scan visits them before the policy filters them out). Every key and index of a
  tenant table now leads with ``agency_id``; tables that point at an integration or a client do
  so through ``(agency_id, integration_id)`` / ``(agency_id, client_id)``, which also makes it
  impossible to attach a row to another agency's integration or client.

Frozen: the SQL is written out here (no application imports), so this revision keeps doing
what it did whatever later code says. Needs PostgreSQL 15 or newer.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, natural key) of every provider table that exists at this revision.
PROVIDER_TABLES = (
    ("slack_users", ("user_id",)),
    ("slack_channels", ("channel_id",)),
    ("slack_messages", ("channel_id", "ts")),
    ("gmail_labels", ("label_id",)),
    ("gmail_messages", ("message_id",)),
)
# Tables analysts read, with the column that names the client of a row.
TENANT_TABLES = (
    ("client", "id"),
    ("integration", "client_id"),
    ("sync_run", "client_id"),
    *((name, "client_id") for name, _ in PROVIDER_TABLES),
)
# Tables that reference an integration and gain (agency_id, integration_id) references.
INTEGRATION_CHILDREN = (
    "integration_credential",
    "sync_state",
    "sync_run",
    *(name for name, _ in PROVIDER_TABLES),
)

HELPERS_SQL = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_rls') THEN
    CREATE ROLE aos_rls NOLOGIN NOINHERIT;
  END IF;
END $$;
GRANT aos_rls TO CURRENT_USER;
CREATE SCHEMA aos_rls AUTHORIZATION aos_rls;
REVOKE ALL ON SCHEMA aos_rls FROM PUBLIC;
GRANT USAGE ON SCHEMA aos_rls TO aos_analyst;
GRANT USAGE ON SCHEMA public TO aos_rls;
GRANT SELECT ON public.analyst_binding, public.user_role, public.role,
  public.member_client_access TO aos_rls;

SET LOCAL ROLE aos_rls;

CREATE FUNCTION aos_rls.analyst_agency() RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
    SELECT b.agency_id FROM public.analyst_binding AS b WHERE b.role_name = session_user
$f$;

CREATE FUNCTION aos_rls.analyst_sees_all_clients() RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
    SELECT coalesce(bool_or(r.level > m.level), false)
      FROM public.analyst_binding AS b
      JOIN public.user_role AS ur ON ur.user_id = b.user_id
      JOIN public.role AS r ON r.name = ur.role_name
      CROSS JOIN (SELECT level FROM public.role WHERE name = 'member') AS m
     WHERE b.role_name = session_user
$f$;

CREATE FUNCTION aos_rls.analyst_clients() RETURNS bigint[]
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
    SELECT coalesce(array_agg(a.client_id), '{}')
      FROM public.analyst_binding AS b
      JOIN public.member_client_access AS a
        ON a.user_id = b.user_id AND a.agency_id = b.agency_id
     WHERE b.role_name = session_user
$f$;

REVOKE ALL ON FUNCTION aos_rls.analyst_agency(), aos_rls.analyst_sees_all_clients(),
  aos_rls.analyst_clients() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_rls.analyst_agency(), aos_rls.analyst_sees_all_clients(),
  aos_rls.analyst_clients() TO aos_analyst;

RESET ROLE;

DO $$ BEGIN
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
"""

POLICY_SQL = """
DROP POLICY IF EXISTS analyst_read ON public.{table};
CREATE POLICY analyst_read ON public.{table} FOR SELECT TO aos_analyst USING (
  agency_id = (SELECT aos_rls.analyst_agency())
  AND ((SELECT aos_rls.analyst_sees_all_clients())
       OR {client_column} = ANY ((SELECT aos_rls.analyst_clients())::bigint[]))
);
"""

OLD_POLICY_SQL = """
DROP POLICY IF EXISTS analyst_read ON public.{table};
CREATE POLICY analyst_read ON public.{table} FOR SELECT TO aos_analyst USING (
  agency_id = (SELECT aos_analyst_agency())
  AND ((SELECT aos_analyst_sees_all_clients())
       OR {client_column} = ANY ((SELECT aos_analyst_clients())::bigint[]))
);
"""

OLD_FUNCTIONS = (
    "public.aos_analyst_agency()",
    "public.aos_analyst_sees_all_clients()",
    "public.aos_analyst_clients()",
)


def _add_agency_column(table: str, parent: str, child_key: str) -> str:
    """SQL that gives ``table`` the agency of its parent row (names from this file only)."""
    return "\n".join(
        [
            f"ALTER TABLE {table} ADD COLUMN agency_id bigint;",
            f"UPDATE {table} AS t SET agency_id = p.agency_id FROM {parent} AS p"  # noqa: S608
            f" WHERE p.id = t.{child_key};",
            f"ALTER TABLE {table} ALTER COLUMN agency_id SET NOT NULL;",
        ]
    )


def upgrade() -> None:
    # 1. References that point at integration(id) / client(id) go, so those keys can change.
    for table in INTEGRATION_CHILDREN:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT fk_{table}_integration_id_integration")
    op.execute(
        "ALTER TABLE member_client_access DROP CONSTRAINT fk_member_client_access_client_id_client"
    )
    op.execute("ALTER TABLE integration DROP CONSTRAINT fk_integration_client_id_client")
    # 2. Tables that reference an integration or client but had no tenant column get one.
    op.execute(_add_agency_column("integration_credential", "integration", "integration_id"))
    op.execute(_add_agency_column("sync_state", "integration", "integration_id"))
    op.execute(_add_agency_column("member_client_access", "client", "client_id"))
    # 3. Every key and index of a tenant table leads with agency_id.
    for table in ("client", "integration", "sync_run"):
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY (agency_id, id)"
        )
    op.execute("DROP INDEX ix_client_agency_id")
    op.execute("DROP INDEX ix_integration_agency_id")
    op.execute("DROP INDEX ix_sync_run_integration_id")
    op.execute(
        "CREATE INDEX ix_sync_run_agency_integration ON sync_run "
        "(agency_id, integration_id, started_at)"
    )
    for table, key in PROVIDER_TABLES:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, ADD CONSTRAINT pk_{table} "
            f"PRIMARY KEY (agency_id, integration_id, {', '.join(key)})"
        )
    op.execute("DROP INDEX ix_slack_messages_thread")
    op.execute(
        "CREATE INDEX ix_slack_messages_thread ON slack_messages "
        "(agency_id, integration_id, channel_id, thread_ts)"
    )
    # 4. The references again, tenant-tagged.
    op.execute(
        "ALTER TABLE integration ADD CONSTRAINT fk_integration_client "
        "FOREIGN KEY (agency_id, client_id) REFERENCES client (agency_id, id)"
    )
    op.execute(
        "ALTER TABLE member_client_access ADD CONSTRAINT fk_member_client_access_client "
        "FOREIGN KEY (agency_id, client_id) REFERENCES client (agency_id, id) ON DELETE CASCADE"
    )
    for table in INTEGRATION_CHILDREN:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_integration FOREIGN KEY "
            "(agency_id, integration_id) REFERENCES integration (agency_id, id) ON DELETE CASCADE"
        )
    # 5. Policy helpers nobody can hijack, policies that use them, nothing analysts can create.
    op.execute(HELPERS_SQL)
    for table, client_column in TENANT_TABLES:
        op.execute(POLICY_SQL.format(table=table, client_column=client_column))
    op.execute(f"DROP FUNCTION {', '.join(OLD_FUNCTIONS)}")


def downgrade() -> None:
    # The 0001 helpers come back as they were (with their flaws: this is a downgrade).
    op.execute("""
CREATE FUNCTION aos_analyst_agency() RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT agency_id FROM analyst_binding WHERE role_name = session_user
$$;
CREATE FUNCTION aos_analyst_sees_all_clients() RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(bool_or(r.level > (SELECT level FROM role WHERE name = 'member')), false)
      FROM analyst_binding b
      JOIN user_role ur ON ur.user_id = b.user_id
      JOIN role r ON r.name = ur.role_name
     WHERE b.role_name = session_user
$$;
CREATE FUNCTION aos_analyst_clients() RETURNS bigint[]
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
""")
    for table, client_column in TENANT_TABLES:
        op.execute(OLD_POLICY_SQL.format(table=table, client_column=client_column))
    op.execute("DROP SCHEMA aos_rls CASCADE")
    op.execute(
        "REVOKE SELECT ON public.analyst_binding, public.user_role, public.role, "
        "public.member_client_access FROM aos_rls"
    )
    op.execute("REVOKE USAGE ON SCHEMA public FROM aos_rls")
    op.execute("""
DO $$ BEGIN
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END $$;
""")
    for table in INTEGRATION_CHILDREN:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT fk_{table}_integration")
    op.execute("ALTER TABLE member_client_access DROP CONSTRAINT fk_member_client_access_client")
    op.execute("ALTER TABLE integration DROP CONSTRAINT fk_integration_client")
    op.execute("DROP INDEX ix_slack_messages_thread")
    op.execute(
        "CREATE INDEX ix_slack_messages_thread ON slack_messages "
        "(integration_id, channel_id, thread_ts)"
    )
    for table, key in PROVIDER_TABLES:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, ADD CONSTRAINT pk_{table} "
            f"PRIMARY KEY (integration_id, {', '.join(key)})"
        )
    op.execute("DROP INDEX ix_sync_run_agency_integration")
    op.execute("CREATE INDEX ix_sync_run_integration_id ON sync_run (integration_id)")
    op.execute("CREATE INDEX ix_integration_agency_id ON integration (agency_id)")
    op.execute("CREATE INDEX ix_client_agency_id ON client (agency_id)")
    for table in ("client", "integration", "sync_run"):
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id)"
        )
    for table in ("integration_credential", "sync_state", "member_client_access"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN agency_id")
    op.execute(
        "ALTER TABLE integration ADD CONSTRAINT fk_integration_client_id_client "
        "FOREIGN KEY (client_id) REFERENCES client (id) ON DELETE SET NULL"
    )
    op.execute(
        "ALTER TABLE member_client_access ADD CONSTRAINT fk_member_client_access_client_id_client "
        "FOREIGN KEY (client_id) REFERENCES client (id) ON DELETE CASCADE"
    )
    for table in INTEGRATION_CHILDREN:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_integration_id_integration "
            "FOREIGN KEY (integration_id) REFERENCES integration (id) ON DELETE CASCADE"
        )
