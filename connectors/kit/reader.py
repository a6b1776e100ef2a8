"""The read loop: a declared stream in, checked and counted pages out.

Every connector's ``read(stream, state)`` is :meth:`ReadLoop.read`. It is the one place in
``connectors`` that acts on a :class:`~connectors.common.StreamSpec`:

* ``name`` picks the stream's reader function (an unknown name is a ``ValueError``);
* ``partition_by`` decides what that function is given: every saved cursor (partition ->
  cursor) for a partitioned stream, the stream's single cursor (partition ``""``) or ``None``
  otherwise;
* a :class:`Window` (the date range a ``since`` run, a full refresh or a backfill chunk asks
  for) reaches only the functions of the streams the connector declares windowed, as their
  second argument; asking another stream for one is a ``ValueError``, so a window the task
  layer sends is never silently ignored;
* the declaration itself is checked when the loop is built: the key, the partition field and
  the client hint field must be fields of ``record``;
* each page is checked against the declaration before it leaves: its stream name, its
  partition (every record of a partitioned page belongs to it; an unpartitioned page has
  none), its records (exactly the keys of ``record``, the row ``TypedDict``), its keys
  (deleted and alive keys have the arity of ``primary_key``) and its reconcile claim (it
  names record fields). A page that breaks the declaration is a connector bug: it raises
  :class:`~connectors.common.ConnectorError` rather than reach the loader, where it would
  store rows under the wrong cursor or soft-delete the wrong ones;
* pages and records are counted in ``RunStats``;
* :class:`~connectors.kit.transport.BudgetExhausted` ends the run cleanly: a warning, and
  this and later ``read`` calls end without error; the saved cursors resume next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import chain
from types import MappingProxyType
from typing import Any, NotRequired, get_origin, get_type_hints

from connectors.common import ConnectorError, Page, RunStats, StreamSpec

from .transport import BudgetExhausted

__all__ = [
    "ReadLoop",
    "RecordShape",
    "StreamFunction",
    "Window",
    "WindowedFunction",
    "day_span",
    "declare_streams",
]


@dataclass(frozen=True)
class Window:
    """The dates a run asks a windowed stream (messages, say) to read, the same for every
    provider; the task layer builds it from the run mode (``tasks/modes.py``).

    ``start`` is the first day read (``None``: from the beginning of the account), ``end`` the
    day after the last (exclusive; ``None``: up to now).

    * ``own_cursors=False`` (a ``since`` run, a full refresh): the stream's incremental read
      from the cursors it is given still happens, and ``[start, now)`` is read *again* on top
      of it. The window only ever widens what is read: its start is not a bound on the
      cursors (nor is the account's configured first-sync start). Deletions are claimed only
      inside what was re-read, and the cursors end no older than they were.
    * ``own_cursors=True`` (a backfill chunk): ``[start, end)`` alone, with cursors that
      belong to this window; nothing outside it is read or claimed, and the stream's
      incremental position is neither read nor moved.
    """

    start: date | None = None
    end: date | None = None
    own_cursors: bool = False

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"empty window {self.start} .. {self.end} (end is exclusive)")
        if not self.own_cursors and self.end is not None:
            raise ValueError("a window read on top of the cursors runs up to now (no end)")


def day_span(
    today: date,
    cursor: Mapping[str, Any] | None,
    window: Window | None,
    *,
    lookback_days: int,
    initial_days: int,
    start_date: date | None = None,
    retention_days: int,
) -> tuple[date, date, date | None]:
    """``(first day, last day, through)`` of one account's read of a daily stream whose past
    days keep changing for ``lookback_days`` (late conversions), ``today`` being the account's.

    The account's cursor is ``{"through": "YYYY-MM-DD"}``: every day up to it was read once.
    An incremental run reads from ``min(through + 1, today - lookback_days)`` to today; a first
    one from ``start_date`` (default ``initial_days`` back). A ``since`` run or full refresh
    widens that to ``window.start`` (or the provider's retention); a backfill chunk
    (``own_cursors``) reads ``[start, end)`` alone, resuming after its own cursor. Nothing
    older than ``retention_days`` is asked for. ``through`` is the saved cursor's day."""
    oldest = today - timedelta(days=retention_days)
    saved = (cursor or {}).get("through")
    through = date.fromisoformat(saved) if saved else None
    if window is not None and window.own_cursors:
        start = window.start or oldest
        end = min(window.end - timedelta(days=1), today) if window.end else today
        if through is not None:
            start = max(start, through + timedelta(days=1))
        return max(start, oldest), end, through
    if through is None:
        start = start_date or today - timedelta(days=initial_days)
    else:
        start = min(through + timedelta(days=1), today - timedelta(days=lookback_days))
    if window is not None:
        start = min(start, window.start or oldest)
    return max(start, oldest), today, through


# A stream's reader: given what ``partition_by`` says it gets, it yields the stream's pages.
StreamFunction = Callable[[Any], Iterator[Page]]
# A windowed stream's reader: the same, plus the run's window (``None``: an incremental run).
WindowedFunction = Callable[[Any, Window | None], Iterator[Page]]


def declare_streams(*specs: StreamSpec) -> Mapping[str, StreamSpec]:
    """A provider's read-only stream declarations, keyed by name (a name given twice is an
    error, not a silent override)."""
    names = [spec.name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"streams declared twice: {repeated}")
    return MappingProxyType({spec.name: spec for spec in specs})


@dataclass(frozen=True)
class RecordShape:
    """The keys a record type allows and requires.

    Read from the annotations, not ``__required_keys__``: with postponed annotations Python
    3.11 counts a ``NotRequired`` key as required.
    """

    name: str
    required: frozenset[str]
    allowed: frozenset[str]

    @classmethod
    def of(cls, record: type[Mapping[str, Any]]) -> RecordShape:
        hints = get_type_hints(record, include_extras=True)
        optional = {k for k, hint in hints.items() if get_origin(hint) is NotRequired}
        return cls(record.__name__, frozenset(hints) - optional, frozenset(hints))

    def mismatch(self, record: Mapping[str, Any]) -> str | None:
        """What is wrong with ``record``'s keys, or ``None``."""
        keys = record.keys()
        if keys == self.allowed or self.required <= keys <= self.allowed:
            return None
        missing = sorted(self.required - keys)
        unexpected = sorted(keys - self.allowed)
        return f"missing {missing}, unexpected {unexpected}"


class ReadLoop:
    """Runs the declared ``streams`` of one connector through their reader functions.

    ``readers`` hold the functions of streams that are read whole or from their cursors only;
    ``windowed`` those of the streams a :class:`Window` applies to (the provider registry's
    ``windowed`` streams). Every declared stream has exactly one function."""

    def __init__(
        self,
        provider: str,
        streams: Mapping[str, StreamSpec],
        stats: RunStats,
        readers: Mapping[str, StreamFunction],
        windowed: Mapping[str, WindowedFunction] | None = None,
    ) -> None:
        windowed = dict(windowed or {})
        both = sorted(set(readers) & set(windowed))
        if both:
            raise ValueError(f"{provider}: streams {both} have two reader functions")
        if set(streams) != set(readers) | set(windowed):
            raise ValueError(
                f"{provider}: declared streams {sorted(streams)} and reader functions "
                f"{sorted({*readers, *windowed})} differ"
            )
        self._shapes: dict[str, RecordShape] = {}
        for name, spec in streams.items():
            if spec.name != name:
                raise ValueError(f"{provider}: stream {name!r} is declared as {spec.name!r}")
            if spec.record is None:
                raise ValueError(f"{provider} {name}: declare the row type (StreamSpec.record)")
            shape = self._shapes[name] = RecordShape.of(spec.record)
            named = {*spec.primary_key, spec.partition_by, spec.client_field} - {None}
            stray = sorted(str(n) for n in named - shape.allowed)
            if stray:
                raise ValueError(f"{provider} {name}: {stray} are not fields of {shape.name}")
        self.provider = provider
        self.streams = streams
        self.stats = stats
        self._readers = dict(readers)
        self._windowed = windowed
        self._stopped = False

    @property
    def windowed(self) -> frozenset[str]:
        """The streams a :class:`Window` applies to."""
        return frozenset(self._windowed)

    def read(
        self,
        stream: str,
        state: Mapping[str, Mapping[str, Any]],
        window: Window | None = None,
    ) -> Iterator[Page]:
        """Yield checked pages of ``stream``; ``state`` maps partition -> saved cursor and
        ``window`` is the run's date window (windowed streams only). Once ``max_requests`` is
        reached the run stops cleanly: this and later ``read`` calls end without error, and
        the saved cursors resume next run."""
        spec = self.streams.get(stream)
        if spec is None:
            raise ValueError(
                f"unknown {self.provider} stream {stream!r}; expected one of {list(self.streams)}"
            )
        if window is not None and stream not in self._windowed:
            raise ValueError(f"{self.provider} {stream} is not a windowed stream")
        return self._pages(spec, state, window)

    def _pages(
        self, spec: StreamSpec, state: Mapping[str, Mapping[str, Any]], window: Window | None
    ) -> Iterator[Page]:
        stream = spec.name
        if self._stopped:
            return
        saved = state or {}
        given = saved if spec.partition_by is not None else saved.get("")
        if stream in self._windowed:
            pages = self._windowed[stream](given, window)
        else:
            pages = self._readers[stream](given)
        try:
            for page in pages:
                self._check(spec, page)
                self.stats.pages += 1
                self.stats.records += len(page.records)
                yield page
        except BudgetExhausted as stop:
            self._stopped = True
            self.stats.warnings.append(
                f"{self.provider} run stopped after max_requests={stop.limit} requests while "
                f"reading {stream}; the next run resumes from the saved cursors"
            )

    def _check(self, spec: StreamSpec, page: Page) -> None:
        def broken(what: str) -> ConnectorError:
            return ConnectorError(
                f"{self.provider} {spec.name}: a page breaks the stream's declaration ({what}); "
                "this is a connector bug"
            )

        if page.stream != spec.name:
            raise broken(f"stream {page.stream!r}")
        part = spec.partition_by
        if (part is None) != (page.partition == ""):
            raise broken(f"partition {page.partition!r}")
        shape = self._shapes[spec.name]
        for record in page.records:
            wrong = shape.mismatch(record)
            if wrong is not None:
                raise broken(f"a record is not a {shape.name}: {wrong}")
            if part is not None and record[part] != page.partition:
                raise broken(f"a record of partition {record[part]!r} in {page.partition!r}")
        arity = len(spec.primary_key)
        claim = page.reconcile
        keys = chain(page.deleted_keys, claim.alive_keys if claim is not None else ())
        if any(len(key) != arity for key in keys):
            raise broken(f"a key that is not {spec.primary_key}")
        if claim is not None:
            named = {*claim.where, *([claim.range_column] if claim.range_column else [])}
            if not named <= shape.allowed:
                raise broken(f"a reconcile claim on {sorted(named - shape.allowed)}")
