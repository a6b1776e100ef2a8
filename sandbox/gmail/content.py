"""Word lists and builders for synthetic mail: people, addresses, subjects, bodies, parts.

Everything is a pure function of a 64-bit hash, so a message can be rebuilt from its index at
any time. Addresses come in the shapes real clients meet: plain, quoted with a comma,
bare, and RFC 2047 encoded display names (B and Q); subjects may be ASCII, raw UTF-8, or
encoded words split over several chunks.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from sandbox.gmail.mime import Part, encode_word_b, encode_word_q

__all__ = [
    "ATTACHMENTS",
    "Person",
    "attachment_part",
    "body_text",
    "company_of",
    "date_header",
    "person",
    "subject_for",
    "text_parts",
]

_FIRST = (
    "Jane",
    "John",
    "Priya",
    "Marcus",
    "Olivia",
    "Chen",
    "Fatima",
    "Lucas",
    "Emma",
    "Noah",
    "Aisha",
    "Diego",
    "Hannah",
    "Kenji",
    "Sara",
    "Tom",
    "Mei",
    "Omar",
    "Lena",
    "Victor",
)
_LAST = (
    "Doe",
    "Smith",
    "Patel",
    "Brown",
    "Garcia",
    "Wang",
    "Khan",
    "Martin",
    "Jensen",
    "O'Neil",
    "Kowalski",
    "Silva",
    "Nguyen",
    "Fischer",
    "Rossi",
    "Haddad",
    "Ito",
    "Baker",
)
# Non-ASCII names: their display names travel RFC 2047 encoded (or as raw UTF-8).
_UNICODE = (
    ("José", "Müller"),
    ("Zoë", "Łukasiewicz"),
    ("Renée", "Dupont"),
    ("Søren", "Kierkegård"),
    ("Ana", "Núñez"),
    ("Björn", "Ångström"),
    ("Çağla", "Yıldız"),
)

_SUBJECTS = (
    "{client} – weekly performance report",
    "Q{q} budget approval for {client}",
    "Creative review: {client} spring campaign",
    "Invoice #{n} from {client}",
    "Réunion de lancement – {client}",
    "Meeting notes, {client} kickoff",
    "✅ Approved: {client} media plan",
    "{client}: audience list refresh (v{v})",
    "Agenda für das Quartalsgespräch mit {client}",
    "Tracking pixel missing on the {client} landing page",
    "日程調整のお願い – {client}",
    "Contract renewal & pricing for {client}",
    "Can we move Thursday's call? ({client})",
    "{client} × Acme: lookalike audiences 🚀",
)
_PARAGRAPHS = (
    "Thanks for sending this over. I've had a look and the numbers for last week are in "
    "line with what we forecast, though CPC crept up on the weekend.",
    "Could you share the updated audience list by Friday? We'd like to refresh the "
    "lookalikes before the new flight starts & check the exclusions.",
    "Attached is the draft for review. Let me know if anything needs to change before we "
    "send it to the client's legal team.",
    "Quick reminder that the invoice is due at the end of the month. Ping me if the PO "
    "number changed.",
    "We saw a drop in conversions after the site update; the pixel doesn't fire on the "
    "thank-you page any more. Can your dev team take a look?",
    "Great call today! Summary: budget +15% for Q3, new creatives in two weeks, and a "
    'test on the "<value>" segment.',
    "Merci pour votre retour, nous préparons la nouvelle version de la présentation.",
    "Vielen Dank für die schnelle Rückmeldung – wir melden uns bis Mittwoch.",
)
ATTACHMENTS = (
    ("report.pdf", "application/pdf"),
    ("budget 2025.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("logo.png", "image/png"),
    (
        "Résumé – Müller.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("media-plan.csv", "text/csv"),
)
_ZONES = (
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=9)),
    timezone(timedelta(hours=-8)),
)


def company_of(domain: str) -> str:
    """``globex.com`` -> ``Globex``, ``acme-agency.test`` -> ``Acme Agency``."""
    return domain.split(".")[0].replace("-", " ").title()


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


class Person:
    """Someone at ``domain``, with the header shape chosen by ``style``."""

    def __init__(self, first: str, last: str, domain: str, style: int) -> None:
        self.first, self.last, self.domain, self.style = first, last, domain, style
        self.name = f"{first} {last}"
        self.email = f"{_ascii(first)}.{_ascii(last)}@{domain}"

    def header(self) -> str:
        """An address as it appears in From/To/Cc."""
        if not self.name.isascii():
            return (
                f"{encode_word_b(self.name)} <{self.email}>"
                if self.style % 3 == 0
                else f"{encode_word_q(self.name)} <{self.email}>"
                if self.style % 3 == 1
                else f"{self.name} <{self.email}>"
            )
        if self.style % 5 == 1:
            return f'"{self.last}, {self.first}" <{self.email}>'
        if self.style % 5 == 2:
            return self.email
        if "'" in self.name:
            return f'"{self.name}" <{self.email}>'
        return f"{self.name} <{self.email}>"


def person(domain: str, h: int) -> Person:
    """A deterministic person at ``domain`` (about one in six has a non-ASCII name)."""
    style = (h >> 12) & 0xFF
    if (h >> 20) % 6 == 0:
        first, last = _UNICODE[(h >> 24) % len(_UNICODE)]
    else:
        first, last = _FIRST[(h >> 24) % len(_FIRST)], _LAST[(h >> 32) % len(_LAST)]
    return Person(first, last, domain, style)


def subject_for(h: int, client: str) -> str:
    """The decoded subject of a thread whose root hashed to ``h``."""
    template = _SUBJECTS[(h >> 8) % len(_SUBJECTS)]
    return template.format(
        client=client, q=1 + (h >> 16) % 4, n=1000 + (h >> 20) % 9000, v=1 + (h >> 36) % 9
    )


def encode_subject(subject: str, h: int) -> str:
    """How the subject travels: ASCII as is; otherwise raw UTF-8, B- or Q-encoded."""
    if subject.isascii():
        return subject
    style = (h >> 44) % 3
    if style == 0:
        return subject
    return encode_word_b(subject) if style == 1 else encode_word_q(subject)


def body_text(h: int, greeting: str, signature: str) -> str:
    count = 1 + (h >> 48) % 3
    paragraphs = [_PARAGRAPHS[((h >> (4 * k)) + k) % len(_PARAGRAPHS)] for k in range(count)]
    return "\r\n\r\n".join([f"Hi {greeting},", *paragraphs, f"Best,\r\n{signature}"]) + "\r\n"


def _html(text: str) -> str:
    escaped = (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
    paragraphs = "".join(
        f"<p>{p.replace(chr(13) + chr(10), '<br>')}</p>" for p in escaped.split("\r\n\r\n")
    )
    return f'<div dir="ltr">{paragraphs}</div>\r\n'


def text_parts(text: str, h: int) -> list[Part]:
    """``text/plain`` and ``text/html`` leaves of a multipart/alternative."""
    plain = Part(
        "text/plain",
        [
            ("Content-Type", 'text/plain; charset="UTF-8"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ],
        content=text.encode(),
    )
    html = Part(
        "text/html",
        [
            ("Content-Type", 'text/html; charset="UTF-8"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ],
        content=_html(text).encode(),
    )
    return [plain, html]


def attachment_part(h: int, message_id: str, k: int) -> Part:
    filename, mime_type = ATTACHMENTS[(h >> (8 * k + 3)) % len(ATTACHMENTS)]
    size = 1_024 + (h >> (5 * k + 7)) % 24_000
    seed = hashlib.blake2b(f"{message_id}:{k}".encode(), digest_size=32).digest()
    content = (seed * (size // len(seed) + 1))[:size]
    token = hashlib.blake2b(f"att:{message_id}:{k}".encode(), digest_size=48).digest()
    attachment_id = "ANGjdJ" + token.hex()
    if filename.isascii():
        disposition = f'attachment; filename="{filename}"'
        type_header = f'{mime_type}; name="{filename}"'
    else:
        disposition = f'attachment; filename="{encode_word_b(filename)}"'
        type_header = f'{mime_type}; name="{encode_word_b(filename)}"'
    return Part(
        mime_type,
        [
            ("Content-Type", type_header),
            ("Content-Disposition", disposition),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-ID", f"<f_{token.hex()[:12]}>"),
            ("X-Attachment-Id", f"f_{token.hex()[:12]}"),
        ],
        content=content,
        filename=filename,
        attachment_id=attachment_id,
        transfer="base64",
    )


def date_header(internal_ms: int, h: int) -> str:
    """The ``Date`` header in the sender's time zone."""
    moment = datetime.fromtimestamp(internal_ms / 1000, UTC).astimezone(_ZONES[h % len(_ZONES)])
    return format_datetime(moment.replace(microsecond=0))
