"""One HTTP/1.1 server per provider, on 127.0.0.1 and an ephemeral port.

The standard library is enough: a ``ThreadingHTTPServer`` with daemon threads and explicit
Content-Length. The server owns everything that is the same for all providers -- parsing,
fault injection, the request log, the ``/_sandbox/`` admin surface -- and hands each request
to its :class:`~sandbox.protocol.Provider`.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.admin import handle_admin
from sandbox.faults import PART_FAULT_KINDS, PROVIDER_FAULT_KINDS, FaultInjector
from sandbox.protocol import Provider, Request, Response, json_response
from sandbox.requestlog import LogEntry, RequestLog, redact_params

__all__ = ["ProviderServer"]

_log = logging.getLogger(__name__)


def parse_request(verb: str, raw_path: str, headers: dict[str, str], body: bytes) -> Request:
    url = urlsplit(raw_path)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    params: dict[str, Any] = dict(query)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            params.update(decoded)
    elif body and content_type in ("application/x-www-form-urlencoded", ""):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return Request(verb, url.path, headers, params, body, query, raw_query=url.query)


def _cut(response: Response) -> Response:
    """The ``truncated_body`` fault: the first half of the body, framed as if complete."""
    return Response(response.status, response.body[: len(response.body) // 2], response.headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY on every accepted socket (``socketserver.StreamRequestHandler.setup``). The
    # handler writes an answer's headers and its body in two sends; with Nagle's algorithm the
    # body waits for the ACK of the headers, which the client delays (about 40 ms on Linux), so
    # every request on a reused keep-alive connection cost ~44 ms against ~1 ms on a fresh one.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = parse_request(self.command, self.path, headers, body)
        if request.path.startswith("/_sandbox/"):
            self._send(handle_admin(self.server.owner, request))
            return
        self.server.owner.dispatch(self, request)

    def _send(self, response: Response, *, truncate: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2] if truncate else response.body)
        if truncate:
            self.wfile.flush()
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the TCP connection (RST, no response) as a crashed proxy would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, owner: ProviderServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class ProviderServer:
    """Serves one provider; shares the sandbox's fault rules and request log."""

    def __init__(
        self, provider: Provider, *, faults: FaultInjector, log: RequestLog, time_scale: float = 1.0
    ) -> None:
        self.provider = provider
        self.faults = faults
        self.log = log
        self.time_scale = time_scale
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self.provider.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def dispatch(self, handler: _Handler, request: Request) -> None:
        """Apply a fault if one is due, else let the provider answer; log either way."""
        provider = self.provider
        method = provider.api_method(request)
        fault = self.faults.pick(provider.name, method, params=request.params, path=request.path)
        kind = fault.kind if fault else None
        response: Response | None = None
        request.subrequest = self.dispatch_part
        if fault is not None and kind == "slow":
            time.sleep(fault.seconds)
        elif fault is not None and kind == "revoked":
            provider.revoke_request_token(request)
        elif fault is not None and kind in ("429", "500", "503"):
            response = provider.fault_response(fault)
        elif fault is not None and kind in PROVIDER_FAULT_KINDS.get(provider.name, ()):
            response = self._guarded(
                method, lambda: provider.faulted_response(fault, request, method)
            )
        if kind == "reset":
            self._record(request, method, 0, kind)
            handler._reset()
            return
        if response is None:
            response = self._handle(request, method)
        if kind == "truncated_body":
            response = _cut(response)
        self._record(request, method, response.status, kind)
        try:
            handler._send(response, truncate=kind == "truncated")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (e.g. timed out): fine here

    def dispatch_part(self, request: Request) -> Response:
        """One part of a batch request: its own fault, its own answer, its own log entry.

        Only faults a part can carry apply (:data:`~sandbox.faults.PART_FAULT_KINDS`); a
        "reset" or "truncated" rule waits for the next whole request.
        """
        provider = self.provider
        method = provider.api_method(request)
        fault = self.faults.pick(
            provider.name,
            method,
            kinds=PART_FAULT_KINDS,
            params=request.params,
            path=request.path,
        )
        kind = fault.kind if fault else None
        response: Response | None = None
        if fault is not None and kind == "slow":
            time.sleep(fault.seconds)
        elif fault is not None and kind == "revoked":
            provider.revoke_request_token(request)
        elif fault is not None and kind in ("429", "500", "503"):
            response = provider.fault_response(fault)
        if response is None:
            response = self._handle(request, method)
        if kind == "truncated_body":
            response = _cut(response)
        self._record(request, method, response.status, kind)
        return response

    def _handle(self, request: Request, method: str) -> Response:
        return self._guarded(method, lambda: self.provider.handle(request, method))

    def _guarded(self, method: str, answer: Callable[[], Response]) -> Response:
        try:
            return answer()
        except Exception:  # an emulator bug must surface as a loud 500, not a hang
            _log.exception("sandbox %s failed on %s", self.provider.name, method)
            return json_response({"ok": False, "error": "sandbox_internal_error"}, 500)

    def _record(self, request: Request, method: str, status: int, fault: str | None) -> None:
        self.log.append(
            LogEntry(
                provider=self.provider.name,
                method=method,
                path=request.path,
                params=redact_params(request.params),
                status=status,
                fault=fault,
            )
        )
