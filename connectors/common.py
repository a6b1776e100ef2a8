"""The contract between connectors and the loader.

A connector reads one *stream* (users, channels, messages, ...) and yields :class:`Page` objects.
A page carries typed records for one table, the natural keys to soft-delete, and the cursor that
becomes true once these rows are stored. The task layer hands pages to ``db.loader``, which
writes the rows and the cursor in one transaction, so a crash between pages loses nothing.

Streams are declared with :class:`StreamSpec`; code exists only for the exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from connectors.logsafe import register_secret

__all__ = [
    "AuthError",
    "CheckUnavailable",
    "ClientHint",
    "ConnectorError",
    "Page",
    "PermanentError",
    "Reconcile",
    "RunStats",
    "Secret",
    "StreamReader",
    "StreamSpec",
    "TokenRefused",
    "TokenRenewal",
    "TransientError",
    "sanitize",
    "sanitize_text",
]


class ConnectorError(Exception):
    """A provider call failed in a way request-level retries did not fix.

    Raised as such only when the kind is unknown (a paginator that loops, say); connectors
    raise one of the subclasses whenever they can tell, so the task layer can choose:

    * :class:`TransientError` -- the provider may well answer later: retry the task;
    * :class:`PermanentError` -- it will refuse the same request again: do not retry, a person
      must act (grant a scope, fix the configuration); :class:`AuthError` is one of them.
    """


class TransientError(ConnectorError):
    """The provider kept failing in ways that usually pass, and request-level retries are spent.

    5xx and 429 answers, resets and timeouts, bodies that do not parse or were cut short, batch
    parts that cannot be matched to their request, pages missing fields the provider always
    sends. None of these is an answer: a connector never reads one as "no rows" (that would let
    a :class:`Reconcile` soft-delete everything). ``method`` names the call that failed.
    """

    def __init__(self, message: str, *, provider: str = "", method: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.method = method


class PermanentError(ConnectorError):
    """The provider refused the request and will refuse it again unchanged: do not retry.

    ``code`` is the provider's own error (Slack's ``missing_scope``, Google's ``notFound``) and
    ``detail`` its other words (Slack's ``needed`` and ``provided`` scopes, Google's error
    message), so whoever reads the run summary knows what to change without reproducing it.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        method: str = "",
        code: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.method = method
        self.code = code
        self.detail: dict[str, Any] = dict(detail or {})


class CheckUnavailable(Exception):
    """A check of the credentials could not be made (the provider refused the checker, the
    settings it needs are missing, the call kept failing). Nothing is known to be wrong with
    the credentials: the run warns and goes on. Not a :class:`ConnectorError`."""


class AuthError(PermanentError):
    """The provider rejected the credentials (revoked, invalid, failed refresh).

    The task layer turns this into ``integration.status = 'needs_reauth'``. It is a
    :class:`PermanentError` (retrying with the same token cannot help) that also stops every
    partition of the integration, never just one.
    """


class TokenRefused(AuthError):
    """The provider refused the *access token* itself: expired, revoked or unknown to it
    (Google's HTTP 401 / gRPC ``UNAUTHENTICATED``). RFC 6750 (section 3.1, ``invalid_token``):
    the client "MAY request a new access token and retry", so a transport given a
    :data:`TokenRenewal` asks it for a fresh token and sends the call once more; only a refused
    refresh, or the fresh token refused too, ends in re-authorisation. A refusal a new token
    cannot fix (a missing scope, an account the user may not read) is a plain
    :class:`AuthError` or :class:`PermanentError`."""


#: Called by a connector with the access token a provider just refused; returns a fresh one.
#: The task layer refreshes under the credential's row lock, once however many callers ask
#: with the same refused token (they all get the one new token), and raises
#: :class:`AuthError` when the provider refuses the refresh itself. The connector never holds
#: the refresh token.
TokenRenewal = Callable[["Secret"], "Secret"]


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
class ClientHint:
    """How a stream's rows are attributed to a client: the record ``field`` holding the hint
    (a channel id, a list of email domains, an ad account id) and the ``client`` column it is
    matched against (``slack_channel_ids`` | ``email_domains`` | ``ad_account_ids``). Record
    fields whose names start with "_" are hints only and never become columns."""

    field: str
    match: str


@dataclass(frozen=True)
class StreamSpec:
    """Declaration of a stream: where its rows go, what they look like, how they are keyed.

    Every field is acted on; nothing here is documentation only:

    * ``name`` -- the stream the task layer asks for; the read loop
      (``connectors.kit.reader``) dispatches on it and checks every page carries it;
    * ``table`` and ``record`` -- the table the rows go to and the ``TypedDict`` of one row
      (declared next to the record functions in ``connectors/<provider>/records.py``). The
      loader writes ``table``; the read loop checks every record has exactly ``record``'s
      keys, and ``tests/connectors/test_record_types.py`` checks ``record`` against the
      table's columns. Every provider under ``connectors/`` declares it (the read loop and
      that test refuse a stream without one); only a reader outside the kit (a test's toy
      provider) may leave it out;
    * ``primary_key`` -- the natural key: the read loop checks deleted and alive keys have
      its arity and that a reconcile claim names record fields;
    * ``partition_by`` -- the record field whose value names a page's partition (its own
      saved cursor). ``None``: one cursor for the stream (partition ``""``). The read loop
      hands a partitioned stream's reader every saved cursor, an unpartitioned one its single
      cursor, and checks each page's records belong to the page's partition;
    * ``client`` -- client attribution (:class:`ClientHint`), read by the task layer as
      ``client_field`` / ``client_match``; the read loop checks its field is a record field.
    """

    name: str
    table: str
    primary_key: tuple[str, ...]
    record: type[Mapping[str, Any]] | None = None
    partition_by: str | None = None
    client: ClientHint | None = None

    @property
    def client_field(self) -> str | None:
        return self.client.field if self.client is not None else None

    @property
    def client_match(self) -> str | None:
        return self.client.match if self.client is not None else None


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

    ``records`` are rows of the stream's declared record type (``StreamSpec.record``, a
    ``TypedDict``) holding typed Python values (tz-aware ``datetime``, ``Decimal``, ``int``,
    ``str``, ``list`` for arrays, ``dict``/``list`` for jsonb). Tenant columns (``agency_id``,
    ``integration_id``, ``client_id``, ``synced_at``) are never set here; the loader sets them.
    A record may carry ``_``-prefixed hints (e.g. email domains) that the task layer maps to a
    client.

    ``state`` is the cursor for ``partition`` after this page; ``None`` means "no change".
    ``deleted_keys`` are natural keys (tuples in ``primary_key`` order) to soft-delete.
    """

    stream: str
    records: Sequence[Mapping[str, Any]] = field(default_factory=list)
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


# NUL (PostgreSQL text and jsonb cannot hold it) and UTF-16 surrogates (not encodable as UTF-8;
# a lone one cannot be stored, a pair held as two code points must be joined first).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
T = TypeVar("T")


def sanitize_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD and surrogate pairs joined.

    Providers do send them (Slack JSON-escapes a NUL or half an emoji as ``\\u0000`` /
    ``\\ud83d``, an RFC 2047 word can decode to NUL) and PostgreSQL rejects the whole batch
    of rows on any of them, on every run: replacing one character beats losing the channel.
    """
    if _UNSTORABLE.search(value) is None:
        return value
    joined = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "\ufffd")


def sanitize(value: T) -> T:
    """:func:`sanitize_text` applied to every string in ``value``: dict keys and values and
    list items included (records and their jsonb values); other types are returned as is.
    The result has the shape of ``value``, so a typed record stays typed."""
    return cast(T, _sanitized(value))


def _sanitized(value: Any) -> Any:
    if isinstance(value, str):
        return sanitize_text(value)
    if isinstance(value, dict):
        return {_sanitized(k): _sanitized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitized(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_sanitized(v) for v in value)
    return value


class StreamReader(Protocol):
    """What every connector offers the task layer."""

    streams: Mapping[str, StreamSpec]
    stats: RunStats

    def read(self, stream: str, state: Mapping[str, Mapping[str, Any]]) -> Iterator[Page]:
        """Yield pages of ``stream``; ``state`` maps partition -> saved cursor.

        A reader with windowed streams (declared in the provider registry) also takes a third
        argument, the run's ``connectors.kit.reader.Window``; the task layer passes it only to
        those, so a reader without windowed streams needs only this form."""
        ...
