"""ZeroMQ CURVE keys on the sidecar's side: making key pairs (zmq.curve_keypair) and setting up sockets.

The key files themselves (folder rules, safe writing, reading, ZPL format) are idaw/base/keyfiles.py, which
needs no zmq; the engine side (realtime's link) sets up its client socket from keyfiles.ClientKeys itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idaw.base import keyfiles


def make_keys(key_dir: Path, overwrite: bool = False) -> list[Path]:
    """Create server and client key pairs in `key_dir` (a new folder is made 0700); returns the files written.

    Raises KeysError (one line) when keys exist already and `overwrite` is false, or when `key_dir` is not a
    private folder of this user (an existing folder is never chmod-ed).
    """
    import zmq

    return keyfiles.write_key_pairs(key_dir, zmq.curve_keypair, overwrite)


def apply_server(socket: Any, keys: keyfiles.ServerKeys) -> Any:
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


def apply_client(socket: Any, keys: keyfiles.ClientKeys) -> None:
    """Make `socket` a CURVE client of the server whose public key `keys` holds (call before connect)."""
    import zmq

    for name, value in keys.socket_options():
        socket.setsockopt(getattr(zmq, name), value)
