"""A small MIME tree and its two Gmail renderings: the ``payload`` JSON and the RFC 822 ``raw``.

Both renderings come from the same :class:`Part` tree, so ``format=full`` and ``format=raw``
always describe the same message, and ``sizeEstimate`` is the length of the raw bytes. Header
values are kept exactly as "received": an RFC 2047 encoded word stays encoded in
``payload.headers`` (Gmail passes many of them through), so clients must decode them.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Part",
    "b64url",
    "encode_word_b",
    "encode_word_q",
    "html_snippet",
    "render_payload",
    "render_raw",
]


def b64url(data: bytes) -> str:
    """Gmail's ``body.data`` / ``raw`` encoding: URL-safe base64, padded."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def encode_word_b(text: str, *, limit: int = 45) -> str:
    """RFC 2047 ``=?UTF-8?B?...?=`` words (several, space separated, when ``text`` is long)."""
    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode()) > limit:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return " ".join(f"=?UTF-8?B?{base64.b64encode(w.encode()).decode()}?=" for w in words if w)


_Q_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")


def encode_word_q(text: str) -> str:
    """RFC 2047 ``=?UTF-8?Q?...?=`` (one word; spaces become ``_``)."""
    out = []
    for byte in text.encode():
        if byte == 0x20:
            out.append("_")
        elif byte in _Q_SAFE:
            out.append(chr(byte))
        else:
            out.append(f"={byte:02X}")
    return f"=?UTF-8?Q?{''.join(out)}?="


def html_snippet(text: str, length: int = 140) -> str:
    """Gmail's snippet: the start of the text, whitespace collapsed, HTML-escaped."""
    flat = " ".join(text.split())[:length]
    return (
        flat.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


@dataclass
class Part:
    """One MIME entity. Leaves carry ``content`` (decoded bytes); containers ``children``."""

    mime_type: str
    headers: list[tuple[str, str]]
    content: bytes = b""
    children: list[Part] = field(default_factory=list)
    filename: str = ""
    attachment_id: str = ""
    boundary: str = ""
    transfer: str = "quoted-printable"

    @property
    def is_multipart(self) -> bool:
        return self.mime_type.startswith("multipart/")

    def find_attachment(self, attachment_id: str) -> Part | None:
        if self.attachment_id == attachment_id:
            return self
        for child in self.children:
            found = child.find_attachment(attachment_id)
            if found is not None:
                return found
        return None


def render_payload(part: Part, part_id: str = "") -> dict[str, Any]:
    """The ``payload`` of ``format=full`` (``partId``s "", "0", "0.1", ... like Gmail)."""
    body: dict[str, Any]
    if part.is_multipart:
        body = {"size": 0}
    elif part.attachment_id:
        body = {"attachmentId": part.attachment_id, "size": len(part.content)}
    else:
        body = {"size": len(part.content), "data": b64url(part.content)}
    payload: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.mime_type,
        "filename": part.filename,
        "headers": [{"name": n, "value": v} for n, v in part.headers],
        "body": body,
    }
    if part.is_multipart:
        prefix = f"{part_id}." if part_id else ""
        payload["parts"] = [
            render_payload(child, f"{prefix}{k}") for k, child in enumerate(part.children)
        ]
    return payload


def _encode_leaf(part: Part) -> bytes:
    if part.transfer == "base64":
        return base64.encodebytes(part.content).replace(b"\n", b"\r\n")
    if part.transfer == "quoted-printable":
        encoded = quopri.encodestring(part.content.replace(b"\r\n", b"\n"))
        return encoded.replace(b"\n", b"\r\n") + (b"" if encoded.endswith(b"\n") else b"\r\n")
    return part.content + b"\r\n"


def _render(part: Part, out: list[bytes]) -> None:
    for name, value in part.headers:
        out.append(f"{name}: {value}\r\n".encode())
    out.append(b"\r\n")
    if not part.is_multipart:
        out.append(_encode_leaf(part))
        return
    marker = f"--{part.boundary}".encode()
    for child in part.children:
        out.append(marker + b"\r\n")
        _render(child, out)
    out.append(marker + b"--\r\n")


def render_raw(part: Part) -> bytes:
    """The RFC 822 message (CRLF line ends) that ``format=raw`` base64url-encodes."""
    out: list[bytes] = []
    _render(part, out)
    return b"".join(out)


def decode_b64url(data: str) -> bytes:
    """Inverse of :func:`b64url`, tolerant of missing padding (for tests and tools)."""
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
