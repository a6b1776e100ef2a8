"""Prefect flows: one per provider (made from the registry), ``sync_all`` and ``backfill``.

``flows.sync_<provider>`` (``sync_slack``, ``sync_gmail``, ...) is the provider's flow.
"""

from __future__ import annotations

from typing import Any

from connectors import logsafe

# Workers import flows without the CLI: no log record of theirs may carry a token either.
logsafe.install()

from flows.backfill import backfill  # noqa: E402
from flows.dispatch import sync_all  # noqa: E402
from flows.providers import flow_for, provider_flows  # noqa: E402

__all__ = ["backfill", "flow_for", "provider_flows", "sync_all"]


def __getattr__(name: str) -> Any:
    if name.startswith("sync_"):
        try:
            return flow_for(name.removeprefix("sync_"))
        except ValueError:
            pass
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
