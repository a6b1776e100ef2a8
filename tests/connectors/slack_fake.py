"""A small in-process Slack Web API fake for connector unit tests.

It speaks just enough of the wire format (form-encoded POSTs, bearer tokens, cursor pages,
``ok: false`` errors, 429 + Retry-After, truncated bodies, ``ok: true`` pages without their list) to test each connector layer
through slack_sdk's real HTTP path. End-to-end behaviour is tested against ``sandbox/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "xoxb-fake-token-123"


class FakeSlack:
    def __init__(self) -> None:
        self.users: list[dict[str, Any]] = []
        self.channels: list[dict[str, Any]] = []
        self.history: dict[str, dict[str, dict[str, Any]]] = {}
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.faults: list[tuple[str, str]] = []  # (method, kind), consumed in order
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.token = TOKEN
        self.refresh_tokens = {"xoxe-1-good"}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- data helpers ---------------------------------------------------------------------
    def add_channel(self, cid: str, name: str, **extra: Any) -> None:
        self.channels.append(
            {"id": cid, "name": name, "is_member": True, "created": 1_600_000_000, **extra}
        )
        self.history.setdefault(cid, {})

    def add_message(self, cid: str, ts: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
        msg = {"type": "message", "ts": ts, "user": "U1", "text": text, **extra}
        self.history.setdefault(cid, {})[ts] = msg
        return msg

    def add_reply(self, cid: str, parent: str, ts: str, text: str = "re") -> None:
        replies = self.threads.setdefault((cid, parent), [])
        replies.append(
            {"type": "message", "ts": ts, "thread_ts": parent, "user": "U2", "text": text}
        )
        replies.sort(key=lambda m: Decimal(m["ts"]))
        p = self.history[cid][parent]
        p.update(thread_ts=parent, reply_count=len(replies), latest_reply=replies[-1]["ts"])

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    # -- server ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query)) | dict(parse_qsl(body))
                method = url.path.rsplit("/", 1)[-1]
                status, payload, headers, truncate = fake.handle(
                    method, params, self.headers.get("Authorization", "")
                )
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw[: len(raw) // 2] if truncate else raw)
                if truncate:
                    self.close_connection = True

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- API ------------------------------------------------------------------------------
    def handle(
        self, method: str, params: dict[str, str], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str], bool]:
        with self.lock:
            self.calls.append((method, params))
            fault = next((f for f in self.faults if f[0] in (method, "*")), None)
            if fault is not None:
                self.faults.remove(fault)
                kind = fault[1]
                if kind == "429":
                    return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"}, False
                if kind == "500":
                    return 500, {"ok": False, "error": "internal_error"}, {}, False
                if kind == "truncated":
                    return 200, self._dispatch(method, params), {}, True
                if kind == "ok_only":  # a success missing the list it exists for
                    return 200, {"ok": True}, {}, False
                if kind == "revoked":
                    self.token = "revoked"
            if method == "oauth.v2.access":
                return 200, self._oauth(params), {}, False
            if auth != f"Bearer {self.token}":
                error = "token_revoked" if self.token == "revoked" else "invalid_auth"
                return 200, {"ok": False, "error": error}, {}, False
            return 200, self._dispatch(method, params), {}, False

    def _oauth(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("refresh_token") not in self.refresh_tokens:
            return {"ok": False, "error": "invalid_refresh_token"}
        self.refresh_tokens = {"xoxe-1-next"}
        return {
            "ok": True,
            "access_token": "xoxe.xoxb-new",
            "refresh_token": "xoxe-1-next",
            "expires_in": 43200,
            "token_type": "bot",
            "team": {"id": "T1"},
        }

    @staticmethod
    def _page(items: list[Any], params: dict[str, str], key: str) -> dict[str, Any]:
        offset = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        chunk = items[offset : offset + limit]
        more = offset + limit < len(items)
        return {
            "ok": True,
            key: chunk,
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }

    def _dispatch(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        if method == "users.list":
            return self._page(self.users, params, "members")
        if method == "conversations.list":
            return self._page(self.channels, params, "channels")
        if method == "conversations.join":
            for c in self.channels:
                if c["id"] == params["channel"]:
                    c["is_member"] = True
            return {"ok": True}
        channel = next((c for c in self.channels if c["id"] == params.get("channel")), None)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.get("is_member"):
            return {"ok": False, "error": "not_in_channel"}
        if method == "conversations.history":
            oldest = Decimal(params.get("oldest") or 0)
            latest = Decimal(params.get("latest") or "9999999999")
            msgs = sorted(
                (
                    m
                    for m in self.history[channel["id"]].values()
                    if oldest < Decimal(m["ts"]) < latest
                ),
                key=lambda m: Decimal(m["ts"]),
                reverse=True,
            )
            return self._page(msgs, params, "messages")
        if method == "conversations.replies":
            parent = self.history[channel["id"]].get(params["ts"])
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            return self._page(
                [parent, *self.threads.get((channel["id"], params["ts"]), [])], params, "messages"
            )
        return {"ok": False, "error": "unknown_method"}


class MemoryTable:
    """What db.loader does with pages, in memory: upsert by key, then apply reconcile claims
    (soft-delete rows in the claimed slice whose key was not reported alive)."""

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.deleted: set[tuple[Any, ...]] = set()
        self.state: dict[str, Any] = {}

    def apply(self, page: Any) -> None:
        for record in page.records:
            k = tuple(record[c] for c in self.key)
            self.rows[k] = dict(record)
            self.deleted.discard(k)
        for k in page.deleted_keys:
            self.deleted.add(tuple(k))
        claim = page.reconcile
        if claim is not None:
            alive = {tuple(k) for k in claim.alive_keys}
            for k, row in self.rows.items():
                if any(row.get(c) != v for c, v in claim.where.items()):
                    continue
                if claim.range_column is not None and not _within(
                    row[claim.range_column], claim.lo, claim.hi
                ):
                    continue
                if k not in alive:
                    self.deleted.add(k)
        if page.state is not None:
            self.state[page.partition] = json.loads(json.dumps(page.state))

    def live(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {k: v for k, v in self.rows.items() if k not in self.deleted}


def _within(value: Any, lo: Any, hi: Any) -> bool:
    """``lo <= value <= hi`` as the loader's SQL compares them (Slack ts strings as numbers;
    a bound that is ``None`` does not bound)."""

    def number(v: Any) -> Any:
        return Decimal(v) if isinstance(v, str) else v

    return (lo is None or number(lo) <= number(value)) and (
        hi is None or number(value) <= number(hi)
    )


def sync(connector: Any, stream: str, table: MemoryTable, window: Any = None) -> list[Any]:
    """Read one stream into ``table`` the way the task layer would (with the run's window,
    if any); returns the pages."""
    state = dict(table.state)
    reading = connector.read(stream, state, window) if window else connector.read(stream, state)
    pages = list(reading)
    for page in pages:
        table.apply(page)
    return pages


def running_fake() -> Iterator[FakeSlack]:
    """Body of the ``fake_slack`` fixture (each test module declares the fixture itself)."""
    fake = FakeSlack()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
