"""Encoding and decoding of sidecar messages (msgpack, never pickle), checked against protocol.json (next to this
module; PROTOCOL.md describes it).

`decode(payload, role)` returns a Message or raises `MessageError` (reason = one of SCHEMA.reasons);
`encode(kind, seq, **fields)` returns the bytes of a valid message or raises `ProtocolError` (a bug on our
side: we never send what we would reject). The parameter helpers convert between the engine's float32 vector
and the protocol's map of the `snapshot_params`.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from idaw.base.endpoint import is_loopback_endpoint
from idaw.base.protocol.schema import UINT64_MAX, MessageError, Schema, check_fields, load, printable_text

__all__ = [
    "MAX_SESSIONS",
    "MAX_SNAPSHOT",
    "PARAM_INDEX",
    "SCHEMA",
    "Message",
    "MessageError",
    "ProtocolError",
    "RejectCounter",
    "decode",
    "encode",
    "flat_values",
    "is_local_endpoint",
    "merge_values",
    "next_seq",
    "printable_text",
    "text_limit",
    "values_of",
]

SCHEMA: Schema = load()
"""The protocol definition every part of the sidecar uses."""

PARAM_INDEX: dict[str, int] = {p.name: i for i, p in enumerate(SCHEMA.parameters)}
"""Position of each parameter in the engine's snapshot vector."""

MAX_SNAPSHOT: int = SCHEMA.limits["max_snapshot"]
"""The highest snapshot number either side may send or accept (2^53-1): nobody ever wraps around."""

MAX_SESSIONS: int = SCHEMA.limits["max_sessions"]
"""Engine sessions a sidecar remembers at most; a hello with a new session beyond that is refused ('full')."""

_SNAPSHOT_INDICES = np.array([PARAM_INDEX[n] for n in SCHEMA.snapshot_params], dtype=np.intp)
_ENVELOPE = ("v", "type", "seq")


class ProtocolError(ValueError):
    """We were about to send a message the protocol forbids; `reason` is what the receiver would reject it for."""

    def __init__(self, message: str, reason: str = "unknown_type") -> None:
        super().__init__(message)
        self.reason = reason


def next_seq(seq: int) -> int:
    """The envelope seq after `seq`: one more, and 1 again after 2^64-1 (PROTOCOL.md, "Sequence numbers")."""
    return seq + 1 if seq < UINT64_MAX else 1


def text_limit(kind: str, field: str) -> int:
    """The max_bytes protocol.json gives the string field `field` of message type `kind`."""
    return int(SCHEMA.raw["messages"][kind]["fields"][field]["max_bytes"])


@dataclass(frozen=True)
class Message:
    """A validated message: its type, the sender's sequence number, the normalized fields, its size."""

    kind: str
    seq: int
    fields: dict[str, Any]
    size: int


class RejectCounter(collections.Counter[str]):
    """Rejections counted by reason (thread-safe enough for one writer and readers taking copies)."""

    def add(self, error: MessageError) -> None:
        """Count one rejection."""
        self[error.reason] += 1


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not allowed")


def _unpack(payload: bytes) -> Any:
    limits = SCHEMA.limits
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_no_ext,
            max_str_len=limits["max_str_bytes"],
            max_bin_len=limits["max_bin_bytes"],
            max_array_len=limits["max_array_items"],
            max_map_len=limits["max_map_items"],
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises many kinds (ExtraData, FormatError, StackError, ValueError, ...)
        raise MessageError("undecodable", f"{type(error).__name__}: {str(error)[:80]}") from None


def decode(payload: bytes, role: str) -> Message:
    """The validated Message in `payload`, as received by `role` ('sidecar', 'engine' or 'client').

    Raises MessageError; its `seq` and `kind` are set when the envelope could be read, so an error can be sent back.
    """
    if len(payload) > SCHEMA.largest_message:
        raise MessageError(
            "oversized", f"{len(payload)} bytes; no message type allows more than {SCHEMA.largest_message}"
        )
    value = _unpack(payload)
    if type(value) is not dict:
        raise MessageError("not_a_map", f"top-level value is {type(value).__name__}")
    for key in _ENVELOPE:
        if key not in value:
            raise MessageError("missing_field", f"envelope field {key!r} is missing")
    version, kind, seq = value["v"], value["type"], value["seq"]
    if type(version) is not int:
        raise MessageError("wrong_type", "v must be an unsigned integer")
    if type(seq) is not int or not 0 <= seq <= 2**64 - 1:
        raise MessageError("wrong_type", "seq must be an unsigned integer")
    if version != SCHEMA.version:
        raise MessageError("version", f"version {version}; this side speaks {SCHEMA.version}", seq)
    if type(kind) is not str:
        raise MessageError("wrong_type", "type must be a string", seq)
    spec = SCHEMA.messages.get(kind)
    if spec is None:
        raise MessageError("unknown_type", f"unknown message type {kind[:32]!r}", seq)
    if len(payload) > spec.max_bytes:
        raise MessageError("oversized", f"{kind} of {len(payload)} bytes; limit {spec.max_bytes}", seq, kind)
    if kind not in SCHEMA.accepted_by(role):
        raise MessageError("direction", f"{role} does not accept {kind}", seq, kind)
    body = {k: v for k, v in value.items() if k not in _ENVELOPE}
    try:
        fields = check_fields(spec.fields, body, kind)
    except MessageError as error:
        raise MessageError(error.reason, error.detail, seq, kind) from None
    return Message(kind, seq, fields, len(payload))


def _plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays turned into what msgpack packs (float, int, bytes, list)."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value, dtype="<f4").tobytes()
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode(kind: str, seq: int, **fields: Any) -> bytes:
    """The msgpack bytes of a `kind` message with sender sequence `seq`; raises ProtocolError if it is invalid."""
    spec = SCHEMA.messages.get(kind)
    if spec is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    if type(seq) is not int or not 0 <= seq <= UINT64_MAX:
        raise ProtocolError(f"refusing to send {kind} with seq {seq!r}: not a 64-bit unsigned integer", "wrong_type")
    body = {k: _plain(v) for k, v in fields.items()}
    try:
        check_fields(spec.fields, body, kind)
    except MessageError as error:
        raise ProtocolError(f"refusing to send an invalid {kind}: {error.detail}", error.reason) from None
    try:
        payload: bytes = msgpack.packb({"v": SCHEMA.version, "type": kind, "seq": seq, **body}, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:  # what the validators let through but msgpack cannot pack
        raise ProtocolError(f"cannot pack {kind}: {type(error).__name__}: {error}", "wrong_type") from None
    if len(payload) > spec.max_bytes:
        raise ProtocolError(f"{kind} of {len(payload)} bytes exceeds its limit of {spec.max_bytes}", "oversized")
    return payload


def values_of(vector: npt.ArrayLike) -> dict[str, float]:
    """The protocol's parameter map (every snapshot_params name) taken from an engine snapshot vector."""
    data = np.asarray(vector, dtype=np.float32)
    return {name: float(data[PARAM_INDEX[name]]) for name in SCHEMA.snapshot_params}


def merge_values(base: npt.ArrayLike, values: Mapping[str, float]) -> npt.NDArray[np.float32]:
    """A copy of the engine vector `base` with the snapshot_params set from `values` (a validated map)."""
    out = np.array(base, dtype=np.float32, copy=True)
    out[_SNAPSHOT_INDICES] = np.array([values[n] for n in SCHEMA.snapshot_params], dtype=np.float32)
    return out


def flat_values() -> dict[str, float]:
    """The parameter map of a flat EQ: every snapshot parameter at its default (all gains 0 dB)."""
    table = {p.name: p.default for p in SCHEMA.parameters}
    return {name: table[name] for name in SCHEMA.snapshot_params}


def is_local_endpoint(endpoint: str) -> bool:
    """True when `endpoint` stays on this machine (no CURVE needed); False otherwise, malformed ones included.

    The whole endpoint is parsed (idaw/base/endpoint.py): every address in it must be a loopback literal.
    """
    return is_loopback_endpoint(endpoint)
