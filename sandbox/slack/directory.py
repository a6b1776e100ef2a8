"""Users and channels of a workspace, shaped like ``users.list`` / ``conversations.list``.

These are few (thousands at most), so unlike messages they are materialised as plain objects;
the JSON shape follows Slack's documented user and conversation objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack.channel_messages import ChannelMessages

__all__ = ["SlackChannel", "SlackUser", "channel_name", "person_name"]

_FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Giulia",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Søren",
    "Tomás",
)
_LAST = (
    "Silva",
    "Okafor",
    "Müller",
    "Tanaka",
    "Novak",
    "García",
    "Kowalski",
    "Haddad",
    "Larsen",
    "Nguyen",
    "O'Brien",
    "Rossi",
    "Schmidt",
    "Yilmaz",
    "Zhang",
    "Dubois",
)
_CHANNEL_STEMS = (
    "general",
    "random",
    "client-acme",
    "proj-launch",
    "ads-reporting",
    "leadership",
    "design",
    "client-globex",
    "media-buying",
    "ops-alerts",
    "client-initech",
    "finance",
)
_TIMEZONES = (
    ("America/New_York", "Eastern Daylight Time", -14400),
    ("Europe/London", "British Summer Time", 3600),
    ("Europe/Berlin", "Central European Summer Time", 7200),
    ("Asia/Tokyo", "Japan Standard Time", 32400),
)


def person_name(index: int) -> tuple[str, str]:
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST) + index) % len(_LAST)]
    return first, last


def channel_name(index: int) -> str:
    stem = _CHANNEL_STEMS[index % len(_CHANNEL_STEMS)]
    return stem if index < len(_CHANNEL_STEMS) else f"{stem}-{index // len(_CHANNEL_STEMS)}"


@dataclass
class SlackUser:
    id: str
    team_id: str
    name: str
    real_name: str
    updated: int
    index: int = 0
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    is_admin: bool = False

    def as_api(self) -> dict[str, Any]:
        tz, tz_label, tz_offset = _TIMEZONES[self.index % len(_TIMEZONES)]
        avatar = hashlib.md5(self.id.encode(), usedforsecurity=False).hexdigest()[:12]
        profile: dict[str, Any] = {
            "title": ""
            if self.is_bot
            else ("Account Manager", "Media Buyer", "Designer")[self.index % 3],
            "phone": "",
            "skype": "",
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": "" if self.is_bot else self.name,
            "display_name_normalized": "" if self.is_bot else self.name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": avatar,
            "image_24": f"https://avatars.slack-edge.com/{avatar}_24.png",
            "image_48": f"https://avatars.slack-edge.com/{avatar}_48.png",
            "team": self.team_id,
        }
        if self.is_bot:
            profile["bot_id"] = self.bot_id
        elif self.id != "USLACKBOT":
            profile["email"] = f"{self.name}@example.com"
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": f"{(self.index * 2654435761) & 0xFFFFFF:06x}",
            "real_name": self.real_name,
            "tz": tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_admin and self.index == 0,
            "is_primary_owner": self.is_admin and self.index == 0,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": self.updated,
        }


@dataclass
class SlackChannel:
    id: str
    team_id: str
    name: str
    created: int
    creator: str
    messages: ChannelMessages
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    is_general: bool = False
    num_members: int = 0
    topic: str = ""
    purpose: str = ""
    updated_ms: int = field(default=0)

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": self.updated_ms or self.created * 1000,
            "parent_conversation": None,
            "creator": self.creator,
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": self.is_member,
            "topic": {"value": self.topic, "creator": self.creator, "last_set": self.created},
            "purpose": {"value": self.purpose, "creator": self.creator, "last_set": self.created},
            "previous_names": [],
            "num_members": self.num_members,
        }
