"""Gmail connector: labels and messages via google-api-python-client.

Layers, each in its own module: ``transport`` (discovery-built service on our base URL,
explicit batch URI, quota pacing, retries, request budget) -> ``messages``/``cursor`` (full
sync, History API increments, resumable state) -> ``records`` (typed rows, RFC 2047 headers).
``connector`` wires them into the ``StreamReader`` contract of ``connectors.common``; token
refresh is shared with Google Ads in ``connectors.google_auth``.
"""

from __future__ import annotations

from .config import GmailConfig
from .connector import GmailConnector
from .streams import STREAMS

__all__ = ["STREAMS", "GmailConfig", "GmailConnector"]
