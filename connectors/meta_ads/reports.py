"""Async insights report runs: start one, wait for it, read it, and what to do when it fails.

A report run is started with ``POST act_X/insights`` (the parameters of the synchronous
read) and answers a ``report_run_id``. ``GET /{report_run_id}`` is polled with a growing
interval until ``async_status`` is ``Job Completed``: that status alone means done, because
Meta shows ``async_percent_completion`` 100 while a job is still ``Job Running``. The rows
are then read page by page from ``GET /{report_run_id}/insights``; an answer 2601 / 1815107
("Error accessing adreport job", results not readable yet) is transient, so the kit's retry
loop reads the same job again and no new job is created.

A job that ends ``Job Failed`` or ``Job Skipped`` is started once more; if it fails again,
or if it is still not completed after ``job_timeout`` seconds (Meta: a job too large to
finish), its slice is split: a range of several days into two halves, one day into halves
of the account's campaigns (``campaign.id`` filter), down to one day of one campaign. A
slice that still fails then is a :class:`~connectors.common.TransientError` for its ad
account; the rows of the slices read before it are kept, the account's cursor is not moved
past the chunk, and the next run reads the chunk again.

A job interrupted by a throttle of its account (:class:`~.transport.AccountThrottled`) is
remembered: when the account resumes, the same job is polled again rather than started anew.

Meta may find a result page too heavy too ("Please reduce the amount of data you're asking
for" on ``/{report_run_id}/insights``, singer-io/tap-facebook#65): the transport reads it in
smaller pages; still refused at the smallest (``PageTooLarge``), the slice is split as above.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from connectors.common import TransientError

from . import settings
from .config import MetaAdsConfig
from .transport import MetaTransport, PageTooLarge

__all__ = ["ReportRunner", "Slice"]


@dataclass(frozen=True)
class Slice:
    """What one job reads: ``[since, until]`` of one ad account, all of its campaigns or
    only ``campaigns``."""

    node: str
    since: date
    until: date
    campaigns: tuple[str, ...] | None = None

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def __str__(self) -> str:
        scope = "" if self.campaigns is None else f", {len(self.campaigns)} campaign(s)"
        return f"{self.node} {self.since}..{self.until}{scope}"


class ReportRunner:
    """Reads insights through async report runs, splitting slices whose jobs fail."""

    def __init__(
        self,
        transport: MetaTransport,
        config: MetaAdsConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self._inflight: dict[tuple[Slice, str], str] = {}  # (slice, query key) -> run id

    def pages(
        self, node: str, params: Mapping[str, Any], since: date, until: date
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row of ``params`` over ``[since, until]`` of ``node``, page by page."""
        yield from self._read(Slice(node, since, until), dict(params))

    # -- one slice -----------------------------------------------------------------------
    def _read(self, part: Slice, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        outcome = ""
        for attempt in (1, 2):
            run_id = self._start(part, params)
            outcome = self._wait(run_id)
            if outcome == settings.JOB_COMPLETED:
                try:
                    yield from self._transport.pages(
                        "report_run.insights", (run_id, "insights"), {}
                    )
                except PageTooLarge as exc:
                    outcome = f"completed, but {exc}"
                else:
                    self._inflight.pop((part, _key(params)), None)
                    return
            self._inflight.pop((part, _key(params)), None)
            if outcome == "timeout" or outcome.startswith("completed"):
                break  # a job too large to finish, or to read: splitting is the only way on
            if attempt == 1:
                self._warn(f"Meta report run for {part} ended {outcome}; starting it again")
        pieces = self._split(part)
        if not pieces:
            raise TransientError(
                f"Meta report run for {part} ended {outcome}, and one day of one campaign "
                "cannot be split further",
                provider="meta_ads",
                method="insights.start",
            )
        self._warn(f"Meta report run for {part} ended {outcome}; split into {len(pieces)}")
        for piece in pieces:
            yield from self._read(piece, params)

    def _start(self, part: Slice, params: dict[str, Any]) -> str:
        key = (part, _key(params))
        if key in self._inflight:  # a job this run started before its account was paused
            return self._inflight[key]
        query = {**params, "time_range": {"since": str(part.since), "until": str(part.until)}}
        if part.campaigns is not None:
            rule = {"field": "campaign.id", "operator": "IN", "value": list(part.campaigns)}
            query["filtering"] = [*query.get("filtering", []), rule]
        body = self._transport.call("POST", "insights.start", (part.node, "insights"), query)
        run_id = str(body["report_run_id"])
        self._inflight[key] = run_id
        return run_id

    def _wait(self, run_id: str) -> str:
        """The job's final ``async_status``, or ``"timeout"``."""
        deadline = self._clock() + self.config.job_timeout
        interval = self.config.poll_interval
        while True:
            body = self._transport.call("GET", "report_run", (run_id,), {})
            status = str(body.get("async_status", ""))
            if status == settings.JOB_COMPLETED or status in settings.JOB_FAILED:
                if status in settings.JOB_FAILED and body.get("error_code") is not None:
                    status += f" (code {body.get('error_code')}/{body.get('error_subcode')})"
                return status
            if self._clock() + interval > deadline:
                return "timeout"
            self._sleep(interval)
            interval = min(interval * 1.5, self.config.max_poll_interval)

    # -- splitting -----------------------------------------------------------------------
    def _split(self, part: Slice) -> list[Slice]:
        """Shorter ranges first, then fewer campaigns; ``[]`` when nothing is left to split."""
        if part.days > 1:
            middle = part.since + timedelta(days=part.days // 2 - 1)
            return [
                replace(part, until=middle),
                replace(part, since=middle + timedelta(days=1)),
            ]
        campaigns = part.campaigns if part.campaigns is not None else self._campaigns(part.node)
        if len(campaigns) <= 1:
            return []
        half = len(campaigns) // 2
        return [
            replace(part, campaigns=campaigns[:half]),
            replace(part, campaigns=campaigns[half:]),
        ]

    def _campaigns(self, node: str) -> tuple[str, ...]:
        params = {"fields": "id", "effective_status": list(settings.CAMPAIGN_STATUSES)}
        ids: list[str] = []
        for data in self._transport.pages("campaigns", (node, "campaigns"), params):
            ids.extend(str(item["id"]) for item in data)
        return tuple(ids)

    def _warn(self, message: str) -> None:
        self._transport.stats.warnings.append(message)


def _key(params: Mapping[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items()))
