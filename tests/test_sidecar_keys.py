"""CURVE key files (idaw/base/keyfiles.py; made by sidecar/keys.py) on real files: key folders are created private
and never chmod-ed when they exist (a shared folder is refused instead), key files are written through a new
private file renamed into place (never through a symbolic link, never into an old file others can read), and secret
keys that are links, not regular files or readable by others are refused when loaded. The tests run as root here,
so the shared folder is one made 1777 by the test itself, and 'another user's folder' is one chowned to nobody (or,
for a non-root run, a system folder)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from idaw.base import keyfiles
from idaw.base.keyfiles import KeysError, load_client_keys, load_server_keys
from sidecar.keys import make_keys

KEY_FILES = ("server.key", "server.key_secret", "client.key", "client.key_secret", "authorized/client.key")


def mode(path: Path) -> int:
    """The permission bits of `path` itself (a link is not followed)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    """Run the body under umask `value`."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_a_missing_folder_is_created_private_with_its_files(tmp_path: Path) -> None:
    keys = tmp_path / "a" / "b" / "keys"
    with umask(0):  # the modes come from the code, not from a friendly umask
        written = make_keys(keys)
    assert sorted(written) == sorted(keys / name for name in KEY_FILES)
    assert mode(keys) == 0o700 and mode(keys / "authorized") == 0o700
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700  # missing parents too
    assert mode(keys / "server.key_secret") == 0o600 and mode(keys / "client.key_secret") == 0o600
    assert mode(keys / "server.key") == 0o644 and mode(keys / "authorized" / "client.key") == 0o644
    assert sorted(p.name for p in keys.iterdir()) == sorted(["authorized", *KEY_FILES[:4]])  # no temporary left
    # What was written is what loads, and the two sides pair up.
    server, client = load_server_keys(keys), load_client_keys(keys)
    assert client.server_public == server.public and len(server.secret) == 40
    assert (keys / "authorized" / "client.key").read_text() == (keys / "client.key").read_text()


def test_an_existing_private_folder_is_used_and_never_chmodded(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    os.chmod(keys, 0o755)  # readable by others is fine (the secrets are 0600); what matters is who can write
    make_keys(keys)
    assert mode(keys) == 0o755
    assert mode(keys / "client.key_secret") == 0o600


@pytest.mark.parametrize("folder_mode", [0o1777, 0o777, 0o775, 0o757], ids=lambda m: f"{m:04o}")
def test_a_folder_others_can_write_is_refused_untouched(tmp_path: Path, folder_mode: int) -> None:
    """Issue 9 finding 4: --make-keys chmod-ed an existing folder to 0700 (a shared 1777 folder, or /tmp as root).
    Whoever can write in the folder can swap the key files: refused, and the folder keeps its mode."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, folder_mode)
    with pytest.raises(KeysError) as caught:
        make_keys(shared)
    message = str(caught.value)
    assert "\n" not in message and "writable by other users" in message and f"{folder_mode:04o}" in message
    assert mode(shared) == folder_mode
    assert list(shared.iterdir()) == []


def test_a_shared_authorized_folder_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "authorized").mkdir()
    os.chmod(keys / "authorized", 0o777)
    with pytest.raises(KeysError, match="authorized is writable by other users"):
        make_keys(keys)
    assert mode(keys / "authorized") == 0o777


def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        folder = tmp_path / "theirs"
        folder.mkdir(mode=0o755)
        os.chown(folder, 65534, 65534)  # nobody
    else:
        folder = Path("/usr")  # root's, and not writable by us
    with pytest.raises(KeysError, match="belongs to another user"):
        make_keys(folder)
    assert not (folder / "server.key_secret").exists()


def test_a_file_named_as_the_folder_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("not a folder")
    with pytest.raises(KeysError, match=r"is not a folder; name a folder with --key-dir DIR$"):
        make_keys(file)
    with pytest.raises(KeysError, match="Not a directory"):
        make_keys(file / "below")
    assert file.read_text() == "not a folder"


def test_overwrite_replaces_a_symlinked_secret_not_its_target(tmp_path: Path) -> None:
    """Issue 9 finding 4: --overwrite-keys followed a symbolic link at client.key_secret and wrote the new secret
    into whatever it pointed to. Now the link itself is replaced by a private file; the target is untouched."""
    keys = tmp_path / "keys"
    make_keys(keys)
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    os.chmod(victim, 0o644)
    (keys / "client.key_secret").unlink()
    (keys / "client.key_secret").symlink_to(victim)
    make_keys(keys, overwrite=True)
    assert victim.read_text() == "someone else's file\n" and mode(victim) == 0o644
    secret = keys / "client.key_secret"
    assert not secret.is_symlink() and stat.S_ISREG(os.lstat(secret).st_mode) and mode(secret) == 0o600
    assert load_client_keys(keys).secret


def test_overwrite_never_writes_the_new_secret_into_an_old_readable_file(tmp_path: Path) -> None:
    """Issue 9 finding 4: an old 0644 secret was rewritten in place and chmod-ed only afterwards, so the new secret
    stood for a moment in a file anyone could read. A second name (hard link) for the old file shows what went into
    it: the new secret must never appear there."""
    keys = tmp_path / "keys"
    make_keys(keys)
    old_secret = keys / "client.key_secret"
    os.chmod(old_secret, 0o644)
    witness = tmp_path / "witness"
    os.link(old_secret, witness)
    before = witness.read_text()
    make_keys(keys, overwrite=True)
    assert witness.read_text() == before and mode(witness) == 0o644
    assert os.lstat(old_secret).st_ino != os.lstat(witness).st_ino and mode(old_secret) == 0o600
    assert load_client_keys(keys).secret.decode() not in before


def test_existing_keys_even_a_dangling_link_need_overwrite(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "server.key_secret").symlink_to(tmp_path / "nowhere")
    with pytest.raises(KeysError, match="already exist"):
        make_keys(keys)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("secret_mode", [0o640, 0o604, 0o644, 0o660, 0o602], ids=lambda m: f"{m:04o}")
def test_loading_refuses_a_secret_others_can_read_or_write(tmp_path: Path, secret_mode: int) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    for name, load in (("client.key_secret", load_client_keys), ("server.key_secret", load_server_keys)):
        path = keys / name
        os.chmod(path, secret_mode)
        with pytest.raises(KeysError) as caught:
            load(keys)
        assert str(caught.value) == f"{path} is readable by other users; run: chmod 600 {path}"
        os.chmod(path, 0o600)


def test_loading_refuses_a_secret_that_is_a_link_or_not_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    secret = keys / "client.key_secret"
    private = tmp_path / "private.key_secret"
    secret.rename(private)  # still 0600 and valid: only the link is wrong
    secret.symlink_to(private)
    with pytest.raises(KeysError) as caught:
        load_client_keys(keys)
    assert str(caught.value) == f"{secret} is a symbolic link; a secret key must be a file of its own"
    secret.unlink()
    os.mkfifo(secret, 0o600)  # reading it would wait for a writer forever
    with pytest.raises(KeysError, match="is not a regular file"):
        load_client_keys(keys)


def test_loading_names_missing_or_malformed_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    secret = keys / "client.key_secret"
    fd = os.open(secret, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'public-key = "short"\n')
    os.close(fd)
    with pytest.raises(KeysError, match="malformed public-key"):
        load_client_keys(keys)
    secret.unlink()
    with pytest.raises(KeysError, match=rf"^cannot read CURVE key {secret} \(.*\); create keys with: idaw sidecar"):
        load_client_keys(keys)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"#" * (keyfiles.MAX_KEY_FILE_BYTES + 1))
    os.close(fd)
    with pytest.raises(KeysError, match="too large"):
        load_client_keys(keys)
