"""The plugin's sidecar link (C++) under a hostile sidecar: the same rules as the Python side (issue 9).

Snapshot numbers end at max_snapshot (2^53-1) in the plugin's validator as in Python's; a sidecar that sends numbers
past the end, messages of thousands of frames or floods of errors changes nothing and stops nothing; text from a
message is kept within kStatusTextBytes (256) and cut at a UTF-8 character boundary. The helpers (the live test host,
the fake sidecar) are those of tests/test_plugin_sidecar.py, in tests/support/plugin_live.py.
"""

from __future__ import annotations

import json
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from idaw.base.protocol import MAX_SNAPSHOT, SCHEMA, MessageError, decode, encode, flat_values
from tests.support.endpoints import free_endpoint
from tests.support.plugin import PluginBuild, run_host
from tests.support.plugin_live import HOST_CAP_S, STEP_CAP_S, FakeSidecar, live_host
from tests.support.sidecar_helpers import wait_until

EMOJI = "\U0001f600"
STATUS_TEXT_BYTES = 256
"""kStatusTextBytes in sidecar_link.h."""
NEAR_THE_END = (MAX_SNAPSHOT - 1, MAX_SNAPSHOT, MAX_SNAPSHOT + 1, 2**63, 2**64 - 1)


def pack(kind: str, seq: int = 900, **fields: Any) -> bytes:
    return bytes(msgpack.packb({"v": SCHEMA.version, "type": kind, "seq": seq, **fields}, use_bin_type=True))


def limit_payloads() -> list[tuple[bytes, str]]:
    """(payload, receiving role) for every message field that carries a snapshot number, at and past its end."""
    values = flat_values()
    engine = {"session": 5, "name": "e", "snapshot": 1, "held": 1, "windows": 2, "seen_ms": 3}
    valid: dict[str, dict[str, Any]] = {
        "hello": {"session": 7, "name": "x", "rate": 16000, "snapshot": 0, "values": values},
        "welcome": {"re": 1, "session": 9, "snapshot": 0, "handler": "x"},
        "heartbeat": {"session": 7, "snapshot": 3},
        "params": {"snapshot": 4, "values": values, "words": []},
        "described": {"re": 2, "snapshot": 4, "values": values, "used": [], "engines": 1},
        "feedback": {"snapshot": 4, "rating": 1.0, "words": []},
        "status_reply": {
            "re": 4,
            "session": 9,
            "uptime_s": 1.5,
            "handler": "x",
            "snapshot": 4,
            "sessions": 1,
            "received": {},
            "rejected": {},
            "dropped": 0,
            "engines": [engine],
        },
    }
    out = []
    for kind, fields in valid.items():
        roles = (
            ["sidecar", "engine"] if kind == "heartbeat" else ["sidecar" if kind in ("hello", "feedback") else "engine"]
        )
        for role in roles:
            for number in NEAR_THE_END:
                out.append((pack(kind, **{**fields, "snapshot": number}), role))
            if kind == "status_reply":
                for number in NEAR_THE_END:
                    out.append((pack(kind, **{**fields, "engines": [{**engine, "held": number}]}), role))
    out.append((pack("status", seq=2**64 - 1), "sidecar"))  # the envelope's seq may use all 64 bits
    return out


def test_plugin_validator_agrees_at_the_ends_of_the_counters(build: PluginBuild, tmp_path: Path) -> None:
    """Every snapshot number up to max_snapshot passes, every larger one is out_of_range, in C++ as in Python."""
    cases = limit_payloads()
    verdicts: dict[str, list[str]] = {}
    for role in ("sidecar", "engine"):
        payloads = [p for p, r in cases if r == role]
        blob = tmp_path / f"{role}.bin"
        blob.write_bytes(b"".join(struct.pack("<I", len(p)) + p for p in payloads))
        proc = subprocess.run(
            [str(build.host), "decode", role, str(blob)], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        plugin = json.loads(proc.stdout)
        python = []
        for payload in payloads:
            try:
                python.append(f"ok:{decode(payload, role).kind}")
            except MessageError as error:
                python.append(error.reason)
        assert plugin == python, [(p[:50], a, b) for p, a, b in zip(payloads, python, plugin, strict=True) if a != b]
        verdicts[role] = python
    every = verdicts["sidecar"] + verdicts["engine"]
    assert every.count("out_of_range") == 3 * (len(every) - 1) // 5  # three of each five numbers are past the end
    assert verdicts["sidecar"][-1] == "ok:status"


def test_link_never_takes_a_snapshot_number_past_the_end(build: PluginBuild) -> None:
    """A sidecar sending params numbered 2^64-1 (or anything past max_snapshot) used to make the plugin hold that
    number, so that every later snapshot was 'stale'. Now those are refused, and neither thousands of frames in one
    message nor a flood of errors stops the link; the last number that is allowed is taken, and nothing after it."""
    endpoint = free_endpoint()
    fake = FakeSidecar(endpoint)
    try:
        with live_host(build, endpoint, HOST_CAP_S, "--commands") as host:
            assert fake.pump_until(lambda: len(fake.of_kind("heartbeat")) >= 2), "the plugin was not welcomed"
            good = {**flat_values(), "low_gain": 5.0, "mid2_freq": 2000.0}
            for number in (2**64 - 1, 2**63, MAX_SNAPSHOT + 1):
                fake.raw(pack("params", snapshot=number, values=good, words=["warm"]))
            fake.raw(*([b"\x80"] * 5000))  # one message of 5000 frames
            for seq in range(50):  # each answered with a hello, as the protocol says
                fake.raw(pack("error", seq=1000 + seq, re=1, code="hello_required", detail=EMOJI * 64))
            fake.raw(pack("welcome", re=1, session=FakeSidecar.SESSION, snapshot=0, handler=EMOJI * 16))
            beats = len(fake.of_kind("heartbeat"))
            assert fake.pump_until(lambda: len(fake.of_kind("heartbeat")) >= beats + 3)
            assert fake.of_kind("heartbeat")[-1].fields["snapshot"] == 0  # none of those numbers was taken
            assert len(fake.of_kind("hello")) >= 2  # answers to hello_required (some may not fit its send queue)
            reports = len(host.lines)
            assert fake.pump_until(lambda: len(host.lines) >= reports + 2)
            assert host.values() == pytest.approx(flat_values())
            # The last number there is is taken ...
            fake.snapshot = MAX_SNAPSHOT
            fake.send("params", snapshot=MAX_SNAPSHOT, values=good, words=["warm"])
            assert wait_until(host.holds(good), STEP_CAP_S, 0.02), host.values()
            assert fake.pump_until(lambda: fake.of_kind("heartbeat")[-1].fields["snapshot"] == MAX_SNAPSHOT)
            # ... and nothing after it (past the end: refused; the same number: stale).
            fake.raw(pack("params", snapshot=MAX_SNAPSHOT + 1, values=flat_values(), words=[]))
            fake.send("params", snapshot=MAX_SNAPSHOT, values=flat_values(), words=[])
            beats = len(fake.of_kind("heartbeat"))
            assert fake.pump_until(lambda: len(fake.of_kind("heartbeat")) >= beats + 2)
            reports = len(host.lines)
            assert fake.pump_until(lambda: len(host.lines) >= reports + 2)
            assert host.holds(good)()
            host.quit()
            assert fake.pump_until(lambda: host.proc.poll() is not None)
            summary = host.finish()
        assert summary["rtcheck"]["violations"] == 0, summary["rtcheck"]["last_violation"]
        for message in fake.received:  # everything the plugin sent was valid (pump() checks) and within the limits
            assert message.fields.get("snapshot", 0) <= MAX_SNAPSHOT
    finally:
        fake.close()


class RefusingSidecar(threading.Thread):
    """A sidecar on a thread that welcomes the plugin (its handler's name 64 bytes of emoji) and answers every
    describe with error 'handler_failed' whose detail is 256 bytes of emoji, the longest the protocol allows."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.stop = threading.Event()
        self.describes = 0
        self.seq = 0

    def send(self, identity: bytes, kind: str, **fields: Any) -> None:
        self.seq += 1
        self.socket.send_multipart([identity, encode(kind, self.seq, **fields)])

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.socket.poll(50):
                continue
            identity, payload = self.socket.recv_multipart()
            message = decode(payload, "sidecar")
            if message.kind == "hello":
                self.send(identity, "welcome", re=message.seq, session=3, snapshot=0, handler=EMOJI * 16)
            elif message.kind == "heartbeat":
                self.send(identity, "heartbeat", session=3, snapshot=0)
            elif message.kind == "describe":
                self.describes += 1
                self.send(identity, "error", re=message.seq, code="handler_failed", detail=EMOJI * 64)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.socket.close(0)


def test_a_refusal_shown_in_the_editor_is_cut_at_a_character_boundary(
    build: PluginBuild, xvfb: str, tmp_path: Path
) -> None:
    """The editor shows what a describe came to: 'refused (handler_failed): ' and the sidecar's detail, cut to 256
    bytes at a character boundary (ending in '…'), never a broken character."""
    endpoint = free_endpoint()
    sidecar = RefusingSidecar(endpoint)
    sidecar.start()
    try:
        report, _ = run_host(
            build,
            "editor",
            "--png",
            tmp_path / "refused.png",
            "--seconds",
            "30",
            env={"DISPLAY": xvfb, "IDAW_SIDECAR_ENDPOINT": endpoint, "IDAW_EDITOR_DESCRIBE": "warm"},
            timeout=120,
        )
    finally:
        sidecar.close()
    shown = report["editor"]["describe_status"]
    assert sidecar.describes == 1
    assert shown.startswith(f"refused (handler_failed): {EMOJI}") and shown.endswith("…"), shown
    assert len(shown.encode("utf-8")) <= STATUS_TEXT_BYTES and "\ufffd" not in shown and "?" not in shown
    assert set(shown.removeprefix("refused (handler_failed): ").removesuffix("…")) == {EMOJI}
    assert report["editor"]["sidecar_status"].startswith(f"sidecar: connected ({EMOJI * 16})")
