"""A subset of the Google Ads Query Language, parsed and evaluated over flat rows.

Grammar (https://developers.google.com/google-ads/api/docs/query/grammar), the part emulated::

    SELECT field (, field)* FROM resource
      [WHERE condition (AND condition)*]
      [ORDER BY field [ASC|DESC] (, field [ASC|DESC])*]
      [LIMIT n] [PARAMETERS name = value (, name = value)*]

Conditions: ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN (...)``, ``NOT IN (...)``,
``BETWEEN 'a' AND 'b'`` and ``DURING <preset>``. There is no ``OR`` in GAQL. ``LIKE``,
``IS [NOT] NULL``, ``CONTAINS ...`` and ``REGEXP_MATCH`` are valid GAQL the emulator does not
evaluate: they are refused with ``BAD_OPERATOR`` (the message says so).

A row is a flat ``{"campaign.id": 1, "segments.date": "2026-01-02", ...}`` dict; field names
are checked against the library's own ``GoogleAdsRow`` descriptor, so any real v26 field is
"known" and a typo is ``UNRECOGNIZED_FIELD``, as on the real server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow
from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = ["Condition", "GaqlError", "Query", "date_bounds", "matches", "parse", "preset_range"]


class GaqlError(Exception):
    """A query the server refuses: the ``QueryError`` enum name and the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = != < <= > >= IN, NOT IN, BETWEEN, DURING
    values: tuple[Any, ...]


@dataclass
class Query:
    select: list[str]
    resource: str
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None

    @property
    def metrics(self) -> list[str]:
        return [f for f in self.select if f.startswith("metrics.")]

    def fields(self) -> list[str]:
        return [*self.select, *(c.field for c in self.where), *(f for f, _ in self.order)]


@dataclass(frozen=True)
class _Ident:
    """An unquoted word used as a value: an enum constant, TRUE/FALSE or a preset."""

    name: str


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<sym>!=|<=|>=|=|<|>|\(|\)|,)
    )""",
    re.VERBOSE,
)
_OPS = ("=", "!=", "<", "<=", ">", ">=")
_UNEMULATED_OPS = ("LIKE", "IS", "CONTAINS", "REGEXP_MATCH")
PRESETS = (
    "TODAY",
    "YESTERDAY",
    "LAST_7_DAYS",
    "LAST_14_DAYS",
    "LAST_30_DAYS",
    "LAST_BUSINESS_WEEK",
    "THIS_MONTH",
    "LAST_MONTH",
    "THIS_WEEK_SUN_TODAY",
    "THIS_WEEK_MON_TODAY",
    "LAST_WEEK_SUN_SAT",
    "LAST_WEEK_MON_SUN",
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            rest = text[pos:].lstrip()
            if rest[:1] in "'\"":
                raise GaqlError("STRING_NOT_TERMINATED", f"String not terminated: {rest[:20]}")
            raise GaqlError("BAD_SYMBOL", f"Error in query: unexpected symbol '{rest[:1]}'.")
        kind = m.lastgroup or "sym"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            return True
        return False

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise GaqlError("UNEXPECTED_END_OF_QUERY", "Error in query: unexpected end of query.")
        self.i += 1
        return tok

    def expect_word(self, word: str, code: str) -> None:
        if not self.keyword(word):
            found = self.peek()
            raise GaqlError(
                code,
                f"Error in query: expected {word}, found {found[1] if found else 'end of query'}.",
            )
        self.i += 1

    def field_name(self) -> str:
        kind, text = self.take()
        if kind != "word":
            raise GaqlError(
                "BAD_FIELD_NAME", f"Error in query: expected a field name, found '{text}'."
            )
        return text

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("\\'", "'").replace('\\"', '"')
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word":
            return _Ident(text)
        raise GaqlError("BAD_VALUE", f"Error in query: unexpected value '{text}'.")

    def value_list(self) -> tuple[Any, ...]:
        kind, text = self.take()
        if text != "(":
            raise GaqlError("EXPECTED_LIST", "Error in query: expected a list of values.")
        values: list[Any] = []
        while True:
            tok = self.peek()
            if tok and tok[1] == ")" and not values:
                raise GaqlError("PROHIBITED_EMPTY_LIST_IN_CONDITION", "Error in query: empty list.")
            values.append(self.value())
            kind, text = self.take()
            if text == ")":
                return tuple(values)
            if text != ",":
                raise GaqlError("UNEXPECTED_INPUT", f"Error in query: unexpected input {text}.")

    def condition(self) -> Condition:
        name = self.field_name()
        tok = self.peek()
        if tok is None:
            raise GaqlError("UNEXPECTED_END_OF_QUERY", "Error in query: unexpected end of query.")
        if tok[1] in _OPS:
            self.i += 1
            return Condition(name, tok[1], (self.value(),))
        word = tok[1].upper()
        if word == "IN":
            self.i += 1
            return Condition(name, "IN", self.value_list())
        if word == "NOT" and self.peek(1) and str(self.peek(1)[1]).upper() == "IN":  # type: ignore[index]
            self.i += 2
            return Condition(name, "NOT IN", self.value_list())
        if word == "BETWEEN":
            self.i += 1
            low = self.value()
            if not self.keyword("AND"):
                raise GaqlError(
                    "EXPECTED_VALUE_WITH_BETWEEN_OPERATOR",
                    "Error in query: BETWEEN expects 'a' AND 'b'.",
                )
            self.i += 1
            return Condition(name, "BETWEEN", (low, self.value()))
        if word == "DURING":
            self.i += 1
            preset = self.value()
            if not isinstance(preset, _Ident) or preset.name.upper() not in PRESETS:
                raise GaqlError(
                    "INVALID_VALUE_WITH_DURING_OPERATOR",
                    f"Error in query: invalid value {preset!r} with DURING.",
                )
            return Condition(name, "DURING", (preset.name.upper(),))
        if word in _UNEMULATED_OPS or word == "NOT":
            raise GaqlError(
                "BAD_OPERATOR",
                f"Operator {tok[1]} is valid GAQL but not evaluated by this emulator.",
            )
        raise GaqlError("BAD_OPERATOR", f"Error in query: unexpected operator '{tok[1]}'.")

    def parse(self) -> Query:
        self.expect_word("SELECT", "EXPECTED_SELECT")
        select = [self.field_name()]
        while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
            self.i += 1
            select.append(self.field_name())
        self.expect_word("FROM", "EXPECTED_FROM")
        kind, resource = self.take()
        if kind != "word" or "." in resource:
            raise GaqlError(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                f"Error in FROM clause: invalid resource '{resource}'.",
            )
        query = Query(select, resource)
        if self.keyword("WHERE"):
            self.i += 1
            query.where.append(self.condition())
            while self.keyword("AND", "OR"):
                if self.keyword("OR"):
                    raise GaqlError(
                        "UNEXPECTED_INPUT", "Error in query: OR is not supported in GAQL."
                    )
                self.i += 1
                query.where.append(self.condition())
        if self.keyword("ORDER"):
            self.i += 1
            self.expect_word("BY", "EXPECTED_BY")
            while True:
                name = self.field_name()
                descending = False
                if self.keyword("ASC", "DESC"):
                    descending = self.take()[1].upper() == "DESC"
                query.order.append((name, descending))
                if not (self.peek() and self.peek()[1] == ","):  # type: ignore[index]
                    break
                self.i += 1
        if self.keyword("LIMIT"):
            self.i += 1
            kind, text = self.take()
            if kind != "num" or "." in text:
                raise GaqlError("BAD_LIMIT_VALUE", f"Error in query: bad LIMIT value {text}.")
            if int(text) <= 0:
                raise GaqlError("LIMIT_VALUE_TOO_LOW", "Error in query: LIMIT must be positive.")
            query.limit = int(text)
        if self.keyword("PARAMETERS"):
            self.i += 1
            while True:
                self.field_name()
                if self.take()[1] != "=":
                    raise GaqlError("BAD_PARAMETER_VALUE", "Error in query: bad PARAMETERS clause.")
                self.value()
                if not (self.peek() and self.peek()[1] == ","):  # type: ignore[index]
                    break
                self.i += 1
        tok = self.peek()
        if tok is not None:
            raise GaqlError("UNEXPECTED_INPUT", f"Error in query: unexpected input {tok[1]}.")
        return query


def parse(text: str) -> Query:
    """Parse ``text``; raises :class:`GaqlError` (``QueryError`` names) on bad syntax."""
    query = _Parser(text).parse()
    for name in query.fields():
        check_field(name)
    return query


_ROW: Descriptor = GoogleAdsRow.pb().DESCRIPTOR


def check_field(name: str) -> FieldDescriptor:
    """The leaf descriptor of a dotted field of ``GoogleAdsRow``; ``UNRECOGNIZED_FIELD`` if
    there is none, and a message-typed (non-leaf) path is refused as on the real server."""
    descriptor: Descriptor | None = _ROW
    leaf: FieldDescriptor | None = None
    for part in name.split("."):
        if descriptor is None:
            leaf = None
            break
        # proto-plus renames fields that clash with Python names (``type`` -> ``type_``)
        leaf = descriptor.fields_by_name.get(part) or descriptor.fields_by_name.get(part + "_")
        if leaf is None:
            break
        descriptor = leaf.message_type if leaf.type == FieldDescriptor.TYPE_MESSAGE else None
    if leaf is None or leaf.type == FieldDescriptor.TYPE_MESSAGE or "." not in name:
        raise GaqlError("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{name}'.")
    return leaf


def is_resource(name: str) -> bool:
    f = _ROW.fields_by_name.get(name)
    return f is not None and name not in ("metrics", "segments")


# -- dates -------------------------------------------------------------------------------
def parse_date(value: Any) -> date:
    text = str(value)
    try:
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text)
    except ValueError:
        raise GaqlError("INVALID_DATE_FORMAT", f"Invalid date: {text}") from None


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The inclusive day range of a ``DURING`` preset, relative to the account's today."""
    if preset == "TODAY":
        return today, today
    if preset == "YESTERDAY":
        return today - timedelta(1), today - timedelta(1)
    m = re.fullmatch(r"LAST_(\d+)_DAYS", preset)
    if m:  # not including today
        return today - timedelta(int(m.group(1))), today - timedelta(1)
    if preset == "THIS_MONTH":
        return today.replace(day=1), today
    if preset == "LAST_MONTH":
        end = today.replace(day=1) - timedelta(1)
        return end.replace(day=1), end
    if preset == "THIS_WEEK_MON_TODAY":
        return today - timedelta(today.weekday()), today
    if preset == "THIS_WEEK_SUN_TODAY":
        return today - timedelta((today.weekday() + 1) % 7), today
    if preset == "LAST_WEEK_MON_SUN":
        start = today - timedelta(today.weekday() + 7)
        return start, start + timedelta(6)
    if preset == "LAST_WEEK_SUN_SAT":
        start = today - timedelta((today.weekday() + 1) % 7 + 7)
        return start, start + timedelta(6)
    if preset == "LAST_BUSINESS_WEEK":
        start = today - timedelta(today.weekday() + 7)
        return start, start + timedelta(4)
    raise GaqlError("INVALID_VALUE_WITH_DURING_OPERATOR", f"Unsupported preset {preset}.")


def date_bounds(where: Iterable[Condition], today: date) -> tuple[date | None, date | None, bool]:
    """``(lo, hi, finite)`` for ``segments.date`` from the WHERE clause; ``finite`` is True
    when both ends are bounded (what ``segments.date`` in SELECT requires)."""
    lo: date | None = None
    hi: date | None = None

    def low(d: date) -> None:
        nonlocal lo
        lo = d if lo is None else max(lo, d)

    def high(d: date) -> None:
        nonlocal hi
        hi = d if hi is None else min(hi, d)

    for c in where:
        if c.field != "segments.date":
            continue
        if c.op == "DURING":
            a, b = preset_range(c.values[0], today)
            low(a)
            high(b)
        elif c.op == "BETWEEN":
            low(parse_date(c.values[0]))
            high(parse_date(c.values[1]))
        elif c.op == "=":
            low(parse_date(c.values[0]))
            high(parse_date(c.values[0]))
        elif c.op == "IN":
            days = [parse_date(v) for v in c.values]
            low(min(days))
            high(max(days))
        elif c.op in (">", ">="):
            low(parse_date(c.values[0]) + timedelta(1 if c.op == ">" else 0))
        elif c.op in ("<", "<="):
            high(parse_date(c.values[0]) - timedelta(1 if c.op == "<" else 0))
    return lo, hi, lo is not None and hi is not None


# -- evaluation --------------------------------------------------------------------------
def _coerce(literal: Any, sample: Any, name: str) -> Any:
    if name == "segments.date":
        return parse_date(literal.name if isinstance(literal, _Ident) else literal).isoformat()
    if isinstance(sample, bool):
        if isinstance(literal, _Ident) and literal.name.upper() in ("TRUE", "FALSE"):
            return literal.name.upper() == "TRUE"
        raise GaqlError("BAD_VALUE", f"Expected TRUE or FALSE for {name}.")
    if isinstance(sample, int | float):
        try:
            return type(sample)(literal.name if isinstance(literal, _Ident) else literal)
        except (TypeError, ValueError):
            raise GaqlError("BAD_NUMBER", f"Expected a number for {name}.") from None
    return literal.name if isinstance(literal, _Ident) else str(literal)


def matches(row: dict[str, Any], cond: Condition, today: date) -> bool:
    value = row.get(cond.field)
    if value is None or isinstance(value, list):
        return False
    if cond.op == "DURING":
        a, b = preset_range(cond.values[0], today)
        return a.isoformat() <= value <= b.isoformat()
    vals = [_coerce(v, value, cond.field) for v in cond.values]
    op = cond.op
    if op == "=":
        return bool(value == vals[0])
    if op == "!=":
        return bool(value != vals[0])
    if op == "<":
        return bool(value < vals[0])
    if op == "<=":
        return bool(value <= vals[0])
    if op == ">":
        return bool(value > vals[0])
    if op == ">=":
        return bool(value >= vals[0])
    if op == "IN":
        return value in vals
    if op == "NOT IN":
        return value not in vals
    if op == "BETWEEN":
        return bool(vals[0] <= value <= vals[1])
    raise GaqlError("BAD_OPERATOR", f"Unsupported operator {op}.")
