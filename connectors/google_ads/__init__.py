"""Google Ads (API v26, gRPC) connector on the kit (see ``docs/connectors.md``)."""

from __future__ import annotations

from .budget import OperationBudget, Unmetered
from .config import GoogleAdsConfig
from .connector import GoogleAdsConnector
from .errors import GoogleAdsAuthError, GoogleAdsCallError, QuotaExhausted
from .streams import STREAMS

__all__ = [
    "STREAMS",
    "GoogleAdsAuthError",
    "GoogleAdsCallError",
    "GoogleAdsConfig",
    "GoogleAdsConnector",
    "OperationBudget",
    "QuotaExhausted",
    "Unmetered",
]
