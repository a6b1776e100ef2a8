"""Advisory lock keys nobody outside the control database can compute.

Every lock of the application (one sync per integration, the quota ledger, connect states, an
agency database's migrations) is taken in the control database, where no analyst can connect,
so no analyst can hold one. ``pg_locks`` is readable by every login of the cluster, though, and
shows the keys held: keys are therefore salted with the installation's secret
(``aos_installation.lock_salt``), so a key tells nobody which integration is syncing.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["key_sql", "lock", "try_lock", "unlock", "xact_lock"]


def key_sql(param: str = "name") -> str:
    """The SQL expression of the lock key of the text bound as ``:param``."""
    return (
        "hashtextextended((SELECT s.lock_salt FROM public.aos_installation AS s) || ':' || "  # noqa: S608
        f":{param}, 0)"
    )


def try_lock(conn: sa.Connection, name: str) -> bool:
    """Take the session-level lock ``name`` if free (released with :func:`unlock`)."""
    return bool(
        conn.execute(sa.text(f"SELECT pg_try_advisory_lock({key_sql()})"), {"name": name}).scalar()
    )


def unlock(conn: sa.Connection, name: str) -> None:
    conn.execute(sa.text(f"SELECT pg_advisory_unlock({key_sql()})"), {"name": name})


def xact_lock(conn: sa.Connection, name: str) -> None:
    """Wait for the transaction-level lock ``name`` (released at commit or rollback)."""
    conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({key_sql()})"), {"name": name})


def lock(conn: sa.Connection, name: str) -> None:
    """Wait for the session-level lock ``name`` (released with :func:`unlock`)."""
    conn.execute(sa.text(f"SELECT pg_advisory_lock({key_sql()})"), {"name": name})
