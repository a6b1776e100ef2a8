"""run.py, the README's commands: lint runs before the tests and stops them on a finding, the
fast tier and named tests pass through, and an unsupported Python is refused with a reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run  # noqa: E402


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Commands run.main would run (nothing is run); ruff exits 1 when FAIL_LINT is set."""
    made: list[list[str]] = []

    def call(cmd: list[str], **_: object) -> int:
        made.append([Path(cmd[0]).name, *cmd[1:]])
        return 1 if made[-1][0] == "ruff" and "FAIL_LINT" in made[0] else 0

    monkeypatch.setattr(run, "ensure_venv", lambda: None)
    monkeypatch.setattr(run.subprocess, "call", call)
    monkeypatch.chdir(ROOT)
    return made


def test_the_test_command_lints_first_then_runs_pytest(calls: list[list[str]]) -> None:
    assert run.main(["test", "-m", "not slow"]) == 0
    assert [c[:3] for c in calls[:3]] == [
        ["ruff", "check", "."],
        ["ruff", "format", "--check"],
        ["mypy"],
    ]
    assert calls[3][:3] == ["python", "-m", "pytest"] and calls[3][-2:] == ["-m", "not slow"]
    assert len(calls) == 4


def test_a_lint_finding_stops_before_the_tests(calls: list[list[str]]) -> None:
    calls.append(["FAIL_LINT"])
    assert run.main(["test"]) == 1
    assert [c[0] for c in calls[1:]] == ["ruff"]


@pytest.mark.parametrize(
    "args",
    [["tests/test_run_py.py"], ["tests/db", "-n", "0"], ["tests/x.py::test_y"], ["--no-lint"]],
)
def test_named_tests_or_no_lint_skip_lint(calls: list[list[str]], args: list[str]) -> None:
    assert run.main(["test", *args]) == 0
    assert [c[0] for c in calls] == ["python"] and "--no-lint" not in calls[0]


def test_pytest_config_has_a_timeout_and_durations() -> None:
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = options["ini_options"]
    assert int(ini["timeout"]) > 0 and "--durations=15" in ini["addopts"]
    conftest = (ROOT / "conftest.py").read_text()
    assert 'pytest_plugins = ["tests.plugins.leftovers"]' in conftest


def test_python_3_13_without_postgres_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "_system_postgres", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        run.check_python("test", (3, 13))
    assert "pgserver" in str(stopped.value) and "3.11 and 3.12" in str(stopped.value)
    run.check_python("aos", (3, 13))  # other commands go on, with a warning
    assert "warning" in capsys.readouterr().err
    monkeypatch.setattr(run, "_system_postgres", lambda: True)
    run.check_python("demo", (3, 13))  # PostgreSQL on the machine: fine
    run.check_python("demo", (3, 12))
    with pytest.raises(SystemExit):
        run.check_python("demo", (3, 10))
