"""``messages.get`` renderings of a :class:`MessageSpec`: minimal, metadata, full, raw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandbox.gmail.generated import MessageSpec
from sandbox.gmail.mime import b64url, render_payload, render_raw

__all__ = ["FORMATS", "render_message"]

FORMATS = ("minimal", "metadata", "full", "raw")


def render_message(
    spec: MessageSpec, fmt: str = "full", metadata_headers: Sequence[str] = ()
) -> dict[str, Any]:
    """The message resource in Gmail's field order. ``metadata_headers`` (case-insensitive)
    narrows ``format=metadata`` headers; empty means all."""
    raw = render_raw(spec.part)
    out: dict[str, Any] = {"id": spec.id, "threadId": spec.thread_id}
    if spec.labels:
        out["labelIds"] = list(spec.labels)
    out["snippet"] = spec.snippet
    if fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers}
        out["payload"] = {
            "mimeType": spec.part.mime_type,
            "headers": [
                {"name": n, "value": v}
                for n, v in spec.part.headers
                if not wanted or n.lower() in wanted
            ],
        }
    elif fmt == "full":
        out["payload"] = render_payload(spec.part)
    out["sizeEstimate"] = len(raw)
    if fmt == "raw":
        out["raw"] = b64url(raw)
    out["historyId"] = str(spec.history_id)
    out["internalDate"] = str(spec.internal_ms)
    return out
