"""The contract between connectors and the loader.

A connector reads one *stream* (users, channels, messages, ...) and yields :class:`Page` objects.
A page carries typed records for one table, the natural keys to soft-delete, and the cursor that
becomes true once these rows are stored. The task layer hands pages to ``db.loader``, which
writes the rows and the cursor in one transaction, so a crash between pages loses nothing.

Streams are declared with :class:`StreamSpec`; code exists only for the exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.logsafe import register_secret

__all__ = [
    "AuthError",
    "ConnectorError",
    "Page",
    "Reconcile",
    "RunStats",
    "Secret",
    "StreamReader",
    "StreamSpec",
]


class ConnectorError(Exception):
    """A provider call failed in a way retries did not fix (after request-level retries)."""


class AuthError(ConnectorError):
    """The provider rejected the credentials (revoked, invalid, failed refresh).

    The task layer turns this into ``integration.status = 'needs_reauth'``.
    """


class Secret:
    """A string that does not print itself. ``reveal()`` is the only way to read it.

    Constructing one registers the value with ``connectors.logsafe``, so it is masked in every
    log record of this process even where an SDK logs it raw and it has no known token shape.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # pragma: no cover - defensive
        raise TypeError("Secret values are not serialisable")


@dataclass(frozen=True)
class StreamSpec:
    """Declaration of a stream: where its rows go and how it is keyed and resumed."""

    name: str
    table: str
    primary_key: tuple[str, ...]
    cursor_field: str | None = None
    partition_by: str | None = None
    lookback_days: int = 0
    # Client attribution: the record field holding the hint (a channel id, a list of email
    # domains, an ad account id) and the `client` column it is matched against
    # (`slack_channel_ids` | `email_domains` | `ad_account_ids`). Record fields whose names start
    # with "_" are hints only and never become columns.
    client_field: str | None = None
    client_match: str | None = None


@dataclass(frozen=True)
class Reconcile:
    """A claim that the pages of this run saw *every* live row in a slice of a table.

    After the page carrying it is stored, rows matching ``where`` (column == value) whose
    ``range_column`` lies in ``[lo, hi]`` (no range when ``range_column`` is None) and whose
    natural key is not in ``alive_keys`` are soft-deleted (``deleted_at`` set). This is how
    deletions upstream are found when the API does not report them.
    """

    where: Mapping[str, Any]
    alive_keys: list[tuple[Any, ...]]
    range_column: str | None = None
    lo: Any = None
    hi: Any = None


@dataclass
class Page:
    """One page of one stream, ready to load.

    ``records`` hold typed Python values (tz-aware ``datetime``, ``Decimal``, ``int``, ``str``,
    ``list`` for arrays, ``dict``/``list`` for jsonb). Tenant columns (``agency_id``,
    ``integration_id``, ``client_id``, ``synced_at``) are never set here; the loader sets them.
    A record may carry ``client_key`` hints (e.g. a channel id or an email domain) that the task
    layer maps to a client.

    ``state`` is the cursor for ``partition`` after this page; ``None`` means "no change".
    ``deleted_keys`` are natural keys (tuples in ``primary_key`` order) to soft-delete.
    """

    stream: str
    records: list[dict[str, Any]] = field(default_factory=list)
    partition: str = ""
    state: Mapping[str, Any] | None = None
    deleted_keys: list[tuple[Any, ...]] = field(default_factory=list)
    reconcile: Reconcile | None = None


@dataclass
class RunStats:
    """Counters a connector keeps for the run summary (never contains secrets)."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    pages: int = 0
    records: int = 0
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "pages": self.pages,
            "records": self.records,
            "warnings": list(self.warnings),
            "skipped": list(self.skipped),
        }


class StreamReader(Protocol):
    """What every connector offers the task layer."""

    streams: Mapping[str, StreamSpec]
    stats: RunStats

    def read(self, stream: str, state: Mapping[str, Mapping[str, Any]]) -> Iterator[Page]:
        """Yield pages of ``stream``; ``state`` maps partition -> saved cursor."""
        ...
