"""ZeroMQ CURVE keys for a sidecar reachable beyond loopback: creation, loading, and socket set-up.

Layout of a key directory (0700), in ZeroMQ's ZPL certificate format (what zmq.auth and czmq read):

    server.key          server public key (give it to every client)
    server.key_secret   server key pair (0600, stays with the sidecar)
    client.key          client public key
    client.key_secret   client key pair (0600, stays with the engine / plugin)
    authorized/*.key    public keys of the clients the sidecar accepts (client.key is copied here)
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_DIR_ENV = "IDAW_SIDECAR_KEYS"
"""Environment variable naming the key directory."""


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


def _write(path: Path, public: bytes, secret: bytes | None) -> None:
    """Write one ZPL certificate; secret files are created 0600 (never readable by others, even briefly)."""
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
    mode = 0o600 if secret else 0o644
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, mode)


def make_keys(key_dir: Path, overwrite: bool = False) -> list[Path]:
    """Create server and client key pairs in `key_dir` (made 0700); returns the files written.

    Raises KeysError when keys exist already and `overwrite` is false.
    """
    import zmq

    key_dir = Path(key_dir)
    if (key_dir / "server.key_secret").exists() and not overwrite:
        raise KeysError(f"keys already exist in {key_dir} (pass --overwrite-keys to replace them)")
    (key_dir / "authorized").mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    written: list[Path] = []
    for name in ("server", "client"):
        public, secret = zmq.curve_keypair()
        _write(key_dir / f"{name}.key", public, None)
        _write(key_dir / f"{name}.key_secret", public, secret)
        written += [key_dir / f"{name}.key", key_dir / f"{name}.key_secret"]
        if name == "client":
            _write(key_dir / "authorized" / "client.key", public, None)
            written.append(key_dir / "authorized" / "client.key")
    return written


def _load(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    from zmq.auth import load_certificate

    if need_secret and path.exists() and path.stat().st_mode & 0o077:
        raise KeysError(f"{path} is readable by other users; run: chmod 600 {path}")
    try:
        public, secret = load_certificate(path)
    except (OSError, ValueError) as error:
        raise KeysError(f"cannot read CURVE key {path} ({error}); create keys with: idaw sidecar --make-keys") from None
    if need_secret and not secret:
        raise KeysError(f"{path} holds no secret key")
    return public, secret


def load_server_keys(key_dir: Path) -> ServerKeys:
    """The sidecar's keys from `key_dir`; raises KeysError with a one-line fix when they are missing or unsafe."""
    key_dir = Path(key_dir)
    public, secret = _load(key_dir / "server.key_secret", need_secret=True)
    assert secret is not None
    if not (key_dir / "authorized").is_dir():
        raise KeysError(f"{key_dir / 'authorized'} is missing: no client could be accepted")
    return ServerKeys(public, secret, key_dir / "authorized")


def load_client_keys(key_dir: Path) -> ClientKeys:
    """An engine's or client's keys from `key_dir`; raises KeysError with a one-line fix when missing."""
    key_dir = Path(key_dir)
    public, secret = _load(key_dir / "client.key_secret", need_secret=True)
    server_public, _ = _load(key_dir / "server.key", need_secret=False)
    assert secret is not None
    return ClientKeys(public, secret, server_public)


def apply_server(socket: Any, keys: ServerKeys) -> Any:
    """Make `socket` a CURVE server accepting only the authorized clients; returns the authenticator to stop."""
    import zmq
    from zmq.auth.thread import ThreadAuthenticator

    authenticator = ThreadAuthenticator(socket.context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(keys.authorized_dir))
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    return authenticator


def apply_client(socket: Any, keys: ClientKeys) -> None:
    """Make `socket` a CURVE client of the server whose public key `keys` holds (call before connect)."""
    import zmq

    socket.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
