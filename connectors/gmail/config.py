"""Per-integration Gmail settings, built from the integration's config JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from . import settings


@dataclass(frozen=True)
class GmailConfig:
    """What an agency can tune per mailbox.

    ``start_date`` bounds how far back the first sync lists (``q=after:``), and a resync after
    an expired history id; later syncs follow the History API, which reports changes to any
    message, and the date never makes a message stored by a backfill or a ``since`` run count
    as gone. The dates of a ``since`` run, a full refresh or a backfill chunk are not settings:
    the task layer passes them to ``read`` as a window (``connectors.kit.reader.Window``).
    ``label_ids`` keeps messages carrying *all* of these labels (Gmail's ``labelIds``
    semantics); messages that stop matching it (or move to spam or trash) are soft-deleted.
    ``max_requests`` bounds one run:
    the connector stops cleanly and the saved cursor lets the next run carry on.
    ``quota_units_per_second`` paces calls below Gmail's per-user quota (None: no pacing).
    """

    start_date: date | None = None
    include_spam_trash: bool = False
    label_ids: tuple[str, ...] = field(default_factory=tuple)
    batch_size: int = 50
    page_size: int = 500
    max_retries: int = 6
    backoff_base: float = 0.5
    max_requests: int | None = None
    quota_units_per_second: float | None = settings.QUOTA_UNITS_PER_SECOND

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= settings.MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be within 1..{settings.MAX_BATCH_SIZE}")
        if not 1 <= self.page_size <= settings.MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{settings.MAX_PAGE_SIZE}")
        if self.max_retries < 0:
            raise ValueError("max_retries cannot be negative")
        if self.backoff_base < 0:
            raise ValueError("backoff_base cannot be negative")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be at least 1 when set")
        if self.quota_units_per_second is not None and self.quota_units_per_second <= 0:
            raise ValueError("quota_units_per_second must be positive when set")
        # Frozen dataclass: normalise list inputs to tuples through object.__setattr__.
        object.__setattr__(self, "label_ids", tuple(self.label_ids))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GmailConfig:
        """Build from config JSON; unknown keys are ignored so other settings can live there.
        An explicit ``"quota_units_per_second": null`` turns pacing off."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        if "quota_units_per_second" in data and data["quota_units_per_second"] is None:
            kwargs["quota_units_per_second"] = None
        if isinstance(kwargs.get("start_date"), str):
            kwargs["start_date"] = date.fromisoformat(kwargs["start_date"][:10])
        if isinstance(kwargs.get("label_ids"), str):
            kwargs["label_ids"] = (kwargs["label_ids"],)
        return cls(**kwargs)
