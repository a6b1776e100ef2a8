"""``SlackConnector``: the :class:`connectors.common.StreamReader` for one Slack workspace.

``users`` and ``channels`` are full lists each run (a handful of cheap, paged calls);
``channels`` ends with a :class:`Reconcile` so channels gone from ``conversations.list`` are
soft-deleted. ``messages`` is partitioned by channel (see ``messages.py`` and ``cursor.py``);
a channel that fails is skipped with a warning while the others are read (``_messages_pages``).

Channel filters apply to ``messages`` only: the channel list stays complete because it is
cheap and client attribution needs it, while filters exist to save message-history quota.

``read`` is the kit's read loop (``connectors.kit.reader``): it dispatches to the reader
functions below, checks and counts their pages and stops cleanly at ``max_requests``.
``messages`` is the windowed stream: a run's :class:`~connectors.kit.reader.Window` (a
``since`` run, a full refresh, a backfill chunk) reaches every channel's read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.common import ConnectorError, Page, RunStats, Secret, StreamSpec
from connectors.kit import PartitionFailures, ReadLoop, TokenPaginator
from connectors.kit.listing import complete_listing
from connectors.kit.reader import Window

from . import settings
from .config import SlackConfig
from .errors import SlackCallError
from .messages import ChannelMessagesReader
from .records import channel_record, user_record
from .streams import STREAMS
from .transport import SlackTransport, next_cursor


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Channel:
    """What the messages stream needs to know about a channel (kept for the whole run)."""

    id: str
    name: str
    is_member: bool
    is_private: bool
    is_archived: bool


class SlackConnector:
    """Reads users, channels and messages of one workspace through the Slack Web API."""

    def __init__(
        self,
        token: Secret,
        config: SlackConfig,
        base_url: str | None = None,
        now: Callable[[], datetime] = _utc_now,
        *,
        retry_backoff: float = 0.5,
    ) -> None:
        self.config = config
        self.stats = RunStats()
        self.streams: Mapping[str, StreamSpec] = STREAMS
        self._transport = SlackTransport(
            token, config, self.stats, base_url=base_url, retry_backoff=retry_backoff
        )
        self._messages = ChannelMessagesReader(self._transport, config, now)
        self._channels: list[_Channel] | None = None
        self._loop = ReadLoop(
            "Slack",
            self.streams,
            self.stats,
            {"users": self._users, "channels": self._channel_pages},
            windowed={"messages": self._messages_pages},
        )

    def read(
        self,
        stream: str,
        state: Mapping[str, Mapping[str, Any]],
        window: Window | None = None,
    ) -> Iterator[Page]:
        """Pages of ``stream`` through the kit's read loop (see the module docstring)."""
        return self._loop.read(stream, state, window)

    # -- users -------------------------------------------------------------------------------

    def _users(self, _cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        for response in self._list("users.list", "members"):
            yield Page(stream="users", records=[user_record(u) for u in response])

    # -- channels ----------------------------------------------------------------------------

    def _list(self, method: str, key: str, **params: Any) -> Iterator[list[dict[str, Any]]]:
        pages = TokenPaginator(f"Slack {method}", next_cursor)
        while pages.has_next:
            query: dict[str, Any] = {"limit": self.config.page_limit, **params}
            if pages.next_token:
                query["cursor"] = pages.next_token
            response = self._transport.call(method, **query)
            pages.update(response)
            yield response.get(key) or []

    def _list_channels(self) -> Iterator[list[dict[str, Any]]]:
        seen: list[_Channel] = []
        for batch in self._list(
            "conversations.list",
            "channels",
            types="public_channel,private_channel",
            exclude_archived=False,
        ):
            seen.extend(
                _Channel(
                    id=c["id"],
                    name=c.get("name") or c["id"],
                    is_member=bool(c.get("is_member")),
                    is_private=bool(c.get("is_private")),
                    is_archived=bool(c.get("is_archived")),
                )
                for c in batch
            )
            yield batch
        self._channels = seen

    def _channel_pages(self, _cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        batches = ([channel_record(c) for c in batch] for batch in self._list_channels())
        return complete_listing("channels", batches, ("channel_id",))

    # -- messages ----------------------------------------------------------------------------

    def _selected(self, channel: _Channel) -> bool:
        def matches(entries: tuple[str, ...]) -> bool:
            names = {e.lstrip("#").lower() for e in entries}
            return channel.id in entries or channel.name.lower() in names

        if self.config.include_channels and not matches(self.config.include_channels):
            return False
        return not matches(self.config.exclude_channels)

    def _skip(self, channel: _Channel, error: str) -> None:
        """An expected skip (the app is not in the channel, it is archived, ...): a warning,
        never a failure of the stream."""
        self.stats.skipped.append(f"{channel.id} (#{channel.name}): {error}")
        hint = (
            " (invite the app to the channel or enable auto_join)"
            if error == "not_in_channel"
            else ""
        )
        self.stats.warnings.append(
            f"Slack channel #{channel.name} ({channel.id}) skipped: {error}{hint}"
        )

    def _messages_pages(
        self, state: Mapping[str, Mapping[str, Any]], window: Window | None
    ) -> Iterator[Page]:
        """Each channel is a partition: one that fails (a scope missing for it, errors that
        outlast the retries) is skipped with a warning and the others are read; the stream
        fails only when no channel could be read (see :class:`PartitionFailures`). A channel
        that failed mid-way keeps the pages already yielded: their cursors are true."""
        if self._channels is None:
            for _batch in self._list_channels():
                pass
        assert self._channels is not None
        partitions = PartitionFailures("Slack messages", self.stats)
        for channel in self._channels:
            if not self._selected(channel):
                continue
            try:
                if self.config.auto_join and not channel.is_member and not channel.is_private:
                    self._transport.call("conversations.join", channel=channel.id)
                yield from self._messages.read(channel.id, state.get(channel.id), window)
            except SlackCallError as exc:
                if exc.error in settings.CHANNEL_SKIP_ERRORS:
                    self._skip(channel, exc.error)
                else:
                    partitions.failed(f"{channel.id} (#{channel.name})", exc)
            except ConnectorError as exc:
                partitions.failed(f"{channel.id} (#{channel.name})", exc)
            else:
                partitions.succeeded()
        partitions.finish()
