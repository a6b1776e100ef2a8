"""No log level may print a secret: redaction of every log record, and caps on wire loggers.

At DEBUG the provider SDKs log whole HTTP exchanges: slack_sdk prints the body of
``oauth.v2.access`` (the refresh token going out, the new access and refresh tokens coming
back), urllib3/httpx/requests print URLs (query strings can carry ``access_token=``), and an
exception's text can quote a request. This module keeps all of that out of every output --
the console, files, Prefect's API log handler -- with three layers:

1. :func:`redact` masks, in any text:

   a. the value of a secret-named field (see ``SECRET_FIELDS``) in JSON (also escaped JSON
      inside a string), Python reprs (``'k': 'v'``, ``k='v'``), form bodies and query strings
      (``k=v&``) and header lines (``Authorization: Bearer ...``), whole value, scheme included;
   b. token-shaped values wherever they stand: Slack ``xox?-`` / ``xoxe.xox?-`` / ``xoxe-1-``
      / ``xapp-``, Google ``ya29.`` access tokens, ``1//`` refresh tokens (``1%2F%2F``
      URL-encoded), ``4/0A`` codes, ``GOCSPX-`` client secrets, ``AIza`` API keys, Meta
      ``EAA...`` tokens, Prefect Cloud API keys (``pnu_`` / ``pnb_``), anything that starts like
      a JWT (``eyJ``), ``Bearer <16+ chars>``, PEM private keys, and the password of a
      ``scheme://user:password@host`` URL. The recognisable
      prefix is kept (``ya29.****``) so a debug line still says which kind of token it was;
   c. every value registered with :func:`register_secret` at run time -- exactly, and in its
      URL-encoded form. :class:`connectors.common.Secret` registers its value when constructed,
      so tokens of no known shape (a Slack client secret, the emulators' fake tokens, a Google
      Ads developer token) are masked too. Values shorter than ``MIN_SECRET_LENGTH`` are not
      registered (masking every "t" would destroy logs and protect nothing). The registry keeps
      the ``MAX_REGISTERED`` most recently registered values (a long-running worker rotates
      tokens forever; the oldest are expired ones).

   Cost: one precompiled regex pass, plus a substring check per registered value while there
   are at most ``_SCAN_BY_VALUE`` of them, else one dictionary lookup per character (values
   indexed by their last ``MIN_SECRET_LENGTH`` characters), so it does not grow with the
   registry. Over-masking (a harmless ``code=abc`` in a URL) is accepted; under-masking is not.

2. :func:`install` (idempotent) wraps the log record factory: every record, whatever logger
   made it and whatever handler will see it, carries a redacted message from birth. When
   redaction changed nothing the record is left as it was (``msg`` and ``args`` intact, so
   formatters that read ``args`` keep working); when it changed something ``msg`` becomes the
   redacted text and ``args`` becomes empty. An exception is formatted once, redacted into
   ``exc_text`` and ``exc_info`` is dropped, so no handler can render the raw traceback again
   (``logging.Formatter`` appends ``exc_text``; Prefect's JSON formatter then has no frames to
   serialise). ``stack_info`` is redacted too. It also installs a ``sys.excepthook`` and a
   ``threading.excepthook`` that redact uncaught tracebacks (``aos-sync -v`` re-raises), unless
   the process already replaced Python's default hooks. ``extra=`` attributes (google-auth puts
   whole requests, headers included, there; JSON formatters print them) are copied onto the
   record after the factory ran, so ``Logger.makeRecord`` is wrapped to redact them first:
   strings redacted, secret-named keys masked, dicts/lists/tuples walked. Not covered: a logger
   class that overrides ``makeRecord`` itself (none in this stack), text printed without
   logging (``print``), and values the process never saw as a ``Secret`` and that have neither
   a secret-named field nor a known shape.

3. :func:`install` also caps the wire-level loggers (``WIRE_LOGGERS``: HTTP clients, provider
   SDKs, and ``websockets``, which logs Prefect's event-stream auth frame) at INFO, or at the
   root logger's level when that is higher, so ``-v`` (our DEBUG) does not turn on their
   request/response dumps. ``install(wire_debug=True)`` (the CLI's ``-vv``) sets them to DEBUG
   -- still redacted. ``install()`` without the argument keeps the last choice, so importing
   ``flows`` after the CLI asked for ``-vv`` does not undo it. Setting a level on ``google``
   is also what lets google-auth's own (hashed) debug lines through at ``-vv``: it keeps quiet
   while that logger is unconfigured.

Called by ``cli.main`` and on import of the ``flows`` and ``tasks`` packages (workers run flows
without the CLI). No Prefect or database imports here: ``connectors.common`` imports this.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_FIELDS",
    "WIRE_LOGGERS",
    "install",
    "redact",
    "register_secret",
]

MASK: Final = "****"
MIN_SECRET_LENGTH: Final = 8
MAX_REGISTERED: Final = 10_000
_SCAN_BY_VALUE: Final = 32  # up to this many registered values, `value in text` is fastest

# Field names whose value is a secret (case-insensitive, matched as a whole name).
SECRET_FIELDS: Final = (
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "token",
    "code",
    "password",
    "passwd",
    "secret",
    "api_key",
    "api-key",
    "apikey",
    "prefect_api_key",
    "private_key",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-goog-api-key",
    "developer-token",
    "developer_token",
    "fb_exchange_token",
    "appsecret_proof",
    "app_secret",
    "run_grant",
    "aos_run_grant",
    "aos_run_grant_key",
    "aos_encryption_key",
)

# Loggers that dump HTTP requests and responses at DEBUG.
WIRE_LOGGERS: Final = (
    "slack_sdk",
    "googleapiclient",
    "google",  # google-auth logs only once the "google" logger is configured; this does it
    "google.auth",
    "google.oauth2",
    "google_auth_httplib2",
    "httplib2",
    "urllib3",
    "requests",
    "requests_oauthlib",
    "oauthlib",
    "httpx",
    "httpcore",
    "h2",
    "hpack",
    "grpc",
    "websockets",  # Prefect's event stream: its auth frame carries the Prefect Cloud API key
    "google.ads.googleads",
    "facebook_business",
)

_KEYS = "|".join(re.escape(k) for k in sorted(SECRET_FIELDS, key=len, reverse=True))
_TOKEN_CHARS = r"[0-9A-Za-z_\-.~+/=%]"
_PATTERN: Final = re.compile(
    # (a) a secret-named field: key (maybe quoted, maybe as escaped JSON), separator, value.
    rf"(?P<key>(?<![0-9A-Za-z_.\-])(?:\\?[\"'])?(?i:{_KEYS})(?:\\?[\"'])?\s*[:=]\s*)"
    r"(?P<value>"
    r'\\"(?:[^"\\]|\\[^"])*\\"'  # escaped JSON inside a string: \"...\"
    r'|"(?:[^"\\]|\\.)*"'
    r"|'(?:[^'\\]|\\.)*'"
    # a bare value, scheme and all; not a bare small number or literal (`"code": 401`)
    r"|(?!(?i:-?\d{1,3}|null|none|true|false)(?![^\s&,;'\"<>()\[\]{}\\]))"
    r"(?:(?i:bearer|basic|digest|token|oauth|bot)\s+)?[^\s&,;'\"<>()\[\]{}\\]+"
    r")"
    # (b) token shapes: the prefix is kept, the rest masked.
    r"|(?P<prefix>"
    r"\bxox[a-z]?(?:\.xox[a-z])?-(?=[0-9A-Za-z])"
    r"|\bxapp-(?=[0-9A-Za-z])"
    r"|\bya29\."
    r"|(?<![0-9A-Za-z])1//"
    r"|(?<![0-9A-Za-z])1%2F%2F"
    r"|(?<![0-9A-Za-z])4/0A"
    r"|\bGOCSPX-"
    r"|\bpn[ub]_(?=[0-9A-Za-z]{20})"
    r"|\bAIza(?=[0-9A-Za-z_\-]{30})"
    r"|\bEAA(?=[0-9A-Za-z]{20})"
    r"|\beyJ(?=[0-9A-Za-z_\-]{10})"
    r"|\b(?i:bearer)\s+(?=[0-9A-Za-z_\-.~+/=]{16})"
    rf"){_TOKEN_CHARS}+"
    r"|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?P<userinfo>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]+:)[^\s@/'\"]+(?=@)",
    re.DOTALL,
)


_SECRET_NAME: Final = re.compile(rf"(?i:{_KEYS})")


def _mask_match(m: re.Match[str]) -> str:
    if (key := m.group("key")) is not None:
        value = m.group("value")
        for quote_ in ('\\"', '"', "'"):
            if value.startswith(quote_):
                return f"{key}{quote_}{MASK}{quote_}"
        return key + MASK
    if (prefix := m.group("prefix")) is not None:
        return prefix + MASK
    if m.group("pem") is not None:
        return "-----BEGIN PRIVATE KEY-----" + MASK
    return m.group("userinfo") + MASK


# -- run-time registry -------------------------------------------------------------------------

_lock = threading.Lock()
_registered: dict[str, None] = {}  # an insertion-ordered set: oldest first
_by_tail: dict[str, set[str]] = {}  # last MIN_SECRET_LENGTH characters -> values


def register_secret(value: str) -> None:
    """Mask ``value`` (and its URL-encoded form) in every later log record of this process."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        for variant in {value, quote(value, safe="")}:
            if variant in _registered:
                del _registered[variant]  # re-registration makes it the most recent
                _registered[variant] = None
                continue
            _registered[variant] = None
            _by_tail.setdefault(variant[-MIN_SECRET_LENGTH:], set()).add(variant)
        while len(_registered) > MAX_REGISTERED:
            old = next(iter(_registered))
            del _registered[old]
            tail = _by_tail[old[-MIN_SECRET_LENGTH:]]
            tail.discard(old)
            if not tail:
                del _by_tail[old[-MIN_SECRET_LENGTH:]]


def _registered_in(text: str) -> list[str]:
    # Snapshots (list(), tuple()) of what other threads may change meanwhile.
    if len(_registered) <= _SCAN_BY_VALUE:
        return [v for v in list(_registered) if v in text]
    found: set[str] = set()
    by_tail, n = _by_tail, MIN_SECRET_LENGTH
    for end in range(n, len(text) + 1):
        candidates = by_tail.get(text[end - n : end])
        if candidates:
            found.update(v for v in tuple(candidates) if text.startswith(v, end - len(v)))
    return list(found)


def redact(text: str) -> str:
    """``text`` with every secret it holds masked (see the module docstring for what counts)."""
    if not text:
        return text
    if _registered:
        for value in sorted(_registered_in(text), key=len, reverse=True):
            text = text.replace(value, MASK)
    return _PATTERN.sub(_mask_match, text)


def _redact_value(value: Any, depth: int = 0) -> Any:
    """An ``extra=`` value, for formatters that print record attributes (JSON logs): strings
    redacted, secret-named entries masked, dicts, lists and tuples walked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
        clean = redact(text)
        return value if clean == text else clean
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK
            if isinstance(k, str) and _SECRET_NAME.fullmatch(k) and isinstance(v, str | bytes)
            else _redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_value(v, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(_redact_value(v, depth + 1) for v in value)
    return value


# -- log records -------------------------------------------------------------------------------

_RecordFactory = Callable[..., logging.LogRecord]
_state: dict[str, Any] = {"installed": False, "wire_debug": False}


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format: the handler would print msg and args raw
        message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), ()
    else:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip()
        record.exc_text, record.exc_info = redact(text), None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redacting(factory: _RecordFactory) -> _RecordFactory:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _scrub(record)
        return record

    make_record.aos_redacting = True  # type: ignore[attr-defined]
    return make_record


def _redact_extra(make_record: Callable[..., logging.LogRecord]) -> Any:
    """``Logger.makeRecord`` copies ``extra`` onto the record after the factory ran, so the
    factory cannot see it: this wrapper redacts it before."""

    def makeRecord(
        self: logging.Logger,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        if extra:
            extra = {key: _redact_value(value) for key, value in extra.items()}
        return make_record(self, name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)

    makeRecord.aos_redacting = True  # type: ignore[attr-defined]
    return makeRecord


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(f"Exception in thread {name}:\n{redact(text)}")


def _apply_caps() -> None:
    if _state["wire_debug"]:
        level = logging.DEBUG
    else:
        level = max(logging.INFO, logging.getLogger().level)
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(level)


def install(*, wire_debug: bool | None = None) -> None:
    """Redact every log record of this process from now on and cap the wire loggers.

    ``wire_debug``: True lets the wire loggers log at DEBUG (redacted), False caps them at
    INFO; None keeps the last choice (False at first)."""
    with _lock:
        if not _state["installed"]:
            current = logging.getLogRecordFactory()
            if not getattr(current, "aos_redacting", False):
                logging.setLogRecordFactory(_redacting(current))
            original = logging.Logger.makeRecord
            if not getattr(original, "aos_redacting", False):
                patched = _redact_extra(original)
                logging.Logger.makeRecord = patched  # type: ignore[method-assign]
            if sys.excepthook is sys.__excepthook__:
                sys.excepthook = _excepthook
            if threading.excepthook is threading.__excepthook__:
                threading.excepthook = _thread_excepthook
            _state["installed"] = True
        if wire_debug is not None:
            _state["wire_debug"] = wire_debug
        _apply_caps()
