"""Prefect flows: one per provider, wired from the tasks in ``tasks/``."""

from __future__ import annotations

from connectors import logsafe
from flows.gmail import sync_gmail
from flows.slack import sync_slack

__all__ = ["FLOWS", "backfill", "sync_all", "sync_gmail", "sync_slack"]

# Workers import flows without the CLI: no log record of theirs may carry a token either.
logsafe.install()

FLOWS = {"slack": sync_slack, "gmail": sync_gmail}

from flows.backfill import backfill  # noqa: E402
from flows.dispatch import sync_all  # noqa: E402 - needs FLOWS
