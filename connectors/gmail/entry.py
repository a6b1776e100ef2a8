"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.common import Secret, TokenRenewal

from . import GmailConfig, GmailConnector

__all__ = ["build_reader"]


def build_reader(
    token: Secret, settings: Mapping[str, Any], *, renew: TokenRenewal | None = None
) -> GmailConnector:
    """The connector for one integration: its token, its config with per-run overrides, and
    how to get a fresh token when Gmail refuses the one it has."""
    return GmailConnector(token, GmailConfig.from_dict(settings), renew=renew)
