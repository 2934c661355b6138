"""ZeroMQ CURVE key files for a sidecar reachable beyond loopback: the folder rules, safe writing, reading, without zmq.

Layout of a key directory (0700), in ZeroMQ's ZPL certificate format (what zmq.auth and czmq read):

    server.key          server public key (give it to every client)
    server.key_secret   server key pair (0600, stays with the sidecar)
    client.key          client public key
    client.key_secret   client key pair (0600, stays with the engine / plugin)
    authorized/*.key    public keys of the clients the sidecar accepts (client.key is copied here)

Key pairs are made with zmq (sidecar/keys.py make_keys passes zmq.curve_keypair to write_key_pairs); sockets are
set up by each side (sidecar/keys.py for the server and its own client, realtime's link for the engine), from
ClientKeys.socket_options(). The plugin reads the same files (plugin_cpp/plugin/source/curve_keys.cpp).
"""

from __future__ import annotations

import datetime
import errno
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KEY_DIR_ENV = "IDAW_SIDECAR_KEYS"
"""Environment variable naming the key directory."""

MAKE_KEYS_HINT = "create keys with: idaw sidecar --make-keys"
"""What to run when keys are missing (the plugin says the same, curve_keys.cpp)."""

MAX_KEY_FILE_BYTES = 64 * 1024
"""A ZPL certificate is a few hundred bytes; anything far larger is not one (and is not read whole)."""


def default_key_dir() -> Path:
    """$IDAW_SIDECAR_KEYS, else ~/.config/idaw/sidecar-keys."""
    env = os.environ.get(KEY_DIR_ENV)
    return Path(env) if env else Path.home() / ".config" / "idaw" / "sidecar-keys"


class KeysError(RuntimeError):
    """Keys are missing or unreadable; the message is one line saying what to do."""


@dataclass(frozen=True)
class ServerKeys:
    """What a CURVE server needs: its key pair and the folder of authorized client public keys."""

    public: bytes
    secret: bytes
    authorized_dir: Path


@dataclass(frozen=True)
class ClientKeys:
    """What a CURVE client needs: its key pair and the server's public key."""

    public: bytes
    secret: bytes
    server_public: bytes

    def socket_options(self) -> tuple[tuple[str, bytes], ...]:
        """(pyzmq option name, value) pairs that make a socket this CURVE client (set them before connect)."""
        return (
            ("CURVE_SERVERKEY", self.server_public),
            ("CURVE_PUBLICKEY", self.public),
            ("CURVE_SECRETKEY", self.secret),
        )


Z85_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
"""The characters of a Z85-encoded key (40 of them make a CURVE key)."""


def certificate(public: bytes, secret: bytes | None) -> bytes:
    """The text of one ZPL certificate (what zmq.auth.create_certificates writes)."""
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ****  Generated on {datetime.datetime.now():%Y-%m-%d %H:%M:%S} by idaw sidecar  ****",
        f"#   ZeroMQ CURVE {kind} Certificate",
        "",
        "metadata",
        "curve",
        f'    public-key = "{public.decode("ascii")}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return ("\n".join(lines) + "\n").encode("ascii")


def write_private(path: Path, content: bytes, mode: int) -> None:
    """Put `content` at `path` with `mode`, never through a link and never readable beyond `mode`, even briefly.

    The bytes go to a new file in the same folder (O_EXCL|O_NOFOLLOW: nobody else's file, no symbolic link
    followed, created with `mode`), which is then renamed over `path`. A rename replaces a symbolic link at
    `path` itself, not what it points to, and an old file there (whatever its mode) is never written into.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, mode)
    try:
        try:
            os.fchmod(descriptor, mode)  # exactly `mode` whatever the umask (only ever narrower before this)
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def private_folder(folder: Path) -> None:
    """Make sure `folder` exists and only this user can change it; raises KeysError (one line) when it cannot be.

    A missing folder is created with mode 0700 (missing parents too). An existing one is never changed (a chmod
    could open or close someone else's folder, e.g. /tmp when run as root): it must be a folder owned by this user
    that no one else can write to, since whoever can write there can swap the key files.
    """
    try:
        missing = [folder, *(p for p in folder.parents if not os.path.lexists(p))]
        for path in reversed(missing):  # the outermost first; parents made here are private too
            os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass  # checked below, as it is
    except OSError as error:
        raise KeysError(f"cannot create key folder {folder}: {error.strerror or error}") from None
    try:
        info = os.stat(folder)
    except OSError as error:
        raise KeysError(f"cannot use key folder {folder}: {error.strerror or error}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise KeysError(f"key folder {folder} is not a folder; name a folder with --key-dir DIR")
    if info.st_uid != os.geteuid():
        raise KeysError(
            f"key folder {folder} belongs to another user (uid {info.st_uid}); name a folder of your own, "
            "or a new one (created 0700)"
        )
    if info.st_mode & 0o022:
        raise KeysError(
            f"key folder {folder} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}); name a "
            "folder only you can write to, or a new one (created 0700)"
        )


KeyPair = Callable[[], tuple[bytes, bytes]]
"""Makes one CURVE key pair: (public, secret), each 40 Z85 characters (zmq.curve_keypair)."""


def write_key_pairs(key_dir: Path, key_pair: KeyPair, overwrite: bool = False) -> list[Path]:
    """Create server and client key pairs with `key_pair` in `key_dir` (a new folder is made 0700); returns the
    files written.

    Raises KeysError (one line) when keys exist already and `overwrite` is false, or when `key_dir` is not a
    private folder of this user (an existing folder is never chmod-ed).
    """
    key_dir = Path(key_dir)
    private_folder(key_dir)
    if os.path.lexists(key_dir / "server.key_secret") and not overwrite:
        raise KeysError(f"keys already exist in {key_dir} (pass --overwrite-keys to replace them)")
    private_folder(key_dir / "authorized")
    written: list[Path] = []
    try:
        for name in ("server", "client"):
            public, secret = key_pair()
            write_private(key_dir / f"{name}.key_secret", certificate(public, secret), 0o600)
            write_private(key_dir / f"{name}.key", certificate(public, None), 0o644)
            written += [key_dir / f"{name}.key", key_dir / f"{name}.key_secret"]
            if name == "client":
                write_private(key_dir / "authorized" / "client.key", certificate(public, None), 0o644)
                written.append(key_dir / "authorized" / "client.key")
    except OSError as error:
        raise KeysError(f"cannot write keys to {key_dir}: {error.strerror or error}") from None
    return written


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret key file; raises KeysError unless it is a regular file (not a symbolic link) that
    only its owner can read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise KeysError(f"{path} is a symbolic link; a secret key must be a file of its own") from None
        raise KeysError(f"cannot read CURVE key {path} ({error.strerror}); {MAKE_KEYS_HINT}") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())  # the file opened, not whatever the name points to by now
        if not stat.S_ISREG(info.st_mode):
            raise KeysError(f"{path} is not a regular file; {MAKE_KEYS_HINT}")
        if info.st_mode & 0o077:
            raise KeysError(f"{path} is readable by other users; run: chmod 600 {path}")
        return file.read(MAX_KEY_FILE_BYTES + 1)


def parse_certificate(path: Path, text: bytes) -> tuple[bytes, bytes | None]:
    """(public, secret or None) from a ZPL certificate, read as zmq.auth.load_certificate reads one."""
    if len(text) > MAX_KEY_FILE_BYTES:
        raise KeysError(f"{path} is too large for a CURVE key file; {MAKE_KEYS_HINT}")
    public: bytes | None = None
    secret: bytes | None = None
    for raw in text.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith(("public-key", "secret-key")) and "=" in line:
            value = line.split("=", 1)[1].strip(" \t'\"")
            if len(value) != 40 or not Z85_ALPHABET.issuperset(value):
                raise KeysError(f"{path} holds a malformed {line[:10]}; {MAKE_KEYS_HINT}")
            if line.startswith("public-key"):
                public = value.encode("ascii")
            else:
                secret = value.encode("ascii")
    if public is None:
        raise KeysError(f"{path} holds no public key; {MAKE_KEYS_HINT}")
    return public, secret


def load_key_file(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from the key file `path`; a secret file must be private (see read_secret_file)."""
    if need_secret:
        text = read_secret_file(path)
    else:
        try:
            with open(path, "rb") as file:
                text = file.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as error:
            raise KeysError(f"cannot read CURVE key {path} ({error.strerror}); {MAKE_KEYS_HINT}") from None
    public, secret = parse_certificate(path, text)
    if need_secret and not secret:
        raise KeysError(f"{path} holds no secret key")
    return public, secret


def load_server_keys(key_dir: Path) -> ServerKeys:
    """The sidecar's keys from `key_dir`; raises KeysError with a one-line fix when they are missing or unsafe."""
    key_dir = Path(key_dir)
    public, secret = load_key_file(key_dir / "server.key_secret", need_secret=True)
    assert secret is not None
    if not (key_dir / "authorized").is_dir():
        raise KeysError(f"{key_dir / 'authorized'} is missing: no client could be accepted")
    return ServerKeys(public, secret, key_dir / "authorized")


def load_client_keys(key_dir: Path) -> ClientKeys:
    """An engine's or client's keys from `key_dir`; raises KeysError with a one-line fix when missing."""
    key_dir = Path(key_dir)
    public, secret = load_key_file(key_dir / "client.key_secret", need_secret=True)
    server_public, _ = load_key_file(key_dir / "server.key", need_secret=False)
    assert secret is not None
    return ClientKeys(public, secret, server_public)
