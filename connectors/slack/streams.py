"""Slack's streams: the table and row type of each, its key, partitioning and client hint.

``messages`` holds thread replies too (``is_reply = true``, ``thread_ts`` = the parent's ts)
and is partitioned by channel: each channel has its own saved cursor (``cursor.py``).
"""

from __future__ import annotations

from connectors.common import ClientHint, StreamSpec
from connectors.kit import declare_streams

from .records import SlackChannel, SlackMessage, SlackUser

# Channels and messages belong to the client whose ``slack_channel_ids`` hold the channel.
BY_CHANNEL = ClientHint("channel_id", "slack_channel_ids")

STREAMS = declare_streams(
    StreamSpec("users", "slack_users", ("user_id",), SlackUser),
    StreamSpec("channels", "slack_channels", ("channel_id",), SlackChannel, client=BY_CHANNEL),
    StreamSpec(
        "messages",
        "slack_messages",
        ("channel_id", "ts"),
        SlackMessage,
        partition_by="channel_id",
        client=BY_CHANNEL,
    ),
)
