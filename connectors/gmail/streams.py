"""Stream declarations: where each stream's rows go and how they are keyed and resumed."""

from __future__ import annotations

from types import MappingProxyType

from connectors.common import StreamSpec

STREAMS = MappingProxyType(
    {
        # Full list every run, ending with a Reconcile so deleted labels are soft-deleted.
        "labels": StreamSpec(name="labels", table="gmail_labels", primary_key=("label_id",)),
        # One partition per mailbox (""); the cursor is the mailbox historyId (see cursor.py).
        "messages": StreamSpec(
            name="messages",
            table="gmail_messages",
            primary_key=("message_id",),
            cursor_field="history_id",
            client_field="_domains",
            client_match="email_domains",
        ),
    }
)
