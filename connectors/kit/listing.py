"""A full listing as pages, the last of which claims that what it did not see is gone.

Providers rarely report deletions of listed objects (channels, ad accounts, campaigns); a
listing that *completed* is how they are found. The last page is held back until the listing
ends and only then carries the :class:`~connectors.common.Reconcile` claim over every key seen,
so a listing cut short by an error never soft-deletes anything (the error propagates first).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from connectors.common import Page, Reconcile

__all__ = ["complete_listing"]


def complete_listing(
    stream: str,
    batches: Iterable[Sequence[Any]],
    key: Sequence[str],
    *,
    where: Mapping[str, Any] | None = None,
) -> Iterator[Page]:
    """Pages of records (one per batch of the listing); the last claims the slice ``where``
    holds exactly the keys (the record fields named by ``key``) seen."""
    alive: list[tuple[Any, ...]] = []
    held: Page | None = None
    for records in batches:
        if held is not None:
            yield held
        alive.extend(tuple(r[name] for name in key) for r in records)
        held = Page(stream=stream, records=list(records))
    held = held or Page(stream=stream)
    held.reconcile = Reconcile(where=dict(where or {}), alive_keys=alive)
    yield held
