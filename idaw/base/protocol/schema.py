"""The sidecar protocol's schema, loaded from protocol.json (next to this module), and the field validators built
from it.

protocol.json is the one definition both sides use (this module for Python; the plugin reads the same file).
Every validator takes a decoded msgpack value and returns the normalized value (floats as float, audio as a
read-only float32 array, parameter maps as dict[str, float]) or raises `MessageError` naming one of the schema's
`reasons`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idaw.base.defaults import PROTOCOL_PATH
from idaw.base.params import ParamSpec

SCHEMA_PATH = PROTOCOL_PATH
"""The machine-readable protocol definition."""

UINT64_MAX = 2**64 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)

Validator = Callable[[Any], Any]
"""Checks one decoded value; returns it normalized or raises MessageError."""


class MessageError(Exception):
    """A message failed validation: `reason` is a key of the schema's `reasons`; `seq`/`type` when they were read."""

    def __init__(self, reason: str, detail: str, seq: int | None = None, kind: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.seq = seq
        self.kind = kind


@dataclass(frozen=True)
class MessageSpec:
    """One message type: who may send it, its byte limit and its compiled field validators."""

    name: str
    senders: frozenset[str]
    max_bytes: int
    fields: Mapping[str, Validator]


@dataclass(frozen=True)
class Schema:
    """Everything protocol.json defines, with validators compiled."""

    version: int
    default_endpoint: str
    limits: Mapping[str, int]
    timing: Mapping[str, int]
    analysis: Mapping[str, float]
    messages: Mapping[str, MessageSpec]
    reasons: tuple[str, ...]
    snapshot_params: tuple[str, ...]
    parameters: tuple[ParamSpec, ...]
    raw: Mapping[str, Any]
    received_by: Mapping[str, frozenset[str]]
    """'sidecar' and 'engine' (engines and clients alike) -> the message types they receive (decode() asks each
    time, so it is worked out once)."""

    @property
    def largest_message(self) -> int:
        """The largest byte size any message type allows."""
        return max(spec.max_bytes for spec in self.messages.values())

    def accepted_by(self, role: str) -> frozenset[str]:
        """Message types that `role` ('sidecar', 'engine' or 'client') may receive."""
        return self.received_by["sidecar" if role == "sidecar" else "engine"]


def printable_text(text: str, max_bytes: int) -> str:
    """`text` made fit for a protocol string of at most `max_bytes` UTF-8 bytes: every character that is not
    printable (controls, lone surrogates, ...) becomes '?', and a longer text is cut at a character boundary and
    ends in '…'. What comes back always passes the schema's str check."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    data = clean.encode("utf-8")
    if len(data) <= max_bytes:
        return clean
    mark = "…" if max_bytes >= 3 else ""
    # Decoding a prefix with 'ignore' drops only the partial character the cut may leave at its end.
    return data[: max_bytes - len(mark.encode())].decode("utf-8", "ignore") + mark


def _reject(reason: str, detail: str) -> MessageError:
    return MessageError(reason, detail)


def _uint(spec: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> Validator:
    low = int(spec.get("min", 0))
    # "max_limit" names one of the schema's limits (e.g. max_snapshot): one home for a bound many fields share.
    high = int(schema["limits"][spec["max_limit"]]) if "max_limit" in spec else int(spec.get("max", UINT64_MAX))

    def check(value: Any) -> int:
        if type(value) is not int:  # bool is an int subclass: excluded
            raise _reject("wrong_type", f"{where} must be an unsigned integer")
        if not low <= value <= high:
            raise _reject("out_of_range", f"{where} = {value} outside {low}..{high}")
        return value

    return check


def _number(value: Any, where: str) -> float:
    """`value` as a finite float, or MessageError (wrong_type for non-numbers, non_finite for NaN/Inf)."""
    if type(value) is float:
        number = value
    elif type(value) is int:
        number = float(value) if abs(value) < 2**63 else math.inf
        if math.isinf(number):
            raise _reject("out_of_range", f"{where} is too large")
    else:
        raise _reject("wrong_type", f"{where} must be a number")
    if not math.isfinite(number):
        raise _reject("non_finite", f"{where} is {number}")
    return number


def _float(spec: Mapping[str, Any], where: str) -> Validator:
    low = float(spec.get("min", -math.inf))
    high = float(spec.get("max", math.inf))

    def check(value: Any) -> float:
        number = _number(value, where)
        if not low <= number <= high:
            raise _reject("out_of_range", f"{where} = {number:g} outside {low:g}..{high:g}")
        return number

    return check


def _str(spec: Mapping[str, Any], where: str) -> Validator:
    low = int(spec.get("min_bytes", 0))
    high = int(spec["max_bytes"])

    def check(value: Any) -> str:
        if type(value) is not str:
            raise _reject("wrong_type", f"{where} must be a string")
        size = len(value.encode("utf-8", "surrogatepass"))
        if not low <= size <= high:
            raise _reject("out_of_range", f"{where} is {size} bytes; allowed {low}..{high}")
        if not value.isprintable():
            raise _reject("out_of_range", f"{where} holds control characters")
        return value

    return check


def _bin(spec: Mapping[str, Any], where: str) -> Validator:
    low = int(spec.get("min_bytes", 0))
    high = int(spec["max_bytes"])
    multiple = int(spec.get("multiple_of", 1))
    finite = bool(spec.get("finite_f32", False))

    def check(value: Any) -> Any:
        if type(value) is not bytes:
            raise _reject("wrong_type", f"{where} must be bin")
        if not low <= len(value) <= high or len(value) % multiple:
            raise _reject(
                "out_of_range", f"{where} is {len(value)} bytes; allowed {low}..{high}, multiple of {multiple}"
            )
        if not finite:
            return value
        samples = np.frombuffer(value, dtype="<f4")
        if not np.isfinite(samples).all():
            raise _reject("non_finite", f"{where} holds NaN or Inf samples")
        return samples

    return check


def _list(spec: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> Validator:
    low = int(spec.get("min_items", 0))
    high = int(spec["max_items"])
    item = compile_field(spec["items"], f"{where}[]", schema)

    def check(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _reject("wrong_type", f"{where} must be an array")
        if not low <= len(value) <= high:
            raise _reject("out_of_range", f"{where} has {len(value)} items; allowed {low}..{high}")
        return [item(v) for v in value]

    return check


def _map(spec: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> Validator:
    high = int(spec["max_items"])
    key = _str({"min_bytes": 1, "max_bytes": 64}, f"{where} key")
    item = compile_field(spec["values"], f"{where}{{}}", schema)

    def check(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _reject("wrong_type", f"{where} must be a map")
        if len(value) > high:
            raise _reject("out_of_range", f"{where} has {len(value)} items; at most {high}")
        return {key(k): item(v) for k, v in value.items()}

    return check


def _object(spec: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> Validator:
    fields = compile_fields(spec["fields"], where, schema)

    def check(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _reject("wrong_type", f"{where} must be a map")
        return check_fields(fields, value, where)

    return check


def _params(schema: Mapping[str, Any], where: str) -> Validator:
    table = {p["name"]: p for p in schema["parameters"]}
    names = tuple(schema["snapshot_params"])
    expected = frozenset(names)
    # Compared as float32, the engine's type (0.1 is inside 0.1..10 although float32(0.1) > 0.1).
    bounds = {n: (float(np.float32(table[n]["min"])), float(np.float32(table[n]["max"]))) for n in names}

    def check(value: Any) -> dict[str, float]:
        if type(value) is not dict:
            raise _reject("wrong_type", f"{where} must be a map of parameter values")
        if value.keys() != expected:
            missing = sorted(expected - value.keys())
            unknown = sorted(repr(k)[:24] for k in value.keys() - expected)  # quoted short: a key may be 1 KB
            raise _reject("bad_params", f"{where}: missing {missing[:3]}, unknown {unknown[:3]}")
        out: dict[str, float] = {}
        for name in names:
            number = _number(value[name], f"{where}.{name}")
            low, high = bounds[name]
            if abs(number) > FLOAT32_MAX or not low <= float(np.float32(number)) <= high:
                raise _reject("out_of_range", f"{where}.{name} = {number:g} outside {low:g}..{high:g}")
            out[name] = number
        return out

    return check


def compile_field(spec: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> Validator:
    """The validator of one field spec of protocol.json (`where` names the field in rejection details)."""
    kind = spec["type"]
    if kind == "uint":
        return _uint(spec, where, schema)
    if kind == "float":
        return _float(spec, where)
    if kind == "str":
        return _str(spec, where)
    if kind == "bin":
        return _bin(spec, where)
    if kind == "list":
        return _list(spec, where, schema)
    if kind == "map":
        return _map(spec, where, schema)
    if kind == "object":
        return _object(spec, where, schema)
    if kind == "params":
        return _params(schema, where)
    raise ValueError(f"protocol.json: unknown field type {kind!r} at {where}")


def compile_fields(specs: Mapping[str, Any], where: str, schema: Mapping[str, Any]) -> dict[str, Validator]:
    """Validators of every field of one message type or object, keyed by field name."""
    return {name: compile_field(spec, f"{where}.{name}", schema) for name, spec in specs.items()}


def check_fields(fields: Mapping[str, Validator], value: Mapping[Any, Any], where: str) -> dict[str, Any]:
    """`value`'s fields validated: every field of `fields` present, no other; returns the normalized dict."""
    for key in value:
        if key not in fields:
            raise _reject("unknown_field", f"{where} has no field {str(key)[:40]!r}")
    out: dict[str, Any] = {}
    for name, check in fields.items():
        if name not in value:
            raise _reject("missing_field", f"{where}.{name} is missing")
        out[name] = check(value[name])
    return out


def load(path: Path = SCHEMA_PATH) -> Schema:
    """The Schema of protocol.json at `path` (raises ValueError if the file is inconsistent)."""
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    limits = {k: int(v) for k, v in raw["limits"].items()}
    messages: dict[str, MessageSpec] = {}
    for name, spec in raw["messages"].items():
        limit_name = spec.get("max_bytes_limit", "max_control_bytes")
        messages[name] = MessageSpec(
            name=name,
            senders=frozenset(spec["from"]),
            max_bytes=limits[limit_name],
            fields=compile_fields(spec["fields"], name, raw),
        )
    parameters = tuple(
        ParamSpec(p["name"], p["unit"], float(p["min"]), float(p["max"]), float(p["default"]), p["scale"])
        for p in raw["parameters"]
    )
    names = {p.name for p in parameters}
    if not set(raw["snapshot_params"]) <= names:
        raise ValueError("protocol.json: snapshot_params names a parameter missing from parameters")
    if max(m.max_bytes for m in messages.values()) > limits["zmq_max_message_bytes"]:
        raise ValueError("protocol.json: a message limit exceeds zmq_max_message_bytes")
    return Schema(
        version=int(raw["version"]),
        default_endpoint=str(raw["default_endpoint"]),
        limits=limits,
        timing={k: int(v) for k, v in raw["timing"].items()},
        analysis={k: float(v) for k, v in raw["analysis"].items()},
        messages=messages,
        reasons=tuple(raw["reasons"]),
        snapshot_params=tuple(raw["snapshot_params"]),
        parameters=parameters,
        raw=raw,
        received_by={
            "sidecar": frozenset(n for n, s in messages.items() if s.senders & {"engine", "client"}),
            "engine": frozenset(n for n, s in messages.items() if "sidecar" in s.senders),
        },
    )
