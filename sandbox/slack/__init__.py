"""Slack Web API emulator (see :class:`SlackEmulator`)."""

from __future__ import annotations

from sandbox.slack.emulator import SIZES, SlackEmulator
from sandbox.slack.workspace import RATE_TIERS, SlackWorkspace

__all__ = ["RATE_TIERS", "SIZES", "SlackEmulator", "SlackWorkspace"]
