"""docs/operations.md "Trying it against the sandbox", run as written (its non-interactive core):
the sandbox's settings come from ``aos-sync sandbox env`` alone, ``aos-sync connect slack`` prints
a URL, a person opens it and clicks "Allow" on the emulated install screen, and the integration
it creates syncs. The sandbox runs in this process instead of ``sandbox start``'s background one
(the same emulators, and the state file that process writes)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cli import context
from cli.main import main
from connectors.oauth import SETTINGS
from db import agencydb, schema
from db import engine as db_engine
from sandbox import Sandbox
from sandbox.cli import _write_state
from tests.flows.conftest import TEST_KEY

OWNER = "owner@acme.test"


class Person(io.StringIO):
    """The terminal the command prints to, and the person reading it: when the authorization
    URL appears, they open it, pick the workspace on the install screen and click "Allow"."""

    def __init__(self, workspace: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.pages: list[httpx.Response] = []
        self.thread: threading.Thread | None = None

    def write(self, text: str) -> int:
        if text.startswith("http") and self.thread is None:
            self.thread = threading.Thread(target=self.browse, args=(text.strip(),))
            self.thread.start()
        return super().write(text)

    def browse(self, url: str) -> None:
        screen = httpx.get(url)
        [team] = re.findall(
            rf'name="sandbox_account" value="([^"]+)">Allow as {re.escape(self.workspace)}<',
            screen.text,
        )
        hidden = dict(
            re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', screen.text)
        )
        answer = httpx.get(
            str(screen.url.copy_with(query=None)),
            params={**hidden, "sandbox_account": team},
            follow_redirects=True,
        )
        self.pages += [screen, answer]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, (argv, out)
    return out


def test_connect_against_the_sandbox_then_sync(
    fresh_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prefect_harness: None,
) -> None:
    monkeypatch.setenv("AOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ENCRYPTION_KEY", TEST_KEY)
    for name in ("AOS_RUN_GRANT_KEY", *(s[0] for s in SETTINGS)):
        monkeypatch.delenv(name, raising=False)  # nothing but what `sandbox env` prints
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()
    # aos-sync sandbox start --providers slack --size tiny --time-scale 60
    with Sandbox(("slack",), seed=7, size="tiny", time_scale=60) as sb:
        _write_state(db_engine.aos_home() / "sandbox.json", sb)
        # eval "$(aos-sync sandbox env)"
        for line in _run(capsys, "sandbox", "env").splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, shlex.split(value)[0])
        for needed in ("AOS_SLACK_CLIENT_ID", "AOS_SLACK_CLIENT_SECRET", "AOS_SLACK_AUTHORIZE_URL"):
            assert os.environ.get(needed), needed
        _run(capsys, "agency", "create", "Acme Agency")
        _run(capsys, "user", "add", "--agency", "Acme Agency", "--email", OWNER, "--role", "owner")
        # aos-sync connect slack --agency "Acme Agency" --as owner@acme.test
        [ws] = sb.slack.workspaces.values()
        team, workspace = ws.team_id, ws.name
        # the emulator's truth: every message of the channels the bot is a member of (a new
        # integration does not join channels unless configured to)
        joined = {c.id for c in ws.channels.values() if c.is_member}
        expected = sum(1 for m in ws.truth()["messages"] if m["channel"] in joined)
        person = Person(workspace)
        monkeypatch.setattr("sys.stderr", person)
        out = _run(capsys, "--json", "connect", "slack", "--agency", "Acme Agency", "--as", OWNER)
        assert person.thread is not None
        person.thread.join(timeout=30)
        connected = json.loads(out)
        assert connected["created"] is True
        screen, result = person.pages
        assert screen.status_code == 200 and result.status_code == 200
        assert "Slack connected to Acme Agency" in result.text
        # aos-sync sync slack --integration ID --as owner@acme.test
        iid = str(connected["integration_id"])
        _run(capsys, "sync", "slack", "--integration", iid, "--as", OWNER)
    with fresh_engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.integration).where(schema.integration.c.id == int(iid))
        ).one()
        run = conn.execute(sa.select(schema.sync_run.c.status)).scalar()
    with agencydb.engine_for(fresh_engine, row.agency_id).connect() as conn:
        loaded = conn.execute(
            sa.select(sa.func.count()).select_from(schema.slack_messages)
        ).scalar()
    assert (row.external_account_id, row.status) == (team, "connected")
    assert run == "succeeded"
    assert loaded == expected > 0
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()
