"""Gmail batches: many ``users.*.get`` calls in one HTTP request, read without guessing.

:class:`TolerantBatch` sends the requests the client serialises and reads the multipart answer
itself (see its docstring for why); :class:`BatchResult` is where each request ended up. The
retrying of parts lives in the transport (``GmailTransport.batch``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.errors import CloseBoundaryNotFoundDefect
from email.feedparser import FeedParser
from email.generator import Generator
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from typing import Any

import httplib2
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest

from connectors.common import ConnectorError, PermanentError, TransientError

__all__ = ["BatchResult", "TolerantBatch"]


@dataclass
class BatchResult:
    """The outcome of :meth:`GmailTransport.batch`, by request id; every id lands in exactly
    one of ``answers`` (usable bodies), ``gone`` (404: deleted since listed) or ``failed``
    (refused for good, or still failing when the retries ran out)."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    failed: dict[str, ConnectorError] = field(default_factory=dict)

    def pending(self, ids: Iterable[str]) -> list[str]:
        """Those of ``ids`` with no outcome yet, in their order."""
        settled = self.answers.keys() | self.gone | self.failed.keys()
        return [request_id for request_id in ids if request_id not in settled]

    def raise_failures(self, method: str) -> None:
        """For callers that cannot skip a request: raise the first failure, counted."""
        if not self.failed:
            return
        first = next(iter(self.failed.values()))
        total = len(self.answers) + len(self.gone) + len(self.failed)
        message = f"{len(self.failed)} of {total} batched {method} requests failed; first: {first}"
        if isinstance(first, PermanentError):
            raise PermanentError(
                message,
                provider="gmail",
                method=method,
                code=first.code,
                detail=first.detail,
            ) from first
        raise TransientError(message, provider="gmail", method=method) from first


class TolerantBatch(BatchHttpRequest):
    """``BatchHttpRequest`` whose reading of the answer never crashes nor guesses.

    The stock client maps each answer part to its request by ``Content-ID`` and raises
    ``TypeError`` on a part without one (some real Gmail answers carry none), ``IndexError`` on
    a part cut short and ``KeyError`` for a part that never came. Here parts are matched by
    ``Content-ID`` when they carry one and, when none does, by position: Google answers the
    parts in request order. A part that cannot be matched or read is left out of
    :meth:`send`'s answers, and the transport retries its request. Requests are serialised by
    the client's own code (``_serialize_request``, ``_id_to_header``); only reading is ours.
    """

    def send(self, http: Any) -> tuple[dict[str, tuple[httplib2.Response, bytes]], str]:
        """POST the batch: (answers by request id, why some are missing, "" when none are)."""
        message = MIMEMultipart("mixed")
        # As the client does: the envelope's own headers go in the HTTP request, not the body.
        message._write_headers = lambda self: None  # type: ignore[attr-defined]
        for request_id in self._order:
            part = MIMENonMultipart("application", "http")
            part["Content-Transfer-Encoding"] = "binary"
            part["Content-ID"] = self._id_to_header(request_id)
            part.set_payload(self._serialize_request(self._requests[request_id]))
            message.attach(part)
        buffer = io.StringIO()
        Generator(buffer, mangle_from_=False).flatten(message, unixfrom=False)
        content_type = f'multipart/mixed; boundary="{message.get_boundary()}"'
        resp, content = http.request(
            self._batch_uri,
            method="POST",
            body=buffer.getvalue(),
            headers={"content-type": content_type},
        )
        if resp.status >= 300:
            raise HttpError(resp, content, uri=self._batch_uri)
        return self._read(str(resp.get("content-type", "")), content)

    def _read(
        self, content_type: str, content: bytes
    ) -> tuple[dict[str, tuple[httplib2.Response, bytes]], str]:
        try:
            text, complete = content.decode("utf-8"), True
        except UnicodeDecodeError as exc:  # cut inside a multi-byte character
            text, complete = content[: exc.start].decode("utf-8"), False
        parser = FeedParser()
        parser.feed(f"content-type: {content_type}\r\n\r\n{text}")
        mime = parser.close()
        parts = mime.get_payload() if mime.is_multipart() else None
        if not isinstance(parts, list) or not parts:
            raise BatchError("Response not in multipart/mixed format.")
        if any(isinstance(d, CloseBoundaryNotFoundDefect) for d in mime.defects):
            complete = False
        if not complete:
            parts = parts[:-1]  # the answer was cut short inside its last part
        ids = [self._content_id(part) for part in parts]
        order = list(self._order)
        if all(i is None for i in ids) and (
            len(parts) == len(order) or (not complete and len(parts) < len(order))
        ):
            ids = order[: len(parts)]
        answers: dict[str, tuple[httplib2.Response, bytes]] = {}
        for request_id, part in zip(ids, parts, strict=True):
            payload = part.get_payload()
            if request_id not in self._requests or request_id in answers:
                continue
            if not isinstance(payload, str):
                continue
            try:
                resp, body = self._deserialize_response(payload)
            except (ValueError, IndexError):  # a status line or header block cut short
                continue
            answers[str(request_id)] = (resp, body.encode("utf-8"))
        missing = len(order) - len(answers)
        if not missing:
            return answers, ""
        cut = "" if complete else ", the answer was cut short"
        return answers, f"{missing} of {len(order)} parts missing or unreadable{cut}"

    def _content_id(self, part: Any) -> str | None:
        """The request id a part names; ``None`` without a Content-ID, "" for one we cannot
        read (never matched, and it rules out matching the answer by position)."""
        header = part.get("Content-ID")
        if header is None:
            return None
        try:
            return str(self._header_to_id(str(header)))
        except (BatchError, ValueError, IndexError):
            return ""
