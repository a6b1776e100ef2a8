"""Insights answers Meta finds too heavy: "Please reduce the amount of data you're asking for".

Meta answers a page it will not produce with HTTP 500, code 1 and no subcode::

    {"error": {"code": 1, "message": "Please reduce the amount of data you're asking for,
     then retry your request"}}

(facebook/facebook-python-business-sdk#470: a synchronous ``act_X/insights``;
singer-io/tap-facebook#65: ``/{report_run_id}/insights?limit=25&after=...``, a report run's
result page, which the same request with a lower ``limit`` then read). Sending the same
request again gets the same answer; a smaller page, a shorter range or fewer objects is what
works (Airbyte's connector halves ``limit`` on it, ``streams/common.py``; Meta's Insights best
practices: "break down the query into smaller queries by putting in filters like date
range"). The answer is not a throttle and not transient: ``is_transient`` is false.

Meta publishes no threshold, so an account has none until a test sets one
(:meth:`~sandbox.meta.MetaEmulator.set_data_limit`):

* ``max_page_cells`` -- the most cells (rows on the page x requested fields) one page of
  insights may carry, synchronous or a report run's result page;
* ``max_query_rows`` -- the most rows one *synchronous* insights query may compute, whatever
  its page size (a report run computes any size; its pages are checked as above).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandbox.meta.data import MetaAccount
from sandbox.meta.graph import GraphError

__all__ = ["REDUCE_DATA", "check_page", "check_query", "too_much_data"]

REDUCE_DATA = "Please reduce the amount of data you're asking for, then retry your request"


def too_much_data() -> GraphError:
    return GraphError(1, REDUCE_DATA, status=500, transient=False)


def check_query(account: MetaAccount, rows: int) -> None:
    """Refuse a synchronous query that computes more rows than the account allows."""
    if account.max_query_rows is not None and rows > account.max_query_rows:
        raise too_much_data()


def check_page(account: MetaAccount, data: Sequence[Any], fields: Sequence[str]) -> None:
    """Refuse a page heavier than the account allows (rows x requested fields)."""
    if account.max_page_cells is not None and len(data) * len(fields) > account.max_page_cells:
        raise too_much_data()
