"""Faults that damage an answer rather than refuse it, in the providers' real wire shapes.

Each test reads the raw bytes off the socket (what a proxy or a packet capture would see) and
then shows what the real SDK makes of them, which is what the connectors must cope with:
google-api-python-client hands back the raw string of a body that does not parse and crashes
on a batch answer without ``Content-ID``; slack-sdk turns a body that does not parse into
``ok: false``; both decode ``\\u0000`` and a lone ``\\ud83d`` into the string as is.
"""

from __future__ import annotations

import email
import http.client
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox import Sandbox
from sandbox.gmail import GmailMailbox
from sandbox.slack import SlackWorkspace

START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(providers=("slack", "gmail"), seed=5, time_scale=60) as sandbox:
        yield sandbox


def raw(
    url: str, token: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One request over a fresh connection: (status, headers, body exactly as sent)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request("POST" if body is not None else "GET", target, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


# -- Gmail ----------------------------------------------------------------------------------


def mailbox(sb: Sandbox, **kwargs: Any) -> GmailMailbox:
    options: dict[str, Any] = {"messages": 12, "start": START, "quota": False}
    options.update(kwargs)
    return sb.gmail.add_mailbox(**options)


def gmail(sb: Sandbox, mb: GmailMailbox) -> Any:
    return build(
        "gmail",
        "v1",
        credentials=Credentials(token=mb.credentials["access_token"]),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": sb.env["AOS_GMAIL_API_URL"]},
    )


def gmail_batch(sb: Sandbox, svc: Any, ids: list[str], results: dict[str, Any]) -> Any:
    def collect(request_id: str, response: Any, exception: Exception | None) -> None:
        results[request_id] = exception if exception is not None else response

    batch = BatchHttpRequest(
        callback=collect, batch_uri=sb.env["AOS_GMAIL_API_URL"] + "batch/gmail/v1"
    )
    for message_id in ids:
        batch.add(
            svc.users().messages().get(userId="me", id=message_id, format="minimal"),
            request_id=message_id,
        )
    return batch


def raw_batch(sb: Sandbox, mb: GmailMailbox, ids: list[str]) -> tuple[int, dict[str, str], bytes]:
    boundary = "b0undary"
    chunks = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{k}>\r\n\r\n"
        f"GET /gmail/v1/users/me/messages/{i}?format=minimal\r\n\r\n"
        for k, i in enumerate(ids)
    ]
    body = ("".join(chunks) + f"--{boundary}--\r\n").encode()
    return raw(
        sb.env["AOS_GMAIL_API_URL"] + "batch/gmail/v1",
        mb.credentials["access_token"],
        body,
        f"multipart/mixed; boundary={boundary}",
    )


def multipart(headers: dict[str, str], body: bytes) -> Message:
    return email.message_from_bytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body, policy=compat32
    )


def test_truncated_body_is_a_complete_answer_with_half_a_body(sb: Sandbox) -> None:
    mb = mailbox(sb)
    url = sb.env["AOS_GMAIL_API_URL"] + "gmail/v1/users/me/messages"
    token = mb.credentials["access_token"]
    status, _, whole = raw(url, token)
    sb.faults.add("gmail", kind="truncated_body", method="users.messages.list")
    status, headers, cut = raw(url, token)
    assert status == 200 and int(headers["content-length"]) == len(cut)
    assert cut == whole[: len(whole) // 2]
    with pytest.raises(ValueError):
        json.loads(cut)
    # google-api-python-client returns the raw string of a body that does not parse.
    sb.faults.add("gmail", kind="truncated_body", method="users.labels.list")
    answer = gmail(sb, mb).users().labels().list(userId="me").execute()
    assert isinstance(answer, str) and answer.startswith('{"labels":[')
    assert [e.fault for e in sb.log if e.fault] == ["truncated_body", "truncated_body"]


def test_batch_answer_without_content_ids(sb: Sandbox) -> None:
    mb = mailbox(sb)
    ids = mb.message_ids(limit=4)
    sb.faults.add("gmail", kind="no_content_id", method="batch")
    status, headers, body = raw_batch(sb, mb, ids)
    assert status == 200
    parts = multipart(headers, body).get_payload()
    assert isinstance(parts, list) and len(parts) == 4
    assert all(p.get("Content-ID") is None for p in parts)
    # Parts come in request order: only their order says which request each answers.
    answered = [json.loads(p.get_payload().split("\r\n\r\n", 1)[1])["id"] for p in parts]
    assert answered == ids
    # Without the fault every part names its request.
    _, headers, body = raw_batch(sb, mb, ids)
    assert [p["Content-ID"] for p in multipart(headers, body).get_payload()] == [
        f"<response-item{k}>" for k in range(4)
    ]
    # The stock client cannot read the real shape at all.
    sb.faults.add("gmail", kind="no_content_id", method="batch")
    with pytest.raises(TypeError):
        gmail_batch(sb, gmail(sb, mb), ids, {}).execute()


def test_truncated_batch_answer_and_truncated_part(sb: Sandbox) -> None:
    mb = mailbox(sb)
    ids = mb.message_ids(limit=3)
    sb.faults.add("gmail", kind="truncated_body", method="batch")
    status, headers, body = raw_batch(sb, mb, ids)
    assert status == 200 and int(headers["content-length"]) == len(body)
    boundary = headers["content-type"].split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert f"--{boundary}--".encode() not in body  # the closing boundary never came
    # One part cut short inside a well-formed multipart answer: its Content-Length matches.
    sb.faults.add("gmail", kind="truncated_body", method="users.messages.get")
    _, headers, body = raw_batch(sb, mb, ids)
    parts = multipart(headers, body).get_payload()
    assert isinstance(parts, list) and len(parts) == 3
    head, _, first = parts[0].get_payload().partition("\r\n\r\n")
    assert f"Content-Length: {len(first.encode())}" in head
    with pytest.raises(ValueError):
        json.loads(first)
    assert json.loads(parts[1].get_payload().partition("\r\n\r\n")[2])["id"] == ids[1]
    # The stock client hands that part to the callback as a raw string.
    sb.faults.add("gmail", kind="truncated_body", method="users.messages.get")
    results: dict[str, Any] = {}
    gmail_batch(sb, gmail(sb, mb), ids, results).execute()
    assert isinstance(results[ids[0]], str) and isinstance(results[ids[1]], dict)


def test_raw_utf8_subject_mixed_with_encoded_words(sb: Sandbox) -> None:
    mb = mailbox(sb)
    sent = mb.deliver(raw_subject="Réunion =?utf-8?q?caf=C3=A9?=")
    got = gmail(sb, mb).users().messages().get(userId="me", id=sent["id"]).execute()
    subject = next(h["value"] for h in got["payload"]["headers"] if h["name"] == "Subject")
    assert subject == "Réunion =?utf-8?q?caf=C3=A9?="


def test_provider_kinds_are_checked_per_provider(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sb.faults.add("gmail", kind="missing_scope")
    with pytest.raises(ValueError, match="unknown fault kind"):
        sb.faults.add("slack", kind="no_content_id")


# -- Slack ----------------------------------------------------------------------------------


def workspace(sb: Sandbox, **kwargs: Any) -> SlackWorkspace:
    options: dict[str, Any] = {"channels": 3, "messages_per_channel": 6, "thread_ratio": 0.0}
    options.update(kwargs)
    return sb.slack.add_workspace(**options)


def slack(sb: Sandbox, ws: SlackWorkspace) -> WebClient:
    return WebClient(
        token=ws.credentials["access_token"],
        base_url=sb.env["AOS_SLACK_API_URL"],
        retry_handlers=[],
    )


def slack_raw(sb: Sandbox, ws: SlackWorkspace, method: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return raw(f"{sb.env['AOS_SLACK_API_URL']}{method}?{query}", ws.credentials["access_token"])


def test_slack_truncated_body(sb: Sandbox) -> None:
    ws = workspace(sb)
    channel = ws.channel_ids[0]
    _, _, whole = slack_raw(sb, ws, "conversations.history", channel=channel)
    sb.faults.add("slack", kind="truncated_body", method="conversations.history")
    status, headers, cut = slack_raw(sb, ws, "conversations.history", channel=channel)
    assert status == 200 and int(headers["content-length"]) == len(cut)
    assert cut == whole[: len(whole) // 2]
    sb.faults.add("slack", kind="truncated_body")  # any method
    with pytest.raises(SlackApiError) as caught:
        slack(sb, ws).users_list()
    assert caught.value.response["error"].startswith("Received a response in a non-JSON format")


def test_slack_missing_scope_on_one_channel(sb: Sandbox) -> None:
    ws = workspace(sb)
    chosen, other = ws.channel_ids[0], ws.channel_ids[1]
    sb.faults.add(
        "slack",
        kind="missing_scope",
        method="conversations.history",
        match={"channel": chosen},
        rate=1.0,
    )
    status, headers, body = slack_raw(sb, ws, "conversations.history", channel=chosen)
    assert status == 200
    answer = json.loads(body)
    assert answer == {
        "ok": False,
        "error": "missing_scope",
        "needed": "channels:history",
        "provided": answer["provided"],
    }
    assert "channels:history" not in answer["provided"].split(",")
    assert "users:read" in answer["provided"].split(",")
    assert headers["x-accepted-oauth-scopes"] == "channels:history"
    assert headers["x-oauth-scopes"] == answer["provided"]
    c = slack(sb, ws)
    with pytest.raises(SlackApiError) as caught:
        c.conversations_history(channel=chosen)
    assert caught.value.response["needed"] == "channels:history"
    assert c.conversations_history(channel=other)["ok"]  # only the chosen channel
    sb.faults.clear()
    sb.faults.add(
        "slack",
        kind="missing_scope",
        method="conversations.history",
        options={"needed": "groups:history", "provided": "channels:read"},
    )
    _, _, body = slack_raw(sb, ws, "conversations.history", channel=other)
    assert json.loads(body)["needed"] == "groups:history"
    assert json.loads(body)["provided"] == "channels:read"


def test_slack_warning_on_success(sb: Sandbox) -> None:
    ws = workspace(sb)
    outsider = next(c for c in ws.channels.values() if not c.is_member and not c.is_private)
    sb.faults.add("slack", kind="warning", method="conversations.join")
    _, _, body = slack_raw(sb, ws, "conversations.join", channel=outsider.id)
    answer = json.loads(body)
    assert answer["ok"] is True and answer["channel"]["id"] == outsider.id
    assert answer["warning"] == "already_in_channel"
    assert answer["response_metadata"]["warnings"] == ["already_in_channel"]
    assert outsider.is_member  # the join was served
    sb.faults.add("slack", kind="warning", options={"warning": "superfluous_charset"})
    assert slack(sb, ws).auth_test()["warning"] == "superfluous_charset"


def test_slack_nul_and_lone_surrogate_in_message_text(sb: Sandbox) -> None:
    ws = workspace(sb)
    channel = ws.channel_ids[0]
    sb.faults.add("slack", kind="bad_text", method="conversations.history")
    _, _, body = slack_raw(sb, ws, "conversations.history", channel=channel)
    assert body.isascii()  # UTF-8 cannot carry a lone surrogate: JSON escapes it
    assert b"\\u0000" in body and b"\\ud83d" in body
    texts = [m["text"] for m in json.loads(body)["messages"]]
    assert texts and all(t.endswith(" \x00 \ud83d") for t in texts)
    # Data can carry them too (a message posted with half an emoji), for ever.
    posted = ws.post_message(channel, "broken \ud83d emoji\x00")
    got = slack(sb, ws).conversations_history(channel=channel, limit=1)["messages"][0]
    assert got["ts"] == posted["ts"] and got["text"] == "broken \ud83d emoji\x00"


def test_admin_surface_takes_match_and_options(sb: Sandbox) -> None:
    ws = workspace(sb)
    chosen = ws.channel_ids[1]
    request = urllib.request.Request(
        sb.env["AOS_SLACK_API_URL"].replace("/api/", "/_sandbox/faults"),
        data=json.dumps(
            {
                "kind": "missing_scope",
                "method": "conversations.history",
                "match": {"channel": chosen},
                "options": {"needed": "channels:history"},
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        rule = json.load(response)["fault"]
    assert rule["match"] == {"channel": chosen} and rule["options"]["needed"]
    assert slack(sb, ws).conversations_history(channel=ws.channel_ids[0])["ok"]
    with pytest.raises(SlackApiError, match="missing_scope"):
        slack(sb, ws).conversations_history(channel=chosen)
