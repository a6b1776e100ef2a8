"""The admin CLI, in-process against a fresh database: output, --json, and one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli import context
from cli.main import main
from db import engine as db_engine
from db.engine import default_vault

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def aos(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("AOS_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AOS_ENCRYPTION_KEY", "k1:" + "A" * 43 + "=")
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    db_engine.get_engine.cache_clear()
    context.engine.cache_clear()


def test_admin_flow_with_json(aos, fresh_engine: sa.Engine) -> None:
    assert aos("agency", "create", "Acme")[0] == 0
    code, out, _ = aos(
        "--json", "user", "add", "--agency", "Acme", "--email", "Ann@Acme.test", "--role", "member"
    )
    assert code == 0 and json.loads(out)["email"] == "ann@acme.test"
    code, out, _ = aos(
        "--json",
        "client",
        "add",
        "--agency",
        "Acme",
        "--name",
        "Globex",
        "--slack-channel",
        "C1",
        "--email-domain",
        "globex.com",
    )
    client_id = json.loads(out)["client_id"]
    assert (
        aos(
            "access",
            "grant",
            "--user",
            "ann@acme.test",
            "--client",
            "Globex",
            "--permission",
            "write",
        )[0]
        == 0
    )
    secret = "xoxb-very-secret-token"
    code, out, err = aos(
        "--json",
        "integration",
        "add",
        "--agency",
        "Acme",
        "--provider",
        "slack",
        "--name",
        "Globex Slack",
        "--client",
        "Globex",
        "--credentials-file",
        "-",
        stdin=json.dumps({"access_token": secret}),
    )
    assert code == 0, err
    iid = json.loads(out)["integration_id"]
    assert secret not in out + err
    code, out, _ = aos("--json", "integration", "list", "--agency", "Acme")
    [row] = json.loads(out)
    assert row == {
        "id": iid,
        "agency_id": 1,
        "client_id": client_id,
        "provider": "slack",
        "name": "Globex Slack",
        "status": "connected",
        "reason": None,
    }
    with fresh_engine.connect() as conn:
        assert default_vault().get(conn, iid)["access_token"] == secret
    code, out, _ = aos(
        "--json", "access", "revoke", "--user", "ann@acme.test", "--client", "Globex"
    )
    assert code == 0
    code, out, _ = aos("runs", "list")
    assert code == 0 and "(none)" in out


def test_errors_are_one_line_and_non_zero(aos) -> None:
    code, out, err = aos("client", "add", "--agency", "Nope", "--name", "X")
    assert code == 1 and out == "" and err.strip() == "error: no agency 'Nope'"
    aos("agency", "create", "Acme")
    code, _, err = aos("agency", "create", "Acme")
    assert code == 1 and err.count("\n") == 1 and "already exists" in err
    code, _, err = aos(
        "integration",
        "add",
        "--agency",
        "Acme",
        "--provider",
        "slack",
        "--name",
        "x",
        "--credentials-file",
        "-",
        stdin="not json",
    )
    assert code == 1 and "credentials must be a JSON object" in err
    code, _, err = aos(
        "integration",
        "add",
        "--agency",
        "Acme",
        "--provider",
        "slack",
        "--name",
        "x",
        "--credentials-file",
        "-",
        stdin='{"refresh_token": "r"}',
    )
    assert code == 1 and "access_token" in err


@pytest.mark.parametrize(
    ("argv", "option", "expected"),
    [
        (
            ["sync", "slack", "--integration", " ", "--as", "a@b.test"],
            "--integration",
            "id or name",
        ),
        (["sync", "slack", "--integration", "1"], "--as", "required"),
        (
            ["sync", "slack", "--integration", "1", "--as", "a@b.test", "--since", "1/2/2026"],
            "--since",
            "YYYY-MM-DD",
        ),
        (
            ["backfill", "--integration", "1", "--start", "2026-13-01", "--end", "2026-02-01"],
            "--start",
            "YYYY-MM-DD",
        ),
        (["runs", "list", "--limit", "-3"], "--limit", "whole number"),
    ],
)
def test_argument_errors_name_the_option_and_the_format(
    argv: list[str], option: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out, err = capsys.readouterr()
    assert caught.value.code == 2 and out == ""
    first, hint = err.splitlines()
    assert first.startswith("error: ") and option in first and expected in first, first
    assert hint.startswith("(see `aos-sync") and "--help" in hint


def test_integrations_are_named_by_id_or_by_an_unambiguous_name(
    aos, fresh_engine: sa.Engine
) -> None:
    from cli.context import resolve_integration
    from db import tenancy

    with fresh_engine.begin() as conn:
        ids = [
            tenancy.add_integration(conn, tenancy.create_agency(conn, a), "slack", "Shared name")
            for a in ("A1", "A2")
        ]
        only = tenancy.add_integration(conn, tenancy.find_agency(conn, "A1").id, "gmail", "Mail")
    assert resolve_integration("Mail") == only and resolve_integration(ids[0]) == ids[0]
    code, out, err = aos("sync", "slack", "--integration", "Nope", "--as", "a@b.test")
    assert (code, out) == (1, "") and err.startswith("error: no integration named 'Nope'")
    code, _, err = aos(
        "backfill",
        "--integration",
        "Shared name",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-02",
        "--as",
        "a@b.test",
    )
    assert code == 1 and err == (
        f"error: 2 integrations are named 'Shared name' (ids {ids[0]}, {ids[1]}): pass the id\n"
    )
    # Every command's --integration takes a name: resolved once, before the command runs.
    code, out, err = aos("--json", "runs", "list", "--integration", "Mail")
    assert (code, err) == (0, "") and json.loads(out) == []
    code, _, err = aos("runs", "list", "--integration", "Nope")
    assert code == 1 and err.startswith("error: no integration named 'Nope'")


def test_unexpected_failures_print_the_message_without_a_class_name(
    aos, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cli.main

    def broken(_: object) -> None:
        raise OSError("the disk is full")

    monkeypatch.setattr(cli.main, "cmd_db_status", broken)
    code, out, err = aos("db", "status")
    assert (code, out, err) == (1, "", "error: the disk is full\n")
    monkeypatch.setattr(cli.main, "cmd_db_status", lambda _: {}[0])  # KeyError(0)
    code, _, err = aos("db", "status")
    assert code == 1 and err == "error: 0\n" and "KeyError" not in err
    with pytest.raises(OSError, match="disk is full"):  # -v: the traceback, for a developer
        monkeypatch.setattr(cli.main, "cmd_db_status", broken)
        main(["-v", "db", "status"])


def test_credentials_are_never_taken_from_argv() -> None:
    from cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(
            [
                "integration",
                "add",
                "--agency",
                "A",
                "--provider",
                "slack",
                "--name",
                "n",
                "--access-token",
                "xoxb-1",
            ]
        )


def test_reconnect_refuses_credentials_it_cannot_identify(
    aos, fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconnect stores credentials only once the provider has said whose they are (here it
    cannot: the tokens are made up and no provider is reachable); storing and reconnecting
    with real tokens is tested against the emulators in ``tests/connect``."""
    monkeypatch.setenv("AOS_GOOGLE_TOKEN_URL", "http://127.0.0.1:9/token")  # nothing listens
    from db import tenancy

    aos("agency", "create", "Acme")
    code, out, _ = aos(
        "--json",
        "integration",
        "add",
        "--agency",
        "Acme",
        "--provider",
        "gmail",
        "--name",
        "Inbox",
        "--credentials-file",
        "-",
        stdin=json.dumps({"access_token": "old", "refresh_token": "r-old"}),
    )
    iid = json.loads(out)["integration_id"]
    with fresh_engine.begin() as conn:
        tenancy.set_integration_status(conn, iid, "needs_reauth", reason="invalid_grant")
    code, out, err = aos(
        "--json",
        "integration",
        "reconnect",
        "--integration",
        str(iid),
        "--credentials-file",
        "-",
        stdin=json.dumps({"access_token": "new", "refresh_token": "r-new"}),
    )
    assert code == 1 and "nothing was changed" in err, err
    assert "r-new" not in out + err
    with fresh_engine.connect() as conn:
        assert tenancy.get_integration(conn, iid).status == "needs_reauth"
        assert default_vault().get(conn, iid)["refresh_token"] == "r-old"
    code, _, err = aos(
        "integration",
        "reconnect",
        "--integration",
        "999",
        "--credentials-file",
        "-",
        stdin=json.dumps({"access_token": "x"}),
    )
    assert code == 1 and "999" in err


def test_local_state_does_not_depend_on_the_current_folder(tmp_path: Path) -> None:
    """Run from another folder, a command finds the checkout's embedded database, not a new
    empty one beside the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("AOS_HOME", "AOS_DATABASE_URL")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "aos-sync"), "--json", "db", "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["home"] == str(ROOT / ".aos")
    assert not (tmp_path / ".aos").exists()


def test_grant_mint_signs_a_grant_the_flows_accept(aos, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from db.grants import verify_run_grant

    code, _, err = aos("grant", "mint", "--integration", "5", "--as", "ann@acme.test")
    assert code == 1 and err.startswith("error: AOS_RUN_GRANT_KEY is not set")
    key = b"k" * 32
    monkeypatch.setenv("AOS_RUN_GRANT_KEY", base64.b64encode(key).decode())
    code, out, _ = aos(
        "--json",
        "grant",
        "mint",
        "--integration",
        "5",
        "--action",
        "backfill",
        "--as",
        "ann@acme.test",
    )
    assert code == 0
    token = json.loads(out)["grant"]
    principal = verify_run_grant(key, token, integration_id=5, action="backfill")
    assert (str(principal), principal.verified) == ("ann@acme.test", True)


def test_analyst_logins_list_reset_drop(aos, fresh_engine: sa.Engine) -> None:
    import psycopg

    assert aos("agency", "create", "Acme")[0] == 0
    assert (
        aos("user", "add", "--agency", "Acme", "--email", "ann@acme.test", "--role", "manager")[0]
        == 0
    )
    code, out, err = aos("analyst", "reset", "--user", "ann@acme.test")
    assert code == 1 and "has no analyst login" in err
    created = json.loads(aos("--json", "analyst", "create", "--user", "ann@acme.test")[1])
    listed = json.loads(aos("--json", "analyst", "list")[1])
    assert [(r["role"], r["user"], r["agency"]) for r in listed] == [
        (created["role"], "ann@acme.test", "Acme")
    ]
    url = fresh_engine.url

    def login(password: str) -> None:
        psycopg.connect(
            host=url.host,
            port=url.port,
            dbname=created["database"],  # the agency's own database
            user=created["role"],
            password=password,
        ).close()

    login(created["password"])
    reset = json.loads(aos("--json", "analyst", "reset", "--user", "ann@acme.test")[1])
    assert reset["role"] == created["role"] and reset["password"] != created["password"]
    login(reset["password"])
    with pytest.raises(psycopg.OperationalError):
        login(created["password"])
    assert aos("analyst", "drop", "--role", created["role"])[0] == 0
    assert json.loads(aos("--json", "analyst", "list")[1]) == []
    with pytest.raises(psycopg.OperationalError):
        login(reset["password"])


def test_empty_credentials_say_so_and_a_terminal_is_told_what_to_paste(
    aos, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert aos("agency", "create", "Acme")[0] == 0
    add = ("integration", "add", "--agency", "Acme", "--provider", "slack", "--name", "s")
    code, _, err = aos(*add, "--credentials-file", "-", stdin="  \n")
    assert (
        code == 1
        and err
        == "error: credentials: stdin is empty (expected a JSON object with an access_token)\n"
    )

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal('{"access_token": "xoxb-1"}'))
    code, _, err = aos(*add, "--credentials-file", "-")
    assert code == 0 and err.startswith("paste the credentials JSON, then press Ctrl-D")


def test_deleting_an_agency_drops_its_database_and_logins(aos, fresh_engine: sa.Engine) -> None:
    code, out, _ = aos("--json", "agency", "create", "Doomed")
    assert code == 0
    database = json.loads(out)["database"]
    assert aos("agency", "create", "Kept")[0] == 0
    assert (
        aos("user", "add", "--agency", "Doomed", "--email", "o@doomed.test", "--role", "owner")[0]
        == 0
    )
    login = json.loads(aos("--json", "analyst", "create", "--user", "o@doomed.test")[1])

    def exists(kind: str, name: str) -> bool:
        query = {
            "database": "SELECT 1 FROM pg_database WHERE datname = :n",
            "role": "SELECT 1 FROM pg_roles WHERE rolname = :n",
        }[kind]
        with fresh_engine.connect() as conn:
            return conn.execute(sa.text(query), {"n": name}).first() is not None

    assert exists("database", database) and exists("role", login["role"])
    code, _, err = aos("agency", "delete", "Doomed", "--confirm", "doomed")
    assert code == 1 and "--confirm" in err and exists("database", database)
    assert aos("agency", "delete", "Doomed", "--confirm", "Doomed")[0] == 0
    assert not exists("database", database) and not exists("role", login["role"])
    assert not exists("role", database + "_all")
    with fresh_engine.connect() as conn:
        names = set(conn.scalars(sa.text("SELECT name FROM agency")))
    assert names == {"Kept"}


def test_a_config_its_connector_refuses_is_refused_before_anything_is_stored(
    aos, fresh_engine: sa.Engine
) -> None:
    """Meta reports breakdowns only in the combinations of its table (Insights API
    Breakdowns, "Combining breakdowns"): a Meta integration asking for age and country
    together is refused when its config is set, in one line that says what to write instead,
    and nothing is stored."""
    from db import schema

    assert aos("agency", "create", "Acme")[0] == 0
    add = ("integration", "add", "--agency", "Acme", "--provider", "meta_ads", "--name", "m")
    token = '{"access_token": "EAAB1"}'
    code, _, err = aos(
        *add,
        "--config",
        '{"breakdowns": [["age", "country"]]}',
        "--credentials-file",
        "-",
        stdin=token,
    )
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: --config: Meta Ads config: breakdowns: Meta does not report")
    assert "age+country together" in err and '[["age"], ["country"]]' in err
    with fresh_engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.integration)).scalar() == 0
        )
    code, _, err = aos(
        *add,
        "--config",
        '{"breakdowns": [["gender", "age"], ["country"]]}',
        "--credentials-file",
        "-",
        stdin=token,
    )
    assert code == 0, err
