"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.common import Secret

from . import GmailConfig, GmailConnector

__all__ = ["build_reader"]


def build_reader(token: Secret, settings: Mapping[str, Any]) -> GmailConnector:
    """The connector for one integration: its token and its config with per-run overrides."""
    return GmailConnector(token, GmailConfig.from_dict(settings))
