"""Credential vault: OAuth token bundles encrypted at rest, refreshed under a row lock.

Tokens are stored only as AES-256-GCM ciphertext with the integration id bound in as associated
data, so a ciphertext copied onto another integration (a bad restore, a wrong UPDATE) fails to
decrypt instead of handing one tenant's token to another. Rows record their key id, so keys
rotate without downtime: new key first in ``AOS_ENCRYPTION_KEY``, old ones kept for decryption
until :meth:`Vault.rotate` has re-encrypted everything.

Refreshes hold ``SELECT ... FOR UPDATE`` on the credential row while calling the token endpoint:
providers that rotate refresh tokens invalidate the old one on first use, so two workers
refreshing at once would otherwise kill the loser's token and force a re-auth.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects.postgresql import insert as pg_insert

from db.schema import audit_event, integration
from db.schema import integration_credential as cred

__all__ = ["CredentialMissing", "Keyring", "Refresher", "TokenBundle", "Vault", "VaultError"]

log = logging.getLogger(__name__)
ENV_VAR = "AOS_ENCRYPTION_KEY"
DEV_KEY_FILE = "encryption.keys"
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_warned_dev_keys: set[Path] = set()


class VaultError(Exception):
    """Any vault failure. Messages name integrations and key ids, never tokens or keys."""


class CredentialMissing(VaultError):
    """The integration has no stored credential (never connected, or disconnected)."""


def _utc(value: object) -> datetime | None:
    """Expiry as aware UTC; providers and callers hand out datetimes, ISO strings or epochs."""
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = datetime.fromtimestamp(value, UTC)
    except ValueError:
        raise VaultError("expires_at is not an ISO-8601 timestamp") from None
    if value is not None and not isinstance(value, datetime):
        raise VaultError(f"expires_at must be a datetime, not {type(value).__name__}")
    if value is not None and value.tzinfo is None:
        raise VaultError("expires_at must be timezone-aware (a naive datetime is ambiguous)")
    return value.astimezone(UTC) if value else None


class Keyring:
    """AES-256 keys by id, in order: the first encrypts, all of them decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self._keys: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KID.match(kid):
                raise VaultError(f"invalid key id {kid!r}: use 1-64 of A-Z a-z 0-9 . _ -")
            if len(key) != 32:
                raise VaultError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            if kid in self._keys:
                raise VaultError(f"key id {kid!r} appears twice")
            self._keys[kid] = AESGCM(key)
        if not keys:
            raise VaultError("a keyring needs at least one key")
        self.active_kid = keys[0][0]

    def __repr__(self) -> str:
        return f"Keyring(active={self.active_kid!r}, kids={list(self._keys)!r})"

    @classmethod
    def parse(cls, value: str, source: str = ENV_VAR) -> Keyring:
        """``kid:base64,kid:base64,...``; errors say which entry is wrong, not what it holds."""
        entries = [e.strip() for e in value.split(",") if e.strip()]
        if not entries:
            raise VaultError(f"{source} is empty; expected 'kid:base64-32-bytes[,kid:...]'")
        keys = []
        for n, entry in enumerate(entries, 1):
            kid, sep, b64 = (part.strip() for part in entry.partition(":"))
            if not sep or not kid:
                raise VaultError(f"{source} entry {n} is not 'kid:base64-32-bytes'")
            try:
                keys.append((kid, base64.b64decode(b64, validate=True)))
            except (binascii.Error, ValueError):
                raise VaultError(
                    f"{source} entry {n} (key id {kid!r}) is not valid base64"
                ) from None
        return cls(keys)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, home: Path | None = None) -> Keyring:
        """Production reads ``AOS_ENCRYPTION_KEY``. The embedded demo (``home`` given) falls back
        to a generated key file, so a fresh machine works with no setup; an empty variable is an
        error, not a fallback, so a broken deployment never silently uses a local key."""
        if (value := env.get(ENV_VAR)) is not None:
            return cls.parse(value)
        if home is None:
            raise VaultError(
                f"{ENV_VAR} is not set (expected 'kid:base64-32-bytes'; "
                "generate one with Keyring.generate_key())"
            )
        path = Path(home) / DEV_KEY_FILE
        if not path.exists():
            _create_private(path, cls.generate_key("dev-" + secrets.token_hex(4)) + "\n")
        if path not in _warned_dev_keys:
            _warned_dev_keys.add(path)
            log.warning(
                "%s is not set: using the local development key in %s; set %s in production",
                ENV_VAR,
                path,
                ENV_VAR,
            )
        return cls.parse(path.read_text(), source=str(path))

    @staticmethod
    def generate_key(kid: str | None = None) -> str:
        """A new ``kid:base64`` entry for ``AOS_ENCRYPTION_KEY``."""
        kid = kid or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
        return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"

    def aead(self, kid: str, integration_id: int) -> AESGCM:
        if kid not in self._keys:
            raise VaultError(
                f"credential of integration {integration_id} is encrypted with "
                f"unknown key id {kid!r}; add that key to {ENV_VAR}"
            )
        return self._keys[kid]


def _create_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically (temp file + link); if another process won, keep theirs.
    Its folder (``AOS_HOME``) is made 0700 when absent."""
    from db.embedded import make_private_home

    make_private_home(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


class TokenBundle(Mapping[str, Any]):
    """A decrypted bundle, read-only, whose repr shows keys only, so a stray print or log line
    leaks nothing. ``bundle["access_token"]`` gives the real value. Not picklable, so it cannot
    end up in a persisted task result."""

    __slots__ = ("_data", "_expires_at")

    def __init__(self, data: Mapping[str, Any], expires_at: datetime | None = None) -> None:
        self._data = MappingProxyType(dict(data))
        self._expires_at = _utc(expires_at) or _utc(data.get("expires_at"))

    @property
    def expires_at(self) -> datetime | None:
        return self._expires_at

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return "TokenBundle(" + ", ".join(f"{k}='****'" for k in self._data) + ")"  # str() too

    def __reduce__(self) -> Any:
        raise TypeError("TokenBundle is not picklable: secrets must not leave the process")


def _normalise(bundle: Mapping[str, Any], expires_at: datetime | None) -> TokenBundle:
    """One truth for expiry: the bundle's ``expires_at`` (ISO-8601) agrees with the column."""
    data = dict(bundle)
    if (expiry := _utc(expires_at) or _utc(data.get("expires_at"))) is not None:
        data["expires_at"] = expiry.isoformat()
    return TokenBundle(data, expiry)


Refresher = Callable[[TokenBundle], tuple[Mapping[str, Any], datetime | None]]


class Vault:
    """Stores and refreshes credentials. ``put``/``get`` join the caller's transaction."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def _seal(self, integration_id: int, bundle: TokenBundle) -> dict[str, Any]:
        kid, nonce = self.keyring.active_kid, os.urandom(12)
        plain = json.dumps(dict(bundle), separators=(",", ":")).encode()
        sealed = self.keyring.aead(kid, integration_id).encrypt(nonce, plain, _aad(integration_id))
        return {
            "key_id": kid,
            "nonce": nonce,
            "ciphertext": sealed,
            "expires_at": bundle.expires_at,
        }

    def _open(self, integration_id: int, row: Any) -> TokenBundle:
        aead = self.keyring.aead(row.key_id, integration_id)
        try:
            data = json.loads(
                aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), _aad(integration_id))
            )
        except (InvalidTag, ValueError):
            raise VaultError(
                f"credential of integration {integration_id} failed to decrypt with key id "
                f"{row.key_id!r}: wrong key, tampered row, or copied from another integration"
            ) from None
        return TokenBundle(data, row.expires_at)

    def put(
        self,
        conn: sa.Connection,
        integration_id: int,
        bundle: Mapping[str, Any],
        expires_at: datetime | None = None,
    ) -> int:
        """Insert or replace the credential; returns its new version."""
        values = self._seal(integration_id, _normalise(bundle, expires_at))
        agency = (
            sa.select(integration.c.agency_id)
            .where(integration.c.id == integration_id)
            .scalar_subquery()
        )
        stmt = pg_insert(cred).values(integration_id=integration_id, agency_id=agency, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cred.c.integration_id],
            set_={**values, "version": cred.c.version + 1, "updated_at": sa.func.now()},
        )
        return int(conn.execute(stmt.returning(cred.c.version)).scalar_one())

    def _row(self, conn: sa.Connection, integration_id: int, lock: bool = False) -> Any:
        query = (
            sa.select(cred, integration.c.agency_id)
            .join(integration, integration.c.id == cred.c.integration_id)
            .where(cred.c.integration_id == integration_id)
        )
        row = conn.execute(query.with_for_update(of=cred) if lock else query).first()
        if row is None:
            raise CredentialMissing(f"integration {integration_id} has no stored credential")
        return row

    def get(self, conn: sa.Connection, integration_id: int) -> TokenBundle:
        return self._open(integration_id, self._row(conn, integration_id))

    def rotate(self, engine: sa.Engine, batch_size: int = 100) -> int:
        """Re-encrypt every credential not under the active key. Short batches keep refreshes
        waiting at most one batch; keyset paging guarantees an end; a rerun returns 0.
        The bundle is unchanged, so ``version`` is too."""
        count, after, active = 0, -1, self.keyring.active_kid
        while True:
            with engine.begin() as conn:
                rows = conn.execute(
                    sa.select(cred)
                    .where(cred.c.key_id != active, cred.c.integration_id > after)
                    .order_by(cred.c.integration_id)
                    .limit(batch_size)
                    .with_for_update()
                ).all()
                for row in rows:
                    values = self._seal(row.integration_id, self._open(row.integration_id, row))
                    conn.execute(
                        sa.update(cred)
                        .where(cred.c.integration_id == row.integration_id)
                        .values(**values, updated_at=sa.func.now())
                    )
            if not rows:
                return count
            count, after = count + len(rows), rows[-1].integration_id

    def refresh_if_needed(
        self,
        engine: sa.Engine,
        integration_id: int,
        refresher: Refresher,
        *,
        margin: timedelta = timedelta(minutes=5),
        force: bool = False,
        refused: str | None = None,
        principal: str = "system:vault",
    ) -> TokenBundle:
        """Return a bundle valid for at least ``margin``, refreshing at most once however many
        workers ask at the same moment: the row lock queues them, and the waiters then see the
        fresh expiry. A bundle without expiry is long-lived (refreshed only when forced).

        ``refused`` is an access token the provider has just refused (mid-run: it expired
        sooner than its stated expiry said, or the run outlived it): the bundle is refreshed
        whatever its expiry, unless the stored access token is already another one -- a
        worker that was refused the same token refreshed first -- which is then returned as is.

        The refresher's bundle is merged over the old one (minus its expiry), so a provider that
        sends no new refresh token (Google) keeps the old one. If ``refresher`` raises, nothing is
        stored and the exception propagates (the caller decides whether it means re-auth); the
        failure is audited by exception class name only, as its message may quote a token."""
        agency_id, calling = None, False
        try:
            with engine.begin() as conn:
                row = self._row(conn, integration_id, lock=True)
                agency_id, bundle = row.agency_id, self._open(integration_id, row)
                expiry = bundle.expires_at
                if refused is not None:
                    if bundle.get("access_token") != refused:
                        return bundle  # renewed since that token was handed out
                elif not force and (expiry is None or expiry > datetime.now(UTC) + margin):
                    return bundle
                calling = True
                new_data, new_expiry = refresher(bundle)
                old = {k: v for k, v in bundle.items() if k != "expires_at"}
                fresh = _normalise({**old, **new_data}, new_expiry)
                calling = False
                version = conn.execute(
                    sa.update(cred)
                    .where(cred.c.integration_id == integration_id)
                    .values(
                        **self._seal(integration_id, fresh),
                        version=cred.c.version + 1,
                        updated_at=sa.func.now(),
                    )
                    .returning(cred.c.version)
                ).scalar_one()
                _audit(
                    conn,
                    agency_id,
                    integration_id,
                    principal,
                    "ok",
                    {
                        "version": version,
                        "forced": force,
                        "refused": refused is not None,
                        "expires_at": fresh.get("expires_at"),
                    },
                )
                return fresh
        except Exception as exc:
            if calling:  # the locked transaction has rolled back; record why, separately
                with engine.begin() as conn:
                    _audit(
                        conn,
                        agency_id,
                        integration_id,
                        principal,
                        "failed",
                        {
                            "error": type(exc).__name__,
                            "forced": force,
                            "refused": refused is not None,
                        },
                    )
            raise


def _aad(integration_id: int) -> bytes:
    return b"aos-sync:integration:%d" % integration_id


def _audit(
    conn: sa.Connection,
    agency_id: int | None,
    integration_id: int,
    principal: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    conn.execute(
        sa.insert(audit_event).values(
            agency_id=agency_id,
            principal=principal,
            action="credentials.refresh",
            integration_id=integration_id,
            outcome=outcome,
            detail=detail,
        )
    )
