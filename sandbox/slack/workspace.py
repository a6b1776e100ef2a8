"""A Slack workspace: directory, channels, installed-app tokens, mutations and truth.

Tests mutate a workspace between syncs (post, edit, delete, archive, revoke) and compare what
the project loaded with :meth:`SlackWorkspace.truth`, which renders objects exactly as the API
does. Secrets stay on this object; the emulator only ever logs redacted parameters.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.ids import derive_key, make_id
from sandbox.slack.channel_messages import ChannelMessages
from sandbox.slack.content import MessageFactory, parse_ts_us
from sandbox.slack.directory import SlackChannel, SlackUser, channel_name, person_name
from sandbox.slack.oauth import ACCESS_TOKEN_TTL, BOT_SCOPES, SlackApp, TokenRecord, TokenStore

__all__ = ["RATE_TIERS", "SlackWorkspace"]

# Per-minute limits by method (Slack's documented tiers 2/3/4).
_TIER_LIMITS = {
    "users.list": 20,
    "conversations.list": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.info": 50,
    "conversations.join": 50,
    "team.info": 50,
    "auth.test": 100,
}
# Non-Marketplace apps since 2025: history/replies get 1 request/minute and 15 objects a page
# ("Effective May 29, 2025, all newly-created Slack apps that are commercially distributed and
# have not been approved for the Slack Marketplace will be subject to new rate limits for the
# conversations.history and conversations.replies API methods": docs.slack.dev/apis/web-api/
# rate-limits, and the changelog of 2025-05-29, "Rate limit changes for non-Marketplace apps").
_NON_MARKETPLACE = {"conversations.history": (1, 15), "conversations.replies": (1, 15)}
RATE_TIERS = ("tier3", "non_marketplace_2025", "unlimited")


def _ts_us(ts: str | float | int) -> int:
    return parse_ts_us(ts) if isinstance(ts, str) else round(float(ts) * 1_000_000)


class SlackWorkspace:
    """One team with our app installed; create it with ``SlackEmulator.add_workspace``."""

    def __init__(
        self,
        *,
        app: SlackApp,
        tokens: TokenStore,
        seed: int,
        ordinal: int,
        name: str,
        users: int,
        channels: int,
        messages_per_channel: int,
        thread_ratio: float,
        replies_per_thread: int,
        tier: str,
        rotating: bool,
        start: datetime | None,
        span_days: float,
    ) -> None:
        if tier not in RATE_TIERS:
            raise ValueError(f"tier must be one of {RATE_TIERS}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.name, self.tier, self.rotating, self.seed = name, tier, rotating, seed
        self.team_id = make_id("T", seed, ordinal, name, length=8)
        self.domain = "".join(c for c in name.lower() if c.isalnum()) or "workspace"
        span = timedelta(days=span_days)
        self.start = start or datetime.now(UTC) - span
        self.end = self.start + span
        self._defaults = (messages_per_channel, thread_ratio, replies_per_thread)
        self._app, self._tokens = app, tokens
        self._rng = random.Random(derive_key(seed, self.team_id, "tokens"))
        created = int(self.start.timestamp())
        self.bot_user_id = make_id("U", self.team_id, "app-bot", length=10)
        self.bot_id = make_id("B", self.team_id, "app-bot", length=10)
        self.integration_bot_ids = [make_id("B", self.team_id, k, length=10) for k in range(2)]
        self.users: list[SlackUser] = []
        for _ in range(max(1, users)):
            self.add_user(updated=created)
        self.users.append(SlackUser("USLACKBOT", self.team_id, "slackbot", "Slackbot", 0))
        self.users.append(
            SlackUser(
                self.bot_user_id,
                self.team_id,
                "audienceos",
                "AudienceOS Sync",
                created,
                is_bot=True,
                bot_id=self.bot_id,
            )
        )
        self.channels: dict[str, SlackChannel] = {}
        for k in range(channels):
            self.add_channel(
                channel_name(k),
                is_private=k % 5 == 3,
                is_member=k % 5 != 2 and k % 10 != 8,
                messages=messages_per_channel,
                is_general=k == 0,
            )
        self._access_token = self._refresh_token = ""
        self._expires_at: float | None = None
        self._issue_tokens()

    # -- directory ---------------------------------------------------------------------
    @property
    def user_ids(self) -> list[str]:
        """Human members (message authors), in creation order."""
        return [u.id for u in self.users if not u.is_bot and u.id != "USLACKBOT"]

    @property
    def channel_ids(self) -> list[str]:
        return list(self.channels)

    def channel(self, channel_id: str) -> SlackChannel:
        return self.channels[channel_id]

    def channel_by_name(self, name: str) -> SlackChannel:
        return next(c for c in self.channels.values() if c.name == name)

    def add_user(
        self, name: str | None = None, *, real_name: str | None = None, updated: int | None = None
    ) -> SlackUser:
        index = len(self.user_ids)
        first, last = person_name(index)
        user = SlackUser(
            id=make_id("U", self.team_id, "user", index, length=10),
            team_id=self.team_id,
            name=name
            or f"{first}.{last}".lower().replace("'", "")
            + (f"{index // 20}" if index >= 20 else ""),
            real_name=real_name or f"{first} {last}",
            index=index,
            updated=updated if updated is not None else int(time.time()),
            is_admin=index == 0,
        )
        humans = len(self.user_ids)
        self.users.insert(humans, user)
        return user

    def add_channel(
        self,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
        messages: int = 0,
        is_archived: bool = False,
        is_general: bool = False,
        thread_ratio: float | None = None,
        replies_per_thread: int | None = None,
    ) -> SlackChannel:
        """Add a channel; ``messages`` top-level messages are generated over the span."""
        index = len(self.channels)
        channel_id = make_id("C", self.team_id, index, length=10)
        factory = MessageFactory(
            team_id=self.team_id,
            channel_id=channel_id,
            users=self.user_ids,
            bots=self.integration_bot_ids,
        )
        _, default_ratio, default_replies = self._defaults
        timeline = ChannelMessages(
            factory,
            key=derive_key(self.seed, self.team_id, channel_id),
            count=messages,
            end_us=int(self.end.timestamp() * 1_000_000),
            span_us=int((self.end - self.start).total_seconds() * 1_000_000),
            thread_ratio=default_ratio if thread_ratio is None else thread_ratio,
            replies_per_thread=default_replies
            if replies_per_thread is None
            else replies_per_thread,
        )
        humans = self.user_ids
        channel = SlackChannel(
            id=channel_id,
            team_id=self.team_id,
            name=name or channel_name(index),
            created=int(self.start.timestamp()) + index * 3600,
            creator=humans[0],
            messages=timeline,
            is_private=is_private,
            is_member=is_member,
            is_archived=is_archived,
            is_general=is_general,
            num_members=len(humans) if is_general else 2 + index % max(1, len(humans) - 1),
            topic="Client work" if "client" in (name or "") else "",
            purpose=f"Discussion in #{name or channel_name(index)}",
        )
        self.channels[channel_id] = channel
        return channel

    def archive_channel(self, channel_id: str) -> None:
        channel = self.channels[channel_id]
        channel.is_archived = True
        channel.updated_ms = time.time_ns() // 1_000_000

    # -- messages ----------------------------------------------------------------------
    def post_message(
        self,
        channel_id: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        ts: str | float | None = None,
        broadcast: bool = False,
    ) -> dict[str, Any]:
        """Post as ``user`` (default: the first member); a reply updates its parent."""
        return self.channels[channel_id].messages.post(
            text=text,
            user=user or self.user_ids[0],
            thread_ts=None if thread_ts is None else _ts_us(thread_ts),
            ts=None if ts is None else _ts_us(ts),
            broadcast=broadcast,
        )

    def edit_message(self, channel_id: str, ts: str, new_text: str) -> dict[str, Any]:
        return self.channels[channel_id].messages.edit(_ts_us(ts), new_text)

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Gone from history and replies; a parent that has replies leaves a tombstone."""
        self.channels[channel_id].messages.delete(_ts_us(ts))

    def iter_messages(self, *, reachable_only: bool = False) -> Iterator[dict[str, Any]]:
        """Every existing message (top-level and replies), each with its ``channel`` id."""
        for channel in self.channels.values():
            if not reachable_only or self.reachable(channel):
                yield from channel.messages.iter_messages()

    def reachable(self, channel: SlackChannel) -> bool:
        """Can our bot read it (public channels can be joined, private ones need an invite)?"""
        return channel.is_member or not channel.is_private

    def truth(self, *, reachable_only: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Users, channels (archived too) and messages exactly as the API renders them."""
        channels = [c for c in self.channels.values() if not reachable_only or self.reachable(c)]
        return {
            "users": [u.as_api() for u in self.users],
            "channels": [c.as_api() for c in channels],
            "messages": list(self.iter_messages(reachable_only=reachable_only)),
        }

    # -- tokens and OAuth --------------------------------------------------------------
    def _secret(self, length: int) -> str:
        return "".join(self._rng.choices(string.ascii_letters + string.digits, k=length))

    def _issue_tokens(self) -> dict[str, Any]:
        if self.rotating:
            self._access_token = f"xoxe.xoxb-1-{self._secret(60)}"
            self._refresh_token = f"xoxe-1-{self._secret(70)}"
            self._expires_at = time.time() + ACCESS_TOKEN_TTL
            self._tokens.issue(self._refresh_token, TokenRecord(self.team_id, "refresh"))
        else:
            digits = "".join(self._rng.choices(string.digits, k=24))
            self._access_token = f"xoxb-{digits[:11]}-{digits[11:]}-{self._secret(24)}"
        self._tokens.issue(
            self._access_token, TokenRecord(self.team_id, "access", self._expires_at)
        )
        return self._token_response()

    def _token_response(self) -> dict[str, Any]:
        response: dict[str, Any] = {
            "ok": True,
            "app_id": self._app.app_id,
            "authed_user": {"id": self.user_ids[0]},
            "scope": BOT_SCOPES,
            "token_type": "bot",
            "access_token": self._access_token,
            "bot_user_id": self.bot_user_id,
            "team": {"id": self.team_id, "name": self.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if self.rotating:
            response["refresh_token"] = self._refresh_token
            response["expires_in"] = ACCESS_TOKEN_TTL
        return response

    @property
    def credentials(self) -> dict[str, str]:
        """The current tokens (after any rotation), as the project's vault would store them."""
        if not self.rotating:
            return {"access_token": self._access_token}
        assert self._expires_at is not None
        return {
            "access_token": self._access_token,
            "refresh_token": self._refresh_token,
            "expires_at": datetime.fromtimestamp(self._expires_at, UTC).isoformat(),
            "client_id": self._app.client_id,
            "client_secret": self._app.client_secret,
        }

    def oauth_code(self) -> str:
        """A one-use code, as Slack's redirect would hand to the install callback."""
        code = f"{self.team_id[1:]}.{self._secret(40)}"
        self._tokens.issue(code, TokenRecord(self.team_id, "code"))
        return code

    def redeem(self) -> dict[str, Any]:
        """``oauth.v2.access`` with a valid code: a fresh installation's tokens."""
        return self._issue_tokens()

    def rotate(self) -> dict[str, Any]:
        """``grant_type=refresh_token`` with the (already consumed) current refresh token."""
        return self._issue_tokens()

    def revoke_token(self) -> None:
        """Uninstall-like: every token of this workspace answers ``token_revoked``."""
        self._tokens.revoke_team(self.team_id)

    def expire_access_token(self) -> None:
        """Make the current access token expired now (``token_expired`` until refreshed)."""
        record = self._tokens.get(self._access_token)
        self._expires_at = time.time() - 1
        if record is not None:
            record.expires_at = self._expires_at

    def rate_limit(self, method: str) -> tuple[int | None, int | None]:
        """(requests per minute or None, max objects per page or None) for ``method``."""
        if self.tier == "unlimited":
            return None, None
        if self.tier == "non_marketplace_2025" and method in _NON_MARKETPLACE:
            return _NON_MARKETPLACE[method]
        return _TIER_LIMITS.get(method), None
