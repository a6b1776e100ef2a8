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

Two roles, because the application should not be able to do what a superuser can (read
``pg_authid``, run programs with ``COPY ... PROGRAM``, read server files): the bootstrap
superuser ``aos`` is used only here, to create roles and databases; the application connects as
``aos_app`` (``NOSUPERUSER CREATEROLE``: it runs the migrations, owns the schema, and creates
analyst logins). :meth:`EmbeddedPostgres.url` is the ``aos_app`` URL; the superuser's is only
reachable through :meth:`EmbeddedPostgres.superuser_url`.

Secrets on disk (a review found each of these exploitable by another local user before):

* ``AOS_HOME`` must be a directory only we can write (created 0700); ``postgres.json`` (port,
  both passwords, where the data lives) is written 0600 with ``O_CREAT | O_EXCL | O_NOFOLLOW``
  to a fresh name and renamed into place, never chmod-ed after the fact;
* initdb's password file is made the same way inside a 0700 directory and removed after use;
* as root with an ``AOS_HOME`` the server account cannot reach, the data goes to a directory
  made by ``tempfile.mkdtemp`` (random name, 0700), recorded in ``postgres.json`` and reused
  only while it is still ours: not a symlink, owned by the server account, mode 0700. There is
  no predictable path in a shared temporary directory to pre-create. It records its
  ``AOS_HOME``, so that once that is deleted the next ``ensure_running`` of any cluster removes
  it (:mod:`db.embedded_sweep`); :meth:`EmbeddedPostgres.purge` removes a cluster at once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import glob
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psycopg
from psycopg import sql as psql

from db import embedded_sweep

__all__ = [
    "APP_ROLE",
    "SUPERUSER",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "find_bindir",
    "make_private_home",
]

SUPERUSER = "aos"
APP_ROLE = "aos_app"
#: Roles the migrations make. On PostgreSQL 16+ ``CREATEROLE`` only manages roles it holds
#: ADMIN OPTION on, so roles the superuser made in older clusters are delegated to ``aos_app``.
_DELEGATED_ROLES = ("aos_analyst", "aos_rls")
_APP_ROLE_ATTRIBUTES = (
    "LOGIN INHERIT NOSUPERUSER CREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1"
)
_SECRET_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

log = logging.getLogger(__name__)


def make_private_home(home: Path) -> Path:
    """Create ``home`` (``AOS_HOME``) 0700 when absent, whatever the umask; missing parents are
    made 0755, writable by us only. Whichever command first needs ``AOS_HOME`` (the embedded
    cluster, the local Prefect server, ``serve``'s scratch folder, the development key) creates
    it through here, so it never starts out readable by others. An existing one is left as it
    is (:class:`EmbeddedPostgres` refuses one that others could write into)."""
    if not os.path.lexists(home):
        for folder in [*reversed(home.parents), home]:
            with contextlib.suppress(FileExistsError):
                if not os.path.lexists(folder):
                    os.mkdir(folder, 0o700 if folder == home else 0o755)
    return home


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


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _create_secret(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Create ``path`` 0600 with ``text``; fail rather than follow or reuse anything there.

    ``O_EXCL | O_NOFOLLOW`` means a file or symlink planted at ``path`` makes this raise
    instead of writing our secret to wherever it points, and the mode is right from the first
    byte (umask can only take bits away)."""
    fd = os.open(path, _SECRET_FLAGS, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, owner.pw_uid, owner.pw_gid)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_secret(path: Path, text: str) -> None:
    """Atomically replace ``path`` by a new 0600 file (a fresh random name renamed over it), so
    readers never see a half-written or briefly world-readable settings file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _create_secret(tmp, text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    Sending the verifier instead of the password keeps the plaintext out of the server: a
    failed ``ALTER ROLE`` is logged with its statement text, and the log would hold it."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _scram_matches(verifier: str | None, password: str) -> bool:
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$[^:]+:.+", verifier or "")
    if match is None:
        return False
    again = _scram_verifier(password, salt=base64.b64decode(match[2]), iterations=int(match[1]))
    return hmac.compare_digest(again, verifier or "")


@dataclass
class _Settings:
    port: int
    password: str  # the bootstrap superuser's
    datadir: str
    app_password: str = ""  # aos_app's; empty in clusters made before the role existed
    private_dir: str = ""  # the mkdtemp directory holding ``datadir``, when outside AOS_HOME


class EmbeddedPostgres:
    """One cluster under ``home``: ``ensure_running()`` initialises and starts it as needed."""

    def __init__(self, home: Path, *, durable: bool = True) -> None:
        self.home = home.resolve()
        self.durable = durable
        self.account = _service_account()
        self._settings_file = self.home / "postgres.json"
        #: True once ``ensure_running()`` of this object has started the server (the test
        #: suite stops only a server it started).
        self.started = False

    # -- public -------------------------------------------------------------------------------
    def url(self, database: str = "aos") -> str:
        """The application's URL (role ``aos_app``, no superuser rights)."""
        s = self._load()
        if not s.app_password:
            raise EmbeddedPostgresError(
                f"the cluster in {self.home} has no {APP_ROLE} role yet; run ensure_running()"
            )
        return f"postgresql+psycopg://{APP_ROLE}:{s.app_password}@127.0.0.1:{s.port}/{database}"

    def superuser_url(self, database: str = "aos") -> str:
        """The bootstrap superuser's URL: for creating roles and databases, never for the app."""
        s = self._load()
        return f"postgresql+psycopg://{SUPERUSER}:{s.password}@127.0.0.1:{s.port}/{database}"

    @property
    def port(self) -> int:
        return self._load().port

    def ensure_running(self) -> str:
        """Start the cluster (initialising it the first time), make sure ``aos_app`` exists and
        owns database ``aos``, and return the ``aos_app`` URL."""
        self._ensure_home()
        if self.account is not None:  # root: private clusters whose AOS_HOME was deleted
            try:
                embedded_sweep.sweep_orphans(self.account.pw_uid)
            except OSError as exc:  # never a reason not to start this cluster
                log.warning("could not sweep orphaned embedded clusters: %s", exc)
        with self._lock():
            if self._trusted_datadir() is None:
                self._initdb()
            if not self._is_running():
                self._start()
                self.started = True
            self._bootstrap()
        return self.url()

    def create_database(
        self, name: str, template: str | None = None, *, exist_ok: bool = False
    ) -> str:
        """Create a database owned by ``aos_app`` (optionally a copy of ``template``) and return
        its ``aos_app`` URL. With ``exist_ok`` an existing database is taken over instead:
        it, its schema ``public`` and everything the superuser owns there pass to ``aos_app``."""
        with self._admin() as conn:
            row = conn.execute(
                "SELECT datdba::regrole::text FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if row and not exist_ok:
                raise EmbeddedPostgresError(f"database {name!r} already exists")
            if row is None:
                stmt = psql.SQL("CREATE DATABASE {} OWNER {}").format(
                    psql.Identifier(name), psql.Identifier(APP_ROLE)
                )
                if template:
                    stmt += psql.SQL(" TEMPLATE {}").format(psql.Identifier(template))
                conn.execute(stmt)
                # Database privileges are not copied from a template: none for PUBLIC.
                conn.execute(
                    psql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        psql.Identifier(name)
                    )
                )
            elif row[0] != APP_ROLE:
                conn.execute(
                    psql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        psql.Identifier(name), psql.Identifier(APP_ROLE)
                    )
                )
        self._hand_over(name)
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
        self._ensure_home()
        with self._lock():
            if self._trusted_datadir() is None or not self._is_running():
                return False
            self._pg_ctl("stop", "-m", "fast", "-w")
            return True

    def purge(self) -> bool:
        """Stop the server and delete the cluster: its data directory (in ``AOS_HOME``, or the
        private temporary one) and its settings. True when there was a cluster to remove."""
        if not self._settings_file.exists():
            return False
        self._ensure_home()
        with self._lock():
            s = self._load()
            datadir = self._trusted_datadir()
            if datadir is not None and self._is_running():
                self._pg_ctl("stop", "-m", "fast", "-w")
            if not s.private_dir:
                shutil.rmtree(self.home / "pg", ignore_errors=True)  # in AOS_HOME: ours alone
            elif datadir is not None:  # still ours (not swapped): remove it
                shutil.rmtree(s.private_dir, ignore_errors=True)
            else:
                log.warning("not removing %s: it is no longer the cluster's", s.private_dir)
            self._settings_file.unlink()
            (self.home / "bindir").unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, object]:
        running = self._settings_file.exists() and self._is_running()
        info: dict[str, object] = {"home": str(self.home), "running": running}
        if self._settings_file.exists():
            s = self._load()
            info.update(port=s.port, datadir=s.datadir)
        return info

    # -- AOS_HOME and the settings file -------------------------------------------------------
    def _ensure_home(self) -> None:
        """Create ``AOS_HOME`` 0700 when absent; refuse one that others could write into (they
        could swap our settings or the data directory) or that belongs to someone else."""
        make_private_home(self.home)
        st = os.lstat(self.home)
        if not stat.S_ISDIR(st.st_mode):
            raise EmbeddedPostgresError(f"AOS_HOME {self.home} is not a directory")
        if st.st_uid != os.geteuid():
            raise EmbeddedPostgresError(
                f"AOS_HOME {self.home} belongs to {_owner_name(st.st_uid)}, not to "
                f"{_owner_name(os.geteuid())} who runs this: use an AOS_HOME of your own "
                f"(set AOS_HOME=...) or `chown {_owner_name(os.geteuid())} {self.home}`"
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise EmbeddedPostgresError(
                f"AOS_HOME {self.home} is writable by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}), who could replace the cluster's "
                f"settings: run `chmod go-w {self.home}` (or use another AOS_HOME)"
            )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(
            self.home / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # made by an older version; it holds nothing
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> _Settings:
        try:
            fd = os.open(self._settings_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise EmbeddedPostgresError(f"no embedded cluster in {self.home} yet") from exc
        except OSError as exc:  # ELOOP: a symlink where our settings should be
            raise EmbeddedPostgresError(
                f"{self._settings_file} is not a regular file ({exc.strerror}); remove it"
            ) from exc
        with os.fdopen(fd) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise EmbeddedPostgresError(
                    f"{self._settings_file} is not a file of ours "
                    f"(owner {_owner_name(st.st_uid)}); remove it to start a new cluster"
                )
            raw = json.load(fh)
        known = {f.name for f in fields(_Settings)}
        s = _Settings(**{k: v for k, v in raw.items() if k in known})
        if stat.S_IMODE(st.st_mode) & 0o077:
            self._save(s)  # an older version's file: rewrite it 0600 (same content)
        return s

    def _save(self, s: _Settings) -> None:
        _replace_secret(self._settings_file, json.dumps(asdict(s)))

    # -- where the data lives -----------------------------------------------------------------
    def _expected_uid(self) -> int:
        return self.account.pw_uid if self.account else os.geteuid()

    def _trusted_datadir(self) -> Path | None:
        """The recorded data directory when it is initialised and still ours, else None (then
        a new cluster is made). Raises when it is ours but someone loosened its mode."""
        if not self._settings_file.exists():
            return None
        s = self._load()
        datadir = Path(s.datadir)
        parent = datadir.parent
        if parent == self.home / "pg":
            # Inside AOS_HOME, which only we can write: clusters of older versions made this
            # 0755, so tighten it rather than throw the data away.
            st = self._lstat_dir(parent)
            if st is None:
                return None
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(parent, 0o700)
        elif s.private_dir and parent == Path(s.private_dir):
            st = self._lstat_dir(parent)
            if st is None:
                log.warning(
                    "the embedded cluster's directory %s is gone or is no longer ours; "
                    "making a new cluster",
                    parent,
                )
                return None
            if stat.S_IMODE(st.st_mode) != 0o700:
                raise EmbeddedPostgresError(
                    f"the embedded cluster's directory {parent} has mode "
                    f"{stat.S_IMODE(st.st_mode):04o}, not 0700: someone changed it. Check it, "
                    f"then `chmod 700 {parent}`, or remove {self._settings_file} to make a "
                    "new cluster"
                )
        else:
            # A predictable path in a shared directory (made by versions before the private
            # mkdtemp one): whoever created it first may have read the superuser password.
            log.warning(
                "not reusing the embedded cluster in %s (a shared, predictable location whose "
                "creator may have read its password); making a new cluster. If the old server "
                "still runs, stop it with `pg_ctl -D %s stop` as its account",
                parent,
                datadir,
            )
            return None
        if self._lstat_dir(datadir) is None or not (datadir / "PG_VERSION").is_file():
            return None
        return datadir

    def _lstat_dir(self, path: Path) -> os.stat_result | None:
        """``lstat`` of ``path`` when it is a real directory owned by the server account."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != self._expected_uid():
            return None
        return st

    def _new_location(self) -> tuple[Path, str]:
        """(data directory, private directory or "") for a new cluster.

        In AOS_HOME when the server account can reach it; otherwise (root with a private
        AOS_HOME) a fresh ``mkdtemp`` directory, whose random name nobody can pre-create."""
        if self.account is None or _world_traversable(self.home):
            return self.home / "pg" / "data", ""
        # /var/tmp survives reboots (the cluster is reused); mkdtemp makes the name unguessable.
        base = str(embedded_sweep.private_bases()[0])
        if not _world_traversable(Path(base)):
            raise EmbeddedPostgresError(
                f"the server account {self.account.pw_name} can reach neither {self.home} nor "
                f"{base}: set AOS_HOME to a folder it can traverse"
            )
        private = tempfile.mkdtemp(prefix="aos-sync-", dir=base)
        return Path(private) / "data", private

    # -- running the server -------------------------------------------------------------------
    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server program as the service account (root's groups dropped too)."""
        acct = self.account
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if acct:
            env["HOME"] = "/tmp"
        try:
            return subprocess.run(
                args,
                capture_output=True,
                text=True,
                check=True,
                env=env,
                user=acct.pw_uid if acct else None,
                group=acct.pw_gid if acct else None,
                extra_groups=[] if acct else None,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed: {' | '.join(detail)}"
            ) from exc

    def _initdb(self) -> None:
        bindir = find_bindir()
        datadir, private = self._new_location()
        parent = datadir.parent
        if not private:
            # Our own AOS_HOME/pg: start from nothing (an old cluster, an old log).
            if parent.is_symlink() or parent.is_file():
                parent.unlink()
            elif parent.exists():
                shutil.rmtree(parent)
            os.mkdir(parent, 0o700)
        # Everything is made while ``parent`` is still ours alone; only then is it handed to
        # the server account. The parent also holds the server log.
        try:
            password = self._initdb_in(bindir, datadir)
            if private:
                embedded_sweep.record_owner(Path(private), self.home)
        except BaseException:
            if private:  # nobody else knows this directory: do not leave it behind
                shutil.rmtree(private, ignore_errors=True)
            raise
        settings = _Settings(
            port=_free_port(),
            password=password,
            datadir=str(datadir),
            app_password=secrets.token_urlsafe(24),
            private_dir=private,
        )
        self._save(settings)
        _replace_secret(self.home / "bindir", str(bindir))

    def _initdb_in(self, bindir: Path, datadir: Path) -> str:
        """Run initdb into ``datadir`` (its parent exists and is ours alone); return the
        superuser's password."""
        parent = datadir.parent
        password = secrets.token_urlsafe(24)
        pwfile = parent / ".pwfile"
        _create_secret(pwfile, password + "\n", owner=self.account)
        try:
            os.mkdir(datadir, 0o700)
            if self.account:
                os.chown(datadir, self.account.pw_uid, self.account.pw_gid)
                os.chown(parent, self.account.pw_uid, self.account.pw_gid)
            os.chmod(parent, 0o700)
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
        extra = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "password_encryption = 'scram-sha-256'",
            "max_connections = 400",
            "shared_buffers = 256MB",
            "wal_compression = on",
        ]
        if not self.durable:
            extra += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        fd = os.open(datadir / "postgresql.conf", os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        with os.fdopen(fd, "a") as fh:
            fh.write("\n# AudienceOS Sync embedded settings\n" + "\n".join(extra) + "\n")
        return password

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
            self._save(s)
        log_file = Path(s.datadir).parent / "postgres.log"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log_file), "-o", f"-p {s.port}")

    # -- roles and ownership (as the superuser) -----------------------------------------------
    def _admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection: bootstrap, and creating or dropping databases only."""
        s = self._load()
        return psycopg.connect(
            host="127.0.0.1",
            port=s.port,
            user=SUPERUSER,
            password=s.password,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    def _bootstrap(self) -> None:
        """Idempotently: role ``aos_app`` with the password of the settings file, delegation of
        the migrations' roles (PostgreSQL 16+), and database ``aos`` owned by ``aos_app``."""
        s = self._load()
        if not s.app_password:  # a cluster made before aos_app existed
            s.app_password = secrets.token_urlsafe(24)
            self._save(s)
        role = psql.Identifier(APP_ROLE)
        with self._admin() as conn:
            row = conn.execute(
                "SELECT rolpassword, (rolcanlogin AND rolinherit AND NOT rolsuper AND rolcreaterole"
                " AND rolcreatedb AND NOT rolreplication AND NOT rolbypassrls"
                " AND rolconnlimit = -1) FROM pg_authid WHERE rolname = %s",
                (APP_ROLE,),
            ).fetchone()
            if row is None:
                conn.execute(
                    psql.SQL("CREATE ROLE {} " + _APP_ROLE_ATTRIBUTES + " PASSWORD {}").format(
                        role, psql.Literal(_scram_verifier(s.app_password))
                    )
                )
            elif not row[1] or not _scram_matches(str(row[0] or ""), s.app_password):
                # Someone changed it (or a new password was generated): put it back.
                conn.execute(
                    psql.SQL("ALTER ROLE {} " + _APP_ROLE_ATTRIBUTES + " PASSWORD {}").format(
                        role, psql.Literal(_scram_verifier(s.app_password))
                    )
                )
            if conn.info.server_version >= 160000:
                self._delegate_roles(conn)
            # Ending an analyst's sessions (a revoked grant, a dropped agency database).
            conn.execute(psql.SQL("GRANT pg_signal_backend TO {}").format(role))
        self.create_database("aos", exist_ok=True)
        # The cluster's own databases; every other one is made by create_database or by
        # db/agencydb.py, both of which revoke the same from PUBLIC as they make it.
        for database in ("postgres", "template1", "aos"):
            self._lock_down(database)

    def _lock_down(self, database: str) -> None:
        """Nothing for PUBLIC in any database of the cluster: no CONNECT, no TEMPORARY, and no
        large objects (every agency database is a copy of ``template1``, so it inherits the
        last: an analyst can create nothing, not even a large object). Each database's owner
        keeps its own rights; an analyst login is granted CONNECT on its agency's alone."""
        with self._admin(database) as conn:
            conn.execute(
                psql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                    psql.Identifier(database)
                )
            )
            conn.execute(
                "REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),"
                " pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_import(text),"
                " pg_catalog.lo_import(text, oid) FROM PUBLIC"
            )

    def _delegate_roles(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Give ``aos_app`` ADMIN OPTION (without inheriting their rights) on the migrations'
        roles and the analyst logins, when the superuser made them (clusters of older versions):
        since PostgreSQL 16 ``CREATEROLE`` alone no longer lets it grant or alter them."""
        rows = conn.execute(
            """
            SELECT r.rolname FROM pg_roles r
             WHERE NOT r.rolsuper AND r.rolname <> %(app)s
               AND (r.rolname = ANY(%(roles)s)
                    OR r.oid IN (SELECT m.member FROM pg_auth_members m
                                  JOIN pg_roles g ON g.oid = m.roleid
                                 WHERE g.rolname = 'aos_analyst'))
               AND NOT EXISTS (SELECT 1 FROM pg_auth_members a
                                WHERE a.roleid = r.oid AND a.admin_option
                                  AND a.member = (SELECT oid FROM pg_roles WHERE rolname = %(app)s))
            """,
            {"app": APP_ROLE, "roles": list(_DELEGATED_ROLES)},
        ).fetchall()
        for (name,) in rows:
            conn.execute(
                psql.SQL("GRANT {} TO {} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE").format(
                    psql.Identifier(str(name)), psql.Identifier(APP_ROLE)
                )
            )

    def _hand_over(self, database: str) -> None:
        """Make ``aos_app`` the owner of schema ``public`` of ``database`` and of everything in
        it that the superuser owns (clusters of older versions ran the migrations as the
        superuser). ``REASSIGN OWNED`` refuses the bootstrap superuser, hence one ALTER each."""
        app = psql.Identifier(APP_ROLE)
        kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
        kinds |= {"f": "FOREIGN TABLE", "S": "SEQUENCE"}
        with self._admin(database) as conn, conn.transaction():
            owner = conn.execute(
                "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
            ).fetchone()
            if owner is not None and owner[0] != APP_ROLE:
                conn.execute(psql.SQL("ALTER SCHEMA public OWNER TO {}").format(app))
            relations = conn.execute(
                """
                SELECT c.relkind::text, c.relname FROM pg_class c
                 WHERE c.relnamespace = 'public'::regnamespace
                   AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                   -- serial / identity sequences follow their table
                   AND NOT (c.relkind = 'S' AND EXISTS (
                        SELECT 1 FROM pg_depend d
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
                   AND NOT EXISTS (SELECT 1 FROM pg_depend e
                                    WHERE e.objid = c.oid AND e.deptype = 'e')
                 ORDER BY c.relkind, c.relname
                """
            ).fetchall()
            for kind, name in relations:
                conn.execute(
                    psql.SQL("ALTER {} public.{} OWNER TO {}").format(
                        psql.SQL(kinds[str(kind)]), psql.Identifier(str(name)), app
                    )
                )
            routines = conn.execute(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace
                   AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                   AND NOT EXISTS (SELECT 1 FROM pg_depend e
                                    WHERE e.objid = p.oid AND e.deptype = 'e')
                """
            ).fetchall()
            for (signature,) in routines:
                # regprocedure's text is the quoted, schema-qualified signature
                conn.execute(
                    psql.SQL("ALTER ROUTINE {} OWNER TO {}").format(psql.SQL(str(signature)), app)
                )
            types = conn.execute(
                """
                SELECT t.typname FROM pg_type t
                  LEFT JOIN pg_class c ON c.oid = t.typrelid
                 WHERE t.typnamespace = 'public'::regnamespace
                   AND t.typowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                   AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
                   AND NOT EXISTS (SELECT 1 FROM pg_depend e
                                    WHERE e.objid = t.oid AND e.deptype = 'e')
                """
            ).fetchall()
            for (name,) in types:
                conn.execute(
                    psql.SQL("ALTER TYPE public.{} OWNER TO {}").format(
                        psql.Identifier(str(name)), app
                    )
                )
