"""Attacks on the embedded PostgreSQL's bootstrap, performed for real against throwaway clusters.

Each test makes its own cluster in a temporary ``AOS_HOME`` (initdb takes about a second) and
plays a local attacker: reading secret files or racing their creation, pre-creating the
predictable paths older versions used in the shared temporary directory, swapping the private
data directory for one of its own, and using the application's database role for things only a
superuser may do. A test fails if the attack works.

Run as root (as on the project's CI machine) the attacker is a real second account (``nobody``,
or another unprivileged one that is not the server's) and the server runs as ``postgres``; run
as an ordinary user the same attacks are staged with that user's own files, and what needs a
second account (reading as another user, a directory owned by someone else) is checked through
file modes instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from db.embedded import (
    APP_ROLE,
    SUPERUSER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    _has_server,
    _service_account,
    find_bindir,
)
from db.engine import make_engine
from db.migrate import alembic_config, upgrade

IS_ROOT = os.geteuid() == 0
SHARED_TMP = [Path("/var/tmp"), Path(tempfile.gettempdir())]


def _attacker() -> pwd.struct_passwd | None:
    """A local account that is neither us nor the server's; None when we cannot act as one."""
    if not IS_ROOT:
        return None
    server = _service_account()
    for name in ("nobody", "daemon", "bin", "games"):
        with contextlib.suppress(KeyError):
            acct = pwd.getpwnam(name)
            if acct.pw_uid not in (0, server.pw_uid if server else 0):
                return acct
    raise AssertionError("no unprivileged account to play the attacker")


ATTACKER = _attacker()
SERVER = _service_account() or pwd.getpwuid(os.geteuid())


def _as_attacker(path: Path) -> None:
    """Give ``path`` (not following a symlink) to the attacker, as if they had created it."""
    if ATTACKER is not None:
        os.lchown(path, ATTACKER.pw_uid, ATTACKER.pw_gid)


def _attacker_run(args: list[str]) -> subprocess.Popen[str]:
    """Run ``args`` as the attacker (its own uid and gid, none of root's groups)."""
    assert ATTACKER is not None
    return subprocess.Popen(
        args,
        user=ATTACKER.pw_uid,
        group=ATTACKER.pw_gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )


def _settings(pg: EmbeddedPostgres) -> dict[str, Any]:
    return json.loads((pg.home / "postgres.json").read_text())


def _pg_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tree(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Everything under ``root`` (not following symlinks): owner, mode, size, link target."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        out[str(path.relative_to(root))] = (st.st_uid, st.st_mode, st.st_size, link)
    return out


@pytest.fixture
def make_cluster() -> Iterator[Callable[[Path], EmbeddedPostgres]]:
    """Throwaway clusters; each is stopped and its private data directory removed afterwards."""
    made: list[EmbeddedPostgres] = []

    def make(home: Path) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(home, durable=False)
        made.append(pg)
        return pg

    yield make
    for pg in made:
        with contextlib.suppress(EmbeddedPostgresError, OSError, ValueError):
            pg.stop()
        with contextlib.suppress(OSError, ValueError):
            private = _settings(pg).get("private_dir")
            if private:
                shutil.rmtree(private, ignore_errors=True)


@pytest.fixture
def trash() -> Iterator[list[Path]]:
    """Paths the test staged outside its tmp_path (in the shared temporary directory)."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)


def _private_home(tmp_path: Path) -> Path:
    """An AOS_HOME under a 0700 folder: as root the server account cannot reach it (the data
    goes to the private temporary directory)."""
    parent = tmp_path / "private"
    parent.mkdir(mode=0o700)
    os.chmod(parent, 0o700)
    return parent / "home"


def _shared_home(trash: list[Path]) -> Path:
    """An existing 0755 AOS_HOME in a folder everyone may traverse: the data lives inside it,
    and other users can reach (but must not read) what is there."""
    parent = Path(tempfile.mkdtemp(prefix="aos-sec-"))
    trash.append(parent)
    os.chmod(parent, 0o755)
    home = parent / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    return home


# A local attacker that keeps trying to read every file under the given folders while the
# cluster is being made: it wins if a secret exists, even briefly, with a mode it can read.
RACER = r"""
import fnmatch, os, sys, time
home, shared = sys.argv[1], sys.argv[2:]
print("ready", flush=True)
seen = set()
while True:
    roots = [home]
    for base in shared:
        try:
            roots += [os.path.join(base, n) for n in os.listdir(base) if n.startswith("aos-sync-")]
        except OSError:
            pass
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as fh:
                        data = fh.read(65536)
                except OSError:
                    continue
                if data and (path, data) not in seen:
                    seen.add((path, data))
                    print(path, data.hex(), flush=True)
    time.sleep(0.001)
"""


@pytest.mark.parametrize("layout", ["private-home", "shared-home"])
def test_no_secret_is_readable_by_other_users(
    layout: str,
    tmp_path: Path,
    trash: list[Path],
    make_cluster: Callable[[Path], EmbeddedPostgres],
) -> None:
    home = _private_home(tmp_path) if layout == "private-home" else _shared_home(trash)
    pg = make_cluster(home)
    racer = None
    if ATTACKER is not None:
        racer = _attacker_run([sys.executable, "-c", RACER, str(home), *map(str, SHARED_TMP)])
        assert racer.stdout is not None
        assert racer.stdout.readline().strip() == "ready"
    url = pg.ensure_running()
    stolen = ""
    if racer is not None:
        time.sleep(0.2)
        racer.send_signal(signal.SIGTERM)
        stolen, _ = racer.communicate(timeout=30)

    s = _settings(pg)
    secrets = [s["password"], *([s["app_password"]] if s.get("app_password") else [])]
    datadir_parent = Path(s["datadir"]).parent
    if ATTACKER is not None:
        # Another local user, for real: the racer read nothing secret at any moment of the
        # bootstrap, and reading the files directly now fails.
        assert not any(x.encode().hex() in stolen for x in secrets), stolen
        for target in (home / "postgres.json", datadir_parent / "postgres.log"):
            cat = _attacker_run(["cat", str(target)])
            out, err = cat.communicate(timeout=30)
            assert cat.returncode != 0 and "Permission denied" in err, (target, out)
            assert not any(x in out for x in secrets)
        ls = _attacker_run(["ls", str(datadir_parent)])
        _, err = ls.communicate(timeout=30)
        assert ls.returncode != 0 and "Permission denied" in err

    # Every file and folder we made is private (the 0755 home was the user's own choice), and
    # initdb's password file is gone.
    loose = []
    holders = []
    for root in (home, datadir_parent):
        for path in [root, *root.rglob("*")]:
            st = os.lstat(path)
            assert not stat.S_ISLNK(st.st_mode), path
            assert path.name != ".pwfile", f"{path} left behind"
            if path != home and stat.S_IMODE(st.st_mode) & 0o077:
                loose.append(f"{path} {stat.S_IMODE(st.st_mode):04o}")
            if stat.S_ISREG(st.st_mode) and any(x.encode() in path.read_bytes() for x in secrets):
                holders.append(path)
    assert loose == []
    # The plaintext passwords are in the settings file and nowhere else (not in the log, not in
    # the data directory: the server only ever sees SCRAM verifiers).
    assert holders == [home / "postgres.json"]
    if layout == "private-home":
        assert stat.S_IMODE(home.stat().st_mode) == 0o700

    assert len(secrets) == 2 and all(len(x) >= 24 for x in secrets)
    assert sa.make_url(url).password == s["app_password"]
    if layout == "shared-home" or not IS_ROOT:
        assert datadir_parent == home / "pg"
    else:
        assert datadir_parent == Path(s["private_dir"]) and home not in datadir_parent.parents


def _predictable_paths(home: Path) -> list[Path]:
    """Where versions before the private directory put the data (``/var/tmp/aos-sync-<hash>``),
    and the other names an attacker could guess: the same in the default temporary folder,
    with the path spelled with and without resolving symlinks."""
    spellings = {str(home), str(home.resolve()), str(home) + "/"}
    digests = {hashlib.sha256(s.encode()).hexdigest()[:12] for s in spellings}
    return sorted({base / f"aos-sync-{d}" for base in SHARED_TMP for d in digests})


def test_predictable_shared_paths_are_never_used(
    tmp_path: Path, trash: list[Path], make_cluster: Callable[[Path], EmbeddedPostgres]
) -> None:
    home = _private_home(tmp_path)
    # The attacker's own folder, with a file it can read that every trap points to.
    lair = Path(tempfile.mkdtemp(prefix="aos-lair-"))
    trash.append(lair)
    os.chmod(lair, 0o755)
    loot = lair / "loot"
    loot.write_text("")
    os.chmod(loot, 0o666)
    for path in (lair, loot):
        _as_attacker(path)
    traps = _predictable_paths(home)
    for trap in traps:
        trash.append(trap)
        trap.mkdir(mode=0o777)
        os.chmod(trap, 0o777)
        for name in (".pwfile", "postgres.log", "postgres.json", "PG_VERSION"):
            os.symlink(loot, trap / name)
            _as_attacker(trap / name)
        _as_attacker(trap)
    before = {str(t): _tree(t) for t in [*traps, lair]}

    pg = make_cluster(home)
    url = pg.ensure_running()

    s = _settings(pg)
    assert loot.read_text() == "", "a secret was written through the attacker's symlink"
    for root in [*traps, lair]:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert s["password"].encode() not in data
                assert s.get("app_password", s["password"]).encode() not in data
    # Nothing of the attacker's was touched: not chowned to the server account (as older
    # versions did with the folder), not emptied, not used for the data.
    assert {str(t): _tree(t) for t in [*traps, lair]} == before
    datadir = Path(s["datadir"])
    assert not any(t == p or t in p.parents for t in traps for p in (datadir, datadir.resolve()))
    # And the cluster works.
    with psycopg.connect(_pg_url(url)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)


def _scenarios() -> list[str]:
    # A directory owned by someone else can only be staged by root; as another user the
    # server's data never leaves AOS_HOME and a symlink is the replacement there is to try.
    return ["other-users-directory", "symlink", "loosened-mode"] if IS_ROOT else ["symlink"]


@pytest.mark.parametrize("replacement", _scenarios())
def test_replaced_data_directory_is_not_trusted(
    replacement: str,
    tmp_path: Path,
    trash: list[Path],
    make_cluster: Callable[[Path], EmbeddedPostgres],
) -> None:
    home = _private_home(tmp_path)
    pg = make_cluster(home)
    pg.ensure_running()
    first = _settings(pg)
    place = Path(first.get("private_dir") or Path(first["datadir"]).parent)
    if IS_ROOT:
        assert place.parent in SHARED_TMP and place.name.startswith("aos-sync-")
        st = os.lstat(place)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == SERVER.pw_uid
    assert pg.stop()

    # Keep the real one aside (cleaned up later) and put the attacker's in its place: a
    # plausible cluster whose settings would run the attacker's command as the server account.
    moved = place.with_name(place.name + "-moved")
    os.rename(place, moved)
    trash.append(moved)
    fake = place if replacement == "other-users-directory" else Path(tempfile.mkdtemp())
    if replacement == "loosened-mode":
        os.rename(moved, place)
        trash.remove(moved)
        os.chmod(place, 0o755)
    else:
        trash.append(fake)
        fake.mkdir(mode=0o700, exist_ok=True)
        (fake / "data").mkdir(mode=0o700)
        (fake / "data" / "PG_VERSION").write_text("15\n")
        (fake / "data" / "postgresql.conf").write_text("archive_command = 'cp %p owned'\n")
        os.symlink(fake / "loot", fake / ".pwfile")
        for path in [fake, *fake.rglob("*")]:
            _as_attacker(path)
        if replacement == "symlink":
            os.symlink(fake, place)
            _as_attacker(place)
            trash.append(place)
    before = _tree(fake) if replacement != "loosened-mode" else {}

    if replacement == "loosened-mode":
        with pytest.raises(EmbeddedPostgresError, match=r"mode 0755, not 0700.*chmod 700"):
            pg.ensure_running()
        assert _settings(pg) == first
        assert pg.status()["running"] is False
        return

    url = pg.ensure_running()
    second = _settings(pg)
    datadir = Path(second["datadir"])
    assert fake not in datadir.resolve().parents
    if first.get("private_dir"):
        assert place not in datadir.parents
    else:  # inside AOS_HOME: the symlink is gone, a directory of ours stands in its place
        assert not place.is_symlink() and os.lstat(place).st_uid == os.geteuid()
    assert second["password"] != first["password"]
    assert _tree(fake) == before, "the attacker's directory was used or changed"
    assert not (fake / "loot").exists()
    with psycopg.connect(_pg_url(url)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)


@pytest.mark.parametrize(
    "how", ["world-writable", "someone-elses"] if IS_ROOT else ["world-writable"]
)
def test_unsafe_aos_home_is_refused(
    how: str, tmp_path: Path, make_cluster: Callable[[Path], EmbeddedPostgres]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if how == "world-writable":
        os.chmod(home, 0o777)  # anyone could swap postgres.json for their own
        expected = r"writable by other users.*chmod go-w"
    else:
        os.chmod(home, 0o700)
        _as_attacker(home)  # the attacker's folder, with settings of its choosing
        expected = r"belongs to .*use an AOS_HOME of your own"
    pg = make_cluster(home)
    with pytest.raises(EmbeddedPostgresError, match=expected):
        pg.ensure_running()
    assert list(home.iterdir()) == []


def test_absent_aos_home_is_created_private(
    tmp_path: Path, make_cluster: Callable[[Path], EmbeddedPostgres]
) -> None:
    home = tmp_path / "a" / "home"
    old = os.umask(0)  # the most permissive umask must not matter
    try:
        pg = make_cluster(home)
        pg.ensure_running()
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.parent.stat().st_mode) & 0o022 == 0  # nobody can swap it either
    for path in home.iterdir():
        assert stat.S_IMODE(path.lstat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_application_role_is_not_a_superuser(
    tmp_path: Path, make_cluster: Callable[[Path], EmbeddedPostgres]
) -> None:
    pg = make_cluster(_private_home(tmp_path))
    url = pg.ensure_running()
    assert url == pg.url()
    assert sa.make_url(url).username == APP_ROLE
    assert sa.make_url(pg.superuser_url()).username == SUPERUSER
    engine = make_engine(url)
    try:
        upgrade(engine)  # the migrations run as aos_app (CREATEROLE suffices)
    finally:
        engine.dispose()

    with psycopg.connect(_pg_url(url), autocommit=True) as conn:
        attrs = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolreplication, rolbypassrls, rolcreaterole "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        # CREATEDB: each agency's database is the application's to make (db/agencydb.py).
        assert attrs == (False, True, False, False, True)
        owners: dict[object, object] = dict(
            conn.execute(
                "SELECT c.relname, c.relowner::regrole::text FROM pg_class c "
                "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','S','v','m')"
            ).fetchall()
        )
        assert {"alembic_version", "agency", "integration", "sync_run"} <= set(owners)
        assert set(owners.values()) == {APP_ROLE}
        assert conn.execute(
            "SELECT d.datdba::regrole::text, n.nspowner::regrole::text FROM pg_database d, "
            "pg_namespace n WHERE d.datname = current_database() AND n.nspname = 'public'"
        ).fetchone() == (APP_ROLE, APP_ROLE)
        for attack in (
            "SELECT rolname, rolpassword FROM pg_authid",
            "COPY (SELECT 1) TO PROGRAM 'id'",
            "SELECT pg_read_file('postgresql.conf')",
            "ALTER ROLE aos_app SUPERUSER",
            "ALTER ROLE aos_app BYPASSRLS",
            f"ALTER ROLE {SUPERUSER} PASSWORD 'taken-over'",
            "CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x'",
            f"SET ROLE {SUPERUSER}",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
    # The superuser's password still works (the attacks above changed nothing) ...
    with psycopg.connect(_pg_url(pg.superuser_url("postgres")), autocommit=True) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True,)
        # ... and a tampered aos_app is put back by the next start.
        conn.execute(f"ALTER ROLE {APP_ROLE} SUPERUSER BYPASSRLS PASSWORD 'changed'")
    assert pg.ensure_running() == url
    with psycopg.connect(_pg_url(url)) as conn:
        assert conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False, False)


def _server_bindirs() -> list[Path]:
    """The machine's PostgreSQL and, when installed, the pgserver wheel's (another major
    version: 16+ changed what CREATEROLE may do)."""
    found = [find_bindir()]
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.origin:
        wheel = Path(spec.origin).parent / "pginstall" / "bin"
        if _has_server(wheel) and wheel.resolve() != found[0].resolve():
            found.append(wheel)
    return found


def _major(bindir: Path) -> str:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return "pg" + out.stdout.split()[2].split(".")[0]


@pytest.mark.parametrize("bindir", _server_bindirs(), ids=_major)
def test_old_style_cluster_is_converted(
    bindir: Path,
    monkeypatch: pytest.MonkeyPatch,
    trash: list[Path],
    make_cluster: Callable[[Path], EmbeddedPostgres],
) -> None:
    monkeypatch.setenv("AOS_PG_BINDIR", str(bindir))
    home = _shared_home(trash)  # older versions kept the data in AOS_HOME/pg: reused as is
    pg = make_cluster(home)
    pg.ensure_running()

    # Make it what an older version left: no aos_app, database and tables of the superuser,
    # an analyst login made by the superuser, settings without the application's password.
    with psycopg.connect(_pg_url(pg.superuser_url("postgres")), autocommit=True) as conn:
        conn.execute("DROP DATABASE aos WITH (FORCE)")
        conn.execute(f"DROP ROLE {APP_ROLE}")
        conn.execute("CREATE DATABASE aos")
    su_engine = make_engine(pg.superuser_url())
    try:
        upgrade(su_engine, "0002")
        with su_engine.begin() as conn:
            conn.execute(sa.text("CREATE SEQUENCE loose_counter"))
            conn.execute(sa.text("CREATE VIEW agency_names AS SELECT name FROM agency"))
            conn.execute(sa.text("CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'"))
            conn.execute(sa.text("CREATE ROLE analyst_old LOGIN PASSWORD 'old-password'"))
            conn.execute(sa.text("GRANT aos_analyst TO analyst_old"))
    finally:
        su_engine.dispose()
    settings = _settings(pg)
    old = {k: settings[k] for k in ("port", "password", "datadir")}
    (home / "postgres.json").unlink()
    fd = os.open(home / "postgres.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(old, fh)
    os.chmod(home / "postgres.json", 0o644)  # as the oldest versions left it
    os.chmod(home / "pg", 0o755)
    assert pg.stop()
    assert _superuser_owned_after_start(pg) == ([], True)
    assert stat.S_IMODE((home / "postgres.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "pg").stat().st_mode) == 0o700
    url = pg.url()
    assert sa.make_url(url).username == APP_ROLE
    assert _settings(pg)["password"] == old["password"]  # the same cluster, converted

    # The application migrates on (0003 onwards, updating alembic_version) and writes.
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(sa.text("INSERT INTO agency (name) VALUES ('Converted')"))
            assert conn.execute(sa.text("SELECT nextval('loose_counter')")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT one()")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM agency_names")).scalar_one() == 1
            # Analyst logins the superuser made remain the application's to manage (on 16+
            # through the ADMIN OPTION ensure_running() delegated).
            conn.execute(sa.text("ALTER ROLE analyst_old PASSWORD 'new-password'"))
            conn.execute(sa.text("CREATE ROLE analyst_new LOGIN PASSWORD 'new-password'"))
            conn.execute(sa.text("GRANT aos_analyst TO analyst_new"))
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == head != "0002"
    u = sa.make_url(url)
    for analyst in ("analyst_old", "analyst_new"):
        # They log in (their passwords were set above), but never to the control database:
        # an analyst reads its agency's own database only (db/agencydb.py).
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(
                host=u.host, port=u.port, dbname="aos", user=analyst, password="new-password"
            )
    # Converting is idempotent.
    assert _superuser_owned_after_start(pg) == ([], False)
    assert pg.url() == url


def _superuser_owned_after_start(pg: EmbeddedPostgres) -> tuple[list[str], bool]:
    """``ensure_running()``, then what in database ``aos`` is still not owned by aos_app, and
    whether this call started the server."""
    pg.started = False
    pg.ensure_running()
    return _superuser_owned(pg.superuser_url()), pg.started


def _superuser_owned(url: str) -> list[str]:
    with psycopg.connect(_pg_url(url)) as conn:
        rows = conn.execute(
            """
            SELECT 'relation ' || c.relname FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relowner <> %(app)s::regrole
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            UNION ALL
            SELECT 'routine ' || p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> %(app)s::regrole
            UNION ALL
            SELECT 'schema public' FROM pg_namespace
             WHERE nspname = 'public' AND nspowner <> %(app)s::regrole
            UNION ALL
            SELECT 'database' FROM pg_database
             WHERE datname = current_database() AND datdba <> %(app)s::regrole
            """,
            {"app": APP_ROLE},
        ).fetchall()
    return sorted(str(r[0]) for r in rows)
