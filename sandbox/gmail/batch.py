"""Google's multipart batch format (``POST /batch/gmail/v1``), both directions.

A batch is ``multipart/mixed``; each part is an ``application/http`` request with a
``Content-ID``. The answer is ``multipart/mixed`` too: one ``application/http`` part per
request, in request order, ``Content-ID: <response-...>``, each with its own status line,
headers and JSON body (google-api-python-client splits the inner response at the first blank
CRLF line). Some real answers carry no ``Content-ID`` at all (the ``no_content_id`` fault);
only their order then says which request a part answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from http import HTTPStatus

from sandbox.protocol import Request, Response
from sandbox.server import parse_request

__all__ = ["MAX_PARTS", "BatchFormatError", "BatchPart", "parse_batch", "render_batch"]

MAX_PARTS = 100


class BatchFormatError(ValueError):
    """The body is not a multipart/mixed batch."""


@dataclass
class BatchPart:
    content_id: str
    request: Request


def _http_part(part: Message, outer: Request) -> Request:
    payload = part.get_payload()
    if not isinstance(payload, str):
        raise BatchFormatError("a batch part must be application/http")
    head, _, body = payload.replace("\r\n", "\n").partition("\n\n")
    lines = head.strip("\n").split("\n")
    try:
        verb, target = lines[0].split()[:2]
    except ValueError as exc:
        raise BatchFormatError(f"bad request line {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "authorization" not in headers and "authorization" in outer.headers:
        headers["authorization"] = outer.headers["authorization"]
    return parse_request(verb.upper(), target, headers, body.strip("\n").encode())


def parse_batch(outer: Request) -> list[BatchPart]:
    content_type = outer.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/mixed") or "boundary" not in content_type:
        raise BatchFormatError("batch requests must be multipart/mixed with a boundary")
    message = BytesParser(policy=compat32).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + outer.body
    )
    parts = message.get_payload()
    if not message.is_multipart() or not isinstance(parts, list):
        raise BatchFormatError("empty or malformed multipart body")
    return [
        BatchPart(str(p.get("Content-ID", f"<item{k}>")), _http_part(p, outer))
        for k, p in enumerate(parts)
    ]


def render_batch(answers: Iterable[tuple[str, Response]], *, content_ids: bool = True) -> Response:
    """The multipart answer, parts in the order given; ``content_ids=False`` leaves out the
    parts' ``Content-ID`` headers as some real answers do."""
    boundary = f"batch_{secrets.token_urlsafe(12)}"
    chunks: list[bytes] = []
    for content_id, response in answers:
        inner_id = content_id.strip("<>")
        phrase = HTTPStatus(response.status).phrase
        head = [f"HTTP/1.1 {response.status} {phrase}"]
        head += [f"{k}: {v}" for k, v in response.headers.items()]
        head.append(f"Content-Length: {len(response.body)}")
        part_id = f"Content-ID: <response-{inner_id}>\r\n" if content_ids else ""
        chunks.append(
            (
                f"--{boundary}\r\nContent-Type: application/http\r\n{part_id}\r\n"
                + "\r\n".join(head)
                + "\r\n\r\n"
            ).encode()
            + response.body
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(
        200, b"".join(chunks), {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    )
