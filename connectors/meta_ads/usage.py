"""What Meta's usage headers say about an ad account, on every answer (errors included).

Meta reports usage on ordinary answers (Marketing API, "Rate Limiting"):
``x-ad-account-usage`` (``acc_id_util_pct``, ``reset_time_duration`` -- the seconds until the
account's usage window resets -- and ``ads_api_access_tier``), ``x-business-use-case-usage``
(per business, per use case: ``call_count``, ``total_cputime``, ``total_time`` in percent and
``estimated_time_to_regain_access`` in minutes), ``x-app-usage`` and, on insights,
``x-fb-ads-insights-throttle``. ``reset_time_duration`` is *not* a wait: Meta sends it
non-zero at low usage (``acc_id_util_pct`` 9.67 with ``reset_time_duration`` 100).

So an answer is read as:

* *throttled* -- ``estimated_time_to_regain_access`` > 0, or some usage at 100%: the account
  waits that long (or until its window resets) before its next call;
* *near the limit* -- the highest usage at or above :data:`SLOW_FROM` percent: the account's
  next call is spaced so that what is left of its budget lasts until the window resets,
  ``reset_time_duration * step / (100 - usage)``, ``step`` being how much the last call used
  (at least one percent), never more than :data:`MAX_SPACING` seconds;
* otherwise nothing: the next call goes at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SPACING", "SLOW_FROM", "Usage", "read_usage"]

SLOW_FROM = 75.0  # percent of a limit from which calls are spaced
MAX_SPACING = 60.0  # Meta seconds at most between two calls of a nearly spent account
_PERCENT_KEYS = ("acc_id_util_pct", "app_id_util_pct", "call_count", "total_cputime", "total_time")


@dataclass(frozen=True)
class Usage:
    percent: float = 0.0  # the highest share of any limit reported, in percent
    regain: float = 0.0  # Meta seconds until access returns (0: not throttled)
    reset: float = 0.0  # Meta seconds until the account's usage window resets

    @property
    def throttled(self) -> bool:
        return self.regain > 0 or self.percent >= 100

    def pause(self) -> float:
        """Meta seconds the account must wait before its next call (0: none)."""
        if not self.throttled:
            return 0.0
        return max(self.regain, self.reset if self.percent >= 100 else 0.0)

    def spacing(self, step: float) -> float:
        """Meta seconds to leave before the account's next call, near the limit."""
        if self.throttled or self.percent < SLOW_FROM:
            return 0.0
        return min(MAX_SPACING, self.reset * max(step, 1.0) / (100.0 - self.percent))


def _header(headers: Mapping[str, Any] | None, name: str) -> Any:
    value = next((v for k, v in (headers or {}).items() if str(k).lower() == name), None)
    try:
        return json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _entries(headers: Mapping[str, Any] | None) -> Iterable[Mapping[str, Any]]:
    for name in ("x-ad-account-usage", "x-app-usage", "x-fb-ads-insights-throttle"):
        value = _header(headers, name)
        if isinstance(value, dict):
            yield value
    business = _header(headers, "x-business-use-case-usage")
    for entries in business.values() if isinstance(business, dict) else ():
        yield from (
            e for e in (entries if isinstance(entries, list) else []) if isinstance(e, dict)
        )


def read_usage(headers: Mapping[str, Any] | None) -> Usage:
    """The :class:`Usage` an answer's headers report (all zero when they report nothing)."""
    percent = regain = reset = 0.0
    for entry in _entries(headers):
        percent = max([percent, *(_number(entry.get(k)) for k in _PERCENT_KEYS)])
        regain = max(regain, _number(entry.get("estimated_time_to_regain_access")) * 60)
        reset = max(reset, _number(entry.get("reset_time_duration")))
    return Usage(percent, regain, reset)
