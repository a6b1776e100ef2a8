"""Per-integration Google Ads settings, built from the integration's config JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from . import settings


@dataclass(frozen=True)
class GoogleAdsConfig:
    """What an agency can tune per Google Ads integration.

    ``conversion_window_days`` (1-90): past days every incremental run re-reads, because
    conversions reach the day of the click late (Google's default window is 30 days).
    ``start_date`` bounds the *first* sync of an account (default ``initial_days`` back);
    later runs resume from the account's cursor. ``customer_ids`` syncs exactly those
    accounts (digits, dashes allowed) instead of every enabled client account found;
    ``include_test_accounts`` adds test accounts to the automatic choice. ``chunk_days`` is
    the days one metrics query covers. ``max_requests`` bounds one run (the cursors resume);
    ``max_quota_wait`` is the longest quota wait honoured in-run: a longer one is the daily
    quota and stops the run cleanly. ``change_status_limit`` (1-10,000) is the LIMIT of the
    ``change_status`` query that makes entity syncs incremental: a change list that reaches
    it is not trusted, and the account's entities are read whole instead.
    """

    conversion_window_days: int = settings.DEFAULT_CONVERSION_WINDOW_DAYS
    initial_days: int = settings.DEFAULT_INITIAL_DAYS
    start_date: date | None = None
    chunk_days: int = settings.DEFAULT_CHUNK_DAYS
    customer_ids: tuple[str, ...] = field(default_factory=tuple)
    include_test_accounts: bool = False
    max_requests: int | None = None
    max_quota_wait: float = settings.DEFAULT_MAX_QUOTA_WAIT
    change_status_limit: int = settings.CHANGE_STATUS_MAX_LIMIT
    retry_backoff: float = 0.5
    timeout: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.conversion_window_days <= settings.MAX_CONVERSION_WINDOW_DAYS:
            raise ValueError(
                f"conversion_window_days must be between 1 and "
                f"{settings.MAX_CONVERSION_WINDOW_DAYS}"
            )
        if self.initial_days < 0:
            raise ValueError("initial_days cannot be negative")
        if not 1 <= self.chunk_days <= 366:
            raise ValueError("chunk_days must be between 1 and 366")
        if not 1 <= self.change_status_limit <= settings.CHANGE_STATUS_MAX_LIMIT:
            raise ValueError(
                f"change_status_limit must be between 1 and {settings.CHANGE_STATUS_MAX_LIMIT}"
            )
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be at least 1 when set")
        ids = self.customer_ids
        ids = (ids,) if isinstance(ids, str | int) else tuple(ids)
        object.__setattr__(self, "customer_ids", tuple(normalize_customer_id(i) for i in ids))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GoogleAdsConfig:
        """Build from config JSON; unknown keys are ignored so other settings can live there."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in dict(data or {}).items() if k in known and v is not None}
        if isinstance(kwargs.get("start_date"), str):
            kwargs["start_date"] = date.fromisoformat(kwargs["start_date"][:10])
        return cls(**kwargs)


def normalize_customer_id(value: str | int) -> str:
    """A customer id as ten digits (``123-456-7890`` and ``1234567890`` are one account)."""
    text = str(value).strip().replace("-", "")
    if not text.isdigit():
        raise ValueError(f"not a Google Ads customer id: {value!r}")
    return text
