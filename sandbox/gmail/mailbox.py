"""One Gmail mailbox: generated mail plus an overlay of mutations, labels, history, tokens.

Tests mutate a mailbox between syncs (:meth:`deliver`, :meth:`modify`, :meth:`trash`,
:meth:`delete`) -- each mutation is one history record -- and compare what the project loaded
with :meth:`truth`, which renders labels as ``labels.list`` and messages as
``messages.get?format=metadata`` do.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.gmail.content import attachment_part, body_text, date_header, encode_subject, person
from sandbox.gmail.generated import CATEGORIES, GeneratedMail, MessageSpec
from sandbox.gmail.history import Change, History
from sandbox.gmail.mime import Part, html_snippet
from sandbox.gmail.render import render_message
from sandbox.gmail.search import Query, search
from sandbox.gmail.stats import count_mailbox
from sandbox.google_oauth import GoogleOAuth
from sandbox.ids import derive_key, mix64

__all__ = ["SCOPE", "SYSTEM_LABELS", "GmailMailbox"]

SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
SYSTEM_LABELS = (
    "CHAT",
    "SENT",
    "INBOX",
    "IMPORTANT",
    "TRASH",
    "DRAFT",
    "SPAM",
    *CATEGORIES,
    "STARRED",
    "UNREAD",
)
_HIDDEN = {"messageListVisibility": "hide", "labelListVisibility": "labelHide"}
_VISIBILITY = {
    "CHAT": _HIDDEN,
    "TRASH": _HIDDEN,
    "SPAM": _HIDDEN,
    "IMPORTANT": {"messageListVisibility": "hide", "labelListVisibility": "labelShow"},
}


class GmailMailbox:
    """Create with ``sb.gmail.add_mailbox``; thread-safe for one writer and many readers."""

    def __init__(
        self,
        *,
        oauth: GoogleOAuth,
        seed: int,
        email: str,
        messages: int,
        threads_ratio: float,
        domains: Sequence[str],
        start: datetime | None,
        span_days: float,
        quota: bool | int,
        quota_status: int,
        history_retention: int | timedelta | None,
        time_scale: float,
        token_uri: Any,
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if quota_status not in (403, 429):
            raise ValueError("quota_status must be 403 or 429")
        self.email = email
        self.key = derive_key(seed, "gmail", email)
        span = timedelta(days=span_days)
        self.start = start or datetime.now(UTC) - span
        self.end = self.start + span
        self.quota_units: int | None = (250 if quota is True else int(quota)) if quota else None
        self.quota_status = quota_status
        self.lock = threading.RLock()
        self.user_labels: list[dict[str, Any]] = []
        client_labels = {d: self._new_label(f"Clients/{d.split('.')[0].title()}") for d in domains}
        extra = [self._new_label(n) for n in ("Invoices", "Reports/Weekly", "Follow-up")]
        self.mail = GeneratedMail(
            key=self.key,
            count=messages,
            start_ms=int(self.start.timestamp() * 1000),
            end_ms=int(self.end.timestamp() * 1000),
            threads_ratio=threads_ratio,
            owner=email,
            domains=domains,
            client_labels=client_labels,
            extra_labels=extra,
            base_history_id=1_000 + self.key % 90_000,
        )
        self.history = History(
            start_id=self.mail.last_history_id,
            key=self.key,
            retention=history_retention,
            time_scale=time_scale,
        )
        self._added: dict[str, MessageSpec] = {}
        self._added_ints: list[int] = []
        self._labels: dict[str, list[str]] = {}
        self._history_ids: dict[str, int] = {}
        self._deleted: set[str] = set()
        self._version = 0
        self._stats: tuple[int, dict[str, Any]] | None = None
        self._oauth, self._token_uri = oauth, token_uri
        self.refresh_token = oauth.grant(email, SCOPE)
        self.access_token, self._access = oauth.issue_access_token(email)

    # -- labels ------------------------------------------------------------------------
    def _new_label(self, name: str) -> str:
        label_id = f"Label_{len(self.user_labels) + 1}"
        self.user_labels.append(
            {
                "id": label_id,
                "name": name,
                "type": "user",
                "messageListVisibility": "show",
                "labelListVisibility": "labelShow",
            }
        )
        return label_id

    def add_label(self, name: str) -> str:
        """A new user label (``Label_N``); returns its id."""
        with self.lock:
            self._version += 1
            return self._new_label(name)

    def labels(self) -> list[dict[str, Any]]:
        """``labels.list``: system labels, then user labels (no counts, as on Gmail)."""
        system = [
            {"id": s, "name": s, "type": "system", **_VISIBILITY.get(s, {})} for s in SYSTEM_LABELS
        ]
        return system + [dict(label) for label in self.user_labels]

    def label_ids(self) -> set[str]:
        return set(SYSTEM_LABELS) | {label["id"] for label in self.user_labels}

    # -- reading -----------------------------------------------------------------------
    @property
    def history_id(self) -> int:
        return self.history.current

    def spec(self, message_id: str) -> MessageSpec | None:
        """The message as it is now (mutations applied), or None if it does not exist."""
        if message_id in self._deleted:
            return None
        spec = self._added.get(message_id)
        if spec is None:
            index = self._index(message_id)
            if index is None:
                return None
            spec = self.mail.spec(index)
        if message_id in self._labels:
            spec.labels = list(self._labels[message_id])
        spec.history_id = self._history_ids.get(message_id, spec.history_id)
        return spec

    def _index(self, message_id: str) -> int | None:
        if len(message_id) != 16:
            return None
        try:
            return self.mail.index_of(int(message_id, 16))
        except ValueError:
            return None

    def candidates(self, low: int, high: int) -> Iterator[tuple[str, Any]]:
        """``(id, index or spec)`` of existing messages with ``low <= id < high``, newest
        first -- generated ones by index arithmetic, added ones from a sorted list."""
        mail = self.mail
        i, stop = mail.count_below(high) - 1, mail.count_below(low)
        added = self._added_ints
        j = bisect_left(added, high) - 1
        item: Any
        while True:
            gen = mail.id_int(i) if i >= stop else -1
            add = added[j] if j >= 0 and added[j] >= low else -1
            if gen < 0 and add < 0:
                return
            if gen > add:
                message_id, item, i = f"{gen:016x}", i, i - 1
            else:
                message_id = f"{add:016x}"
                item, j = self._added[message_id], j - 1
            if message_id not in self._deleted:
                yield message_id, item

    def candidate_count(self, low: int, high: int) -> int:
        mail = self.mail
        added = bisect_left(self._added_ints, high) - bisect_left(self._added_ints, low)
        return mail.count_below(high) - mail.count_below(low) + added

    def labels_of(self, message_id: str, item: Any) -> list[str]:
        if message_id in self._labels:
            return self._labels[message_id]
        return item.labels if isinstance(item, MessageSpec) else self.mail.labels(item)

    def thread_of(self, item: Any) -> str:
        if isinstance(item, MessageSpec):
            return item.thread_id
        return self.mail.message_id(self.mail.root(item))

    def search(
        self, query: Query, *, max_results: int, before: int | None
    ) -> tuple[list[dict[str, str]], int | None, int]:
        with self.lock:
            return search(self, query, max_results=max_results, before=before)

    def stats(self) -> dict[str, Any]:
        """Totals for ``getProfile`` and ``labels.get``, cached until the next mutation."""
        with self.lock:
            if self._stats is not None and self._stats[0] == self._version:
                return self._stats[1]
            deleted = {self._index(m) for m in self._deleted}
            overrides = {self._index(m): v for m, v in self._labels.items()}
            added = [
                (self._index(spec.thread_id), spec)
                for message_id, spec in self._added.items()
                if message_id not in self._deleted
            ]
            stats = count_mailbox(self.mail, deleted, overrides, added)
            self._stats = (self._version, stats)
            return stats

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        """Labels as ``labels.list`` and every existing message (spam and trash included,
        permanently deleted ones not) as ``messages.get?format=metadata``, newest first."""
        with self.lock:
            messages = []
            for message_id, _ in list(self.candidates(0, 1 << 64)):
                spec = self.spec(message_id)
                assert spec is not None
                messages.append(render_message(spec, "metadata"))
            return {"labels": self.labels(), "messages": messages}

    # -- mutations ---------------------------------------------------------------------
    def _snapshot(self, spec: MessageSpec) -> dict[str, Any]:
        return {"id": spec.id, "threadId": spec.thread_id, "labelIds": list(spec.labels)}

    def deliver(
        self,
        *,
        subject: str | None = None,
        sender: str | None = None,
        to: Iterable[str] | None = None,
        cc: Iterable[str] = (),
        text: str | None = None,
        labels: Iterable[str] | None = None,
        thread_id: str | None = None,
        attachments: int = 0,
        at: datetime | None = None,
        raw_subject: str | None = None,
    ) -> dict[str, Any]:
        """A new message (default: from a contact at the first domain, into the inbox,
        unread) and its ``messageAdded`` record; returns it as ``format=metadata``.
        ``thread_id`` (a thread id, or the id of any message in it) makes it a reply.
        ``raw_subject`` is the Subject header exactly as it travels (raw UTF-8 mixed with
        encoded words, say), where ``subject`` is encoded the way mailers do."""
        with self.lock:
            root = self.spec(thread_id) if thread_id else None
            if thread_id and root is None:
                raise KeyError(f"no message {thread_id} in {self.email}")
            ms = int((at or datetime.now(UTC)).timestamp() * 1000)
            h = mix64(self.key ^ (len(self._added) + 1) ^ 0xDE11)
            id_int = (ms << 20) | (h & 0xFFFFF)
            while f"{id_int:016x}" in self._added or self.mail.index_of(id_int) is not None:
                id_int += 1
            message_id = f"{id_int:016x}"
            contact = person(self.mail.domains[0], h)
            sender = sender or contact.header()
            outgoing = self.email in sender
            if labels is None:
                labels = ["SENT"] if outgoing else ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]
            unknown = set(labels) - self.label_ids()
            if unknown:
                raise ValueError(f"unknown labels {sorted(unknown)}")
            subject = subject or "New message"
            text = text or body_text(h, "team", contact.name)
            headers = [
                ("MIME-Version", "1.0"),
                ("Date", date_header(ms, h)),
                ("Message-ID", f"<CA+{h & 0xFFFFFFFFFFFF:x}.new@mail.sandbox>"),
                ("Subject", raw_subject if raw_subject is not None else encode_subject(subject, h)),
                ("From", sender),
                ("To", ", ".join(to or [self.email])),
            ]
            cc = list(cc)
            if cc:
                headers.append(("Cc", ", ".join(cc)))
            children = [
                Part(
                    "text/plain",
                    [("Content-Type", 'text/plain; charset="UTF-8"')],
                    content=text.encode(),
                    transfer="7bit",
                )
            ]
            children += [attachment_part(h, message_id, k) for k in range(attachments)]
            boundary = f"000000000000{h & 0xFFFFFFFFFF:010x}"
            part = Part(
                "multipart/mixed",
                [*headers, ("Content-Type", f'multipart/mixed; boundary="{boundary}"')],
                children=children,
                boundary=boundary,
            )
            spec = MessageSpec(
                id=message_id,
                thread_id=root.thread_id if root else message_id,
                internal_ms=ms,
                labels=list(labels),
                history_id=self.history.next_id(),
                part=part,
                snippet=html_snippet(text),
            )
            self._added[message_id] = spec
            insort(self._added_ints, id_int)
            self.history.append(Change("messageAdded", self._snapshot(spec)))
            self._version += 1
            return render_message(spec, "metadata")

    def modify(
        self, message_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Add/remove labels: one record with ``labelsAdded`` and/or ``labelsRemoved``."""
        with self.lock:
            spec = self._existing(message_id)
            unknown = (set(add) | set(remove)) - self.label_ids()
            if unknown:
                raise ValueError(f"unknown labels {sorted(unknown)}")
            added = [x for x in dict.fromkeys(add) if x not in spec.labels]
            removed = [x for x in dict.fromkeys(remove) if x in spec.labels and x not in added]
            if not added and not removed:
                return render_message(spec, "minimal")
            spec.labels = [x for x in spec.labels if x not in removed] + added
            spec.history_id = self.history.next_id()
            self._labels[message_id] = list(spec.labels)
            self._history_ids[message_id] = spec.history_id
            snapshot = self._snapshot(spec)
            changes = []
            if added:
                changes.append(Change("labelAdded", snapshot, tuple(added)))
            if removed:
                changes.append(Change("labelRemoved", snapshot, tuple(removed)))
            self.history.append(*changes)
            self._version += 1
            return render_message(spec, "minimal")

    def trash(self, message_id: str) -> dict[str, Any]:
        """``messages.trash``: adds ``TRASH`` (other labels stay, as ``untrash`` needs them)."""
        return self.modify(message_id, add=["TRASH"])

    def delete(self, message_id: str) -> None:
        """Permanent deletion (``messages.delete``): gone everywhere; ``messagesDeleted``."""
        with self.lock:
            spec = self._existing(message_id)
            self.history.next_id()
            self._deleted.add(message_id)
            self.history.append(Change("messageDeleted", self._snapshot(spec)))
            self._version += 1

    def _existing(self, message_id: str) -> MessageSpec:
        spec = self.spec(message_id)
        if spec is None:
            raise KeyError(f"no message {message_id} in {self.email}")
        return spec

    def message_ids(self, *, limit: int | None = None) -> list[str]:
        """Existing message ids, newest first (spam and trash included)."""
        with self.lock:
            out: list[str] = []
            for message_id, _ in self.candidates(0, 1 << 64):
                if limit is not None and len(out) >= limit:
                    break
                out.append(message_id)
            return out

    def expire_history(self) -> None:
        """Drop all history: ``history.list`` from any older id now answers 404."""
        with self.lock:
            self.history.expire()

    # -- tokens ------------------------------------------------------------------------
    @property
    def credentials(self) -> dict[str, str]:
        """The tokens of the initial consent, as the project's vault would store them."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "client_id": self._oauth.client_id,
            "client_secret": self._oauth.client_secret,
            "expires_at": self._oauth.expires_at_iso(self._access),
            "token_uri": self._token_uri(),
        }

    def revoke_refresh_token(self) -> None:
        """The user removed our app: refresh (``invalid_grant``) and access tokens die."""
        self._oauth.revoke_subject(self.email)

    def expire_access_token(self) -> None:
        """Every access token issued so far for this mailbox is expired now (401)."""
        self._oauth.expire_subject(self.email)
