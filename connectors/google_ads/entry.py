"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.common import Secret, TokenRenewal
from connectors.kit.holds import Holds

from . import GoogleAdsConfig, GoogleAdsConnector
from .budget import OperationBudget

__all__ = ["build_reader"]


def build_reader(
    token: Secret,
    settings: Mapping[str, Any],
    budget: OperationBudget | None = None,
    *,
    holds: Holds | None = None,
    renew: TokenRenewal | None = None,
) -> GoogleAdsConnector:
    """The connector for one integration: its token, its config with per-run overrides, the
    operations budget the task layer keeps for the OAuth client's project, where that
    project's quota stops are held for every worker, and how to get a fresh token when Google
    Ads refuses the one it has."""
    return GoogleAdsConnector(
        token, GoogleAdsConfig.from_dict(settings), budget=budget, holds=holds, renew=renew
    )
