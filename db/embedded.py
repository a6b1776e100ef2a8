"""A real PostgreSQL server owned by the project, for machines with no database configured.

Why: the demo and the test suite must work on a fresh machine with nothing but Python. When
``AOS_DATABASE_URL`` is unset we run our own cluster in a local data directory, reused between
commands and stopped with ``aos-sync db stop``.

Server binaries are looked up in this order: ``AOS_PG_BINDIR``, ``pg_config --bindir``, ``PATH``,
Debian's ``/usr/lib/postgresql/<ver>/bin``, Homebrew, and finally the binaries bundled in the
``pgserver`` wheel. PostgreSQL refuses to run as root, so when we are root the server runs as an
unprivileged account (``postgres`` if it exists, else ``nobody``) and its data directory lives
where that account can reach it.

The server listens on 127.0.0.1 only (TCP, no Unix socket: socket paths have a 107-byte limit
and a clone may sit in a deep folder), with password authentication for every role, so analyst
roles cannot impersonate the superuser.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql as psql

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_bindir"]

SUPERUSER = "aos"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be found, initialised or started."""


def _has_server(bindir: Path) -> bool:
    return all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres"))


def find_bindir() -> Path:
    """Locate PostgreSQL server binaries; raise with the places searched when there are none."""
    candidates: list[Path] = []
    if env := os.environ.get("AOS_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(p) for p in debian]
    brew = glob.glob("/opt/homebrew/opt/postgresql*/bin") + glob.glob(
        "/usr/local/opt/postgresql*/bin"
    )
    candidates += [Path(p) for p in sorted(brew, reverse=True)]
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for cand in candidates:
        if _has_server(cand):
            return cand
    raise EmbeddedPostgresError(
        "no PostgreSQL server binaries found (looked in AOS_PG_BINDIR, pg_config, PATH, "
        "/usr/lib/postgresql/*/bin, Homebrew and the pgserver wheel); install PostgreSQL or "
        "`pip install pgserver`, or set AOS_DATABASE_URL"
    )


def _version_key(path: str) -> tuple[int, ...]:
    digits = Path(path).parent.name
    return tuple(int(p) for p in digits.split(".") if p.isdigit()) or (0,)


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as: ourselves, or an unprivileged one when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise EmbeddedPostgresError("running as root and no unprivileged account (postgres, nobody)")


def _world_traversable(path: Path) -> bool:
    """True when every ancestor of ``path`` lets other users through (o+x)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Settings:
    port: int
    password: str
    datadir: str


class EmbeddedPostgres:
    """One cluster under ``home``: ``ensure_running()`` initialises and starts it as needed."""

    def __init__(self, home: Path, *, durable: bool = True) -> None:
        self.home = home.resolve()
        self.durable = durable
        self.account = _service_account()
        self._settings_file = self.home / "postgres.json"

    # -- public -------------------------------------------------------------------------------
    def url(self, database: str = "aos") -> str:
        s = self._load()
        return f"postgresql+psycopg://{SUPERUSER}:{s.password}@127.0.0.1:{s.port}/{database}"

    @property
    def port(self) -> int:
        return self._load().port

    def ensure_running(self) -> str:
        """Start the cluster (initialising it the first time) and return the superuser URL."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not self._settings_file.exists() or not self._datadir_ok():
                self._initdb()
            if not self._is_running():
                self._start()
            self.create_database("aos", exist_ok=True)
        return self.url()

    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create a database in this cluster and return its URL."""
        with self._admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists and not exist_ok:
                raise EmbeddedPostgresError(f"database {name!r} already exists")
            if not exists:
                conn.execute(psql.SQL("CREATE DATABASE {}").format(psql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                psql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psql.Identifier(name))
            )

    def stop(self) -> bool:
        """Stop the server if it runs; True when something was stopped."""
        if not self._settings_file.exists():
            return False
        with self._lock():
            if not self._is_running():
                return False
            self._pg_ctl("stop", "-m", "fast", "-w")
            return True

    def status(self) -> dict[str, object]:
        running = self._settings_file.exists() and self._is_running()
        info: dict[str, object] = {"home": str(self.home), "running": running}
        if self._settings_file.exists():
            s = self._load()
            info.update(port=s.port, datadir=s.datadir)
        return info

    # -- internals ----------------------------------------------------------------------------
    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        s = self._load()
        return psycopg.connect(
            host="127.0.0.1",
            port=s.port,
            user=SUPERUSER,
            password=s.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _load(self) -> _Settings:
        try:
            return _Settings(**json.loads(self._settings_file.read_text()))
        except FileNotFoundError as exc:
            raise EmbeddedPostgresError(f"no embedded cluster in {self.home} yet") from exc

    def _datadir(self) -> Path:
        preferred = self.home / "pg" / "data"
        if self.account is None or _world_traversable(self.home):
            return preferred
        # Root with a private parent folder: the server account could not reach the data, so
        # keep it in a per-project folder under /var/tmp instead (still reused across runs).
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"aos-sync-{digest}" / "data"

    def _datadir_ok(self) -> bool:
        return (Path(self._load().datadir) / "PG_VERSION").exists()

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        user = {"user": self.account.pw_uid, "group": self.account.pw_gid} if self.account else {}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if self.account:
            env["HOME"] = "/tmp"
        try:
            return subprocess.run(
                args,
                capture_output=True,
                text=True,
                check=True,
                env=env,
                **user,
                **kw,  # type: ignore[call-overload]
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed: {' | '.join(detail)}"
            ) from exc

    def _initdb(self) -> None:
        bindir = find_bindir()
        datadir = self._datadir()
        if datadir.exists():
            shutil.rmtree(datadir)
        datadir.mkdir(parents=True)  # its parent (owned by the server account) holds the log
        password = secrets.token_urlsafe(24)
        pwfile = datadir.parent / ".pwfile"
        pwfile.write_text(password + "\n")
        if self.account:
            for path in (datadir.parent, datadir, pwfile):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        os.chmod(datadir, 0o700)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = datadir / "postgresql.conf"
        extra = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "wal_compression = on",
        ]
        if not self.durable:
            extra += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with conf.open("a") as fh:
            fh.write("\n# AudienceOS Sync embedded settings\n" + "\n".join(extra) + "\n")
        settings = _Settings(port=_free_port(), password=password, datadir=str(datadir))
        self._settings_file.write_text(json.dumps(settings.__dict__))
        os.chmod(self._settings_file, 0o600)
        (self.home / "bindir").write_text(str(bindir))

    def _bindir(self) -> Path:
        saved = self.home / "bindir"
        if saved.exists() and _has_server(Path(saved.read_text().strip())):
            return Path(saved.read_text().strip())
        return find_bindir()

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        datadir = self._load().datadir
        return self._run([str(self._bindir() / "pg_ctl"), "-D", datadir, *args])

    def _is_running(self) -> bool:
        # pg_ctl refuses to run as root, so even a status check goes through the service account.
        try:
            self._pg_ctl("status")
        except EmbeddedPostgresError:
            return False
        return True

    def _start(self) -> None:
        s = self._load()
        if not _port_free(s.port):
            s.port = _free_port()
            self._settings_file.write_text(json.dumps(s.__dict__))
        log = Path(s.datadir).parent / "postgres.log"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", f"-p {s.port}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
