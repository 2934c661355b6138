"""Fuzzed sidecar messages, one at a time and in sequences.

`fuzz(sender, count, seed)` yields `count` (category, frames) pairs that a receiver must reject: random bytes,
truncation, wrong types, NaN, huge values, wrong versions, ... Every single-frame case is checked against the local
validator first (a mutation that happens to stay valid is replaced), except the categories in STATEFUL, which are
well-formed but refused for the receiver's state.

`SequenceFuzzer(seed).sequence()` makes sequences of messages over a few connections, valid and not: engine
sessions coming and going (more than the sidecar may remember), counters at and past their limits, requests that
ask for many or large replies without reading them, clients interleaved on one session, hostile text, malformed and
oversized frames, reconnects. `run_fuzz(process, count)` sends `count` of them to a real sidecar process and
reports what it saw (exits, invalid replies, internal failures, sessions, memory); `problems(report)` lists what
is wrong. `python -m tests.support.sidecar_fuzz --sequences 100000` (from the repository root) runs it against a fresh
`idaw sidecar` (PROTOCOL.md).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import math
import random
import string
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq

from idaw.base.protocol import (
    MAX_SESSIONS,
    MAX_SNAPSHOT,
    SCHEMA,
    Message,
    MessageError,
    decode,
    flat_values,
    next_seq,
)
from realtime.sidecar_link.process import SidecarProcess
from sidecar.client import SidecarClient, SidecarError

STATEFUL = frozenset({"hello_required", "stale"})
"""Categories that pass decode() and are rejected because of state (no hello yet; an older snapshot)."""

_ODD_VALUES: list[Any] = ["text", 1.5, -7, [1, 2], {"k": 1}, b"\x00\x01", None, True, msgpack.ExtType(3, b"x")]


def _pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def base_messages(sender: str) -> dict[str, dict[str, Any]]:
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
            "follow": {"on": 0},
        }
    return {
        "welcome": {"re": 1, "session": 5, "snapshot": 0, "handler": "x"},
        "heartbeat": {"session": 5, "snapshot": 0},
        "params": {"snapshot": 9, "values": values, "words": ["warm"]},
        "described": {"re": 1, "snapshot": 0, "values": values, "used": [], "engines": 0},
        "mood_read": {"re": 1, "valence": -0.5, "arousal": 0.25},
        "error": {"re": 1, "code": "version", "detail": "x"},
    }


def _wrong_direction(sender: str) -> dict[str, dict[str, Any]]:
    """Valid messages of types the receiver never accepts."""
    return base_messages("sidecar" if sender == "engine" else "engine")


class _Fuzzer:
    def __init__(self, sender: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sender = sender
        self.role = "sidecar" if sender == "engine" else "engine"
        self.base = base_messages(sender)
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


# ---- sequences of messages ------------------------------------------------------------------------------------------

EMOJI = "\U0001f600"
"""Four UTF-8 bytes, one character: text measured in characters instead of bytes comes out four times too long."""

WORDS = ["warm", "bright", "crunchy", "Warm ", "dark", EMOJI * 16, "é" * 32, "a" * 64, "w\u0301arm", "ﬁne", "x"]
"""Describe words: known, unknown, and the longest the protocol allows in bytes (each at most 64 bytes)."""

FAMILIES = ("session", "limits", "crowd", "steal", "amplify", "hostile_text", "malformed", "reconnect")
"""Kinds of sequence SequenceFuzzer makes (see its docstring)."""


@dataclass(frozen=True)
class Step:
    """One thing a sequence does: send `frames` on connection `connection`, or (frames None) replace that connection
    by a new one (a new ZeroMQ identity, as an engine that restarted has)."""

    connection: int
    frames: tuple[bytes, ...] | None


@dataclass(frozen=True)
class FuzzSequence:
    """A sequence of steps of one family."""

    family: str
    steps: tuple[Step, ...]


class SequenceFuzzer:
    """Sequences of messages to a sidecar over `connections` connections, seeded (the same seed, the same sequences).

    Families: `session` (an engine's hello, then heartbeats, audio, requests, maybe bye), `limits` (snapshot numbers
    and seq at and past their ends), `crowd` (hellos of new sessions, more than the sidecar may remember), `steal`
    (two connections on one session, one connection changing session), `amplify` (bursts of requests whose replies
    are not read, some large), `hostile_text` (text that is long in bytes, non-printable or not a string where a
    reply might quote it), `malformed` (single broken messages from `fuzz`), `reconnect` (a connection replaced by
    a new one that resumes a session).
    """

    def __init__(self, seed: int, connections: int = 6) -> None:
        self.rng = random.Random(seed)
        self.connections = connections
        self.single = _Fuzzer("engine", seed + 1)
        self.seq = [0] * connections
        self.sessions = [self.rng.getrandbits(63) | 1 for _ in range(24)] + [1, 2**63 - 1, 2**64 - 1]
        self._fresh = itertools.count(1 << 40)
        self.audio = {
            n: np.sin(np.arange(n) / 7.0).astype("<f4").tobytes() for n in (1, 400, 4000, 44100, 65536)
        }  # 65536 samples: the largest window the protocol allows

    # -- message builders (valid unless a caller makes them otherwise) --

    def _message(self, connection: int, kind: str, seq: int | None = None, **fields: Any) -> tuple[bytes, ...]:
        if seq is None:
            self.seq[connection] = seq = next_seq(self.seq[connection])
        return (_pack({"v": SCHEMA.version, "type": kind, "seq": seq, **fields}),)

    def _snapshot(self) -> int:
        """A snapshot number: mostly ordinary, often at or past the end of the range."""
        rng = self.rng
        if rng.random() < 0.9:  # a number at the end poisons describes while its engine is connected: not too often
            return rng.choice([0, 1, 2, rng.randint(0, 1000)])
        return rng.choice([MAX_SNAPSHOT - 2, MAX_SNAPSHOT - 1, MAX_SNAPSHOT, MAX_SNAPSHOT + 1, 2**63, 2**64 - 1])

    def _pick_session(self) -> int:
        return self.rng.choice(self.sessions)

    def _hello(self, connection: int, session: int, snapshot: int | None = None, **extra: Any) -> tuple[bytes, ...]:
        fields = {
            "session": session,
            "name": self.rng.choice(["fuzz", "idaw live", EMOJI * 16, ""]),
            "rate": self.rng.choice([8000, 22050, 48000]),
            "snapshot": self._snapshot() if snapshot is None else snapshot,
            "values": flat_values(),
        }
        return self._message(connection, "hello", **{**fields, **extra})

    def _engine_message(self, connection: int, session: int) -> tuple[bytes, ...]:
        """One message an engine (or a client on its connection) sends after hello."""
        rng = self.rng
        kind = rng.choice(["heartbeat", "heartbeat", "audio", "describe", "feedback", "status", "follow", "mood"])
        if kind == "mood":
            # The first one loads the sentence model on the sidecar's loop (seconds); later ones take milliseconds.
            text = rng.choice(["happy", "sad and slow", "x" * 500, EMOJI * 125, " "])
            return self._message(connection, kind, text=text)
        if kind == "follow":
            # On and off: followers are built on the sidecar's background thread (the first one loads librosa and
            # music21 for seconds) while it goes on answering; windows that come meanwhile are kept, boundedly.
            return self._message(connection, kind, on=rng.choice([0, 1]))
        if kind == "heartbeat":
            return self._message(connection, kind, session=session, snapshot=self._snapshot())
        if kind == "audio":
            samples = self.audio[rng.choice([1, 400, 4000, 4000, 44100, 65536] if rng.random() < 0.1 else [400, 4000])]
            return self._message(connection, kind, rate=22050, start=rng.choice([0, 2**64 - 1]), samples=samples)
        if kind == "describe":
            return self._describe(connection)
        if kind == "feedback":
            snapshot = max(1, self._snapshot())
            return self._message(connection, kind, snapshot=snapshot, rating=rng.uniform(-1, 1), words=["warm"])
        return self._message(connection, "status")

    def _describe(self, connection: int) -> tuple[bytes, ...]:
        words = self.rng.sample(WORDS, self.rng.randint(1, 4)) if self.rng.random() < 0.9 else [EMOJI * 16] * 16
        return self._message(connection, "describe", words=words, intensity=self.rng.choice([0.0, 0.5, 1.0]))

    # -- families --

    def sequence(self) -> FuzzSequence:
        """The next sequence (its family chosen at random)."""
        family = self.rng.choice(FAMILIES)
        steps: list[Step] = []
        getattr(self, f"_{family}")(steps)
        return FuzzSequence(family, tuple(steps))

    def _connection(self) -> int:
        return self.rng.randrange(self.connections)

    def _session(self, steps: list[Step]) -> None:
        c, session = self._connection(), self._pick_session()
        steps.append(Step(c, self._hello(c, session, snapshot=self.rng.choice([0, 1, self.rng.randint(0, 50)]))))
        for _ in range(self.rng.randint(0, 5)):
            steps.append(Step(c, self._engine_message(c, session)))
        if self.rng.random() < 0.2:
            steps.append(Step(c, self._message(c, "bye", session=session)))

    def _limits(self, steps: list[Step]) -> None:
        rng = self.rng
        c, other, session = self._connection(), self._connection(), self._pick_session()
        near = [MAX_SNAPSHOT - 1, MAX_SNAPSHOT, MAX_SNAPSHOT + 1, 2**64 - 1]
        steps.append(Step(c, self._hello(c, session, snapshot=rng.choice(near))))
        steps.append(Step(other, self._describe(other)))  # would number a snapshot past the end
        steps.append(Step(c, self._message(c, "heartbeat", session=session, snapshot=rng.choice(near))))
        steps.append(Step(other, self._message(other, "feedback", snapshot=rng.choice(near), rating=0.0, words=[])))
        seq = rng.choice([0, 2**64 - 1, 2**63])  # the envelope's own counter at its ends
        steps.append(Step(other, self._message(other, "status", seq=seq)))
        steps.append(Step(other, self._message(other, "describe", seq=seq, words=["warm"], intensity=1.0)))
        steps.append(Step(other, (_pack({"v": SCHEMA.version, "type": "status", "seq": -1}),)))
        steps.append(Step(c, self._message(c, "bye", session=session)))

    def _crowd(self, steps: list[Step]) -> None:
        for _ in range(self.rng.randint(3, 16)):
            c = self._connection()
            session = next(self._fresh)
            if self.rng.random() < 0.3:
                steps.append(Step(c, None))  # each its own connection
            steps.append(Step(c, self._hello(c, session, snapshot=0)))
            if self.rng.random() < 0.5:
                steps.append(Step(c, self._message(c, "heartbeat", session=session, snapshot=0)))

    def _steal(self, steps: list[Step]) -> None:
        a, b = self.rng.sample(range(self.connections), 2)
        session, other = self._pick_session(), self._pick_session()
        steps.append(Step(a, self._hello(a, session, snapshot=0)))
        steps.append(Step(b, self._hello(b, session, snapshot=1)))  # the session moves to b
        steps.append(Step(a, self._message(a, "heartbeat", session=session, snapshot=0)))  # a: hello_required
        steps.append(Step(b, self._engine_message(b, session)))
        steps.append(Step(b, self._hello(b, other, snapshot=0)))  # b changes session
        steps.append(Step(b, self._message(b, "heartbeat", session=session, snapshot=1)))
        steps.append(Step(a, self._describe(a)))

    def _amplify(self, steps: list[Step]) -> None:
        c = self._connection()
        kinds = ["status", "describe", "feedback"]
        for _ in range(self.rng.randint(10, 80)):  # replies pile up unread: the sidecar drops what does not fit
            kind = self.rng.choice(kinds)
            if kind == "status":
                steps.append(Step(c, self._message(c, "status")))
            elif kind == "describe":
                steps.append(Step(c, self._describe(c)))
            else:
                steps.append(Step(c, self._message(c, "feedback", snapshot=1, rating=1.0, words=["warm"] * 16)))

    def _hostile_text(self, steps: list[Step]) -> None:
        rng = self.rng
        c, session = self._connection(), self._pick_session()
        long_key = rng.choice([EMOJI * 250, "k" * 1000, "\x00\n\x1b" * 300, "\u202e" * 300])
        values = flat_values()
        values.pop(rng.choice(list(values)))
        values[long_key] = 1.0
        steps.append(Step(c, self._hello(c, session, values=values)))  # finding 1a: the key used to be quoted whole
        steps.append(Step(c, self._message(c, "describe", words=["warm"], intensity=0.5, **{long_key: 1})))
        steps.append(Step(c, self._message(c, long_key, words=["warm"])))  # an unknown type of 1000 bytes
        steps.append(Step(c, self._message(c, "describe", words=[long_key[:200]], intensity=0.5)))
        steps.append(Step(c, self._hello(c, session, name=EMOJI * 17)))  # 68 bytes, 17 characters
        steps.append(Step(c, (_pack({"v": SCHEMA.version, "type": "hello", "seq": 1, b"\xff" * 40: 1}),)))
        steps.append(Step(c, self._message(c, "describe", words=[rng.choice(WORDS)] * 16, intensity=1.0)))

    def _malformed(self, steps: list[Step]) -> None:
        for _ in range(self.rng.randint(1, 4)):
            _, frames = self.single.case()
            steps.append(Step(self._connection(), tuple(frames)))

    def _reconnect(self, steps: list[Step]) -> None:
        c, session = self._connection(), self._pick_session()
        steps.append(Step(c, self._hello(c, session, snapshot=0)))
        steps.append(Step(c, None))
        steps.append(Step(c, self._message(c, "heartbeat", session=session, snapshot=0)))  # new identity: no hello
        steps.append(Step(c, self._hello(c, session, snapshot=self._snapshot())))
        steps.append(Step(c, self._engine_message(c, session)))


# ---- running sequences against a sidecar process ------------------------------------------------------------------

RSS_GROWTH_BOUND_KIB = 64 * 1024
"""How much the sidecar's resident memory may grow after the warm-up. What it may legitimately hold by then is
bounded: max_sessions analysis windows of at most 256 KiB (16 MiB), the windows kept for followers being built
(MAX_FOLLOWED x FOLLOW_BACKLOG of them, 16 MiB), ZeroMQ's queues (a few MiB at the high-water marks these tests
reach) and the allocator's slack; 64 MiB is twice the windows, while a leak of only 1 KiB per sequence passes it
within 100,000 sequences."""

WARMUP_SEQUENCES = 2000
"""Sequences sent before the memory baseline is taken (sessions, windows and queues have filled up by then)."""

SEND_TIMEOUT_MS = 20_000
"""A send that cannot be queued for this long means the sidecar stopped reading (a hang counts as a failure)."""

SYNC_TIMEOUT_S = 30.0
"""How long a sync waits for the sidecar's answers before it counts as hung (a describe of the model is ~20 ms)."""

SYNC_RESEND_S = 1.0
"""A sync's status request is sent again after this long (its reply may have been dropped: a full queue)."""

ENGINES_GONE_CAP_S = 60.0
"""How long the end of a run waits for the sidecar to forget the fuzzed engines' connections (it does so at its first
heartbeat round after peer_timeout_ms of silence): a guard against a sidecar that never does, not a measure."""

SYNC_SEQ = 1 << 62
"""Seq numbers of the sync status requests start here (the fuzzed messages' own seqs stay far below)."""


class SidecarHangError(RuntimeError):
    """The sidecar stopped answering."""


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process `pid` in KiB: its resident memory now and at its peak, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


@dataclass
class FuzzReport:
    """What run_fuzz saw. `problems(report)` lists what is wrong with it."""

    sequences: int = 0
    messages: int = 0
    """Messages the fuzzed connections sent (status checks not included)."""
    checks: int = 0
    """Status requests of the checker (valid; counted by the sidecar as received status)."""
    replies: int = 0
    invalid: int = 0
    """Replies that failed the protocol's checks (the first few are in invalid_replies)."""
    invalid_replies: list[str] = field(default_factory=list)
    exits: int = 0
    exit_logs: list[str] = field(default_factory=list)
    families: collections.Counter[str] = field(default_factory=collections.Counter)
    max_sessions: int = 0
    """The most sessions any status reported."""
    warm_rss_kib: int = 0
    max_rss_kib: int = 0
    """The largest RSS sampled after the warm-up."""
    peak_rss_kib: int = 0
    """The sidecar's VmHWM at the end: its peak resident memory over the whole run."""
    wall_s: float = 0.0
    counted: int = 0
    """received + rejected in the sidecar's last status."""
    received: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    answers_after: str = ""
    """What a describe at the end came back with (the sidecar still does its job)."""
    hangs: list[str] = field(default_factory=list)
    miscounts: list[str] = field(default_factory=list)

    base_count: int = 0
    """received + rejected before the run (what others sent the sidecar earlier)."""

    @property
    def expected_count(self) -> int:
        """received + rejected a check's status must show: what was counted before, every message sent, each status
        check but that one (a status reply counts the messages before it)."""
        return self.base_count + self.messages + self.checks - 1


class _Connections:
    """The fuzzer's DEALER sockets (replaced on a reconnect step); received replies are checked and counted.

    `sync(connections)` sends a status request on each and waits for the answers: the sidecar has then handled
    everything sent on them before (ZeroMQ keeps each connection's order), so it never falls behind by more than a
    sequence (its queues, and memory, stay small) and no reply is lost to a connection closed too early.
    """

    def __init__(self, endpoint: str, count: int, report: FuzzReport, alive: Callable[[], bool]) -> None:
        self.context: zmq.Context[Any] = zmq.Context.instance()
        self.endpoint = endpoint
        self.report = report
        self.alive = alive
        self.sockets = [self._open() for _ in range(count)]
        self._sync_seq = SYNC_SEQ

    def _open(self) -> zmq.Socket[bytes]:
        socket: zmq.Socket[bytes] = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)  # a sidecar that stops reading makes send() raise
        socket.connect(self.endpoint)
        return socket

    def run(self, step: Step) -> None:
        """Send one step's frames, or replace its connection (after syncing it: its replies are read first)."""
        if step.frames is None:
            self.sync([step.connection])
            self.sockets[step.connection].close(0)
            self.sockets[step.connection] = self._open()
            return
        self.sockets[step.connection].send_multipart(list(step.frames))
        self.report.messages += 1

    def _receive(self, socket: zmq.Socket[bytes]) -> Message | None:
        """One reply (which must pass the protocol's checks; else it is recorded as invalid and None comes back)."""
        frames = socket.recv_multipart()
        self.report.replies += 1
        try:
            if len(frames) != 1:
                raise MessageError("frames", f"{len(frames)} frames")
            return decode(frames[0], "engine")  # every message the sidecar sends must pass the protocol's checks
        except MessageError as error:
            self.report.invalid += 1
            if len(self.report.invalid_replies) < 10:
                self.report.invalid_replies.append(f"{error} in {frames[0][:120]!r}")
            return None

    def sync(self, connections: Sequence[int]) -> None:
        """Status requests on `connections`, and wait for their answers (resent when one was dropped); raises
        SidecarHangError after SYNC_TIMEOUT_S, returns at once when the sidecar is gone."""
        waiting: dict[int, int] = {}
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        resend = 0.0
        while self.alive():
            now = time.monotonic()
            if now > deadline:
                raise SidecarHangError(f"no answer to a status request within {SYNC_TIMEOUT_S:g} s")
            if now >= resend:  # first time, and again when a reply was dropped (its queue was full)
                for c in connections if not waiting else list(waiting):
                    self._sync_seq += 1
                    waiting[c] = self._sync_seq
                    self.sockets[c].send_multipart([_pack({"v": SCHEMA.version, "type": "status", "seq": waiting[c]})])
                    self.report.messages += 1
                resend = now + SYNC_RESEND_S
            for c in list(waiting):
                socket = self.sockets[c]
                while c in waiting and socket.poll(0):
                    reply = self._receive(socket)
                    if reply is not None and reply.kind == "status_reply":
                        self.report.max_sessions = max(self.report.max_sessions, reply.fields["sessions"])
                        if reply.fields["re"] == waiting[c]:
                            del waiting[c]
            if not waiting:
                return
            zmq.select([self.sockets[c] for c in waiting], [], [], 0.05)

    def close(self) -> None:
        for socket in self.sockets:
            socket.close(0)


def _check(process: SidecarProcess, report: FuzzReport, warm: bool) -> dict[str, Any] | None:
    """One status request on its own connection, and a memory sample; None (an exit counted, the sidecar started
    again) when the process had died. Every fuzzed message was synced before: the counts must add up exactly."""
    if not process.running:
        report.exits += 1
        report.exit_logs.append(process.log_tail(8))
        process.start()
        return None
    with SidecarClient(process.endpoint, timeout=SYNC_TIMEOUT_S) as client:
        report.checks += 1
        status = client.status()
    report.max_sessions = max(report.max_sessions, status["sessions"])
    report.received, report.rejected, report.dropped = status["received"], status["rejected"], status["dropped"]
    report.counted = sum(status["received"].values()) + sum(status["rejected"].values())
    if not report.exits and report.counted != report.expected_count and not report.miscounts:
        report.miscounts.append(f"after {report.sequences} sequences: {report.counted} != {report.expected_count}")
    assert process.pid is not None
    rss, _ = rss_kib(process.pid)
    if warm:
        report.warm_rss_kib = report.warm_rss_kib or rss
        report.max_rss_kib = max(report.max_rss_kib, rss)
    return status


def _engines_gone(process: SidecarProcess) -> bool:
    """Poll the sidecar's status until it lists no connected engine: True then; False when ENGINES_GONE_CAP_S
    pass first or the sidecar is not running."""
    deadline = time.monotonic() + ENGINES_GONE_CAP_S
    with SidecarClient(process.endpoint, timeout=SYNC_TIMEOUT_S) as client:
        while process.running:
            if not client.status()["engines"]:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(SCHEMA.timing["heartbeat_interval_ms"] / 1000)
    return False


def run_fuzz(
    process: SidecarProcess,
    count: int,
    seed: int = 0,
    connections: int = 6,
    check_every: int = 500,
    sync_every: int = 4,
) -> FuzzReport:
    """Send `count` fuzzed sequences to the running sidecar `process`; the report of what happened.

    After every `sync_every` sequences the connections they used are synced (their replies read and checked; the
    sidecar is then never more than that many sequences behind, and its memory holds no backlog). Every `check_every`
    sequences: the process must be alive (else an exit is counted and it is started again), its status must count
    every message sent exactly once and name at most max_sessions sessions, and its RSS is sampled (from the
    WARMUP_SEQUENCES-th sequence on). At the end it must still answer a describe.
    """
    report = FuzzReport()
    fuzzer = SequenceFuzzer(seed, connections)
    began = time.monotonic()
    with SidecarClient(process.endpoint, timeout=SYNC_TIMEOUT_S) as client:
        before = client.status()
    report.base_count = sum(before["received"].values()) + sum(before["rejected"].values()) + 1  # + that status
    pool = _Connections(process.endpoint, connections, report, lambda: process.running)
    used: set[int] = set()
    try:
        for number in range(1, count + 1):
            sequence = fuzzer.sequence()
            report.families[sequence.family] += 1
            for step in sequence.steps:
                pool.run(step)
                used.add(step.connection)
            report.sequences += 1
            checking = number % check_every == 0 or number == count
            if number % sync_every == 0 or checking:
                pool.sync(sorted(used))
                used.clear()
            if checking:
                exits = report.exits
                _check(process, report, warm=number >= min(WARMUP_SEQUENCES, count))
                if report.exits != exits:  # a new process: new connections
                    pool.close()
                    pool = _Connections(process.endpoint, connections, report, lambda: process.running)
        pool.close()
        # Once the fuzzed engines are gone (silent for peer_timeout_ms, their connections are forgotten at the
        # sidecar's next heartbeat round: no one holds the last snapshot number any more), the sidecar must do its
        # job as before. Its own status says when they are gone: a busy machine may run that round late.
        gone = process.running and _engines_gone(process)
        if process.running and not gone:
            report.answers_after = f"fuzzed engines still connected {ENGINES_GONE_CAP_S:g} s after the last message"
        elif gone:
            with SidecarClient(process.endpoint, timeout=SYNC_TIMEOUT_S) as client:
                try:
                    answer = client.describe(["warm"], 0.5)
                    report.answers_after = f"described {answer.used} (snapshot {answer.snapshot})"
                except SidecarError as error:
                    report.answers_after = f"error {error.code}: {error}"
    except (SidecarHangError, SidecarError, zmq.Again) as error:  # zmq.Again: a send timed out
        report.hangs.append(f"after {report.sequences} sequences: {type(error).__name__}: {error}")
    finally:
        pool.close()
    if process.pid is not None and process.running:
        report.peak_rss_kib = rss_kib(process.pid)[1]
    report.wall_s = time.monotonic() - began
    return report


def problems(report: FuzzReport) -> list[str]:
    """What is wrong with a run: exits, hangs, invalid replies, internal failures, too many sessions, memory growth,
    messages not counted exactly once, a sidecar that no longer answers."""
    found = []
    if report.exits:
        found.append(f"the sidecar exited {report.exits} times: {report.exit_logs[:2]}")
    if report.hangs:
        found.append(f"the sidecar stopped answering: {report.hangs[0]}")
    if report.invalid:
        found.append(f"{report.invalid} invalid replies: {report.invalid_replies[:3]}")
    if report.rejected.get("internal", 0):
        found.append(f"{report.rejected['internal']} internal failures (see the sidecar's log)")
    if report.max_sessions > MAX_SESSIONS:
        found.append(f"{report.max_sessions} sessions remembered; at most {MAX_SESSIONS} allowed")
    if report.max_rss_kib > report.warm_rss_kib + RSS_GROWTH_BOUND_KIB:
        found.append(
            f"RSS grew from {report.warm_rss_kib} KiB after the warm-up to {report.max_rss_kib} KiB "
            f"(bound +{RSS_GROWTH_BOUND_KIB} KiB)"
        )
    if report.miscounts:
        found.append(f"messages not counted exactly once (received + rejected): {report.miscounts[0]}")
    if not report.answers_after.startswith("described ['warm']"):
        found.append(f"no answer to a describe at the end: {report.answers_after!r}")
    return found


def summary(report: FuzzReport) -> dict[str, Any]:
    """The report's figures as a JSON-ready dict."""
    return {
        "sequences": report.sequences,
        "messages": report.messages,
        "replies": report.replies,
        "exits": report.exits,
        "peak_rss_mib": round(report.peak_rss_kib / 1024, 1),
        "rss_after_warmup_mib": round(report.warm_rss_kib / 1024, 1),
        "max_rss_after_warmup_mib": round(report.max_rss_kib / 1024, 1),
        "max_sessions": report.max_sessions,
        "wall_s": round(report.wall_s, 1),
        "families": dict(report.families),
        "received": report.received,
        "rejected": report.rejected,
        "dropped": report.dropped,
        "answers_after": report.answers_after,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.support.sidecar_fuzz`: fuzz a fresh `idaw sidecar`; prints the report, exit 1 on any problem."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.sidecar_fuzz", description=main.__doc__)
    parser.add_argument("--sequences", type=int, default=100_000, help="how many sequences (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--handler", default="fallback", help="the sidecar's --handler (default fallback)")
    parser.add_argument("--connections", type=int, default=6)
    parser.add_argument("--check-every", type=int, default=1000, help="sequences between status checks")
    parser.add_argument("--sync-every", type=int, default=4, help="sequences between syncs (replies read)")
    args = parser.parse_args(argv)
    if min(args.sequences, args.check_every, args.sync_every) < 1 or args.connections < 2:
        parser.error("--sequences, --check-every and --sync-every must be at least 1, --connections at least 2")
    with SidecarProcess(handler=args.handler) as process:
        report = run_fuzz(process, args.sequences, args.seed, args.connections, args.check_every, args.sync_every)
    found = problems(report)
    print(json.dumps({**summary(report), "problems": found}, indent=2))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
