"""cipher: AES-256-GCM sealing of stored secrets, bound to their hook and column; key files."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from hookd.cipher import (
    KEY_BYTES,
    NONCE_BYTES,
    Census,
    Key,
    KeyFileError,
    Keyring,
    UndecryptableError,
    key_id,
    new_key_file,
    read_key,
    resolve_key_path,
    stored_key_id,
)
from hookd.errors import ConfigError, UndecryptableSecrets

STORED = re.compile(r"enc:v1:([0-9a-f]{8}):([A-Za-z0-9+/]+={0,2})")
SECRET = "whsec-the-plaintext-0123456789"


def make_key(source: str = "secrets.key_file") -> Key:
    return Key.from_bytes(os.urandom(KEY_BYTES), source)


def failure_of(keyring: Keyring, stored: str, *, hook_id: str = "7", column: str = "secret") -> UndecryptableError:
    with pytest.raises(UndecryptableError) as info:
        keyring.open(stored, hook_id=hook_id, column=column)
    return info.value


def test_a_sealed_value_opens_to_the_plaintext() -> None:
    """Round trip: what the current key seals at (hook, column) opens there to the same text."""
    keyring = Keyring(make_key())
    stored = keyring.seal(SECRET, hook_id="7", column="secret")
    assert keyring.open(stored, hook_id="7", column="secret") == SECRET
    assert keyring.open(keyring.seal("", hook_id="7", column="secret"), hook_id="7", column="secret") == ""
    assert keyring.open(keyring.seal("pässwörd ✓", hook_id="7", column="x"), hook_id="7", column="x") == "pässwörd ✓"


def test_the_stored_form_names_version_and_key_id_and_hides_the_value() -> None:
    """`enc:v1:<first 8 hex of SHA-256(key)>:<base64 of nonce + ciphertext + tag>`, nothing of the plaintext."""
    key = make_key()
    stored = Keyring(key).seal(SECRET, hook_id="7", column="secret")
    match = STORED.fullmatch(stored)
    assert match is not None, stored
    assert match[1] == key.id == hashlib.sha256(key.material).hexdigest()[:8] == key_id(key.material)
    assert stored_key_id(stored) == key.id
    blob = base64.b64decode(match[2])
    assert len(blob) == NONCE_BYTES + len(SECRET.encode()) + 16
    assert SECRET.encode() not in blob and SECRET not in stored


def test_every_seal_uses_a_fresh_nonce() -> None:
    """The same value sealed twice gives two different stored forms (random 96-bit nonces)."""
    keyring = Keyring(make_key())
    first, second = (keyring.seal(SECRET, hook_id="7", column="secret") for _ in range(2))
    assert first != second
    assert base64.b64decode(first.split(":")[3])[:NONCE_BYTES] != base64.b64decode(second.split(":")[3])[:NONCE_BYTES]


def test_a_value_copied_to_another_hook_or_column_does_not_open() -> None:
    """The associated data binds a value to its hook id and column: moved, it fails authentication."""
    keyring = Keyring(make_key())
    stored = keyring.seal(SECRET, hook_id="7", column="secret")
    for hook_id, column in (("8", "secret"), ("7", "previous_secret"), ("7", "basic_auth_password"), ("77", "secret")):
        failure = failure_of(keyring, stored, hook_id=hook_id, column=column).failure
        assert (failure.hook_id, failure.column, failure.key_id, failure.unknown_key) == (
            hook_id,
            column,
            keyring.keys[0].id,
            False,
        )


def test_a_tampered_value_does_not_open() -> None:
    """A changed byte anywhere in nonce, ciphertext or tag is refused, never returned as garbage."""
    keyring = Keyring(make_key())
    stored = keyring.seal(SECRET, hook_id="7", column="secret")
    head, payload = stored.rsplit(":", 1)
    blob = bytearray(base64.b64decode(payload))
    for index in (0, NONCE_BYTES, len(blob) - 1):
        changed = bytearray(blob)
        changed[index] ^= 0x01
        tampered = f"{head}:{base64.b64encode(bytes(changed)).decode()}"
        assert failure_of(keyring, tampered).failure.unknown_key is False
    for broken in (f"{head}:not base64!", f"{head}:", "enc:v2:" + stored[7:], "enc:", "enc:v1:zz"):
        assert failure_of(keyring, broken).failure.unknown_key is False


def test_a_wrong_key_is_refused_and_named() -> None:
    """A value sealed by a key that is not configured does not open; the refusal names both key ids."""
    writer, other = make_key(), make_key()
    stored = Keyring(writer).seal(SECRET, hook_id="7", column="secret")
    reader = Keyring(other)
    failure = failure_of(reader, stored).failure
    assert failure.unknown_key and failure.key_id == writer.id
    refusal = reader.refusal([failure], "hooks database x")
    assert isinstance(refusal, UndecryptableSecrets) and isinstance(refusal, ConfigError)
    assert refusal.key_ids == (writer.id,)
    assert writer.id in str(refusal) and f"secrets.key_file has key {other.id}" in str(refusal)
    assert stored not in str(refusal) and SECRET not in str(refusal)


def test_no_key_refuses_an_encrypted_value_rather_than_reading_it_as_plaintext() -> None:
    """Without keys, plaintext reads as it is but a sealed value is refused ("no secrets.key_file")."""
    stored = Keyring(make_key()).seal(SECRET, hook_id="7", column="secret")
    keyring = Keyring()
    assert keyring.open("plain-secret", hook_id="7", column="secret") == "plain-secret"
    assert keyring.seal("plain-secret", hook_id="7", column="secret") == "plain-secret"
    failure = failure_of(keyring, stored).failure
    assert "no secrets.key_file is set" in str(keyring.refusal([failure], "db"))


def test_old_keys_open_but_only_the_current_one_seals() -> None:
    """`old_key_files` open what they sealed; new values use `key_file`."""
    old, new = make_key("secrets.old_key_files[0]"), make_key()
    sealed_before = Keyring(old).seal(SECRET, hook_id="1", column="secret")
    keyring = Keyring(new, [old])
    assert keyring.open(sealed_before, hook_id="1", column="secret") == SECRET
    assert stored_key_id(keyring.seal(SECRET, hook_id="1", column="secret")) == new.id
    assert keyring.key_source(old.id) == "secrets.old_key_files[0]"


def test_plaintext_values_read_with_a_key_configured() -> None:
    """Rows written before the key was set still read, so `hookd secrets encrypt` can run later."""
    assert Keyring(make_key()).open("written-before", hook_id="1", column="secret") == "written-before"


def test_census_counts_per_key_and_plaintext_and_failures() -> None:
    """Census: how many values per key id, how many plaintext, which do not open."""
    mine, foreign = make_key(), make_key()
    keyring = Keyring(mine)
    rows = [
        {"id": "1", "secret": keyring.seal("a", hook_id="1", column="secret"), "basic_auth_password": None},
        {"id": "2", "secret": "plain", "basic_auth_password": "pw"},
        {"id": "3", "secret": Keyring(foreign).seal("c", hook_id="3", column="secret"), "basic_auth_password": None},
    ]
    census = Census.of(keyring, rows, ("secret", "basic_auth_password"))
    assert census.by_key == {mine.id: 1, foreign.id: 1}
    assert (census.plaintext, census.total, len(census.failures)) == (2, 4, 1)
    assert census.failures[0].key_id == foreign.id


def test_keys_never_show_in_repr() -> None:
    """A key's bytes appear in no repr (settings and keyrings may be logged)."""
    key = make_key()
    keyring = Keyring(key)
    for text in (repr(key), repr(keyring)):
        assert key.material.hex() not in text and repr(key.material) not in text
    assert key.id in repr(keyring)


def test_new_key_file_writes_32_private_random_bytes(tmp_path: Path) -> None:
    """`new_key_file`: 32 bytes, mode 0600 whatever the umask, no temporary file left, id returned."""
    path = tmp_path / "secrets.key"
    previous = os.umask(0)
    try:
        identifier = new_key_file(path)
    finally:
        os.umask(previous)
    data = path.read_bytes()
    assert len(data) == KEY_BYTES and identifier == key_id(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.key"]
    assert read_key(path) == data
    assert new_key_file(tmp_path / "other.key") != identifier


def test_new_key_file_never_overwrites(tmp_path: Path) -> None:
    """An existing file (perhaps the only copy of a key) is left as it was."""
    path = tmp_path / "secrets.key"
    path.write_bytes(b"k" * KEY_BYTES)
    with pytest.raises(FileExistsError):
        new_key_file(path)
    assert path.read_bytes() == b"k" * KEY_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.key"]


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        (None, 0o600, "does not exist"),
        (b"k" * 31, 0o600, "holds 31 bytes"),
        (b"k" * 33, 0o600, "holds more than 32 bytes"),
        (base64.b64encode(b"k" * 32), 0o600, "holds more than 32 bytes"),
        (b"k" * 32, 0o640, "accessible by group or others (mode 0640)"),
        (b"k" * 32, 0o604, "accessible by group or others (mode 0604)"),
    ],
)
def test_an_unusable_key_file_says_why(tmp_path: Path, content: bytes | None, mode: int, why: str) -> None:
    """Missing, not exactly 32 bytes, or readable by group/others: refused, with the reason."""
    path = tmp_path / "secrets.key"
    if content is not None:
        path.write_bytes(content)
        path.chmod(mode)
    with pytest.raises(KeyFileError, match=re.escape(why)):
        read_key(path)


def test_keyring_from_files_reports_every_bad_file(tmp_path: Path) -> None:
    """Every unusable file is named at once, by its setting."""
    good = tmp_path / "good.key"
    new_key_file(good)
    with pytest.raises(ConfigError) as info:
        Keyring.from_files(tmp_path / "missing.key", [good, tmp_path / "gone.key"])
    assert [p.split(":")[0] for p in info.value.problems] == ["secrets.key_file", "secrets.old_key_files[1]"]


def test_a_systemd_credential_of_the_same_name_wins(tmp_path: Path) -> None:
    """Under LoadCredential=, `$CREDENTIALS_DIRECTORY/<name>` is read instead of the configured path."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    configured = tmp_path / "etc" / "secrets.key"
    assert resolve_key_path(configured, {}) == configured
    assert resolve_key_path(configured, {"CREDENTIALS_DIRECTORY": str(credentials)}) == configured
    (credentials / "secrets.key").write_bytes(b"k" * KEY_BYTES)
    assert resolve_key_path(configured, {"CREDENTIALS_DIRECTORY": str(credentials)}) == credentials / "secrets.key"
