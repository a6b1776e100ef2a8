"""Gmail API v1 emulator (see :class:`GmailEmulator`)."""

from __future__ import annotations

from sandbox.gmail.emulator import DEFAULT_DOMAINS, SIZES, GmailEmulator
from sandbox.gmail.mailbox import SCOPE, SYSTEM_LABELS, GmailMailbox

__all__ = ["DEFAULT_DOMAINS", "SCOPE", "SIZES", "SYSTEM_LABELS", "GmailEmulator", "GmailMailbox"]
