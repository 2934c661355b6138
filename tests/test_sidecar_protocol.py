"""The sidecar protocol without sockets: schema vs the C++ parameter table, codec, every rejection reason,
the fallback handler, analysis windows, and that PROTOCOL.md documents what protocol.json defines."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import msgpack
import numpy as np
import pytest

import idaw_core
from idaw.base import protocol
from idaw.base.protocol import (
    MAX_SNAPSHOT,
    SCHEMA,
    MessageError,
    ProtocolError,
    decode,
    encode,
    flat_values,
    next_seq,
    printable_text,
)
from realtime import params
from realtime.sidecar_link.analysis import WindowMaker
from sidecar.handlers import FallbackTableHandler, load_handler
from tests.support.repo import REPO

SIDECAR = REPO / "sidecar"
PROTOCOL = REPO / "idaw" / "base" / "protocol"
PROTOCOL_CODE = (SIDECAR, PROTOCOL, REPO / "realtime" / "sidecar_link")
"""Every folder whose code speaks the protocol."""


def pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def envelope(kind: str, seq: int = 1, **fields: Any) -> dict[str, Any]:
    return {"v": SCHEMA.version, "type": kind, "seq": seq, **fields}


def examples() -> dict[str, dict[str, Any]]:
    """A valid field set for every message type."""
    values = flat_values()
    engine = {"session": 5, "name": "e", "snapshot": 1, "held": 1, "windows": 2, "seen_ms": 3}
    return {
        "hello": {"session": 7, "name": "idaw live", "rate": 16000, "snapshot": 0, "values": values},
        "welcome": {"re": 1, "session": 9, "snapshot": 0, "handler": "fallback-table"},
        "heartbeat": {"session": 7, "snapshot": 3},
        "audio": {"rate": 16000, "start": 0, "samples": np.zeros(32000, np.float32).tobytes()},
        "params": {"snapshot": 4, "values": values, "words": ["warm"]},
        "describe": {"words": ["warm"], "intensity": 0.7},
        "described": {"re": 2, "snapshot": 4, "values": values, "used": ["warm"], "engines": 1},
        "feedback": {"snapshot": 4, "rating": 1.0, "words": ["warm"]},
        "mood": {"text": "melancholic but hopeful"},
        "mood_read": {"re": 6, "valence": -0.2, "arousal": 0.1},
        "ack": {"re": 3},
        "status": {},
        "status_reply": {
            "re": 4,
            "session": 9,
            "uptime_s": 1.5,
            "handler": "x",
            "snapshot": 4,
            "sessions": 1,
            "received": {"hello": 1},
            "rejected": {"version": 2},
            "dropped": 0,
            "engines": [engine],
        },
        "error": {"re": 5, "code": "version", "detail": "wrong version"},
        "bye": {"session": 7},
        "follow": {"on": 1},
        "heard": {
            "upto": 44100,
            "tempo_bpm": 120.0,
            "beat": 43000,
            "key_tonic": 4,
            "key_minor": 0,
            "emotion": "bright",
            "valence": 0.6,
            "arousal": 0.6,
        },
    }


def receiver(kind: str) -> str:
    return "sidecar" if kind in SCHEMA.accepted_by("sidecar") else "engine"


def test_parameter_table_matches_the_core() -> None:
    core = [(s["name"], s["unit"], s["min"], s["max"], s["default"]) for s in idaw_core.param_specs()]
    schema = [(p.name, p.unit, p.minimum, p.maximum, p.default) for p in SCHEMA.parameters]
    assert len(schema) == len(core) == idaw_core.NUM_PARAMS
    for ours, theirs in zip(schema, core, strict=True):
        assert ours[:2] == theirs[:2]
        assert np.float32(ours[2]) == np.float32(theirs[2]) and np.float32(ours[3]) == np.float32(theirs[3])
        assert np.float32(ours[4]) == np.float32(theirs[4])
    assert SCHEMA.snapshot_params == params.EQ_PARAM_NAMES


def test_every_message_type_round_trips() -> None:
    cases = examples()
    assert set(cases) == set(SCHEMA.messages), "examples() must cover every type"
    for seq, (kind, fields) in enumerate(cases.items(), start=1):
        message = decode(encode(kind, seq, **fields), receiver(kind))
        assert (message.kind, message.seq) == (kind, seq)
        assert set(message.fields) == set(fields)


def test_audio_samples_decode_to_float32() -> None:
    samples = np.linspace(-1, 1, 1000, dtype=np.float32)
    message = decode(encode("audio", 1, rate=16000, start=99, samples=samples), "sidecar")
    np.testing.assert_array_equal(message.fields["samples"], samples)


def _rejection_cases() -> list[tuple[str, bytes, str, str]]:
    values = flat_values()
    good = examples()
    nan_params = {**values, "low_gain": math.nan}
    without_high_freq = {k: v for k, v in values.items() if k != "high_freq"}
    cases = [
        ("oversized", b"\x00" * (SCHEMA.largest_message + 1), "sidecar", "oversized"),
        (
            "control too big",
            pack(envelope("describe", words=["x" * 60] * 16, intensity=0.5, pad=["y" * 1000] * 4)),
            "sidecar",
            "oversized",
        ),
        ("random bytes", b"\xc1\xff\x00garbage", "sidecar", "undecodable"),
        ("truncated", encode("describe", 1, words=["warm"], intensity=0.5)[:-3], "sidecar", "undecodable"),
        ("trailing data", encode("status", 1) + b"\x00", "sidecar", "undecodable"),
        ("ext type", b"\x81\xa1v\xc7\x01\x05\x00", "sidecar", "undecodable"),
        ("int map key", b"\x81\x01\x02", "sidecar", "undecodable"),
        ("invalid utf-8", b"\x81\xa1v\xa2\xff\xfe", "sidecar", "undecodable"),
        ("not a map", pack([1, 2, 3]), "sidecar", "not_a_map"),
        ("no version", pack({"type": "status", "seq": 1}), "sidecar", "missing_field"),
        ("next version", pack({**envelope("status"), "v": SCHEMA.version + 1}), "sidecar", "version"),
        ("version as str", pack({**envelope("status"), "v": "1"}), "sidecar", "wrong_type"),
        ("negative seq", pack({**envelope("status"), "seq": -1}), "sidecar", "wrong_type"),
        ("unknown type", pack(envelope("format_disk")), "sidecar", "unknown_type"),
        ("type not str", pack({**envelope("status"), "type": 3}), "sidecar", "wrong_type"),
        ("params to sidecar", encode("params", 1, **good["params"]), "sidecar", "direction"),
        ("describe to engine", encode("describe", 1, **good["describe"]), "engine", "direction"),
        ("missing field", pack(envelope("describe", words=["warm"])), "sidecar", "missing_field"),
        ("extra field", pack(envelope("status", evil=1)), "sidecar", "unknown_field"),
        ("str for float", pack(envelope("describe", words=["warm"], intensity="0.7")), "sidecar", "wrong_type"),
        ("bool for uint", pack(envelope("heartbeat", session=True, snapshot=1)), "sidecar", "wrong_type"),
        ("NaN intensity", pack(envelope("describe", words=["warm"], intensity=math.nan)), "sidecar", "non_finite"),
        ("Inf intensity", pack(envelope("describe", words=["warm"], intensity=-math.inf)), "sidecar", "non_finite"),
        ("huge intensity", pack(envelope("describe", words=["warm"], intensity=1e308)), "sidecar", "out_of_range"),
        ("huge int", pack(envelope("describe", words=["warm"], intensity=2**64 - 1)), "sidecar", "out_of_range"),
        ("rate too low", pack(envelope("audio", rate=100, start=0, samples=b"\x00" * 8)), "sidecar", "out_of_range"),
        (
            "odd sample bytes",
            pack(envelope("audio", rate=16000, start=0, samples=b"\x00" * 7)),
            "sidecar",
            "out_of_range",
        ),
        (
            "NaN sample",
            pack(envelope("audio", rate=16000, start=0, samples=np.array([0, np.nan], "<f4").tobytes())),
            "sidecar",
            "non_finite",
        ),
        ("word too long", pack(envelope("describe", words=["w" * 65], intensity=0.5)), "sidecar", "out_of_range"),
        ("no words", pack(envelope("describe", words=[], intensity=0.5)), "sidecar", "out_of_range"),
        ("control char", pack(envelope("describe", words=["a\nb"], intensity=0.5)), "sidecar", "out_of_range"),
        (
            "missing param",
            pack(envelope("params", snapshot=2, values=without_high_freq, words=[])),
            "engine",
            "bad_params",
        ),
        (
            "unknown param",
            pack(envelope("params", snapshot=2, values={**values, "volume": 1.0}, words=[])),
            "engine",
            "bad_params",
        ),
        ("NaN param", pack(envelope("params", snapshot=2, values=nan_params, words=[])), "engine", "non_finite"),
        (
            "gain too high",
            pack(envelope("params", snapshot=2, values={**values, "mid1_gain": 12.5}, words=[])),
            "engine",
            "out_of_range",
        ),
        (
            "huge param",
            pack(envelope("params", snapshot=2, values={**values, "high_freq": 1e300}, words=[])),
            "engine",
            "out_of_range",
        ),
        ("snapshot 0", pack(envelope("params", snapshot=0, values=values, words=[])), "engine", "out_of_range"),
    ]
    return cases


@pytest.mark.parametrize(
    ("name", "payload", "role", "reason"), _rejection_cases(), ids=[c[0] for c in _rejection_cases()]
)
def test_each_malformation_is_rejected_with_its_reason(name: str, payload: bytes, role: str, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(payload, role)
    assert caught.value.reason == reason, f"{name}: {caught.value}"
    assert caught.value.reason in SCHEMA.reasons


def test_every_rejection_reason_is_listed() -> None:
    code = "\n".join(p.read_text() for folder in PROTOCOL_CODE for p in folder.glob("*.py"))
    found = set(re.findall(r'MessageError\(\s*"(\w+)"', code))
    found |= set(re.findall(r'_reject\(\s*"(\w+)"', (PROTOCOL / "schema.py").read_text()))
    found |= {"frames"}
    assert found <= set(SCHEMA.reasons), found - set(SCHEMA.reasons)


def test_encode_refuses_what_decode_would_reject() -> None:
    with pytest.raises(ProtocolError):
        encode("describe", 1, words=["warm"], intensity=math.nan)
    with pytest.raises(ProtocolError):
        encode("params", 1, snapshot=1, values={**flat_values(), "low_gain": 40.0}, words=[])
    with pytest.raises(ProtocolError):
        encode("nonsense", 1)


def test_protocol_md_documents_the_schema() -> None:
    text = (PROTOCOL / "PROTOCOL.md").read_text(encoding="utf-8")
    for kind, spec in SCHEMA.raw["messages"].items():
        assert f"`{kind}`" in text, kind
        for field in spec["fields"]:
            assert f"`{field}`" in text, f"{kind}.{field}"
    for reason in SCHEMA.reasons:
        assert f"`{reason}`" in text, reason
    for limit in SCHEMA.limits.values():
        assert str(limit) in text


def test_no_pickle_anywhere_in_the_sidecar() -> None:
    for path in (p for folder in PROTOCOL_CODE for p in folder.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle)\b", source, re.M), path


def test_fallback_handler_follows_the_safe_table() -> None:
    handler = FallbackTableHandler()
    warm = handler.describe(["warm"], 0.7, None)
    assert list(warm.used) == ["warm"]
    assert warm.values["mid1_gain"] == pytest.approx(0.7 * 4.8)
    assert warm.values["mid1_freq"] == pytest.approx(320.0)
    assert warm.values["high_gain"] == pytest.approx(0.7 * -1.5)
    bright = handler.describe(["Bright"], 1.0, None)
    assert bright.values["low_gain"] == pytest.approx(-2.1)
    assert bright.values["mid3_gain"] == pytest.approx(4.8) and bright.values["mid3_freq"] == pytest.approx(3100)
    assert bright.values["high_gain"] == pytest.approx(4.0) and bright.values["high_freq"] == pytest.approx(6000)
    flat = handler.describe(["warm", "bright"], 0.0, None)
    assert all(v == 0.0 for k, v in flat.values.items() if k.endswith("_gain"))
    unknown = handler.describe(["crunchy"], 1.0, None)
    assert list(unknown.used) == [] and unknown.values == flat_values()
    for result in (warm, bright, flat, handler.describe(["warm", "bright"], 1.0, None)):
        params.build(result.values)  # every value inside the engine's ranges


def test_load_handler_names_what_is_wrong() -> None:
    assert load_handler("fallback").name == "fallback-table"
    with pytest.raises(ValueError, match=r"package\.module:factory"):
        load_handler("nonsense")
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_handler("sidecar.no_such_module:create")
    with pytest.raises(ValueError, match="no describe"):
        load_handler("os:getcwd")


def test_local_endpoints() -> None:
    assert protocol.is_local_endpoint("tcp://127.0.0.1:47800")
    assert protocol.is_local_endpoint("tcp://[::1]:47800")
    assert protocol.is_local_endpoint("tcp://localhost:1")
    assert protocol.is_local_endpoint("ipc:///tmp/x.sock")
    for remote in ("tcp://0.0.0.0:1", "tcp://*:1", "tcp://192.168.1.2:1", "tcp://eth0:1", "udp://127.0.0.1:1"):
        assert not protocol.is_local_endpoint(remote), remote


class _Ring:
    """read_analysis() over a fixed signal, in pieces of at most `piece` samples per call."""

    def __init__(self, signal: np.ndarray, piece: int) -> None:
        self.signal, self.piece = signal.astype(np.float32), piece

    def read_analysis(self, out: np.ndarray) -> int:
        count = min(out.size, self.piece, self.signal.size)
        out[:count] = self.signal[:count]
        self.signal = self.signal[count:]
        return count


def test_windows_are_decimated_overlapping_and_indexed() -> None:
    rate = 48000
    t = np.arange(rate * 4) / rate
    ring = _Ring(np.sin(2 * np.pi * 1000 * t), piece=960)
    maker = WindowMaker(rate)
    analysis_rate = int(SCHEMA.analysis["rate"])
    assert maker.rate == analysis_rate and maker.window_n == 2 * analysis_rate and maker.hop_n == analysis_rate // 2
    windows = []
    for _ in range(4 * 50):
        ring.piece = 960  # 20 ms per pump, as the link drains
        window = maker.pump(ring)
        if window is not None:
            windows.append((*window, maker.total_out))
    assert 6 <= len(windows) <= 8  # one per 0.5 s hop over 4 s
    start, samples, produced = windows[-1]
    assert samples.dtype == np.float32 and samples.size == 2 * analysis_rate
    assert start + samples.size == produced  # the newest window_s seconds
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    assert np.fft.rfftfreq(samples.size, 1 / analysis_rate)[np.argmax(spectrum)] == pytest.approx(1000, abs=1)
    starts = [w[0] for w in windows[-3:]]
    assert all(b - a == pytest.approx(analysis_rate // 2, abs=400) for a, b in itertools.pairwise(starts))


def test_protocol_md_tables_are_generated_from_the_schema() -> None:
    from idaw.base.protocol import doc as protocol_doc

    text = (PROTOCOL / "PROTOCOL.md").read_text(encoding="utf-8")
    assert protocol_doc.generated_part(text) == protocol_doc.current(), (
        "PROTOCOL.md is out of date: run python -m idaw.base.protocol.doc --write"
    )


def test_semantic_eq_adapter_passes_window_and_maps_the_eq() -> None:
    from types import SimpleNamespace

    from sidecar.handlers import AnalysisWindow, SemanticEqAdapter

    calls = []

    class Model:
        def describe(self, words: list[str], intensity: float, audio: Any, rate: int) -> Any:
            calls.append((words, intensity, audio, rate))
            return SimpleNamespace(eq=np.arange(13, dtype=np.float64), words_used=("warm",))

    adapter = SemanticEqAdapter(Model())
    window = AnalysisWindow(np.zeros(100, np.float32), 16000, 0, 0.0)
    result = adapter.describe(["warm"], 0.5, window)
    assert list(result.values) == list(SCHEMA.snapshot_params)
    assert result.values["high_freq"] == 12.0 and list(result.used) == ["warm"]
    assert calls[0][2] is window.samples and calls[0][3] == 16000
    adapter.describe(["warm"], 0.5, None)
    assert calls[1][2] is None
    if not (SIDECAR / "semantic_eq" / "weights" / "semantic_eq.pt").exists():
        with pytest.raises(ValueError, match="semantic-eq' cannot be loaded"):
            load_handler("semantic-eq")


def _snapshot_fields() -> list[tuple[str, str]]:
    """(message type, field) of every top-level field that carries a snapshot number."""
    return [
        (kind, name)
        for kind, spec in SCHEMA.raw["messages"].items()
        for name, field in spec["fields"].items()
        if field.get("max_limit") == "max_snapshot"
    ]


def test_every_snapshot_number_ends_at_max_snapshot() -> None:
    """A snapshot number may reach max_snapshot (2^53-1) and no further, in every field that carries one."""
    assert MAX_SNAPSHOT == 2**53 - 1
    fields = _snapshot_fields()
    assert {k for k, _ in fields} == {
        "hello",
        "welcome",
        "heartbeat",
        "params",
        "described",
        "feedback",
        "status_reply",
    }
    engine = examples()["status_reply"]["engines"][0]
    for kind, name in fields:
        good = examples()[kind]
        assert decode(encode(kind, 1, **{**good, name: MAX_SNAPSHOT}), receiver(kind)).fields[name] == MAX_SNAPSHOT
        for bad in (MAX_SNAPSHOT + 1, 2**63, 2**64 - 1):
            with pytest.raises(MessageError) as caught:
                decode(pack(envelope(kind, **{**good, name: bad})), receiver(kind))
            assert caught.value.reason == "out_of_range", (kind, name, bad)
            with pytest.raises(ProtocolError):
                encode(kind, 1, **{**good, name: bad})  # and we never send one
    for name in ("snapshot", "held"):  # the engines listed in a status reply
        reply = {**examples()["status_reply"], "engines": [{**engine, name: MAX_SNAPSHOT + 1}]}
        with pytest.raises(MessageError) as caught:
            decode(pack(envelope("status_reply", **reply)), "client")
        assert caught.value.reason == "out_of_range", name


def test_seq_starts_again_at_one_after_its_end() -> None:
    assert next_seq(0) == 1 and next_seq(41) == 42
    assert next_seq(2**64 - 2) == 2**64 - 1 and next_seq(2**64 - 1) == 1
    assert decode(encode("status", 2**64 - 1), "sidecar").seq == 2**64 - 1
    for bad in (2**64, -1):
        with pytest.raises(ProtocolError):
            encode("status", bad)


@pytest.mark.parametrize(
    "text",
    ["plain", "\U0001f600" * 250, "é" * 300, "a\nb\x00c\u202e", "x" * 255 + "\U0001f600", "\ud800 lone surrogate", ""],
    ids=["plain", "emoji", "two-byte", "controls", "cut-in-a-character", "surrogate", "empty"],
)
def test_printable_text_fits_any_text_into_a_protocol_string(text: str) -> None:
    """Whatever the text, the result passes the error detail's own check (printable, at most 256 UTF-8 bytes)."""
    detail = printable_text(text, 256)
    assert len(detail.encode("utf-8")) <= 256 and detail.isprintable()
    decode(encode("error", 1, re=1, code="internal", detail=detail), "client")
    if len(text.encode("utf-8", "surrogatepass")) <= 256 and text.isprintable():
        assert detail == text  # what fits is left alone
    else:
        assert detail != text
    if len(text.encode("utf-8", "surrogatepass")) > 256:
        assert detail.endswith("…") and len(detail.encode()) > 240  # cut near the limit, not far below it


def test_a_rejection_never_quotes_a_long_key_in_full() -> None:
    """Finding 1a: an unknown parameter key of 250 emoji (1000 bytes) is quoted in at most a few dozen bytes."""
    values = {**flat_values(), "\U0001f600" * 250: 1.0}
    with pytest.raises(MessageError) as caught:
        decode(pack(envelope("hello", session=1, name="x", rate=16000, snapshot=0, values=values)), "sidecar")
    assert caught.value.reason == "bad_params"
    assert len(caught.value.detail.encode()) < 200, caught.value.detail


def test_every_reason_fits_an_error_code() -> None:
    limit = SCHEMA.raw["messages"]["error"]["fields"]["code"]["max_bytes"]
    assert all(len(reason.encode()) <= limit for reason in SCHEMA.reasons)
    assert {"internal", "full", "snapshot_limit"} <= set(SCHEMA.reasons)
    assert len(SCHEMA.reasons) <= SCHEMA.raw["messages"]["status_reply"]["fields"]["rejected"]["max_items"]
