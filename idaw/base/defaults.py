"""Defaults both sides share, read without msgpack, zmq or numpy (the command line needs them before anything heavy).

DEFAULT_ENDPOINT comes from the protocol's definition (idaw/base/protocol/protocol.json); DEFAULT_HANDLER names the
describe handler a sidecar loads unless told otherwise (`idaw sidecar`, and the sidecars `idaw live`,
`idaw process --describe` and `idaw demo` start).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PROTOCOL_PATH = Path(__file__).resolve().with_name("protocol") / "protocol.json"
"""The machine-readable protocol definition (the plugin builds the same file in)."""

DEFAULT_HANDLER = "semantic-eq"
"""The describe handler a sidecar loads unless told otherwise: the trained semantic-EQ model."""


@functools.cache
def protocol_document() -> dict[str, Any]:
    """protocol.json as parsed JSON (read once; callers must not change it)."""
    document: dict[str, Any] = json.loads(PROTOCOL_PATH.read_text(encoding="utf-8"))
    return document


DEFAULT_ENDPOINT: str = str(protocol_document()["default_endpoint"])
"""Where a sidecar listens and engines connect unless told otherwise (loopback)."""
