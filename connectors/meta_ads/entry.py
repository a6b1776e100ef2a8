"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.common import Secret

from . import MetaAdsConfig, MetaAdsConnector

__all__ = ["build_reader"]


def build_reader(token: Secret, settings: Mapping[str, Any]) -> MetaAdsConnector:
    """The connector for one integration: its token and its config with per-run overrides."""
    return MetaAdsConnector(token, MetaAdsConfig.from_dict(settings))
