"""Slack connector: users, channels and messages (with thread replies) via the Slack Web API.

The worked example of ``docs/connectors.md``. What is Slack's own, each in its own module:
``transport`` (slack-sdk's WebClient on the kit's ``Transport``: rate tiers, usable answers,
warnings) and ``errors`` (the classification of Slack's failures), ``messages``/``cursor``
(incremental reads of a channel and their state), ``records`` (one ``TypedDict`` per table and
the functions that build rows), ``streams`` (the declarations), ``config``/``settings`` and
``auth`` (rotating-token refresh). Retries, pacing, paging and the read loop are the kit's
(``connectors.kit``); ``connector`` wires it all into the ``StreamReader`` contract.
"""

from __future__ import annotations

from .auth import refresh_slack_token
from .config import SlackConfig
from .connector import SlackConnector
from .streams import STREAMS

__all__ = ["STREAMS", "SlackConfig", "SlackConnector", "refresh_slack_token"]
