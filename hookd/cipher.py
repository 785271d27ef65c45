"""Secrets at rest: AES-256-GCM over the hook secrets and basic-auth passwords a database stores.

A stored value is either the plaintext (no key configured, or written before one was) or

    enc:v1:<key id>:<base64 of nonce (12 bytes) + ciphertext + tag (16 bytes)>

where the key id is the first 8 hex digits of SHA-256(key): it tells which key sealed a value, and
so which key is missing when one does not open, without revealing anything usable about the key.
The associated data binds each value to its place, the hook id and the column: a ciphertext copied
into another row or column fails authentication instead of becoming that hook's secret.

Why AES-GCM from `cryptography`: it is authenticated (a changed value is refused, never read as
garbage), hardware-accelerated, and `cryptography` wraps OpenSSL's audited implementation and is
maintained by the Python Cryptographic Authority. Nonces are 96 random bits per value: NIST SP
800-38D allows 2^32 random-nonce encryptions under one key, and hookd makes a few per hook change.

A key is a file of exactly 32 bytes from the OS CSPRNG (`new_key_file`), readable by its owner only.
Nothing here logs; `Undecryptable` names a hook, a column and a key id, never a value.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hookd.errors import ConfigError, HookdError, UndecryptableSecrets

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "enc:"
VERSION = "v1"
_STORED_PREFIX = f"{PREFIX}{VERSION}:"
_KEY_ID_CHARS = 8
_GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO
#: systemd's `LoadCredential=` puts credentials here (see `resolve_key_path`).
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


class KeyFileError(HookdError):
    """A key file that cannot be used; the message says why (the loader reports it per setting)."""


def key_id(key: bytes) -> str:
    """The public name of a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:_KEY_ID_CHARS]


def resolve_key_path(path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where to read `path` from: under systemd with `LoadCredential=NAME:...`, the credential of the
    same file name in `$CREDENTIALS_DIRECTORY` wins, because the service's (dynamic) user cannot read
    the root-owned original; elsewhere (a root shell running a command) the path itself."""
    environ = os.environ if environ is None else environ
    folder = environ.get(CREDENTIALS_ENV, "")
    if folder:
        credential = Path(folder) / path.name
        if credential.is_file():
            return credential
    return path


def read_key(path: Path) -> bytes:
    """The key in `path`; `KeyFileError` says why it cannot be used (missing, size, permissions)."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyFileError(f"{path} is not a regular file")
            if mode & _GROUP_OR_OTHER:
                raise KeyFileError(
                    f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): "
                    f"chmod 600 it (and keep it owned by the user hookd runs as, or by root with LoadCredential=)"
                )
            key = handle.read(KEY_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist (`hookd secrets new-key {path}` writes a new key)") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path} is not a regular file") from None
    except OSError as exc:
        raise KeyFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the name
        raise KeyFileError(f"{str(path)!r} is not a usable file name") from None
    if len(key) != KEY_BYTES:
        size = "more than 32" if len(key) > KEY_BYTES else str(len(key))
        raise KeyFileError(
            f"{path} holds {size} bytes: a key is exactly {KEY_BYTES} random bytes, not text "
            "(`hookd secrets new-key` writes one)"
        )
    return key


def new_key_file(path: Path) -> str:
    """Write a new key (32 bytes from the OS CSPRNG) to `path`, mode 0600; return its key id.

    Atomic and never overwriting: the key is written and synced to a temporary file in the same
    folder, then hard-linked to `path`, which fails if `path` exists (`FileExistsError`). A reader
    never sees a partial key, and an existing key, perhaps the only copy, is never replaced.
    """
    key = os.urandom(KEY_BYTES)
    folder = path.parent
    temporary = folder / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.link(temporary, path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    with contextlib.suppress(OSError):  # make the new name durable
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return key_id(key)


def is_encrypted(stored: str) -> bool:
    """True for a value in the stored encrypted form (of any version): never to be read as plaintext."""
    return stored.startswith(PREFIX)


def stored_key_id(stored: str) -> str | None:
    """The key id of an encrypted value, or None (plaintext, or a form this hookd cannot parse)."""
    parts = stored.split(":", 3)
    if len(parts) == 4 and f"{parts[0]}:" == PREFIX and parts[1] == VERSION and len(parts[2]) == _KEY_ID_CHARS:
        return parts[2]
    return None


@dataclass(frozen=True, slots=True)
class Key:
    """One key and where it was configured (`secrets.key_file`, `secrets.old_key_files[1]`...)."""

    id: str
    material: bytes = field(repr=False)
    source: str

    @classmethod
    def from_bytes(cls, material: bytes, source: str) -> Key:
        if len(material) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes")
        return cls(key_id(material), material, source)

    @classmethod
    def from_file(cls, path: Path, source: str) -> Key:
        """Read a key file (`KeyFileError` when it cannot be used)."""
        return cls.from_bytes(read_key(path), source)


@dataclass(frozen=True, slots=True)
class Undecryptable:
    """One stored value that does not open: where it is, which key sealed it, and why."""

    hook_id: str
    column: str
    key_id: str | None  # None: not even the stored form could be parsed
    unknown_key: bool  # True: no configured key has this id; False: it has, and authentication failed


class Keyring:
    """The configured keys: `current` seals new values (None: values are stored as given), every key
    opens the values it sealed (the current one and `secrets.old_key_files`)."""

    def __init__(self, current: Key | None = None, old: Sequence[Key] = ()) -> None:
        self.current = current
        self.keys: tuple[Key, ...] = tuple(k for k in (current, *old) if k is not None)
        self._aead = {id(k): AESGCM(k.material) for k in self.keys}

    @classmethod
    def from_files(cls, key_file: Path | None, old_key_files: Iterable[Path] = ()) -> Keyring:
        """The keys of `secrets.key_file` and `secrets.old_key_files`; `ConfigError` names every
        unusable file (the config loader checked them already: this catches a file changed since)."""
        problems: list[str] = []
        current: Key | None = None
        old: list[Key] = []
        if key_file is not None:
            try:
                current = Key.from_file(key_file, "secrets.key_file")
            except KeyFileError as exc:
                problems.append(f"secrets.key_file: {exc}")
        for index, path in enumerate(old_key_files):
            try:
                old.append(Key.from_file(path, f"secrets.old_key_files[{index}]"))
            except KeyFileError as exc:
                problems.append(f"secrets.old_key_files[{index}]: {exc}")
        if problems:
            raise ConfigError(problems, "secrets")
        return cls(current, old)

    def __repr__(self) -> str:
        return f"Keyring({', '.join(f'{k.source}={k.id}' for k in self.keys) or 'no keys'})"

    @property
    def encrypting(self) -> bool:
        """True when new values are stored encrypted."""
        return self.current is not None

    def seal(self, plaintext: str, *, hook_id: str, column: str) -> str:
        """The stored form of `plaintext` at (`hook_id`, `column`): encrypted with the current key,
        or `plaintext` itself when no key is configured."""
        if self.current is None:
            return plaintext
        return seal_with(self.current, self._aead[id(self.current)], plaintext, hook_id=hook_id, column=column)

    def open(self, stored: str, *, hook_id: str, column: str) -> str:
        """The plaintext of a stored value; a plaintext value is returned as it is.

        Raises `UndecryptableError` when the value is encrypted and no configured key opens it: it is
        never returned as if it were a plaintext secret.
        """
        if not is_encrypted(stored):
            return stored
        found = stored_key_id(stored)
        candidates = [k for k in self.keys if k.id == found]
        failure = Undecryptable(hook_id, column, found, unknown_key=found is not None and not candidates)
        if found is None or not candidates:
            raise UndecryptableError(failure)
        try:
            blob = base64.b64decode(stored.split(":", 3)[3], validate=True)
        except (binascii.Error, ValueError):
            raise UndecryptableError(failure) from None
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        for key in candidates:  # two keys sharing an 8-digit id is a 1 in 4 billion chance: try both
            try:
                plain = self._aead[id(key)].decrypt(nonce, sealed, _associated(hook_id, column))
            except (InvalidTag, ValueError):
                continue
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError:
                break
        raise UndecryptableError(failure)

    def key_source(self, identifier: str) -> str | None:
        """Where the key with this id is configured, or None when it is not."""
        return next((k.source for k in self.keys if k.id == identifier), None)

    def refusal(self, failures: Sequence[Undecryptable], where: str) -> UndecryptableSecrets:
        """One clear error for every value that did not open: which key ids were found, which are
        configured, which values were altered. It names no value."""
        configured = "; ".join(f"{k.source} has key {k.id}" for k in self.keys) or "no secrets.key_file is set"
        problems: list[str] = []
        unknown: dict[str, int] = {}
        for failure in failures:
            if failure.unknown_key and failure.key_id is not None:
                unknown[failure.key_id] = unknown.get(failure.key_id, 0) + 1
        for identifier, count in unknown.items():
            problems.append(
                f"{count} stored secret(s) are encrypted with key {identifier}, which is not configured "
                f"({configured}): set secrets.key_file or secrets.old_key_files to the key file with id "
                f"{identifier}; nothing was changed"
            )
        altered = [f for f in failures if not f.unknown_key]
        for failure in altered[:10]:
            how = f"with key {failure.key_id}" if failure.key_id else "(not in a form this hookd reads)"
            problems.append(
                f"hook {failure.hook_id} {failure.column}: the encrypted value does not decrypt {how}: it was "
                "altered, or copied from another hook or column; restore it from a backup or reset it"
            )
        if len(altered) > 10:
            problems.append(f"... and {len(altered) - 10} more altered value(s)")
        return UndecryptableSecrets(problems, where, key_ids=tuple(unknown))


class UndecryptableError(HookdError):
    """Internal: one value did not open (`Keyring.refusal` turns a batch of them into one error)."""

    def __init__(self, failure: Undecryptable) -> None:
        self.failure = failure
        super().__init__(f"hook {failure.hook_id} {failure.column}: does not decrypt")


def seal_with(key: Key, aead: AESGCM, plaintext: str, *, hook_id: str, column: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), _associated(hook_id, column))
    return f"{_STORED_PREFIX}{key.id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def _associated(hook_id: str, column: str) -> bytes:
    """What a value is bound to: the format's version, the column and the hook id (length-prefixed,
    so no two (column, hook id) pairs give the same bytes)."""
    column_bytes, hook_bytes = column.encode("utf-8"), hook_id.encode("utf-8")
    return b"hookd:%s:%d:%s:%s" % (VERSION.encode(), len(column_bytes), column_bytes, hook_bytes)


@dataclass
class Census:
    """The stored credentials by how they are kept: `by_key` (key id: count), `plaintext`, and the
    values the keyring does not open (`failures`). `changed`: how many a `reseal` rewrote; `compacted`:
    whether the database's files were then cleared of the old values."""

    keyring: Keyring
    by_key: dict[str, int] = field(default_factory=dict)
    plaintext: int = 0
    failures: list[Undecryptable] = field(default_factory=list)
    changed: int = 0
    compacted: bool = False

    @classmethod
    def of(cls, keyring: Keyring, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Census:
        """The census of stored rows: each has an `id` and the credential `columns` (NULL: none)."""
        census = cls(keyring)
        for row in rows:
            for column in columns:
                if isinstance(row[column], str):
                    census.count(row[column], str(row["id"]), column)
        return census

    @property
    def total(self) -> int:
        return self.plaintext + sum(self.by_key.values())

    def count(self, stored: str, hook_id: str, column: str) -> None:
        if not is_encrypted(stored):
            self.plaintext += 1
            return
        identifier = stored_key_id(stored) or "(unreadable)"
        self.by_key[identifier] = self.by_key.get(identifier, 0) + 1
        try:
            self.keyring.open(stored, hook_id=hook_id, column=column)
        except UndecryptableError as exc:
            self.failures.append(exc.failure)

    def refusal(self, where: str) -> UndecryptableSecrets:
        return self.keyring.refusal(self.failures, where)
