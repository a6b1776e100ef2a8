"""Gmail's streams: the table and row type of each, its key and client hint.

``labels`` is the full list every run, ending with a Reconcile so deleted labels are
soft-deleted. ``messages`` has one cursor per mailbox (partition ``""``): the mailbox
historyId and any full sync in progress (``cursor.py``).
"""

from __future__ import annotations

from connectors.common import ClientHint, StreamSpec
from connectors.kit import declare_streams

from .records import GmailLabel, GmailMessage

# A message belongs to the client whose ``email_domains`` hold one of its addresses' domains.
BY_DOMAINS = ClientHint("_domains", "email_domains")

STREAMS = declare_streams(
    StreamSpec("labels", "gmail_labels", ("label_id",), GmailLabel),
    StreamSpec("messages", "gmail_messages", ("message_id",), GmailMessage, client=BY_DOMAINS),
)
