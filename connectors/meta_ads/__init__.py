"""Meta Ads (Marketing API v26.0) connector on the kit (see ``docs/connectors.md``)."""

from __future__ import annotations

from .config import MetaAdsConfig
from .connector import MetaAdsConnector
from .errors import MetaAuthError, MetaCallError
from .streams import STREAMS

__all__ = ["STREAMS", "MetaAdsConfig", "MetaAdsConnector", "MetaAuthError", "MetaCallError"]
