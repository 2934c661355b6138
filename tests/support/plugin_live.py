"""The plugin running live in the C++ test host (`idaw_plugin_host live`: an audio thread paced like a sound card,
the message loop on the main thread, the values it holds reported every 100 ms), and a fake sidecar that speaks to the
plugin's link by hand."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import zmq

from idaw.base.protocol import SCHEMA, MessageError, decode, encode
from tests.support.plugin import PluginBuild

EQ = SCHEMA.snapshot_params
STEP_CAP_S = 60.0
"""How long one step may wait for what it checks (a state, a count of messages) before the test fails: a guard
against a hang only; nothing is asserted about how long a step took."""
HOST_CAP_S = 600.0
"""The live host's --seconds: a cap only; the tests end it with quit() once their steps are done."""


class LiveHost:
    """`idaw_plugin_host live` in the background; `lines` collects its reports, `summary` its last line."""

    def __init__(
        self,
        build: PluginBuild,
        endpoint: str,
        seconds: float,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        env = {
            **os.environ,
            "IDAW_SIDECAR_ENDPOINT": endpoint,
            "LD_PRELOAD": str(build.rtcheck),
            "IDAW_RTCHECK": "1",
            **(env or {}),
        }
        self.commands = "--commands" in extra
        self.proc = subprocess.Popen(
            [
                str(build.host),
                "live",
                str(build.vst3),
                "--seconds",
                str(seconds),
                "--report-ms",
                "100",
                "--rtcheck",
                *extra,
            ],
            env=env,
            stdin=subprocess.PIPE if self.commands else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def set(self, *assignments: str) -> None:
        """Set parameters ("intensity=0.2") from the host's message thread, all in one write (needs --commands)."""
        assert self.commands and self.proc.stdin is not None
        self.proc.stdin.write("".join(f"set {a}\n" for a in assignments))
        self.proc.stdin.flush()

    def quit(self) -> None:
        """End the run now (needs --commands): the host stops its audio and prints its summary."""
        assert self.commands and self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()

    def blocks(self) -> int:
        """Audio blocks the host had processed at its latest report (0 before the first)."""
        return int(self.lines[-1]["blocks"]) if self.lines else 0

    def values(self) -> dict[str, float]:
        """The EQ values the plugin held at its latest report."""
        return {name: self.lines[-1]["values"][name] for name in EQ} if self.lines else {}

    def editor(self) -> dict[str, Any]:
        """What the editor showed at the latest report (needs --editor): its status lines ("sidecar_status",
        "follow_status", ...) and "follow", the numbers behind the follow line; {} before the editor's first tick."""
        return dict(self.lines[-1].get("editor") or {}) if self.lines else {}

    def holds(self, values: dict[str, float]) -> Callable[[], bool]:
        """A predicate: the plugin's latest report holds `values` (to float32 precision)."""

        def check() -> bool:
            held = self.values()
            return bool(held) and all(held[n] == pytest.approx(values[n], rel=1e-6, abs=1e-6) for n in EQ)

        return check

    def finish(self) -> dict[str, Any]:
        """Wait for the end; the summary line (rtcheck counts, blocks)."""
        self.proc.wait(timeout=60)
        self._reader.join(5)  # the last line is read before stdout closes
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        assert self.proc.returncode == 0, stderr
        assert "real-time checker hook installed" in stderr
        summary = self.lines[-1]
        assert summary.get("done") is True
        return summary


@contextmanager
def live_host(
    build: PluginBuild, endpoint: str, seconds: float, *extra: str, env: dict[str, str] | None = None
) -> Iterator[LiveHost]:
    """A LiveHost for the duration of a `with` block (killed if still running at the end)."""
    host = LiveHost(build, endpoint, seconds, *extra, env=env)
    try:
        yield host
    finally:
        if host.proc.poll() is None:
            host.proc.kill()
            host.proc.wait()


class FakeSidecar:
    """A ROUTER that speaks to the plugin by hand: valid messages, and everything the protocol tells it to refuse."""

    SESSION = 77

    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.identity = b""
        self.seq = 0
        self.snapshot = 0
        self.received: list[Any] = []

    def pump(self, seconds: float) -> None:
        """Receive (and remember) what the plugin sends for `seconds`; welcome its hellos, answer its heartbeats."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.socket.poll(int(left * 1000) + 1):
                continue
            identity, payload = self.socket.recv_multipart()
            self.identity = identity
            try:
                message = decode(payload, "sidecar")
            except MessageError as error:  # the plugin must never send anything invalid
                raise AssertionError(f"the plugin sent an invalid message: {error}") from None
            self.received.append(message)
            if message.kind == "hello":
                self.send("welcome", re=message.seq, session=self.SESSION, snapshot=self.snapshot, handler="fake")
            elif message.kind == "heartbeat":
                self.send("heartbeat", session=self.SESSION, snapshot=self.snapshot)

    def pump_until(self, predicate: Callable[[], bool], cap: float = STEP_CAP_S) -> bool:
        """pump() in short slices until `predicate` holds (True) or `cap` seconds pass (False)."""
        deadline = time.monotonic() + cap
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            self.pump(0.05)
        return True

    def of_kind(self, kind: str) -> list[Any]:
        """Messages of one type received so far."""
        return [m for m in self.received if m.kind == kind]

    def send(self, kind: str, **fields: Any) -> None:
        """A valid message."""
        self.seq += 1
        self.raw(encode(kind, self.seq, **fields))

    def raw(self, *frames: bytes) -> None:
        """Frames exactly as given."""
        self.socket.send_multipart([self.identity, *frames])

    def close(self) -> None:
        self.socket.close(0)
