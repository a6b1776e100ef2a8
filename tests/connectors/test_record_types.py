"""Every declared record type matches its table: a renamed column fails here, not in a load.

Each provider package under ``connectors/`` declares its streams (``STREAMS``); each stream
names its table and the ``TypedDict`` of one row. The row must have the table's columns --
the same names, minus the tenant columns the loader sets (``db.schema.TENANT_COLUMNS``), plus
any ``_``-prefixed hint fields -- and a NOT NULL column must be neither ``NotRequired`` nor
allowed to be ``None``; a column's Python type must be the one its SQL type stores.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints

import pytest
import sqlalchemy as sa

import connectors
from connectors.common import StreamSpec
from db import schema


def declared() -> Iterator[tuple[str, StreamSpec]]:
    """(provider package, stream) for every package under ``connectors/`` with ``STREAMS``."""
    for info in pkgutil.iter_modules(connectors.__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"connectors.{info.name}")
        for spec in getattr(module, "STREAMS", {}).values():
            yield info.name, spec


def _allows_none(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _stored_type(hint: Any) -> Any:
    """The Python type a field holds, ``X | None`` and ``list[str]`` read as ``X`` and ``list``."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return get_origin(hint) or hint


def problems(record: type[Mapping[str, Any]], table: sa.Table) -> list[str]:
    """What is wrong with ``record`` as a row of ``table`` (nothing, when they agree)."""
    hints = get_type_hints(record, include_extras=True)
    columns = {c.name: c for c in table.columns if c.name not in schema.TENANT_COLUMNS}
    fields = {name for name in hints if not name.startswith("_")}
    found = [f"no field for column {name!r}" for name in sorted(columns.keys() - fields)]
    found += [f"field {name!r} is no column" for name in sorted(fields - columns.keys())]
    for name in sorted(fields & columns.keys()):
        hint, column = hints[name], columns[name]
        if get_origin(hint) is NotRequired:
            if not column.nullable:
                found.append(f"{name!r} is NOT NULL but NotRequired")
            hint = get_args(hint)[0]
        if not column.nullable and _allows_none(hint):
            found.append(f"{name!r} is NOT NULL but may be None")
        try:
            expected = column.type.python_type
        except NotImplementedError:
            continue
        if expected is not object and _stored_type(hint) is not expected:  # object: jsonb
            found.append(f"{name!r} holds {hint}, the column stores {expected.__name__}")
    return found


DECLARED = list(declared())


def test_every_provider_package_declares_its_streams() -> None:
    assert {"slack", "gmail"} <= {provider for provider, _ in DECLARED}


@pytest.mark.parametrize(("provider", "spec"), DECLARED, ids=[f"{p}.{s.name}" for p, s in DECLARED])
def test_record_type_matches_its_table(provider: str, spec: StreamSpec) -> None:
    table = schema.agency_metadata.tables.get(spec.table)
    assert table is not None, f"{provider} {spec.name}: no table {spec.table!r} in db.schema"
    assert spec.record is not None, f"{provider} {spec.name}: no record type declared"
    assert problems(spec.record, table) == [], spec.record.__name__
    assert set(spec.primary_key) <= {c.name for c in table.primary_key.columns}


def test_every_table_of_a_provider_has_a_record_type() -> None:
    providers = {provider for provider, _ in DECLARED}
    typed = {spec.table for _, spec in DECLARED}
    tenant_tables = [
        t.name
        for t in schema.agency_metadata.tables.values()
        if set(schema.TENANT_COLUMNS) <= {c.name for c in t.columns}
    ]
    untyped = [t for t in tenant_tables if t.split("_")[0] in providers and t not in typed]
    assert untyped == []


class _Renamed(TypedDict):
    """``gmail_labels`` with one column renamed and one made optional: both must be caught."""

    label_id: str
    title: str  # the column is ``name``
    type: str | None  # NOT NULL
    messages_total: int | None
    messages_unread: int | None
    threads_total: int | None
    threads_unread: int | None
    _hint: list[str]


class _WrongType(TypedDict):
    channel_id: str
    name: str
    is_private: bool
    is_archived: bool
    is_member: bool
    created_at: str  # a timestamptz column
    creator_id: str | None
    topic: str | None
    purpose: str | None
    num_members: int | None


def test_the_check_catches_renames_nullability_and_types() -> None:
    assert problems(_Renamed, schema.agency_metadata.tables["gmail_labels"]) == [
        "no field for column 'name'",
        "field 'title' is no column",
        "'type' is NOT NULL but may be None",
    ]
    wrong = problems(_WrongType, schema.agency_metadata.tables["slack_channels"])
    assert wrong == [f"'created_at' holds {str!r}, the column stores {datetime.__name__}"]
