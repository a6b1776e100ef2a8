"""Gmail connector: labels and messages via google-api-python-client.

What is Gmail's own, each in its own module: ``transport`` (the discovery-built service on our
base URL on the kit's ``Transport``: quota costs, batches retried part by part), ``batch``
(reading multipart answers without guessing), ``errors`` (the classification of Google's
failures, usable answers), ``messages``/``cursor`` (full sync, History API increments,
resumable state), ``records`` (one ``TypedDict`` per table, RFC 2047 headers), ``streams``.
Retries, pacing, paging and the read loop are the kit's (``connectors.kit``); ``connector``
wires it all into the ``StreamReader`` contract. Token refresh is shared with Google Ads in
``connectors.google_auth``.
"""

from __future__ import annotations

from .config import GmailConfig
from .connector import GmailConnector
from .streams import STREAMS

__all__ = ["STREAMS", "GmailConfig", "GmailConnector"]
