"""``AOS_HOME`` starts out 0700 whichever command creates it first.

The finding: the local Prefect server's ``mkdir(AOS_HOME/prefect, parents=True)`` made
``AOS_HOME`` itself with the umask's mode (0755), so a later embedded cluster, development key or
sandbox state file lived in a folder everyone could list. Each path that can be the first to
need ``AOS_HOME`` is run here under the most permissive umask; the embedded cluster's own path
is ``test_embedded_bootstrap.py::test_absent_aos_home_is_created_private``.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest


class _Spawned(Exception):
    """Raised instead of starting a Prefect server: everything before it has run."""


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_local_prefect_server_makes_aos_home_private(
    tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments import local_server

    def no_server(*args: object, **kwargs: object) -> None:
        raise _Spawned

    monkeypatch.setattr(local_server.subprocess, "Popen", no_server)
    home = tmp_path / "fresh" / ".aos"
    with pytest.raises(_Spawned):
        local_server.LocalPrefect(home / "prefect").ensure()
    assert _mode(home) == 0o700
    assert _mode(home / "prefect") == 0o700
    assert _mode(home.parent) & 0o022 == 0


def test_serve_scratch_folder_makes_aos_home_private(
    tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from cli import serve
    from deployments import serve as deployments_serve

    home = tmp_path / ".aos"
    monkeypatch.setenv("AOS_HOME", str(home))
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    monkeypatch.setattr(deployments_serve, "serve_all", lambda limit: None)
    with pytest.raises(SystemExit) as stopped:  # serving returns only when interrupted
        serve.cmd_serve(argparse.Namespace(limit=1))
    assert stopped.value.code == 130
    assert _mode(home) == 0o700 and _mode(home / "tmp") == 0o700
    assert os.environ["TMPDIR"] == str(home / "tmp")


def test_the_development_key_makes_aos_home_private(tmp_path: Path, loose_umask: None) -> None:
    from db.vault import Keyring

    home = tmp_path / ".aos"
    Keyring.from_env({}, home=home)
    assert _mode(home) == 0o700
    [key] = home.iterdir()
    assert _mode(key) == 0o600
