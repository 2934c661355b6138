"""Endpoints for tests that bind their own sockets."""

from __future__ import annotations

import socket


def free_endpoint() -> str:
    """A loopback TCP endpoint nobody listens on yet."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"
