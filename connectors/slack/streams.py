"""Stream declarations: where each stream's rows go and how they are keyed and resumed."""

from __future__ import annotations

from types import MappingProxyType

from connectors.common import StreamSpec

from . import settings

STREAMS = MappingProxyType(
    {
        "users": StreamSpec(name="users", table="slack_users", primary_key=("user_id",)),
        "channels": StreamSpec(
            name="channels",
            table="slack_channels",
            primary_key=("channel_id",),
            client_field="channel_id",
            client_match="slack_channel_ids",
        ),
        # Thread replies share the table (is_reply = true, thread_ts = parent ts).
        "messages": StreamSpec(
            name="messages",
            table="slack_messages",
            primary_key=("channel_id", "ts"),
            cursor_field="ts",
            partition_by="channel_id",
            lookback_days=max(settings.EDIT_LOOKBACK_DAYS, settings.THREAD_LOOKBACK_DAYS),
            client_field="channel_id",
            client_match="slack_channel_ids",
        ),
    }
)
