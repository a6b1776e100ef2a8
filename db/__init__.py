"""Database layer: tables, migrations, loader, sync state, vault, RBAC, row-level security.

No Prefect and no connector imports here.
"""
