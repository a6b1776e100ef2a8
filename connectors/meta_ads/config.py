"""Per-integration Meta Ads settings, built from the integration's config JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from . import settings


@dataclass(frozen=True)
class MetaAdsConfig:
    """What an agency can tune per Meta integration.

    ``lookback_days``: how many past days every incremental run re-reads, because
    conversions are attributed late (Meta: up to 28 days). ``start_date`` bounds the *first*
    sync of an account (default ``initial_days`` back); later runs resume from the cursor.
    ``account_ids`` limits the campaigns, ad sets, ads and insights streams to those ad
    accounts (``act_`` prefix optional); the account list itself stays complete.
    ``conversion_action_types`` are summed into ``conversions`` / ``conversion_value``;
    ``attribution_windows`` are the per-window keys requested in ``actions``.
    ``max_requests`` bounds one run; the saved cursors let the next run carry on.

    Async report jobs: a range longer than ``sync_max_days`` (and every backfill) is read
    through ``POST act_X/insights`` jobs of at most ``chunk_days`` days, polled every
    ``poll_interval`` seconds growing to ``max_poll_interval``; a job not completed after
    ``job_timeout`` seconds is abandoned and split (``reports.py``).

    Throttling: a throttled ad account pauses for the time Meta's usage headers give, while
    the other accounts go on; a pause that would end after ``throttle_budget`` seconds of the
    run ends that account for this run (its cursor kept). ``rate_scale`` divides the waits
    Meta announces and the poll intervals: it exists so a sandbox that runs provider time
    faster can be followed, and is 1 against Meta.

    ``breakdowns`` opts in to ``meta_ad_insights_breakdown_daily``: each entry is one set of
    breakdown dimensions (``["age", "gender"]``, ``["country"]``) read as its own rows; a set
    Meta does not report together (``["age", "country"]``) is refused here, before any run.

    Pages: ``page_limit`` rows a page; when Meta answers "Please reduce the amount of data"
    the page is halved, down to ``min_page_limit`` rows, then the range is split.
    """

    lookback_days: int = settings.DEFAULT_LOOKBACK_DAYS
    initial_days: int = settings.DEFAULT_INITIAL_DAYS
    start_date: date | None = None
    chunk_days: int = settings.DEFAULT_CHUNK_DAYS
    page_limit: int = settings.DEFAULT_PAGE_LIMIT
    min_page_limit: int = settings.MIN_PAGE_LIMIT
    max_empty_pages: int = settings.MAX_EMPTY_PAGES
    account_ids: tuple[str, ...] = field(default_factory=tuple)
    conversion_action_types: tuple[str, ...] = settings.DEFAULT_CONVERSION_ACTION_TYPES
    attribution_windows: tuple[str, ...] = settings.DEFAULT_ATTRIBUTION_WINDOWS
    max_requests: int | None = None
    max_rate_limit_wait: float = 900.0  # seconds slept at most for one throttling answer
    timeout: float = 60.0
    sync_max_days: int = settings.DEFAULT_SYNC_MAX_DAYS
    poll_interval: float = 2.0
    max_poll_interval: float = 30.0
    job_timeout: float = 1800.0
    throttle_budget: float = 900.0
    rate_scale: float = 1.0
    breakdowns: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.lookback_days < 0 or self.initial_days < 0:
            raise ValueError("lookback_days and initial_days cannot be negative")
        if not 1 <= self.chunk_days <= 90:
            raise ValueError("chunk_days must be between 1 and 90")
        if min(self.page_limit, self.min_page_limit, self.max_empty_pages) < 1:
            raise ValueError("page_limit, min_page_limit and max_empty_pages must be at least 1")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be at least 1 when set")
        if self.sync_max_days < 1:
            raise ValueError("sync_max_days must be at least 1")
        if min(self.poll_interval, self.max_poll_interval, self.job_timeout) <= 0:
            raise ValueError("poll_interval, max_poll_interval and job_timeout must be positive")
        if self.throttle_budget < 0 or self.rate_scale <= 0:
            raise ValueError("throttle_budget cannot be negative; rate_scale must be positive")
        object.__setattr__(self, "breakdowns", _breakdown_sets(self.breakdowns))
        for name in ("account_ids", "conversion_action_types", "attribution_windows"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        object.__setattr__(
            self, "account_ids", tuple(normalize_account_id(a) for a in self.account_ids)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MetaAdsConfig:
        """Build from config JSON; unknown keys are ignored so other settings can live there."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in dict(data or {}).items() if k in known and v is not None}
        if isinstance(kwargs.get("start_date"), str):
            kwargs["start_date"] = date.fromisoformat(kwargs["start_date"][:10])
        return cls(**kwargs)

    def selected(self, account_id: str) -> bool:
        return not self.account_ids or account_id in self.account_ids


def _breakdown_sets(value: Any) -> tuple[tuple[str, ...], ...]:
    """``[["age", "gender"], ["country"]]`` (or ``"age,gender"`` strings) as checked, sorted
    sets of :data:`settings.BREAKDOWN_DIMENSIONS` that Meta reports together
    (:data:`settings.BREAKDOWN_COMBINATIONS`), each once."""
    sets: list[tuple[str, ...]] = []
    for entry in value or ():
        names = entry.split(",") if isinstance(entry, str) else list(entry)
        dims = tuple(sorted({str(n).strip() for n in names if str(n).strip()}))
        unknown = sorted(set(dims) - set(settings.BREAKDOWN_DIMENSIONS))
        if not dims or unknown:
            raise ValueError(
                f"breakdowns: {entry!r} is not a set of {list(settings.BREAKDOWN_DIMENSIONS)}"
            )
        if dims not in {tuple(sorted(c)) for c in settings.BREAKDOWN_COMBINATIONS}:
            allowed = ", ".join("+".join(c) for c in settings.BREAKDOWN_COMBINATIONS)
            raise ValueError(
                f"breakdowns: Meta does not report {'+'.join(dims)} together (it combines "
                f"only {allowed}); list them as separate sets, e.g. "
                f"{json.dumps([[d] for d in dims])}"
            )
        if dims not in sets:
            sets.append(dims)
    return tuple(sets)


def normalize_account_id(value: str) -> str:
    """An ad account id without Meta's ``act_`` prefix (``act_123`` and ``123`` are one)."""
    text = str(value).strip()
    return text[4:] if text.startswith("act_") else text
