"""The Gmail emulator, driven end to end by the real google-api-python-client and google-auth.

The service is built from the *bundled* discovery document with ``api_endpoint`` pointing at
the sandbox, and credentials are constructed directly with the sandbox's ``token_uri`` (the
two traps the design names). Batches get an explicit ``batch_uri``: ``new_batch_http_request``
only knows the discovery document's Google URL.
"""

from __future__ import annotations

import base64
import email
import http.client
import json
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox import Sandbox
from sandbox.gmail import GmailMailbox

START = datetime(2025, 3, 1, tzinfo=UTC)
DOMAINS = ("globex.com", "initech.com", "example.org")


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(providers=("gmail",), seed=7) as sandbox:
        yield sandbox


def mailbox(sb: Sandbox, **kwargs: Any) -> GmailMailbox:
    options: dict[str, Any] = {"messages": 300, "start": START, "domains": DOMAINS, "quota": False}
    options.update(kwargs)
    return sb.gmail.add_mailbox(**options)


def credentials(sb: Sandbox, mb: GmailMailbox, **overrides: Any) -> Credentials:
    c = mb.credentials
    expiry = datetime.fromisoformat(c["expires_at"]).astimezone(UTC).replace(tzinfo=None)
    fields: dict[str, Any] = {
        "token": c["access_token"],
        "refresh_token": c["refresh_token"],
        "token_uri": sb.env["AOS_GOOGLE_TOKEN_URL"],
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "expiry": expiry,
    }
    fields.update(overrides)
    return Credentials(**fields)


def service(sb: Sandbox, mb: GmailMailbox, **overrides: Any) -> Any:
    return build(
        "gmail",
        "v1",
        credentials=credentials(sb, mb, **overrides),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": sb.env["AOS_GMAIL_API_URL"]},
    )


def batch(sb: Sandbox, results: dict[str, Any]) -> BatchHttpRequest:
    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = exception if exception is not None else response

    return BatchHttpRequest(
        callback=collect, batch_uri=sb.env["AOS_GMAIL_API_URL"] + "batch/gmail/v1"
    )


def error_of(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


def list_all(svc: Any, **params: Any) -> list[dict[str, str]]:
    """Every page, passing ``pageToken`` by hand: ``list_next`` raises ValueError when a
    parameter repeats (``labelIds=A&labelIds=B``), a trap of google-api-python-client."""
    out: list[dict[str, str]] = []
    token = None
    while True:
        page = svc.users().messages().list(userId="me", pageToken=token, **params).execute()
        out += page.get("messages", [])
        token = page.get("nextPageToken")
        if token is None:
            return out


def header(message: dict[str, Any], name: str) -> str:
    return next(h["value"] for h in message["payload"]["headers"] if h["name"] == name)


def raw_get(url: str, token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def post_token(sb: Sandbox, **form: str) -> tuple[int, dict[str, Any]]:
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(sb.env["AOS_GOOGLE_TOKEN_URL"], data, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- profile, labels, listing ------------------------------------------------------------
def test_env_profile_and_labels(sb: Sandbox) -> None:
    mb = mailbox(sb)
    assert sb.env["AOS_GMAIL_API_URL"].startswith("http://127.0.0.1:")
    assert sb.env["AOS_GMAIL_API_URL"].endswith("/")
    assert sb.env["AOS_GOOGLE_TOKEN_URL"] == sb.env["AOS_GMAIL_API_URL"] + "token"
    assert mb.credentials["token_uri"] == sb.env["AOS_GOOGLE_TOKEN_URL"]
    svc = service(sb, mb)
    profile = svc.users().getProfile(userId="me").execute()
    truth = mb.truth()
    assert profile["emailAddress"] == "ops@acme-agency.test"
    assert profile["messagesTotal"] == len(truth["messages"]) == 300
    threads = {m["threadId"] for m in truth["messages"]}
    assert profile["threadsTotal"] == len(threads) < 200  # threads share messages
    assert profile["historyId"] == str(mb.history_id)
    labels = svc.users().labels().list(userId="me").execute()["labels"]
    assert labels == truth["labels"]
    by_id = {x["id"]: x for x in labels}
    for system in (
        "INBOX",
        "SENT",
        "SPAM",
        "TRASH",
        "UNREAD",
        "IMPORTANT",
        "STARRED",
        "DRAFT",
        "CATEGORY_PERSONAL",
        "CATEGORY_PROMOTIONS",
        "CATEGORY_UPDATES",
    ):
        assert by_id[system]["type"] == "system"
    users = [x for x in labels if x["type"] == "user"]
    assert users and all(x["id"].startswith("Label_") for x in users)
    assert {"Clients/Globex", "Clients/Initech"} <= {x["name"] for x in users}
    assert "messagesTotal" not in by_id["INBOX"]  # Gmail's labels.list carries no counts
    inbox = svc.users().labels().get(userId="me", id="INBOX").execute()
    in_inbox = [m for m in truth["messages"] if "INBOX" in m.get("labelIds", [])]
    assert inbox["messagesTotal"] == len(in_inbox)
    assert inbox["messagesUnread"] == sum("UNREAD" in m["labelIds"] for m in in_inbox) > 0
    assert inbox["threadsTotal"] == len({m["threadId"] for m in in_inbox})
    # Another user's mailbox is not ours to read.
    with pytest.raises(HttpError) as caught:
        svc.users().getProfile(userId="someone@else.test").execute()
    assert caught.value.resp.status == 403


def test_list_paging_filters_and_spam_trash(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=700)
    svc = service(sb, mb)
    truth = mb.truth()["messages"]
    visible = [m for m in truth if not {"SPAM", "TRASH"} & set(m.get("labelIds", []))]
    assert len(visible) < len(truth)
    listed = list_all(svc, maxResults=120)
    assert [m["id"] for m in listed] == [m["id"] for m in visible]  # newest first, no dupes
    assert all(m["threadId"] == t["threadId"] for m, t in zip(listed, visible, strict=True))
    dates = [int(m["internalDate"]) for m in visible]
    assert dates == sorted(dates, reverse=True)
    everything = list_all(svc, includeSpamTrash=True, maxResults=500)
    assert [m["id"] for m in everything] == [m["id"] for m in truth]
    first = svc.users().messages().list(userId="me").execute()
    assert len(first["messages"]) == 100 and "nextPageToken" in first  # default page size
    assert first["resultSizeEstimate"] > 100
    big = svc.users().messages().list(userId="me", maxResults=2000).execute()
    assert len(big["messages"]) == 500  # capped
    # labelIds repeat and combine (AND); spam only when asked for.
    unread_inbox = list_all(svc, labelIds=["INBOX", "UNREAD"], maxResults=50)
    expected = [m["id"] for m in visible if {"INBOX", "UNREAD"} <= set(m["labelIds"])]
    assert [m["id"] for m in unread_inbox] == expected and expected
    spam = list_all(svc, labelIds=["SPAM"])
    assert [m["id"] for m in spam] == [m["id"] for m in truth if "SPAM" in m["labelIds"]]
    # q: after/before with epoch seconds (after inclusive, before exclusive) and dates.
    low, high = int(START.timestamp()) + 10 * 86_400, int(START.timestamp()) + 20 * 86_400
    ranged = list_all(svc, q=f"after:{low} before:{high}")
    expected = [m["id"] for m in visible if low * 1000 <= int(m["internalDate"]) < high * 1000]
    assert [m["id"] for m in ranged] == expected and expected
    dated = list_all(svc, q="after:2025/03/11 before:2025/03/21", maxResults=500)
    pacific = [
        m["id"]
        for m in visible  # Gmail reads dates as midnight US Pacific time
        if 1741676400_000 <= int(m["internalDate"]) < 1742540400_000
    ]
    assert [m["id"] for m in dated] == pacific
    with pytest.raises(HttpError) as caught:
        svc.users().messages().list(userId="me", labelIds=["Label_999"]).execute()
    assert caught.value.resp.status == 400


# -- messages.get ------------------------------------------------------------------------
def test_get_formats_and_realistic_content(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=400)
    svc = service(sb, mb)
    truth = mb.truth()["messages"]
    messages = svc.users().messages()
    mixed = next(m for m in truth if m["payload"]["mimeType"] == "multipart/mixed")
    minimal = messages.get(userId="me", id=mixed["id"], format="minimal").execute()
    assert set(minimal) == {
        "id",
        "threadId",
        "labelIds",
        "snippet",
        "sizeEstimate",
        "historyId",
        "internalDate",
    }
    metadata = messages.get(userId="me", id=mixed["id"], format="metadata").execute()
    assert metadata == mixed  # truth renders exactly as format=metadata
    assert set(metadata["payload"]) == {"mimeType", "headers"}
    narrowed = messages.get(
        userId="me", id=mixed["id"], format="metadata", metadataHeaders=["from", "Subject"]
    ).execute()
    assert [h["name"] for h in narrowed["payload"]["headers"]] == ["Subject", "From"]
    full = messages.get(userId="me", id=mixed["id"]).execute()  # format=full by default
    body, *attachments = full["payload"]["parts"]
    assert body["mimeType"] == "multipart/alternative" and body["partId"] == "0"
    assert [p["mimeType"] for p in body["parts"]] == ["text/plain", "text/html"]
    text = base64.urlsafe_b64decode(body["parts"][0]["body"]["data"]).decode()
    assert text.startswith("Hi ")
    assert attachments and all(a["filename"] and a["body"]["attachmentId"] for a in attachments)
    data = (
        messages.attachments()
        .get(userId="me", messageId=mixed["id"], id=attachments[0]["body"]["attachmentId"])
        .execute()
    )
    assert len(base64.urlsafe_b64decode(data["data"])) == attachments[0]["body"]["size"]
    raw = messages.get(userId="me", id=mixed["id"], format="raw").execute()
    assert "payload" not in raw and raw["sizeEstimate"] == full["sizeEstimate"]
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(raw["raw"]), policy=default_policy)
    assert parsed["Subject"] == str(make_header(decode_header(header(full, "Subject"))))
    assert [p.get_filename() for p in parsed.iter_attachments()] == [
        a["filename"] for a in attachments
    ]
    plain = parsed.get_body(("plain",))
    assert plain is not None and plain.get_content().splitlines() == text.splitlines()
    # Realistic headers across the mailbox.
    subjects = [header(m, "Subject") for m in truth]
    senders = [header(m, "From") for m in truth]
    assert any("=?UTF-8?B?" in s for s in subjects) and any("=?UTF-8?Q?" in s for s in subjects)
    assert any(not s.isascii() and "=?" not in s for s in subjects)  # raw UTF-8 too
    assert any("=?UTF-8?" in s for s in senders)
    recipients = [header(m, "To") for m in truth]
    assert any(r.count("@") >= 3 for r in recipients)
    assert any('"' in r and ", " in r.split('"')[1] for r in recipients if '"' in r)
    assert any(h["name"] == "Cc" for m in truth for h in m["payload"]["headers"])
    addresses = {
        address.split("@")[1]
        for m in truth
        for _, address in getaddresses([header(m, "From"), header(m, "To")])
    }
    assert DOMAINS[0] in addresses and addresses <= {
        *DOMAINS,
        "acme-agency.test",
        "offers-mail.biz",
    }
    thread_sizes: dict[str, int] = {}
    for m in truth:
        thread_sizes[m["threadId"]] = thread_sizes.get(m["threadId"], 0) + 1
    assert max(thread_sizes.values()) >= 3
    assert any(x["snippet"] and "&#39;" in x["snippet"] for x in truth)
    assert all(m["sizeEstimate"] > 300 for m in truth)
    with pytest.raises(HttpError) as caught:
        messages.get(userId="me", id="0000000000000001").execute()
    assert caught.value.resp.status == 404
    assert error_of(caught.value)["status"] == "NOT_FOUND"


# -- history and mutations ---------------------------------------------------------------
def test_mutations_show_in_history_with_paging_types_and_labels(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=50)
    svc = service(sb, mb)
    start = int(svc.users().getProfile(userId="me").execute()["historyId"])
    thread = mb.truth()["messages"][0]["threadId"]
    new = mb.deliver(subject="Neue Kampagne – Globex ✅", thread_id=thread)
    other = mb.deliver(subject="Plain ASCII", labels=["INBOX", "Label_1"])
    mb.modify(other["id"], add=["STARRED"], remove=["INBOX"])
    victim = mb.message_ids()[10]
    mb.trash(victim)
    mb.delete(new["id"])
    assert int(new["historyId"]) > start and new["threadId"] == thread
    history = svc.users().history()
    pages, request = [], history.list(userId="me", startHistoryId=str(start), maxResults=2)
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = history.list_next(request, page)
    assert len(pages) == 3 and all(p["historyId"] == str(mb.history_id) for p in pages)
    records = [r for p in pages for r in p["history"]]
    ids = [int(r["id"]) for r in records]
    assert ids == sorted(ids) and ids[0] > start and ids[-1] == mb.history_id
    assert records[0]["messagesAdded"][0]["message"]["id"] == new["id"]
    assert records[1]["messagesAdded"][0]["message"]["labelIds"] == ["INBOX", "Label_1"]
    assert records[2]["labelsAdded"] == [
        {
            "message": {
                "id": other["id"],
                "threadId": other["threadId"],
                "labelIds": ["Label_1", "STARRED"],
            },
            "labelIds": ["STARRED"],
        }
    ]
    assert records[2]["labelsRemoved"][0]["labelIds"] == ["INBOX"]
    assert records[3]["labelsAdded"][0]["labelIds"] == ["TRASH"]
    assert records[4]["messagesDeleted"][0]["message"]["id"] == new["id"]
    assert all(r["messages"] for r in records)
    added_only = history.list(
        userId="me", startHistoryId=str(start), historyTypes=["messageAdded"]
    ).execute()["history"]
    assert [list(r) for r in added_only] == [["id", "messages", "messagesAdded"]] * 2
    two_types = history.list(
        userId="me", startHistoryId=str(start), historyTypes=["labelRemoved", "messageDeleted"]
    ).execute()
    assert len(two_types["history"]) == 2
    starred = history.list(userId="me", startHistoryId=str(start), labelId="STARRED").execute()
    assert [r["id"] for r in starred["history"]] == [records[2]["id"]]
    latest = history.list(userId="me", startHistoryId=str(mb.history_id)).execute()
    assert "history" not in latest and latest["historyId"] == str(mb.history_id)
    # Mutations are visible in the API and in truth().
    with pytest.raises(HttpError) as caught:
        svc.users().messages().get(userId="me", id=new["id"]).execute()
    assert caught.value.resp.status == 404
    truth_ids = [m["id"] for m in mb.truth()["messages"]]
    assert new["id"] not in truth_ids and other["id"] in truth_ids
    assert victim not in [m["id"] for m in list_all(svc)]
    assert victim in [m["id"] for m in list_all(svc, includeSpamTrash=True)]
    got = svc.users().messages().get(userId="me", id=other["id"], format="minimal").execute()
    assert got["labelIds"] == ["Label_1", "STARRED"] and got["historyId"] == records[2]["id"]


def test_expired_history_is_404_and_retention_is_a_knob(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=20, history_retention=3)
    svc = service(sb, mb)
    start = mb.history_id
    ids, label = mb.message_ids(), mb.add_label("Synced")
    for k in range(4):
        mb.modify(ids[k], add=[label])
    with pytest.raises(HttpError) as caught:  # the first record fell out of retention
        svc.users().history().list(userId="me", startHistoryId=str(start)).execute()
    assert caught.value.resp.status == 404
    assert error_of(caught.value) == {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "errors": [
            {"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}
        ],
    }
    later = mb.history.records[0].id - 1
    kept = svc.users().history().list(userId="me", startHistoryId=str(later)).execute()
    assert len(kept["history"]) == 3
    mb.expire_history()
    with pytest.raises(HttpError) as caught:
        svc.users().history().list(userId="me", startHistoryId=str(later)).execute()
    assert caught.value.resp.status == 404
    current = svc.users().history().list(userId="me", startHistoryId=str(mb.history_id))
    assert current.execute()["historyId"] == str(mb.history_id)


# -- batch -------------------------------------------------------------------------------
def test_batch_of_100_and_more_than_100_rejected(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=150)
    svc = service(sb, mb)
    ids = mb.message_ids()
    results: dict[str, Any] = {}
    request = batch(sb, results)
    for message_id in ids[:100]:
        request.add(
            svc.users()
            .messages()
            .get(userId="me", id=message_id, format="metadata", metadataHeaders=["From"]),
            request_id=message_id,
        )
    request.execute()
    assert set(results) == set(ids[:100])
    assert all(
        r["id"] == k and r["payload"]["headers"][0]["name"] == "From" for k, r in results.items()
    )
    assert sb.log.count(provider="gmail", method="users.messages.get") == 100
    assert sb.log.count(provider="gmail", method="batch") == 1
    logged = sb.log.entries(method="users.messages.get")[0]
    assert logged.path.startswith("/gmail/v1/users/me/messages/")
    assert logged.params["format"] == "metadata"
    too_many = batch(sb, {})
    for message_id in ids[:101]:
        too_many.add(svc.users().messages().get(userId="me", id=message_id))
    with pytest.raises(HttpError) as caught:
        too_many.execute()
    assert caught.value.resp.status == 400
    assert sb.log.count(method="users.messages.get") == 100  # no part of it was served


def test_batch_parts_hit_per_user_quota_and_faults() -> None:
    with Sandbox(providers=("gmail",), seed=3, time_scale=1) as sb:
        mb = mailbox(sb, quota=True)  # 250 units/user/second; messages.get costs 5
        old = mailbox(sb, email="legacy@acme-agency.test", quota=True, quota_status=403)
        results: dict[str, Any] = {}
        svc = service(sb, mb)
        request = batch(sb, results)
        for message_id in mb.message_ids(limit=60):
            request.add(svc.users().messages().get(userId="me", id=message_id, format="minimal"))
        request.execute()
        errors = [r for r in results.values() if isinstance(r, HttpError)]
        assert len(results) == 60 and len(errors) == 10  # 50 x 5 units fit in one second
        assert {e.resp.status for e in errors} == {429}
        detail = error_of(errors[0])
        assert detail["status"] == "RESOURCE_EXHAUSTED"
        assert detail["errors"][0]["reason"] == "rateLimitExceeded"
        assert sb.log.count(method="users.messages.get") == 60
        assert [e.status for e in sb.log.entries(method="users.messages.get")].count(429) == 10
        time.sleep(1.05)
        # The 403 flavour, on another user's own budget.
        old_svc, old_results = service(sb, old), dict[str, Any]()
        request = batch(sb, old_results)
        for message_id in old.message_ids(limit=51):
            request.add(old_svc.users().messages().get(userId="me", id=message_id))
        request.execute()
        (denied,) = [r for r in old_results.values() if isinstance(r, HttpError)]
        assert denied.resp.status == 403
        assert error_of(denied)["errors"][0]["reason"] == "userRateLimitExceeded"
        # Framework faults reach single parts, and only the parts they name.
        time.sleep(1.05)
        sb.faults.add("gmail", kind="503", method="users.messages.get", times=2)
        sb.faults.add("gmail", kind="429", method="users.messages.get", times=1)
        sb.log.clear()
        results.clear()
        request = batch(sb, results)
        for message_id in mb.message_ids(limit=5):
            request.add(svc.users().messages().get(userId="me", id=message_id))
        request.execute()
        statuses = [r.resp.status if isinstance(r, HttpError) else 200 for r in results.values()]
        assert statuses == [503, 503, 429, 200, 200]
        assert [e.fault for e in sb.log.entries(method="users.messages.get")] == [
            "503",
            "503",
            "429",
            None,
            None,
        ]
        # A whole-request fault still hits the batch itself.
        sb.faults.add("gmail", kind="500", method="batch")
        request = batch(sb, {})
        request.add(svc.users().messages().get(userId="me", id=mb.message_ids(limit=1)[0]))
        with pytest.raises(HttpError) as caught:
            request.execute()
        assert caught.value.resp.status == 500


# -- OAuth -------------------------------------------------------------------------------
def test_token_endpoint_refresh_and_revocation(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=10)
    c = mb.credentials
    status, body = post_token(
        sb,
        grant_type="refresh_token",
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        refresh_token=c["refresh_token"],
    )
    assert status == 200 and body["token_type"] == "Bearer"
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}  # no rotation
    assert 3590 <= body["expires_in"] <= 3599 and "gmail.readonly" in body["scope"]
    assert body["access_token"].startswith("ya29.") and body["access_token"] != c["access_token"]
    status, body = post_token(
        sb,
        grant_type="refresh_token",
        client_id=c["client_id"],
        client_secret="wrong",
        refresh_token=c["refresh_token"],
    )
    assert status == 401 and body["error"] == "invalid_client"
    # google-auth refreshes a token past its expiry before calling the API.
    creds = credentials(sb, mb, expiry=datetime(2020, 1, 1, tzinfo=UTC).replace(tzinfo=None))
    svc = build(
        "gmail",
        "v1",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": sb.env["AOS_GMAIL_API_URL"]},
    )
    assert svc.users().getProfile(userId="me").execute()["messagesTotal"] == 10
    assert creds.token != c["access_token"] and creds.refresh_token == c["refresh_token"]
    assert sb.log.count(method="oauth2.token") == 3
    assert all(
        e.params.get("refresh_token") == "REDACTED" for e in sb.log if e.method == "oauth2.token"
    )
    mb.revoke_refresh_token()
    status, body = post_token(
        sb,
        grant_type="refresh_token",
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        refresh_token=c["refresh_token"],
    )
    assert (status, body) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )
    with pytest.raises(RefreshError, match="invalid_grant"):
        svc.users().getProfile(userId="me").execute()  # 401 -> refresh -> invalid_grant


def test_expired_access_token_is_401_and_client_recovers(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=10)
    url = sb.env["AOS_GMAIL_API_URL"] + "gmail/v1/users/me/profile"
    status, _, _ = raw_get(url, mb.credentials["access_token"])
    assert status == 200
    mb.expire_access_token()
    status, body, headers = raw_get(url, mb.credentials["access_token"])
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert body["error"]["errors"][0]["reason"] == "authError"
    assert "invalid_token" in headers["WWW-Authenticate"]
    assert raw_get(url, "ya29.unknown")[0] == 401
    svc = service(sb, mb, expiry=None)  # the client believes its token is still good
    sb.log.clear()
    assert svc.users().getProfile(userId="me").execute()["emailAddress"] == mb.email
    assert [(e.method, e.status) for e in sb.log] == [
        ("users.getProfile", 401),
        ("oauth2.token", 200),
        ("users.getProfile", 200),
    ]
    # In a batch, 401 parts are refreshed and re-sent by the client.
    mb.expire_access_token()
    results: dict[str, Any] = {}
    request = batch(sb, results)
    for message_id in mb.message_ids(limit=3):
        request.add(svc.users().messages().get(userId="me", id=message_id))
    request.execute()
    assert all(isinstance(r, dict) for r in results.values()) and len(results) == 3
    assert [e.status for e in sb.log.entries(method="users.messages.get")] == [401] * 3 + [200] * 3


def test_framework_faults_apply_to_gmail(sb: Sandbox) -> None:
    mb = mailbox(sb, messages=10)
    svc = service(sb, mb)
    sb.faults.add("gmail", kind="429", method="users.messages.list")
    with pytest.raises(HttpError) as caught:
        svc.users().messages().list(userId="me").execute()
    assert caught.value.resp.status == 429
    assert error_of(caught.value)["errors"][0]["reason"] == "rateLimitExceeded"
    sb.faults.add("gmail", kind="500", method="users.messages.list")
    with pytest.raises(HttpError) as caught:
        svc.users().messages().list(userId="me").execute()
    assert caught.value.resp.status == 500 and error_of(caught.value)["status"] == "INTERNAL"
    sb.faults.add("gmail", kind="503", method="users.messages.list")
    listed = svc.users().messages().list(userId="me").execute(num_retries=1)  # retried
    assert len(listed["messages"]) == 10
    sb.faults.add("gmail", kind="truncated", method="users.labels.list")
    with pytest.raises((httplib2.HttpLib2Error, http.client.HTTPException, OSError)):
        svc.users().labels().list(userId="me").execute()
    sb.faults.add("gmail", kind="revoked", method="users.getProfile")
    with pytest.raises(RefreshError, match="invalid_grant"):
        svc.users().getProfile(userId="me").execute()
    assert [e.fault for e in sb.log if e.fault] == ["429", "500", "503", "truncated", "revoked"]


# -- determinism and scale ---------------------------------------------------------------
def test_same_seed_same_mailbox() -> None:
    def snapshot(seed: int) -> dict[str, Any]:
        with Sandbox(providers=("gmail",), seed=seed) as sandbox:
            return mailbox(sandbox, messages=120).truth()

    first, second, other = snapshot(11), snapshot(11), snapshot(12)
    assert first == second
    assert first["messages"] != other["messages"]


def test_100k_mailbox_is_cheap(sb: Sandbox) -> None:
    tracemalloc.start()
    began = time.perf_counter()
    mb = sb.gmail.add_mailbox(messages=100_000, quota=False)
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 5_000_000
    svc = service(sb, mb)
    began = time.perf_counter()
    page = svc.users().messages().list(userId="me", maxResults=500).execute()
    for item in page["messages"][:50]:
        svc.users().messages().get(userId="me", id=item["id"], format="metadata").execute()
    assert time.perf_counter() - began < 3
    oldest = list_all(svc, q=f"before:{int(mb.start.timestamp()) + 3600}")
    assert oldest and all(
        int(m["id"], 16) >> 20 < (mb.start.timestamp() + 3600) * 1000 for m in oldest
    )
