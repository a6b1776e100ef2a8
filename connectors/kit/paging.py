"""Token pagination as a state holder: every paged call of every provider goes through it.

A listing that pages by an opaque token -- Slack's ``next_cursor``, Gmail's
``nextPageToken``, Google Ads' ``next_page_token`` in the response message, Meta's
``paging.cursors.after`` -- is, on our side, three things: the token to send next, whether
there is a next page, and the tokens already followed. :class:`TokenPaginator` holds exactly
that and does no I/O: the reader sends the request (through its transport, so retries,
pacing and the request budget apply to every page) and hands the answer to :meth:`update`.

A token that comes back a second time means the server is looping; following it would sync
the same pages forever, so :meth:`update` raises :class:`PaginationLoop` instead. All tokens
of the listing are remembered, not just the last one: a loop over two tokens is a loop too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.common import ConnectorError

__all__ = ["PaginationLoop", "TokenPaginator"]


class PaginationLoop(ConnectorError):
    """The provider handed back a page token this listing had already followed."""


class TokenPaginator:
    """Where one paged listing stands.

    ``next_token_of(response)`` reads the token of the page after ``response`` (``None`` or
    ``""`` when there is none); it is the only provider-specific part. ``start`` resumes a
    listing from a saved token (it counts as followed). Before the first answer ``has_next``
    is true and ``next_token`` is ``start``.
    """

    def __init__(
        self, what: str, next_token_of: Callable[[Any], str | None], start: str | None = None
    ) -> None:
        self.what = what
        self._next_token_of = next_token_of
        self.next_token: str | None = start or None
        self.has_next = True
        self._followed: set[str] = {start} if start else set()

    def update(self, response: Any) -> None:
        """Take the next token from ``response``; raise :class:`PaginationLoop` on a repeat.

        After a repeat the paginator has no next token, so a caller that has another way to
        make progress (Slack history can page by timestamp) may catch the error and go on.
        """
        token = self._next_token_of(response) or None
        self.next_token = None
        self.has_next = False
        if token is None:
            return
        if token in self._followed:
            raise PaginationLoop(
                f"Loop detected in {self.what} pagination: a page token came back a second time"
            )
        self._followed.add(token)
        self.next_token = token
        self.has_next = True
