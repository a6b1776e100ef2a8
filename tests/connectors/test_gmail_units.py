"""Gmail connector layers without the emulator: header parsing, records, cursor state,
history folding, error classification, quota pacing and the shared Google token refresh
(against a tiny local token endpoint)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httplib2
import pytest
from googleapiclient.errors import HttpError

from connectors.common import (
    AuthError,
    ConnectorError,
    PermanentError,
    RunStats,
    Secret,
    TokenRefused,
    TransientError,
)
from connectors.gmail import STREAMS, GmailConfig
from connectors.gmail.cursor import FullSync, MailboxCursor
from connectors.gmail.errors import GmailCallError, GmailNotFound
from connectors.gmail.messages import changes
from connectors.gmail.records import (
    decode_words,
    has_attachments,
    internal_date,
    label_record,
    message_record,
    parse_addresses,
)
from connectors.gmail.transport import GmailTransport
from connectors.google_auth import refresh_google_token, resolve_token_url
from connectors.kit import Failure, SlidingWindowLimiter

# -- records ---------------------------------------------------------------------------------


def test_decode_words_b_and_q_and_plain() -> None:
    assert decode_words("=?UTF-8?B?w6l0w6k=?= report =?utf-8?q?caf=C3=A9?=") == "été report café"
    assert decode_words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"  # adjacent words join
    assert decode_words("=?UTF-8?Q?Q3_plan_=E2=80=93_draft?=") == "Q3 plan – draft"
    assert decode_words("=?iso-8859-1?q?Ol=E1?=") == "Olá"
    assert decode_words("Plain: subject") == "Plain: subject"
    assert decode_words("=?x-unknown?q?abc?=") == "=?x-unknown?q?abc?="  # kept as sent
    assert decode_words(None) is None
    # Raw 8-bit text mixed with encoded words (the stdlib's make_header fails on it).
    assert decode_words("Réunion =?utf-8?q?caf=C3=A9?=") == "Réunion café"
    assert decode_words("=?utf-8?b?4oA=?= =?utf-8?b?kw==?=") == "–"  # one character, two words


def test_addresses_quoted_and_encoded_commas() -> None:
    parsed = parse_addresses(
        [
            '"Doe, John" <John.Doe@Acme.COM>, =?UTF-8?Q?Ren=C3=A9e_=2C_Lef=C3=A8vre?= '
            "<renee@client.fr>",
            "plain@x.org, undisclosed-recipients:;",
        ]
    )
    assert parsed == [
        ("Doe, John", "john.doe@acme.com"),
        ("Renée , Lefèvre", "renee@client.fr"),
        (None, "plain@x.org"),
    ]
    assert parse_addresses(["=?UTF-8?B?5p2O5piO?= <li@example.cn>"]) == [("李明", "li@example.cn")]
    assert parse_addresses([""]) == []


def _message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "18c1f0a2b3c4d5e6",
        "threadId": "18c1f0a2b3c4d5e0",
        "labelIds": ["INBOX", "UNREAD", "Label_7"],
        "snippet": "Hi team, numbers attached",
        "historyId": "987654",
        "internalDate": "1700000000123",
        "sizeEstimate": 20480,
        "payload": {
            "partId": "",
            "mimeType": "multipart/mixed",
            "filename": "",
            "headers": [
                {"name": "From", "value": "=?UTF-8?Q?Ana_G=C3=B3mez?= <Ana@Agency.io>"},
                {"name": "To", "value": '"Smith, Bob" <bob@client.com>, carol@Client.com'},
                {"name": "to", "value": "dave@other.org"},
                {"name": "Cc", "value": "=?UTF-8?B?w4lsb2RpZQ==?= <elodie@client.com>"},
                {"name": "Subject", "value": "=?UTF-8?B?UmVwb3J0IOKAkyBRMw==?= numbers"},
                {"name": "Date", "value": "Tue, 14 Nov 2023 22:13:20 +0000"},
            ],
            "body": {"size": 0},
            "parts": [
                {
                    "partId": "0",
                    "mimeType": "multipart/alternative",
                    "filename": "",
                    "parts": [
                        {"partId": "0.0", "mimeType": "text/plain", "filename": "", "body": {}},
                    ],
                },
                {
                    "partId": "1",
                    "mimeType": "application/pdf",
                    "filename": "q3.pdf",
                    "body": {"attachmentId": "ANGjdJ8"},
                },
            ],
        },
    }
    message.update(overrides)
    return message


def test_message_record_full_shape() -> None:
    record = message_record(_message())
    assert record == {
        "message_id": "18c1f0a2b3c4d5e6",
        "thread_id": "18c1f0a2b3c4d5e0",
        "history_id": 987654,
        "internal_date": datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        "from_address": "ana@agency.io",
        "from_name": "Ana Gómez",
        "to_addresses": ["bob@client.com", "carol@client.com", "dave@other.org"],
        "cc_addresses": ["elodie@client.com"],
        "subject": "Report – Q3 numbers",
        "snippet": "Hi team, numbers attached",
        "label_ids": ["INBOX", "UNREAD", "Label_7"],
        "size_estimate": 20480,
        "has_attachments": True,
        "_domains": ["agency.io", "client.com", "other.org"],
    }


def test_message_record_without_headers_or_parts() -> None:
    record = message_record(
        {"id": "m1", "historyId": "5", "internalDate": "0", "payload": {"mimeType": "text/plain"}}
    )
    assert record["thread_id"] == "m1"
    assert record["from_address"] is None and record["from_name"] is None
    assert record["to_addresses"] == [] and record["cc_addresses"] == []
    assert record["subject"] is None and record["snippet"] is None
    assert record["has_attachments"] is False and record["_domains"] == []
    assert record["internal_date"] == datetime(1970, 1, 1, tzinfo=UTC)


def test_has_attachments_variants() -> None:
    assert not has_attachments({"mimeType": "text/plain", "filename": "", "body": {"size": 3}})
    # A single-part message whose whole body is a file.
    assert has_attachments({"mimeType": "application/pdf", "filename": "a.pdf"})
    # Deeply nested attachment id without a file name (inline image).
    nested = {"parts": [{"parts": [{"parts": [{"body": {"attachmentId": "X"}}]}]}]}
    assert has_attachments(nested)
    assert not has_attachments({"parts": [{"parts": [{"filename": "", "body": {}}]}]})
    assert not has_attachments(None)


def test_internal_date_is_exact_milliseconds() -> None:
    assert internal_date("1700000000999") == datetime(2023, 11, 14, 22, 13, 20, 999000, tzinfo=UTC)
    assert internal_date(1).tzinfo is UTC


def test_label_record() -> None:
    assert label_record(
        {"id": "INBOX", "name": "INBOX", "type": "system", "messagesTotal": 12,
         "messagesUnread": 3, "threadsTotal": 10, "threadsUnread": 2}
    ) == {
        "label_id": "INBOX", "name": "INBOX", "type": "system", "messages_total": 12,
        "messages_unread": 3, "threads_total": 10, "threads_unread": 2,
    }  # fmt: skip
    assert label_record({"id": "Label_1", "name": "Clients/Acme", "type": "user"}) == {
        "label_id": "Label_1", "name": "Clients/Acme", "type": "user", "messages_total": None,
        "messages_unread": None, "threads_total": None, "threads_unread": None,
    }  # fmt: skip


def test_streams_declared() -> None:
    assert STREAMS["labels"].table == "gmail_labels"
    assert STREAMS["labels"].primary_key == ("label_id",)
    messages = STREAMS["messages"]
    assert (messages.table, messages.primary_key) == ("gmail_messages", ("message_id",))
    assert (messages.client_field, messages.client_match) == ("_domains", "email_domains")


# -- config ----------------------------------------------------------------------------------


def test_config_from_dict() -> None:
    config = GmailConfig.from_dict(
        {"start_date": "2024-03-01T00:00:00Z", "label_ids": "INBOX", "batch_size": 20, "x": 1}
    )
    assert config.start_date == date(2024, 3, 1) and config.label_ids == ("INBOX",)
    assert config.batch_size == 20 and config.page_size == 500 and config.max_retries == 6
    assert GmailConfig.from_dict({"quota_units_per_second": None}).quota_units_per_second is None
    assert GmailConfig.from_dict(None).include_spam_trash is False
    for bad in ({"batch_size": 101}, {"batch_size": 0}, {"page_size": 501}, {"max_requests": 0}):
        with pytest.raises(ValueError):
            GmailConfig.from_dict(bad)


# -- cursor ----------------------------------------------------------------------------------

MID_FULL_SYNC = {
    "v": 1,
    "history_id": None,
    "full_sync": {
        "history_id": "12000",
        "reason": "initial",
        "reconcile": False,
        "after": "2026-09-01",
        "before": None,
        "next_page_token": "09231458238823",
        "listing_done": False,
        "pending": ["18c0000000000003", "18c0000000000004"],
    },
}
IN_SYNC = {"v": 1, "history_id": "12345", "full_sync": None}


def test_cursor_round_trips_recorded_states() -> None:
    for sample in (MID_FULL_SYNC, IN_SYNC):
        assert MailboxCursor.from_state(sample).to_state() == sample
        json.dumps(sample)  # JSON-ready
    assert MailboxCursor.from_state(MID_FULL_SYNC).full_sync.bounds_known
    # A listing saved before listings kept their dates: the reader supplies them.
    full = {k: v for k, v in MID_FULL_SYNC["full_sync"].items() if k not in ("after", "before")}
    assert not MailboxCursor.from_state({**MID_FULL_SYNC, "full_sync": full}).full_sync.bounds_known
    assert MailboxCursor.from_state(None) == MailboxCursor()
    assert MailboxCursor.from_state({"history_id": 77}).history_id == "77"
    with pytest.raises(ValueError):
        MailboxCursor.from_state({"v": 99})


def test_full_sync_progress_flags() -> None:
    assert not FullSync("1").started
    assert FullSync("1", pending=["a"]).started
    assert FullSync("1", next_page_token="t").started
    assert not FullSync("1", listing_done=True, pending=["a"]).finished
    cursor = MailboxCursor(full_sync=FullSync("1", listing_done=True))
    assert cursor.full_sync is not None and cursor.full_sync.finished
    cursor.finish_full_sync()
    assert cursor.to_state() == {"v": 1, "history_id": "1", "full_sync": None}


# -- history folding ---------------------------------------------------------------------------

HISTORY = [  # shape of users.history.list "history" records
    {"id": "101", "messages": [{"id": "a"}], "messagesAdded": [{"message": {"id": "a"}}]},
    {"id": "102", "messagesAdded": [{"message": {"id": "b", "labelIds": ["INBOX"]}}]},
    {"id": "103", "labelsAdded": [{"message": {"id": "c"}, "labelIds": ["STARRED"]}]},
    {"id": "104", "labelsRemoved": [{"message": {"id": "d"}, "labelIds": ["UNREAD"]}]},
    {"id": "105", "messagesDeleted": [{"message": {"id": "b"}}, {"message": {"id": "e"}}]},
    {"id": "106", "labelsAdded": [{"message": {"id": "b"}, "labelIds": ["TRASH"]}]},
]


def test_changes_added_relabelled_deleted() -> None:
    fetch, deleted = changes(HISTORY)
    assert fetch == {"a", "c", "d"}  # b was added then deleted: only deleted
    assert deleted == {"b", "e"}
    assert changes([]) == (set(), set())


# -- transport -------------------------------------------------------------------------------


def _http_error(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpError:
    resp = httplib2.Response({"status": str(status), **(headers or {})})
    return HttpError(resp, json.dumps(body).encode(), uri="http://x/gmail/v1/users/me/messages")


def _google_error(status: int, reason: str, status_name: str = "") -> dict[str, Any]:
    error = {"code": status, "message": "m", "errors": [{"reason": reason, "domain": "global"}]}
    if status_name:
        error["status"] = status_name
    return {"error": error}


@pytest.fixture
def transport() -> GmailTransport:
    return GmailTransport(
        Secret("ya29.secret-token"), GmailConfig(), RunStats(), base_url="http://127.0.0.1:9"
    )


def test_classify_transient_errors(transport: GmailTransport) -> None:
    transient = transport.failure(
        "m", _http_error(429, _google_error(429, "rateLimitExceeded"), {"retry-after": "2"})
    )
    assert isinstance(transient, Failure) and transient.retry_after == 2.0
    assert transport.stats.rate_limited == 1
    for reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        assert isinstance(
            transport.failure("m", _http_error(403, _google_error(403, reason))), Failure
        )
    assert transport.stats.rate_limited == 3  # 429 and 403 *RateLimitExceeded
    for status in (500, 502, 503, 504):
        assert isinstance(transport.failure("m", _http_error(status, "oops")), Failure)
    assert transport.stats.rate_limited == 3


def test_classify_permanent_errors(transport: GmailTransport) -> None:
    # Only the 401 is about the token itself ("the access token you're using is either
    # expired or invalid", Gmail API guide "Resolve errors"): worth one fresh token.
    for error, renewable in (
        (_http_error(401, _google_error(401, "authError", "UNAUTHENTICATED")), True),
        (_http_error(400, {"error": "invalid_grant"}), False),
        (_http_error(403, _google_error(403, "insufficientPermissions")), False),
    ):
        with pytest.raises(AuthError) as raised:
            transport.failure("users.messages.get", error)
        assert "ya29" not in str(raised.value)
        assert isinstance(raised.value, TokenRefused) is renewable
    with pytest.raises(GmailNotFound):
        transport.failure("users.history.list", _http_error(404, _google_error(404, "notFound")))
    with pytest.raises(GmailCallError) as call_error:
        transport.failure("m", _http_error(400, _google_error(400, "invalidArgument")))
    assert not isinstance(call_error.value, AuthError)
    with pytest.raises(GmailCallError):
        transport.failure("m", _http_error(403, _google_error(403, "forbidden")))


def test_base_url_and_batch_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOS_GMAIL_API_URL", "http://127.0.0.1:5555")
    assert GmailTransport.endpoint() == "http://127.0.0.1:5555/"
    assert GmailTransport.endpoint("http://h:1/") == "http://h:1/"
    monkeypatch.delenv("AOS_GMAIL_API_URL")
    assert GmailTransport.endpoint() == "https://gmail.googleapis.com/"
    t = GmailTransport(Secret("t"), GmailConfig(), RunStats(), base_url="http://h:1")
    assert t._batch_uri == "http://h:1/batch/gmail/v1"
    uri = t.service.users().messages().get(userId="me", id="abc").uri
    assert uri.startswith("http://h:1/gmail/v1/users/me/messages/abc")


def test_quota_pacer_sliding_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = SlidingWindowLimiter(250.0, 1.0, clock=lambda: now[0], sleep=sleep)
    assert pacer.acquire(200) == 0.0
    now[0] = 0.5
    assert pacer.acquire(50) == 0.0  # 250 units in the window: full, not over
    waited = pacer.acquire(5)  # must wait for the first 200 to leave the (padded) window
    assert waited == pytest.approx(0.55) and now[0] == pytest.approx(1.05)
    # Bigger than a window: sent into an empty window (the server refuses the excess parts).
    assert pacer.acquire(500) == pytest.approx(1.05) and now[0] == pytest.approx(2.1)
    now[0] = 2.5
    pacer.settle()  # the answer came at 2.5: those units count from then
    assert pacer.acquire(1) == pytest.approx(1.05, abs=0.01) and now[0] >= 3.55 - 1e-9
    assert SlidingWindowLimiter(None, 1.0).acquire(10_000) == 0.0


# -- google token refresh --------------------------------------------------------------------


class _TokenServer:
    """A minimal OAuth token endpoint: one good refresh token, everything else invalid_grant."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.status_override: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(body))
                server.requests.append(form)
                payload: dict[str, Any]
                if server.status_override:
                    status, payload = server.status_override, {"error": "invalid_client"}
                elif form.get("refresh_token") == "1//good" and form.get("client_secret") == "s":
                    status, payload = (
                        200,
                        {
                            "access_token": "ya29.fresh",
                            "expires_in": 3599,
                            "token_type": "Bearer",
                            "scope": "https://www.googleapis.com/auth/gmail.readonly",
                        },
                    )
                else:
                    status, payload = 400, {"error": "invalid_grant", "error_description": "Bad"}
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def token_server() -> Iterator[_TokenServer]:
    server = _TokenServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_refresh_google_token_success(token_server: _TokenServer) -> None:
    before = datetime.now(UTC)
    result = refresh_google_token("cid", Secret("s"), Secret("1//good"), token_server.url)
    assert result["access_token"] == "ya29.fresh" and result["token_type"] == "Bearer"
    assert result["scope"] == "https://www.googleapis.com/auth/gmail.readonly"
    assert "refresh_token" not in result  # Google does not rotate refresh tokens
    expires = datetime.fromisoformat(result["expires_at"])
    assert expires.tzinfo is not None and 3500 < (expires - before).total_seconds() < 3700
    sent = token_server.requests[-1]
    assert sent["grant_type"] == "refresh_token" and sent["client_id"] == "cid"


def test_refresh_google_token_env_url_and_invalid_grant(
    token_server: _TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOS_GOOGLE_TOKEN_URL", token_server.url)
    assert resolve_token_url() == token_server.url
    with pytest.raises(AuthError) as raised:
        refresh_google_token("cid", Secret("s"), Secret("1//revoked"))
    assert "1//revoked" not in str(raised.value) and "invalid_grant" in str(raised.value)
    assert token_server.requests  # the env URL was used, not Google's
    monkeypatch.delenv("AOS_GOOGLE_TOKEN_URL")
    assert resolve_token_url() == "https://oauth2.googleapis.com/token"


def test_refresh_google_token_other_failures(token_server: _TokenServer) -> None:
    token_server.status_override = 400
    with pytest.raises(PermanentError) as raised:
        refresh_google_token("cid", Secret("s"), Secret("1//good"), token_server.url)
    assert not isinstance(raised.value, AuthError) and raised.value.code == "invalid_client"
    with pytest.raises(TransientError) as unreachable:
        refresh_google_token("cid", Secret("s"), Secret("1//good"), "http://127.0.0.1:9/token")
    assert isinstance(unreachable.value, ConnectorError)
