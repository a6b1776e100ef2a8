"""Seeded message bodies: mrkdwn text, files, reactions and the bot roster.

Everything here is a pure function of 64-bit hashes handed in by the timeline, so a message is
re-created identically whenever it is read; nothing is stored per generated message.
"""

from __future__ import annotations

from typing import Any

from sandbox.ids import derive_key, make_id, mix64

__all__ = ["BOT_NAMES", "EMOJI", "MessageFactory", "format_ts", "parse_ts_us"]

_WORDS = (
    "campaign budget launch creative review client brief deadline report spend "
    "audience pixel conversion funnel retargeting copy landing page approval invoice "
    "meeting agenda sprint metrics CTR CPA ROAS draft assets video banner schedule "
    "weekly monthly Q3 Q4 forecast results update feedback revisions kickoff handoff "
    "café naïve über résumé 東京 データ отчёт análisis"
).split()
EMOJI = (
    "thumbsup",
    "tada",
    "eyes",
    "rocket",
    "white_check_mark",
    "fire",
    "pray",
    "100",
    "heart",
    "raised_hands",
    "joy",
    "thinking_face",
    "muscle",
    "clap",
    "star",
    "bulb",
)
_UNICODE_EMOJI = ("🚀", "✅", "🎉", "👀", "🔥", "💡", "📈", "🙏")
BOT_NAMES = ("Deploy Bot", "Ads Reporter", "Calendar", "Jira Cloud")
_FILES = (
    ("report", "pdf", "application/pdf", "PDF"),
    ("creative", "png", "image/png", "PNG"),
    ("media-plan", "xlsx", "application/vnd.ms-excel", "Excel Spreadsheet"),
    ("brief", "docx", "application/msword", "Word Document"),
)


def format_ts(ts_us: int) -> str:
    """Slack's ``ts`` string: seconds, a dot, six digits of microseconds."""
    return f"{ts_us // 1_000_000}.{ts_us % 1_000_000:06d}"


def parse_ts_us(value: str) -> int:
    """``"1700000000.000100"`` -> microseconds. Raises ValueError on anything else."""
    seconds, _, fraction = str(value).strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a Slack ts: {value!r}")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


class MessageFactory:
    """Builds Slack message objects for one channel from hashes."""

    def __init__(self, *, team_id: str, channel_id: str, users: list[str], bots: list[str]) -> None:
        if not users:
            raise ValueError("a workspace needs at least one human user")
        self.team_id = team_id
        self.channel_id = channel_id
        self.users = users
        self.bots = bots
        self._salt = derive_key(team_id, channel_id)
        self._texts: dict[int, str] = {}

    def user_for(self, h: int) -> str:
        return self.users[(h >> 20) % len(self.users)]

    def text(self, h: int) -> str:
        """One of 4096 seeded texts, chosen by ``h``; cached because rendering is hot."""
        key = (h >> 40) & 0xFFF
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = self._compose(mix64(self._salt + key))
        return text

    def _compose(self, h: int) -> str:
        """mrkdwn with mentions, links, bold, :emoji:, unicode; shape varies with ``h``."""
        g = mix64(h)
        count = 4 + (g & 7)
        words = [_WORDS[(g >> (3 + 5 * k)) % len(_WORDS)] for k in range(count)]
        flags = h >> 40
        if flags & 1:
            words.insert(0, f"<@{self.users[(flags >> 4) % len(self.users)]}>")
        if flags & 2:
            words[len(words) // 2] = f"*{words[len(words) // 2]}*"
        if flags & 4:
            words.append(f"<https://example.com/r/{(g >> 50) & 0xFFF}|link>")
        if flags & 8:
            words.append(f":{EMOJI[(flags >> 8) % len(EMOJI)]}:")
        if (flags >> 12) & 3 == 0:
            words.append(_UNICODE_EMOJI[(flags >> 14) % len(_UNICODE_EMOJI)])
        sentence = " ".join(words)
        return sentence[0].upper() + sentence[1:] if sentence[0].isalpha() else sentence

    def user_message(self, ts: str, user: str, text: str) -> dict[str, Any]:
        return {"type": "message", "user": user, "text": text, "ts": ts, "team": self.team_id}

    def generated(self, ts_us: int, h: int, *, plain: bool) -> dict[str, Any]:
        """A top-level message. ``plain`` forces a user message (thread parents, broadcasts)."""
        ts = format_ts(ts_us)
        user = self.user_for(h)
        kind = 99 if plain else (h >> 56) & 0x3F
        message: dict[str, Any]
        if kind < 3 and self.bots:
            bot = (h >> 8) % len(self.bots)
            message = {
                "type": "message",
                "subtype": "bot_message",
                "text": self.text(h),
                "ts": ts,
                "bot_id": self.bots[bot],
                "username": BOT_NAMES[bot % len(BOT_NAMES)],
            }
        elif kind < 5:
            message = {
                "type": "message",
                "subtype": "channel_join",
                "user": user,
                "text": f"<@{user}> has joined the channel",
                "ts": ts,
            }
        elif kind < 8:
            message = self.user_message(ts, user, self.text(h))
            message["subtype"] = "file_share"
            message["files"] = [self.file(ts_us, user, h)]
            message["upload"] = True
            message["display_as_bot"] = False
        else:
            message = self.user_message(ts, user, self.text(h))
        self.decorate(message, ts_us, user, h)
        return message

    def reply(self, ts_us: int, parent_ts: str, parent_user: str, h: int) -> dict[str, Any]:
        user = self.user_for(h)
        message = self.user_message(format_ts(ts_us), user, self.text(h))
        message["thread_ts"] = parent_ts
        message["parent_user_id"] = parent_user
        self.decorate(message, ts_us, user, h)
        return message

    def decorate(self, message: dict[str, Any], ts_us: int, user: str, h: int) -> None:
        """Occasional edits and reactions, as in a real channel."""
        g = mix64(h ^ 0x5EED)
        if g & 0x1F == 0 and "user" in message:
            edited_us = ts_us + 1_000_000 * (30 + (g >> 8) % 3600)
            message["edited"] = {"user": user, "ts": format_ts(edited_us)}
        if (g >> 5) & 0x7 == 0:
            first = self.users[(g >> 12) % len(self.users)]
            second = self.users[(g >> 24) % len(self.users)]
            users = [first] if first == second else [first, second]
            message["reactions"] = [
                {"name": EMOJI[(g >> 36) % len(EMOJI)], "users": users, "count": len(users)}
            ]

    def file(self, ts_us: int, user: str, h: int) -> dict[str, Any]:
        stem, ext, mimetype, pretty = _FILES[(h >> 4) % len(_FILES)]
        file_id = make_id("F", self.channel_id, ts_us)
        name = f"{stem}-{(h >> 30) % 1000}.{ext}"
        seconds = ts_us // 1_000_000
        return {
            "id": file_id,
            "created": seconds,
            "timestamp": seconds,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": ext,
            "pretty_type": pretty,
            "user": user,
            "user_team": self.team_id,
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "is_public": True,
            "size": 1024 + (h >> 12) % 5_000_000,
            "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{file_id}/{name}",
            "permalink": f"https://example.slack.com/files/{user}/{file_id}/{name}",
        }
