"""Record checks for the loader: used only after a batch failed, to name and set aside the
records PostgreSQL refused (the fast path does no per-value work in Python).

Also the typed JSON form in which a refused record is kept in ``sync_reject``, so that a later
run can try it again with the same Python types.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import reprlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

__all__ = [
    "RECORD_CAP_BYTES",
    "approx_row_bytes",
    "check_for",
    "decode_record",
    "describe",
    "encode_record",
]

#: A refused record larger than this (as typed JSON) is kept without its body: it is then
#: listed for an operator but cannot be retried from storage (a later run re-reads it anyway
#: when the provider sends it again).
RECORD_CAP_BYTES = 64 * 1024


def approx_row_bytes(records: Sequence[Mapping[str, Any]]) -> int:
    """Rough staged size of a row, from up to three sample records (cheap, per page)."""
    if not records:
        return 1
    sample = [records[0], records[len(records) // 2], records[-1]]
    size = sum(
        len(v) if isinstance(v, str) else len(repr(v)) if isinstance(v, dict | list) else 8
        for r in sample
        for v in r.values()
    )
    return max(1, size // len(sample) + 8)


def describe(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, dt.datetime) and value.utcoffset() is None:
        kind = "naive datetime"
    return f"{kind} {reprlib.repr(value)}"


def _text_ok(value: Any) -> bool:
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate cannot be encoded, so it cannot be stored
    except UnicodeEncodeError:
        return False
    return True


def _json_ok(value: Any) -> bool:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return False
    return "\\u0000" not in text and "\x00" not in text


def _int_in(bits: int) -> Callable[[Any], bool]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_for(t: sa.types.TypeEngine[Any]) -> tuple[str, Callable[[Any], bool]]:
    """(type label, predicate) for a column type; the predicate accepts what we store."""
    if isinstance(t, sa.ARRAY):
        label, item = check_for(t.item_type)
        return (
            f"{label}[]",
            lambda v: isinstance(v, list | tuple) and all(x is None or item(x) for x in v),
        )
    if isinstance(t, sa.JSON | pg.JSONB):
        return ("jsonb" if isinstance(t, pg.JSONB) else "json"), _json_ok
    if isinstance(t, sa.DateTime):
        if t.timezone:
            return "timestamptz", lambda v: isinstance(v, dt.datetime) and v.utcoffset() is not None
        return "timestamp", lambda v: isinstance(v, dt.datetime) and v.utcoffset() is None
    if isinstance(t, sa.Date):
        return "date", lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)
    if isinstance(t, sa.Boolean):
        return "boolean", lambda v: isinstance(v, bool)
    if isinstance(t, sa.BigInteger):
        return "bigint", _int_in(64)
    if isinstance(t, sa.SmallInteger):
        return "smallint", _int_in(16)
    if isinstance(t, sa.Integer):
        return "integer", _int_in(32)
    if isinstance(t, sa.Float):
        return "double precision", lambda v: isinstance(v, float | int) and not isinstance(v, bool)
    if isinstance(t, sa.Numeric):
        return "numeric", lambda v: isinstance(v, Decimal | int) and not isinstance(v, bool)
    if isinstance(t, sa.String | sa.Enum):
        return "text", _text_ok
    if isinstance(t, sa.LargeBinary | pg.BYTEA):
        return "bytea", lambda v: isinstance(v, bytes | bytearray | memoryview)
    if isinstance(t, sa.Uuid | pg.UUID):
        return "uuid", lambda v: isinstance(v, uuid.UUID | str)
    if isinstance(t, sa.Interval):
        return "interval", lambda v: isinstance(v, dt.timedelta)
    return str(t).lower(), lambda v: True


# -- typed JSON for sync_reject ----------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return {"$float": repr(value)}  # NaN and the infinities are not JSON
    if isinstance(value, str):
        # Keep what PostgreSQL cannot store readable and reversible: NUL and lone surrogates.
        if "\x00" in value or not _text_ok(value):
            return {"$text": value.encode("utf-16", "surrogatepass").hex()}
        return value
    if isinstance(value, Mapping):
        return {"$map": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    ((tag, inner),) = value.items()
    if tag == "$map":
        return {k: _decode(v) for k, v in inner.items()}
    if tag == "$datetime":
        return dt.datetime.fromisoformat(inner)
    if tag == "$date":
        return dt.date.fromisoformat(inner)
    if tag == "$decimal":
        return Decimal(inner)
    if tag == "$uuid":
        return uuid.UUID(inner)
    if tag == "$seconds":
        return dt.timedelta(seconds=inner)
    if tag == "$base64":
        return base64.b64decode(inner)
    if tag == "$float":
        return float(inner)
    if tag == "$text":
        return bytes.fromhex(inner).decode("utf-16", "surrogatepass")
    raise ValueError(f"unknown tag {tag!r} in a stored record")


def encode_record(record: Mapping[str, Any]) -> tuple[str, int]:
    """(typed JSON text, its size in bytes). Safe for jsonb whatever the record holds."""
    text = json.dumps(_encode(dict(record)), ensure_ascii=True, default=repr)
    return text, len(text)


def decode_record(stored: Any) -> dict[str, Any]:
    """The record :func:`encode_record` stored, with its Python types back."""
    data = _decode(stored)
    if not isinstance(data, dict):
        raise ValueError("a stored record is not an object")
    return data
