"""A mailbox's generated messages: a pure function of ``(key, index)``, built on demand.

A 100k-message mailbox must cost nothing until it is read, so nothing is stored per message:

* message ``i`` (0 = oldest) sits in slot ``[start + i*step, start + (i+1)*step)`` ms, so
  ``internalDate`` grows strictly with ``i``;
* its id is Gmail-shaped -- 16 hex digits, ``internalDate`` in ms shifted left by 20 bits plus
  20 hashed bits -- so ids sort by time and an id maps back to its index by one division
  (no dictionary, O(1) ``messages.get``);
* a message either starts a thread or replies to one of the 40 messages before it; the
  thread id is the id of the thread's first message, as on Gmail.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.gmail.content import (
    Person,
    attachment_part,
    body_text,
    company_of,
    date_header,
    encode_subject,
    person,
    subject_for,
    text_parts,
)
from sandbox.gmail.mime import Part, html_snippet
from sandbox.ids import mix64, unit

__all__ = ["CATEGORIES", "GeneratedMail", "MessageSpec"]

CATEGORIES = (
    "CATEGORY_PERSONAL",
    "CATEGORY_UPDATES",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_SOCIAL",
    "CATEGORY_FORUMS",
)
_CATEGORY_WEIGHTS = (115, 180, 215, 235, 256)  # cumulative, of 256
_SPAM_DOMAIN = "offers-mail.biz"
_REPLY_WINDOW = 40
_SALT_CONTACT, _SALT_PEOPLE, _SALT_BODY = 0xC0FFEE, 0xBEEF5, 0xB0D7


@dataclass
class MessageSpec:
    """One message, everything the renderers need (labels may be overridden by mutations)."""

    id: str
    thread_id: str
    internal_ms: int
    labels: list[str]
    history_id: int
    part: Part
    snippet: str


class GeneratedMail:
    """The generated part of one mailbox (read-only; mutations live in the mailbox)."""

    def __init__(
        self,
        *,
        key: int,
        count: int,
        start_ms: int,
        end_ms: int,
        threads_ratio: float,
        owner: str,
        domains: Sequence[str],
        client_labels: dict[str, str],
        extra_labels: Sequence[str],
        base_history_id: int,
    ) -> None:
        if not domains:
            raise ValueError("domains must not be empty")
        self.key, self.count = key, count
        self.step = max(1, (end_ms - start_ms) // max(count, 1))
        self.start_ms = end_ms - self.step * count
        self.threads_ratio = threads_ratio
        self.owner_email = owner
        self.owner_domain = owner.split("@", 1)[1]
        self.domains = tuple(domains)
        self.client_labels = client_labels  # domain -> label id
        self.extra_labels = tuple(extra_labels)
        self.base_history_id = base_history_id
        local = owner.split("@", 1)[0]
        self.owner_header = f"{company_of(self.owner_domain)} {local.title()} <{owner}>"

    # -- layout ------------------------------------------------------------------------
    def h(self, i: int) -> int:
        return mix64(self.key + i)

    def internal_ms(self, i: int) -> int:
        return self.start_ms + i * self.step + self.h(i) % self.step

    def id_int(self, i: int) -> int:
        return (self.internal_ms(i) << 20) | (mix64(self.h(i)) & 0xFFFFF)

    def message_id(self, i: int) -> str:
        return f"{self.id_int(i):016x}"

    def history_id(self, i: int) -> int:
        return self.base_history_id + 4 * i + (self.h(i) & 3) + 1

    @property
    def last_history_id(self) -> int:
        return self.base_history_id + 4 * self.count + 8

    def index_of(self, id_int: int) -> int | None:
        i = ((id_int >> 20) - self.start_ms) // self.step
        if 0 <= i < self.count and self.id_int(i) == id_int:
            return i
        return None

    def count_below(self, bound: int) -> int:
        """How many generated messages have an id (as int) strictly below ``bound``."""
        i = ((bound >> 20) - self.start_ms) // self.step
        if i < 0:
            return 0
        if i >= self.count:
            return self.count
        return i + (1 if self.id_int(i) < bound else 0)

    # -- threads and classification ----------------------------------------------------
    def kind(self, i: int, h: int | None = None) -> str:
        bits = ((self.h(i) if h is None else h) >> 52) & 0xFF
        if bits < 5:
            return "spam"
        if bits < 10:
            return "trash"
        if bits < 12:
            return "draft"
        return "sent" if bits < 50 else "received"

    def parent(self, i: int, h: int | None = None) -> int | None:
        """The message ``i`` replies to, or None when it starts a thread."""
        h = self.h(i) if h is None else h
        if i == 0 or unit(h, 0, 16) < self.threads_ratio or self.kind(i, h) == "spam":
            return None
        p = i - 1 - (h >> 16) % min(i, _REPLY_WINDOW)
        return None if self.kind(p) == "spam" else p

    def root(self, i: int) -> int:
        while (p := self.parent(i)) is not None:
            i = p
        return i

    def roots(self) -> tuple[array, array]:
        """``root(i)`` and ``h(i)`` for every ``i`` in one pass (for whole-mailbox counts)."""
        roots, hashes = array("q"), array("Q")
        key = self.key
        for i in range(self.count):
            h = mix64(key + i)
            hashes.append(h)
            p = self.parent(i, h)
            roots.append(i if p is None else roots[p])
        return roots, hashes

    def labels(
        self, i: int, root: int | None = None, h: int | None = None, root_h: int | None = None
    ) -> list[str]:
        h = self.h(i) if h is None else h
        kind = self.kind(i, h)
        if kind == "spam":
            return ["SPAM", "UNREAD"] if h & 1 else ["SPAM"]
        if kind == "trash":
            return ["TRASH"]
        if kind == "draft":
            return ["DRAFT"]
        root = self.root(i) if root is None else root
        labels: list[str] = []
        if (h >> 40) & 0xFF < 100:
            rh = self.h(root) if root_h is None else root_h
            labels.append(self.client_labels[self.domains[rh % len(self.domains)]])
        if self.extra_labels and (h >> 48) & 0xF == 0:
            labels.append(self.extra_labels[(h >> 56) % len(self.extra_labels)])
        if kind == "received" and (h >> 4) & 0xFF < 51:
            labels.append("UNREAD")
        if kind == "received" and (h >> 28) & 0xFF < 10:
            labels.append("STARRED")
        if (h >> 36) & 0xF < 5:
            labels.append("IMPORTANT")
        if kind == "sent":
            labels.append("SENT")
        else:
            cat = (h >> 12) & 0xFF
            labels.append(CATEGORIES[next(k for k, w in enumerate(_CATEGORY_WEIGHTS) if cat < w)])
            labels.append("INBOX")
        return labels

    def _domain(self, root: int) -> str:
        return self.domains[self.h(root) % len(self.domains)]

    # -- content -----------------------------------------------------------------------
    def spec(self, i: int) -> MessageSpec:
        h, kind, root = self.h(i), self.kind(i), self.root(i)
        rh = self.h(root)
        message_id = self.message_id(i)
        domain = _SPAM_DOMAIN if kind == "spam" else self._domain(root)
        contact = person(domain, mix64(rh ^ _SALT_CONTACT))
        people = [person(domain, mix64(h ^ _SALT_PEOPLE ^ k)) for k in range(3)]
        colleague = person(self.owner_domain, mix64(h ^ _SALT_PEOPLE ^ 7))
        subject = subject_for(rh, company_of(domain))
        if root != i:
            subject = f"Re: {subject}"
        outgoing = kind in ("sent", "draft")
        sender = self.owner_header if outgoing else (contact if h & 2 else people[0]).header()
        to = [contact.header()] if outgoing else [self.owner_header]
        to += [p.header() for p in people[1 : 1 + (h >> 8) % 3]]
        cc = [colleague.header()] + [people[0].header()] if (h >> 10) % 3 == 0 else []
        signer: Person | None = None if outgoing else (contact if h & 2 else people[0])
        text = body_text(
            mix64(h ^ _SALT_BODY),
            contact.first if outgoing else "team",
            signer.name if signer else company_of(self.owner_domain),
        )
        headers: list[tuple[str, str]] = []
        if not outgoing:
            headers.append(("Delivered-To", self.owner_email))
        headers += [
            ("MIME-Version", "1.0"),
            ("Date", date_header(self.internal_ms(i), h)),
            ("Message-ID", self._rfc_message_id(i, domain)),
        ]
        parent = self.parent(i)
        if parent is not None:
            headers += [
                ("In-Reply-To", self._rfc_message_id(parent, domain)),
                (
                    "References",
                    f"{self._rfc_message_id(root, domain)} {self._rfc_message_id(parent, domain)}",
                ),
            ]
        headers += [
            ("Subject", encode_subject(subject, h)),
            ("From", sender),
            ("To", ", ".join(to)),
        ]
        if cc:
            headers.append(("Cc", ", ".join(cc)))
        part = self._structure(h, message_id, text, headers)
        return MessageSpec(
            id=message_id,
            thread_id=self.message_id(root),
            internal_ms=self.internal_ms(i),
            labels=self.labels(i, root),
            history_id=self.history_id(i),
            part=part,
            snippet=html_snippet(text),
        )

    def _rfc_message_id(self, i: int, domain: str) -> str:
        return f"<CA+{self.h(i) & 0xFFFFFFFFFFFF:x}.{i}@mail.{domain}>"

    @staticmethod
    def _structure(h: int, message_id: str, text: str, headers: list[tuple[str, str]]) -> Part:
        shape = (h >> 60) & 0xF
        boundary = f"0000000000{(h >> 8) & 0xFFFFFFFFFFFF:012x}"
        if shape < 3:
            leaf = text_parts(text, h)[0]
            leaf.headers = headers + leaf.headers
            return leaf
        alternative = Part(
            "multipart/alternative", [], children=text_parts(text, h), boundary=f"{boundary}a"
        )
        if shape < 11:
            alternative.headers = [
                *headers,
                ("Content-Type", f'multipart/alternative; boundary="{boundary}a"'),
            ]
            return alternative
        alternative.headers = [("Content-Type", f'multipart/alternative; boundary="{boundary}a"')]
        attachments = [attachment_part(h, message_id, k) for k in range(1 + (h >> 6) % 2)]
        return Part(
            "multipart/mixed",
            [*headers, ("Content-Type", f'multipart/mixed; boundary="{boundary}m"')],
            children=[alternative, *attachments],
            boundary=f"{boundary}m",
        )
