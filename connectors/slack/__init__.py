"""Slack connector: users, channels and messages (with thread replies) via the Slack Web API.

Layers, each in its own module: ``transport`` (slack_sdk WebClient, auth errors, pacing from
``ratelimit``, retries, request budget) -> ``pagination`` -> ``messages``/``cursor``
(incremental reads and state) -> ``records`` (typed rows). ``connector`` wires them into the
``StreamReader`` contract of ``connectors.common``; ``auth`` refreshes rotating tokens.
"""

from __future__ import annotations

from .auth import refresh_slack_token
from .config import SlackConfig
from .connector import SlackConnector
from .streams import STREAMS

__all__ = ["STREAMS", "SlackConfig", "SlackConnector", "refresh_slack_token"]
