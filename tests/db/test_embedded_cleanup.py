"""Nothing left behind on disk: ``purge`` deletes a cluster wherever its data lives, and a
private cluster whose ``AOS_HOME`` was deleted is removed by the next ``ensure_running``.

As root a cluster whose ``AOS_HOME`` the server account cannot reach (any 0700 temporary
folder, as pytest's) lives in a private ``aos-sync-*`` folder of /var/tmp, which used to outlive
its ``AOS_HOME`` (15 of them, 1.6 GB, after one day of test runs here)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from db import embedded_sweep
from db.embedded import EmbeddedPostgres, EmbeddedPostgresError, _service_account

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="private folders are made as root only")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _state(home: Path) -> dict[str, str]:
    return dict(json.loads((home / "postgres.json").read_text()))


@pytest.fixture
def leftovers() -> Iterator[list[Path]]:
    """Folders a failing test might leave outside its tmp_path: removed whatever happens."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _private_home(tmp_path: Path) -> Path:
    home = tmp_path / "private" / "home"  # pytest's tmp_path is 0700: the server cannot reach it
    home.parent.mkdir(mode=0o700)
    return home


def test_db_stop_purge_stops_the_server_and_deletes_the_cluster(
    tmp_path: Path,
    leftovers: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``aos-sync db stop --purge``: the server stops and its data folder is gone, also when it
    is the private one outside AOS_HOME."""
    home = _private_home(tmp_path)
    monkeypatch.setenv("AOS_HOME", str(home))
    monkeypatch.delenv("AOS_DATABASE_URL", raising=False)
    pg = EmbeddedPostgres(home, durable=False)
    try:
        pg.ensure_running()
        state = _state(home)
        data_folder = Path(state["private_dir"] or home / "pg")
        leftovers.append(data_folder)
        assert data_folder.is_dir() and _listening(int(state["port"]))
        if os.geteuid() == 0:
            assert data_folder.name.startswith("aos-sync-") and not data_folder.is_relative_to(home)
        assert main(["--json", "db", "stop", "--purge"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["stopped"] is True and result["purged"] is True
        assert not data_folder.exists() and not (home / "postgres.json").exists()
        assert not _listening(int(state["port"]))
        assert pg.purge() is False  # nothing left to purge
    finally:
        with contextlib.suppress(EmbeddedPostgresError, OSError):
            pg.stop()


@ROOT_ONLY
def test_a_deleted_aos_home_takes_its_cluster_with_it(
    tmp_path: Path, leftovers: list[Path]
) -> None:
    """Cluster A is stopped and its AOS_HOME deleted; starting cluster B removes A's folder."""
    home_a = _private_home(tmp_path)
    a = EmbeddedPostgres(home_a, durable=False)
    a.ensure_running()
    private_a = Path(_state(home_a)["private_dir"])
    leftovers.append(private_a)
    a.stop()
    shutil.rmtree(home_a)
    assert private_a.is_dir()  # before: it outlived its AOS_HOME

    home_b = tmp_path / "b"
    home_b.mkdir(mode=0o700)
    b = EmbeddedPostgres(home_b, durable=False)
    try:
        b.ensure_running()
        leftovers.append(Path(_state(home_b)["private_dir"]))
        assert not private_a.exists()
    finally:
        b.purge()


@ROOT_ONLY
def test_the_sweep_removes_only_folders_that_are_plainly_orphaned(tmp_path: Path) -> None:
    """A live server, an AOS_HOME that still exists, no owner record, a record someone else
    wrote, the wrong mode or owner, a symlink: each is kept."""
    account = _service_account()
    assert account is not None
    base = tmp_path / "base"
    base.mkdir()
    gone = tmp_path / "deleted-home"

    def folder(name: str, owner: Path | None = gone, *, mode: int = 0o700) -> Path:
        path = base / f"aos-sync-{name}"
        (path / "data").mkdir(parents=True)
        if owner is not None:
            embedded_sweep.record_owner(path, owner)
        os.chown(path, account.pw_uid, account.pw_gid)
        os.chmod(path, mode)
        return path

    orphan = folder("orphan")
    stale_pid = folder("stale-pid")
    (stale_pid / "data" / "postmaster.pid").write_text("999999999\n")
    live = folder("live")
    (live / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    home_exists = folder("home-exists", owner=tmp_path)
    unrecorded = folder("unrecorded", owner=None)
    forged = folder("forged", owner=None)
    (forged / embedded_sweep.OWNER_FILE).write_text(f"{gone}\n")
    os.chown(forged / embedded_sweep.OWNER_FILE, account.pw_uid, account.pw_gid)
    loose = folder("loose", mode=0o755)
    target = folder("target", owner=tmp_path)
    (base / "aos-sync-link").symlink_to(target)
    mine = base / "aos-sync-not-the-servers"
    mine.mkdir(mode=0o700)
    embedded_sweep.record_owner(mine, gone)

    removed = embedded_sweep.sweep_orphans(account.pw_uid, [base])

    assert sorted(removed) == sorted([orphan, stale_pid])
    assert not orphan.exists() and not stale_pid.exists()
    for kept in (live, home_exists, unrecorded, forged, loose, target, mine):
        assert kept.is_dir(), kept
    assert (base / "aos-sync-link").is_symlink()
