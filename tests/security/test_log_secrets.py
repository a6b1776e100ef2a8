"""No log level may print a secret (``connectors.logsafe``).

The finding: ``aos-sync -v sync slack`` on a rotating-token workspace printed slack_sdk's DEBUG
lines, with the refresh token in the request body and the new access and refresh tokens in
the response. The end-to-end tests here repeat that attack as a user would -- the real CLI in
a subprocess at ``-vv``, the real SDKs against the sandbox over real sockets, real PostgreSQL,
the session's Prefect server -- and then look for every token involved, old and new, in
everything the run printed and in every log line Prefect stored for the flow run. The
subprocess also asks Prefect to ship the SDK loggers to the API
(``PREFECT_LOGGING_EXTRA_LOGGERS``), as an operator who wants them in the UI would, so the
stored logs carry the wire dumps too and the API side of the attack is real.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import logsafe
from connectors.common import Secret
from connectors.logsafe import MASK, redact, register_secret
from db import engine as db_engine
from db import tenancy
from tests.flows.conftest import World, seeded_world

START = datetime(2026, 10, 1, tzinfo=UTC)
WIRE = "slack_sdk,urllib3,google.auth,googleapiclient,requests"


# -- redact() on what the SDKs really print ----------------------------------------------------

SLACK_REFRESH = "xoxe-1-My0xLTI1MzQ5NjcxMjQ1LTc4OTAxMjM0NTY3OC1hYmNkZWY"
SLACK_ACCESS = "xoxe.xoxb-1-MS0yLTI1MzQ5NjcxMjQ1LTc4OTAxMjM0NTY3OC0xMjM0NQ"
SLACK_BOT = "xoxb-12345678901-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GOOGLE_ACCESS = "ya29.a0AfB_byC1dEfGhIjKlMnOpQrStUvWxYz0123456789-abcdefghij"
GOOGLE_REFRESH = "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefghijklmnop"
GOOGLE_SECRET = "GOCSPX-AbCdEfGhIjKlMnOpQrStUvWxYz01"
META = "EAABwzLixnjYBO7ZBZCZAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMTAxNjkifQ.c2lnbmF0dXJlLWJ5dGVz"
OPAQUE = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"  # a Slack client secret: no shape at all


def _clean(text: str, *secrets: str) -> None:
    out = redact(text)
    leaked = [s for s in secrets if s in out]
    assert not leaked, (leaked, out)
    assert MASK in out, out


def test_slack_sdk_request_line_with_refresh_token() -> None:
    line = (
        "Sending a request - url: https://slack.com/api/oauth.v2.access, query_params: {}, "
        f"body_params: {{'grant_type': 'refresh_token', 'refresh_token': '{SLACK_REFRESH}'}}, "
        "files: {}, json_body: None, headers: {'Content-Type': "
        "'application/x-www-form-urlencoded', 'Authorization': '(redacted)', "
        "'User-Agent': 'Python/3.11.9 slackclient/3.48.0 Linux/6.1.0'}"
    )
    _clean(line, SLACK_REFRESH)
    # What is not secret stays readable: the grant type is a field value, not a token.
    assert "'grant_type': 'refresh_token'" in redact(line)
    assert "https://slack.com/api/oauth.v2.access" in redact(line)


def test_json_response_with_rotated_tokens() -> None:
    body = json.dumps(
        {
            "ok": True,
            "access_token": SLACK_ACCESS,
            "refresh_token": SLACK_REFRESH,
            "expires_in": 43200,
            "team": {"id": "T0A1B2C3D", "name": "Globex"},
        },
        separators=(",", ":"),
    )
    line = f"Received the following response - status: 200, headers: {{}}, body: {body}"
    _clean(line, SLACK_ACCESS, SLACK_REFRESH)
    assert '"expires_in":43200' in redact(line) and "T0A1B2C3D" in redact(line)
    # The same JSON escaped inside another string (a log of a log, a JSON formatter).
    _clean(json.dumps({"message": line}), SLACK_ACCESS, SLACK_REFRESH)


@pytest.mark.parametrize(
    "header",
    [
        f"Authorization: Bearer {SLACK_BOT}",
        f"authorization: Bearer {GOOGLE_ACCESS}",
        "Authorization: Basic MTIzNDU2Ny44OTA6OWY4ZTdkNmM1YjRhMzkyODE3MDY=",
        f"{{'Authorization': 'Bearer {GOOGLE_ACCESS}', 'Accept': 'application/json'}}",
        f"send: b'GET /gmail/v1/users/me/labels HTTP/1.1\\r\\nAuthorization: Bearer {JWT}'",
        f"x-goog-api-key: AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW {GOOGLE_ACCESS}",
    ],
)
def test_authorization_headers(header: str) -> None:
    secrets = [s for s in (SLACK_BOT, GOOGLE_ACCESS, JWT) if s in header]
    secrets += ["MTIzNDU2Ny44OTA6OWY4ZTdkNmM1YjRhMzkyODE3MDY=", "AIzaSyA1b2C3d4E5f6G7h8I9j0"]
    _clean(header, *secrets)


def test_google_token_exchange() -> None:
    request = (
        "grant_type=refresh_token&client_id=123456789012-abc.apps.googleusercontent.com"
        f"&client_secret={GOOGLE_SECRET}&refresh_token=1%2F%2F0gAbCdEfGhIjKlMnOpQrStUvWxYz"
    )
    _clean(request, GOOGLE_SECRET, "1%2F%2F0gAbCdEfGhIjKlMnOpQrStUvWxYz")
    assert "client_id=123456789012-abc.apps.googleusercontent.com" in redact(request)
    response = (
        f'{{\n  "access_token": "{GOOGLE_ACCESS}",\n  "expires_in": 3599,\n  "scope": '
        '"https://www.googleapis.com/auth/gmail.readonly",\n  "token_type": "Bearer",\n'
        f'  "id_token": "{JWT}"\n}}'
    )
    _clean(response, GOOGLE_ACCESS, JWT)
    assert '"token_type": "Bearer"' in redact(response)
    # A token in free text (an exception message, a repr) is caught by its shape.
    _clean(f"refresh with {GOOGLE_REFRESH} failed; token {GOOGLE_ACCESS}", GOOGLE_REFRESH)


def test_tokens_in_query_strings() -> None:
    url = (
        "https://graph.facebook.com/v19.0/act_123/insights?fields=spend"
        f"&access_token={META}&appsecret_proof=5f2b6c0e9a1d4b7c8e3f"
    )
    _clean(f'urllib3: "GET {url} HTTP/1.1" 200 5120', META, "5f2b6c0e9a1d4b7c8e3f")
    _clean(f"https://gmail.googleapis.com/gmail/v1/users/me?access_token={OPAQUE}", OPAQUE)
    _clean(f"Meta said no to {META}", META)
    _clean("GET /oauth/callback?code=482913&state=abc", "482913")  # numeric, still a code
    dsn = "postgresql+psycopg://aos_app:hunter2-db-pass@db.internal:5432/aos"
    _clean(dsn, "hunter2-db-pass")
    assert redact(dsn).startswith("postgresql+psycopg://aos_app:") and "@db.internal" in redact(dsn)


def test_registered_secret_without_shape_in_free_text() -> None:
    fake = f"sandbox-{uuid.uuid4().hex}"
    assert redact(f"tried {fake} twice") == f"tried {fake} twice"  # no shape, not yet known
    Secret(fake)  # what the task layer does with every token it reads
    _clean(f"tried {fake} twice", fake)
    _clean(f"form body: x={fake.replace('-', '%2D')}&y=1 or {fake}", fake)
    # Too short to be a secret worth masking: registering it must not shred every log line.
    register_secret("t")
    assert redact("the task started") == "the task started"


def test_many_registered_secrets_are_all_found() -> None:
    """Past a few dozen values the registry is searched by index, not value by value."""
    values = [f"opaque{uuid.uuid4().hex}" for _ in range(200)]
    for v in values:
        register_secret(v)
    text = f"first {values[0]}, middle {values[100]} and last {values[-1]}!"
    _clean(text, values[0], values[100], values[-1])
    assert redact(text) == f"first {MASK}, middle {MASK} and last {MASK}!"


def test_plain_operational_text_is_untouched() -> None:
    lines = [
        "messages: 1,204 fetched, 1,190 inserted, 14 updated, 0 deleted, 37 requests (2 rate-limited)",
        "run of integration 12 failed: Slack refused the refresh token (invalid_refresh_token)",
        "channel C0123ABCD user U04ABCDEF12 ts=1727740800.000200 thread_ts=1727740800.000100",
        '{"ok": false, "error": "ratelimited", "code": 429, "token_type": "bot"}',
        "GET https://gmail.googleapis.com/gmail/v1/users/me/messages?pageToken=08123&maxResults=500",
        "history id 987654321, next_page_token=CgwIABC, labels INBOX,UNREAD; status code: 503",
        "Finished in state Completed()",
    ]
    for line in lines:
        assert redact(line) == line


# -- the record factory: every logger, every handler -------------------------------------------


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def wire_logger() -> Iterator[tuple[logging.Logger, _ListHandler]]:
    logsafe.install(wire_debug=True)
    logger = logging.getLogger("slack_sdk.web.base_client")
    handler = _ListHandler()
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logsafe.install(wire_debug=False)


def test_records_are_redacted_before_any_handler(
    wire_logger: tuple[logging.Logger, _ListHandler],
) -> None:
    logger, handler = wire_logger
    logger.debug("body_params: %s", {"refresh_token": SLACK_REFRESH})
    try:
        raise RuntimeError(f"POST failed for refresh_token={SLACK_REFRESH} access {SLACK_ACCESS}")
    except RuntimeError:
        logger.exception("refresh failed")
    output = "\n".join(handler.lines)
    assert len(handler.lines) == 2
    assert SLACK_REFRESH not in output and SLACK_ACCESS not in output, output
    assert "Traceback" in output and "RuntimeError" in output  # the traceback is kept, masked
    assert f"refresh_token={MASK}" in output and f"xoxe.xoxb-{MASK}" in output

    make = logging.getLogRecordFactory()
    # A record that holds no secret keeps msg and args (formatters that read args still work).
    plain = make("uvicorn.access", logging.INFO, __file__, 1, "%s %s", ("GET", "/api"), None)
    assert (plain.msg, plain.args) == ("%s %s", ("GET", "/api"))
    # One that does is flattened to its redacted text.
    leaky = make("x", logging.INFO, __file__, 1, "token for %s: %s", ("T01", SLACK_BOT), None)
    assert (leaky.msg, leaky.args) == (f"token for T01: xoxb-{MASK}", ())


def test_extra_attributes_are_redacted_for_json_formatters(
    wire_logger: tuple[logging.Logger, _ListHandler],
) -> None:
    """google-auth logs whole requests in ``extra=``; a JSON formatter prints every attribute."""
    logger, handler = wire_logger
    handler.setFormatter(_JsonLike())
    logger.debug(
        "Making request...",
        extra={
            "httpRequest": {
                "method": "POST",
                "url": f"https://oauth2.googleapis.com/token?access_token={GOOGLE_ACCESS}",
                "headers": {"Authorization": f"Bearer {JWT}", "Accept": "application/json"},
                "body": {"refresh_token": OPAQUE, "grant_type": "refresh_token"},
            },
            "raw": f"client_secret={GOOGLE_SECRET}".encode(),
        },
    )
    (line,) = handler.lines
    for secret in (GOOGLE_ACCESS, JWT, OPAQUE, GOOGLE_SECRET):
        assert secret not in line, line
    assert "'grant_type': 'refresh_token'" in line and "'method': 'POST'" in line


class _JsonLike(logging.Formatter):
    """Every attribute of the record, as Prefect's JSON formatter prints them."""

    def format(self, record: logging.LogRecord) -> str:
        return repr(sorted(record.__dict__.items()))


def test_prefect_event_stream_auth_frame() -> None:
    frame = '> TEXT \'{"type":"auth","token":"pnu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"}\''
    _clean(frame, "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")
    assert redact('> TEXT \'{"type":"auth","token":null}\'').endswith('"token":null}\'')


def test_uncaught_exception_traceback_is_redacted() -> None:
    """``aos-sync -v`` re-raises: Python's own traceback printer must not show the token."""
    code = (
        "from connectors import logsafe; logsafe.install(); "
        f"raise RuntimeError('refresh failed: refresh_token={SLACK_REFRESH}')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1 and "RuntimeError: refresh failed" in proc.stderr, proc.stderr
    assert SLACK_REFRESH not in proc.stderr and "xoxe-1-My0x" not in proc.stderr, proc.stderr


def test_wire_loggers_are_capped_at_info_unless_asked() -> None:
    """``-v`` sets the root logger to DEBUG; the SDKs' request dumps need ``-vv``."""
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.DEBUG)
        logsafe.install(wire_debug=False)
        for name in logsafe.WIRE_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
        logsafe.install()  # a later plain install (importing flows) keeps the choice
        assert not logging.getLogger("slack_sdk.web.base_client").isEnabledFor(logging.DEBUG)
        logsafe.install(wire_debug=True)
        logsafe.install()
        assert logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before)
        logsafe.install(wire_debug=False)


# -- end to end: the CLI at -vv, a real token rotation, everything it printed and stored -------


def _scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def _run_cli(world: World, provider: str, iid: int, **extra_env: str) -> str:
    """``aos-sync -vv sync <provider>`` in a subprocess; stdout and stderr, interleaved."""
    env = {
        **world.env(),
        "PREFECT_LOGGING_EXTRA_LOGGERS": WIRE,  # the wire dumps go to the Prefect API too
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        **extra_env,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "-vv",
            "sync",
            provider,
            "--integration",
            str(iid),
            "--as",
            world.users["owner"],
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


def _prefect_logs(world: World, iid: int) -> list[str]:
    """Every log line the Prefect API holds for the integration's flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flow_run_id = _scalar(
        world.engine, "SELECT flow_run_id FROM sync_run WHERE integration_id = :i", i=iid
    )
    assert flow_run_id, "the run recorded no Prefect flow run"
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(str(flow_run_id))]))
    lines: list[str] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(log_filter=log_filter, limit=200, offset=len(lines))
            if not page:
                return lines
            lines += [f"{log.name} {log.message}" for log in page]


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets appear in ``text``, whole or as a 16-character piece of their middle or
    end (a partly masked token is still a leak)."""
    found = []
    for name, value in secrets.items():
        pieces = {value, value[-16:], value[len(value) // 2 - 8 : len(value) // 2 + 8]}
        if any(p in text for p in pieces):
            found.append(name)
    return found


def _assert_nothing_leaked(output: str, api_lines: list[str], secrets: dict[str, str]) -> None:
    """Neither the process output nor the Prefect API's logs hold any of ``secrets``."""
    assert all(len(v) >= 16 for v in secrets.values()), "a short secret proves nothing"
    where = {"output": output.splitlines(), "prefect api logs": api_lines}
    leaks = {
        place: sorted({n for line in lines for n in _leaks(line, secrets)})
        for place, lines in where.items()
    }
    examples = [line[:400] for lines in where.values() for line in lines if _leaks(line, secrets)][
        :4
    ]
    assert leaks == {"output": [], "prefect api logs": []}, examples


@pytest.fixture
def slack_world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    with seeded_world(
        World, fresh_engine, monkeypatch, providers=("slack",), time_scale=60, seed=31
    ) as w:
        yield w


def test_cli_vv_slack_token_rotation_prints_no_token(slack_world: World) -> None:
    world = slack_world
    iid = world.add_slack(
        "rot",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=20,
        start=START,
        span_days=5,
        rotating=True,
        config={"auto_join": True},
    )
    ws = world.workspaces["rot"]
    old = dict(ws.credentials)
    # The access token is dead at Slack and the vault knows it: the run must rotate.
    ws.expire_access_token()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with world.engine.begin() as conn:
        db_engine.default_vault().put(conn, iid, {**old, "expires_at": past})

    output = _run_cli(world, "slack", iid)

    with world.engine.connect() as conn:
        new = db_engine.default_vault().get(conn, iid)
    # The rotation happened (else this test proves nothing) and the sandbox agrees.
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] == ws.credentials["access_token"]
    assert new["refresh_token"] == ws.credentials["refresh_token"]
    assert world.sandbox.log.count(method="oauth.v2.access") == 1
    # The attack surface was there: slack_sdk dumped the token exchange at -vv.
    assert "DEBUG slack_sdk" in output and "oauth.v2.access" in output
    assert "'refresh_token': '" in output  # the request body, with its value masked
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") > 0

    api_lines = _prefect_logs(world, iid)
    assert any("oauth.v2.access" in line for line in api_lines), "no wire log reached the API"
    secrets = {
        "old access token": old["access_token"],
        "old refresh token": old["refresh_token"],
        "new access token": new["access_token"],
        "new refresh token": new["refresh_token"],
        "client secret": old["client_secret"],
    }
    _assert_nothing_leaked(output, api_lines, secrets)
    print(
        f"slack: scanned {len(output.splitlines())} output lines and "
        f"{len(api_lines)} Prefect log lines for {len(secrets)} secrets"
    )


@pytest.fixture
def gmail_world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    # time_scale 10 keeps a scaled access token longer than the vault's refresh margin.
    with seeded_world(
        World,
        fresh_engine,
        monkeypatch,
        providers=("gmail",),
        time_scale=10,
        seed=37,
        client_domains={"globex": "globex.com", "initech": "initech.com"},
    ) as w:
        yield w


# google-auth (2.38+) hashes token fields in its own debug lines, so as shipped it prints no
# token even without connectors.logsafe. The second run makes it log the token exchange raw,
# as an SDK without that care does (the Ads SDKs to come, an older or newer release), through
# a sitecustomize in the subprocess only: the SDK, the exchange and the sandbox stay real.
LEAKY_GOOGLE_AUTH = """
import google.auth._helpers as helpers


def request_log(logger, method, url, body, headers):
    logger.debug("Making request: %s %s body=%s headers=%s", method, url, body, headers)


def response_log(logger, response):
    logger.debug("Response received: %s", getattr(response, "data", None))


helpers.request_log, helpers.response_log = request_log, response_log
"""


@pytest.mark.parametrize("sdk", ["as shipped", "logging raw"])
def test_cli_vv_google_token_refresh_prints_no_token(
    gmail_world: World, sdk: str, tmp_path: Path
) -> None:
    world = gmail_world
    extra_env: dict[str, str] = {}
    if sdk == "logging raw":
        (tmp_path / "sitecustomize.py").write_text(LEAKY_GOOGLE_AUTH)
        extra_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p
        )
    mb = world.sandbox.gmail.add_mailbox(
        "ops@acme-agency.test", messages=40, start=START, span_days=10, quota=False
    )
    with world.engine.begin() as conn:
        iid = tenancy.add_integration(
            conn,
            world.agency_id,
            "gmail",
            "gmail-ops",
            external_account_id=mb.email,
            config={"quota_units_per_second": None},
        )
    old = dict(mb.credentials)
    # Dead at Google, past its expiry in the vault: the run refreshes at the token endpoint.
    mb.expire_access_token()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with world.engine.begin() as conn:
        db_engine.default_vault().put(conn, iid, {**old, "expires_at": past})

    output = _run_cli(world, "gmail", iid, **extra_env)

    with world.engine.connect() as conn:
        new = db_engine.default_vault().get(conn, iid)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] == old["refresh_token"]  # Google does not rotate it
    assert world.sandbox.log.count(method="oauth2.token") == 1
    # -vv turned google-auth's wire debug on (it stays silent until "google" is configured).
    assert "DEBUG google.auth.transport.requests: Making request" in output
    if sdk == "logging raw":  # the exchange itself was printed, masked
        assert "body=b'grant_type=refresh_token&" in output and "client_secret=****" in output
    assert _scalar(world.data, "SELECT count(*) FROM gmail_messages") > 0

    api_lines = _prefect_logs(world, iid)
    assert any("/token" in line for line in api_lines), "no wire log reached the API"
    secrets = {
        "old access token": old["access_token"],
        "new access token": new["access_token"],
        "refresh token": old["refresh_token"],
        "client secret": old["client_secret"],
    }
    _assert_nothing_leaked(output, api_lines, secrets)
    print(
        f"gmail ({sdk}): scanned {len(output.splitlines())} output lines and "
        f"{len(api_lines)} Prefect log lines for {len(secrets)} secrets"
    )
