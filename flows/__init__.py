"""Prefect flows: one per provider, wired from the tasks in ``tasks/``."""

from __future__ import annotations

from flows.slack import sync_slack

__all__ = ["FLOWS", "sync_all", "sync_slack"]

FLOWS = {"slack": sync_slack}

from flows.dispatch import sync_all  # noqa: E402 - needs FLOWS
