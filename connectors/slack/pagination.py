"""Slack cursor pagination as a small state holder (no I/O): the reader runs the loop."""

from __future__ import annotations

from typing import Any

from connectors.common import ConnectorError


class CursorPaginator:
    """Follows ``response_metadata.next_cursor``; an empty cursor or ``has_more: false`` ends it.

    A cursor that comes back twice means the server is looping; failing loudly beats syncing
    the same page forever.
    """

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.has_next_page = True
        self._seen: set[str] = set()

    def request_params(self) -> dict[str, Any]:
        return {"cursor": self.cursor} if self.cursor else {}

    def update_state(self, response: dict[str, Any]) -> None:
        next_cursor = (response.get("response_metadata") or {}).get("next_cursor") or ""
        if not next_cursor or response.get("has_more") is False:
            self.has_next_page = False
            self.cursor = None
            return
        if next_cursor in self._seen:
            raise ConnectorError("Loop detected in Slack pagination: a cursor repeated")
        self._seen.add(next_cursor)
        self.cursor = next_cursor
