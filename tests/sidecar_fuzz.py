"""Fuzzed sidecar messages: random bytes, truncation, wrong types, NaN, huge values, wrong versions, ...

`fuzz(sender, count, seed)` yields `count` (category, frames) pairs that a receiver must reject. Every single-frame
case is checked against the local validator first (a mutation that happens to stay valid is replaced), except
the categories in STATEFUL, which are well-formed but refused for the receiver's state.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np

from sidecar.protocol import SCHEMA, MessageError, decode, flat_values

STATEFUL = frozenset({"hello_required", "stale"})
"""Categories that pass decode() and are rejected because of state (no hello yet; an older snapshot)."""

_ODD_VALUES: list[Any] = ["text", 1.5, -7, [1, 2], {"k": 1}, b"\x00\x01", None, True, msgpack.ExtType(3, b"x")]


def _pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def _base_messages(sender: str) -> dict[str, dict[str, Any]]:
    """Valid field sets of the types `sender` ('engine' or 'sidecar') sends."""
    values = flat_values()
    audio = np.sin(np.arange(4000) / 10).astype("<f4").tobytes()
    if sender == "engine":
        return {
            "hello": {"session": 11, "name": "fuzz", "rate": 16000, "snapshot": 0, "values": values},
            "heartbeat": {"session": 11, "snapshot": 0},
            "audio": {"rate": 16000, "start": 0, "samples": audio},
            "describe": {"words": ["warm"], "intensity": 0.5},
            "feedback": {"snapshot": 1, "rating": 0.5, "words": []},
            "bye": {"session": 11},
        }
    return {
        "welcome": {"re": 1, "session": 5, "snapshot": 0, "handler": "x"},
        "heartbeat": {"session": 5, "snapshot": 0},
        "params": {"snapshot": 9, "values": values, "words": ["warm"]},
        "described": {"re": 1, "snapshot": 0, "values": values, "used": [], "engines": 0},
        "error": {"re": 1, "code": "version", "detail": "x"},
    }


def _wrong_direction(sender: str) -> dict[str, dict[str, Any]]:
    """Valid messages of types the receiver never accepts."""
    return _base_messages("sidecar" if sender == "engine" else "engine")


class _Fuzzer:
    def __init__(self, sender: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sender = sender
        self.role = "sidecar" if sender == "engine" else "engine"
        self.base = _base_messages(sender)
        self.seq = 0

    def message(self, kinds: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        kind, fields = self.rng.choice(list((kinds or self.base).items()))
        self.seq += 1
        return {"v": SCHEMA.version, "type": kind, "seq": self.seq, **{k: v for k, v in fields.items()}}

    def number(self) -> Any:
        return self.rng.choice([math.nan, math.inf, -math.inf, 1e308, -1e308, 2**64 - 1, -(2**63), 1e39, -1.0])

    def mutate_field(self, message: dict[str, Any], value: Any) -> dict[str, Any]:
        fields = [k for k in message if k not in ("v", "type", "seq")]
        if not fields:
            message["extra"] = value
        else:
            message[self.rng.choice(fields)] = value
        return message

    def case(self) -> tuple[str, list[bytes]]:
        rng = self.rng
        category = rng.choice(
            [
                "random_bytes",
                "truncated",
                "trailing",
                "not_a_map",
                "version",
                "no_envelope",
                "unknown_type",
                "direction",
                "missing_field",
                "extra_field",
                "wrong_type",
                "nan_inf_huge",
                "out_of_range_param",
                "bad_param_names",
                "long_string",
                "oversized",
                "multipart",
                "ext",
                "deep",
                "int_key",
                "bad_audio",
            ]
        )
        message = self.message()
        if category == "random_bytes":
            return category, [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))]
        if category == "truncated":
            payload = _pack(message)
            return category, [payload[: rng.randint(1, len(payload) - 1)]]
        if category == "trailing":
            return category, [_pack(message) + bytes([rng.getrandbits(8)])]
        if category == "not_a_map":
            return category, [_pack(rng.choice([[1, 2], 3, "status", None, 2.5, True, b"bin"]))]
        if category == "version":
            message["v"] = rng.choice([0, 2, 255, 2**32, "1", 1.0, None, True, -1])
        elif category == "no_envelope":
            del message[rng.choice(["v", "type", "seq"])]
        elif category == "unknown_type":
            message["type"] = "".join(rng.choices(string.ascii_letters, k=rng.randint(0, 40)))
        elif category == "direction":
            message = self.message(_wrong_direction(self.sender))
        elif category == "missing_field":
            fields = [k for k in message if k not in ("v", "type", "seq")]
            if fields:
                del message[rng.choice(fields)]
            else:
                message["surplus"] = 1
        elif category == "extra_field":
            message["".join(rng.choices(string.ascii_lowercase, k=8))] = rng.choice(_ODD_VALUES[:6])
        elif category == "wrong_type":
            message = self.mutate_field(message, rng.choice(_ODD_VALUES))
        elif category == "nan_inf_huge":
            if "values" in message and rng.random() < 0.5:
                message["values"] = {**message["values"], rng.choice(SCHEMA.snapshot_params): self.number()}
            else:
                message = self.mutate_field(message, self.number())
        elif category == "out_of_range_param":
            spec = rng.choice([p for p in SCHEMA.parameters if p.name in SCHEMA.snapshot_params])
            bad = rng.choice([spec.maximum * 1.01 + 0.01, spec.minimum - abs(spec.minimum) * 0.01 - 0.01])
            message = self.message({k: v for k, v in self.base.items() if "values" in v} or self.base)
            message["values"] = {**message.get("values", flat_values()), spec.name: bad}
        elif category == "bad_param_names":
            message = self.message({k: v for k, v in self.base.items() if "values" in v} or self.base)
            values = dict(message.get("values", flat_values()))
            values.pop(rng.choice(list(values)))
            if rng.random() < 0.5:
                values["volume"] = 1.0
            message["values"] = values
        elif category == "long_string":
            message = self.mutate_field(message, rng.choice(["w" * 1025, "a\x00b", "\n", ["x" * 65] * 17]))
        elif category == "oversized":
            size = rng.choice([SCHEMA.limits["max_control_bytes"] + 10, SCHEMA.largest_message + 10])
            message["pad"] = [b"\x00" * 60000] * (size // 60000) + [b"\x00" * (size % 60000)]
        elif category == "multipart":
            return category, [_pack(message)] * rng.randint(2, 3)
        elif category == "ext":
            message = self.mutate_field(message, msgpack.ExtType(rng.randint(0, 127), b"abc"))
        elif category == "deep":
            return category, [b"\x91" * rng.randint(600, 3000) + b"\x00"]
        elif category == "int_key":
            return category, [b"\x81" + _pack(rng.randint(0, 100)) + _pack(1)]
        elif category == "bad_audio":
            samples = np.ones(rng.randint(1, 3000), "<f4")
            samples[rng.randrange(samples.size)] = rng.choice([np.nan, np.inf])
            message = {
                "v": SCHEMA.version,
                "type": "audio",
                "seq": 1,
                "rate": 16000,
                "start": 0,
                "samples": samples.tobytes()[: rng.choice([samples.nbytes, samples.nbytes - 1])],
            }
        return category, [_pack(message)]

    def stateful(self, category: str, held: int) -> tuple[str, list[bytes]]:
        self.seq += 1
        if category == "hello_required":  # well-formed engine messages from a peer that never said hello
            kind = self.rng.choice(["heartbeat", "audio", "bye"])
            return category, [_pack({"v": SCHEMA.version, "type": kind, "seq": self.seq, **self.base[kind]})]
        values = flat_values()
        snapshot = self.rng.randint(1, held)
        return category, [
            _pack(
                {
                    "v": SCHEMA.version,
                    "type": "params",
                    "seq": self.seq,
                    "snapshot": snapshot,
                    "values": values,
                    "words": [],
                }
            )
        ]


def _invalid(frames: list[bytes], role: str) -> bool:
    if len(frames) != 1:
        return True
    try:
        decode(frames[0], role)
    except MessageError:
        return True
    return False


def fuzz(
    sender: str, count: int, seed: int = 0, stateful: str | None = None, held: int = 1, stateful_share: float = 0.05
) -> Iterator[tuple[str, list[bytes]]]:
    """`count` fuzzed messages as `sender` ('engine' toward a sidecar, 'sidecar' toward an engine) would send them.

    With `stateful` ('hello_required' or 'stale', with `held` the engine's snapshot), that share of the cases is
    well-formed but must be refused for state.
    """
    fuzzer = _Fuzzer(sender, seed)
    made = 0
    while made < count:
        if stateful is not None and fuzzer.rng.random() < stateful_share:
            yield fuzzer.stateful(stateful, held)
            made += 1
            continue
        category, frames = fuzzer.case()
        if _invalid(frames, fuzzer.role):
            yield category, frames
            made += 1
