"""An installation with two agencies, every provider, clients with and without grants, a secret
planted in every text column of every row, and an analyst login for each kind of reader.

Rows are made from the table definitions (a value for each column type), so every provider
table, present and future, is covered. Each row's text says whose it is
(``SECRET-<agency>-<client or agency-wide>``), so a test can tell at once whether a login can
see something it must not.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from connectors import registry
from db import readers, schema, tenancy
from db.agencydb import placement
from db.analyst import create_analyst

PROVIDER_TABLES = [t for t in schema.agency_metadata.sorted_tables if "synced_at" in t.c]
_serial = itertools.count(1)


def value_for(column: sa.Column[Any], tag: str) -> Any:
    kind = column.type
    n = next(_serial)
    if isinstance(kind, ARRAY):
        if isinstance(kind.item_type, sa.Integer):
            return [n]
        return [f"{tag}-{n}@{tag.lower()}.example"]
    if isinstance(kind, JSONB):
        return {"note": f"{tag}-{n}"}
    if isinstance(kind, sa.Boolean):
        return n % 2 == 0
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 11, 1 + n % 28, 12, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return date(2026, 11, 1 + n % 28)
    if isinstance(kind, sa.Numeric):
        return Decimal(n) / 4
    if isinstance(kind, sa.Integer):  # BigInteger too
        return n
    return f"{tag}-{n}"


def rows_for(
    table: sa.Table, integration_id: int, agency_id: int, client_id: int | None, tag: str
) -> list[dict[str, Any]]:
    out = []
    for _ in range(2):
        row = {c.name: value_for(c, tag) for c in table.columns}
        row.update(
            integration_id=integration_id,
            agency_id=agency_id,
            client_id=client_id,
            deleted_at=None,
        )
        out.append(row)
    return out


@dataclass
class Seeded:
    agency_id: int
    name: str
    clients: dict[str, int]
    integrations: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # id, client
    logins: dict[str, dict[str, str]] = field(default_factory=dict)

    def secret(self, client: str | None) -> str:
        return f"SECRET-{self.name}-{client or 'all'}"


def seed_agency(control: sa.Engine, name: str) -> Seeded:
    """Agency ``name``: clients c0 and c1, an integration bound to each and an agency-wide one
    (of the registry's providers in turn), each with rows in every provider table; users owner,
    manager, member (read on c0) and nobody (a member with no grant), each with a login."""
    providers = itertools.cycle(registry.names())
    with control.begin() as conn:
        agency_id = tenancy.create_agency(conn, f"Isolation {name}")
        clients = {c: tenancy.add_client(conn, agency_id, f"{name}-{c}") for c in ("c0", "c1")}
        seeded = Seeded(agency_id, name, clients)
        for role in ("owner", "manager", "member", "nobody"):
            email = f"{role}@{name.lower()}.test"
            tenancy.add_user(conn, agency_id, email, "member" if role == "nobody" else role)
        member = tenancy.find_user(conn, f"member@{name.lower()}.test")
        tenancy.grant_access(conn, member.id, clients["c0"], "read")
        for client in ("c0", "c1", None):
            iid = tenancy.add_integration(
                conn,
                agency_id,
                next(providers),
                f"{name}-{client or 'all'}",
                client_id=clients[client] if client else None,
            )
            seeded.integrations[client or "all"] = (iid, clients[client] if client else None)
    for client, (iid, client_id) in seeded.integrations.items():
        data = readers.attach(control, agency_id, iid, [t.name for t in PROVIDER_TABLES])
        tag = seeded.secret(None if client == "all" else client)
        with data.begin() as conn:
            for table in PROVIDER_TABLES:
                conn.execute(table.insert(), rows_for(table, iid, agency_id, client_id, tag))
    for role in ("owner", "manager", "member", "nobody"):
        login = create_analyst(control, f"{role}@{name.lower()}.test")
        url = sa.make_url(placement(control, agency_id).url).set(
            drivername="postgresql", username=login.role_name, password=login.password
        )
        seeded.logins[role] = {
            "role": login.role_name,
            "url": url.render_as_string(hide_password=False),
        }
    return seeded
