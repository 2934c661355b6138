"""Shared pieces of the sidecar tests: a sidecar on a thread, an engine paced like an audio device, a bare fake
sidecar that answers the link by hand, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import zmq

import idaw_core
from idaw.base.protocol import decode, encode
from realtime import params
from sidecar.handlers import AnalysisWindow, DescribeHandler, DescribeResult, FallbackTableHandler
from sidecar.server import SidecarServer

if TYPE_CHECKING:
    from idaw.listen.follow import Follower

RATE = 48000
BLOCK = 256
HANG_CAP_S = 30.0
"""How long a step may wait for what it checks (wait_until, wait_connected, ...) before the test fails: a guard
against a hang only, generous for a busy 2-core machine. Waits return as soon as the condition holds."""


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.002) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class SidecarServerThread:
    """A SidecarServer bound to `endpoint` (server.endpoint is the bound one) serving on a thread until stop()."""

    def __init__(
        self,
        handler: DescribeHandler | None = None,
        endpoint: str = "tcp://127.0.0.1:*",
        build_follower: Callable[[], Follower] | None = None,
    ) -> None:
        """`build_follower`: the server's follower builder (SidecarServer's default when None)."""
        self.server = SidecarServer(endpoint, handler or FallbackTableHandler(), build_follower=build_follower)
        self.server.bind()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.server.serve, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice)."""
        self._stop.set()
        self._thread.join(HANG_CAP_S)
        self.server.close()


@contextmanager
def server_thread(
    handler: DescribeHandler | None = None,
    endpoint: str = "tcp://127.0.0.1:*",
    build_follower: Callable[[], Follower] | None = None,
) -> Iterator[SidecarServer]:
    """A SidecarServerThread's server for the duration of a `with` block."""
    running = SidecarServerThread(handler, endpoint, build_follower)
    try:
        yield running.server
    finally:
        running.stop()


class PacedEngine:
    """An idaw_core.Engine processed block by block in real time by a Python thread (an audio device stand-in).

    The input is a sine of `freq` Hz (or noise when freq is None). Records every vector pushed to the engine.
    """

    def __init__(self, base: npt.NDArray[np.float32] | None = None, freq: float | None = 1000.0) -> None:
        self.engine = idaw_core.Engine()
        self.engine.prepare(float(RATE), BLOCK, 2)
        self.base = params.defaults() if base is None else base
        self.engine.set_parameters_now(self.base)
        self.sample_rate = float(RATE)
        self.freq = freq
        self.pushes: list[tuple[int, npt.NDArray[np.float32]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-engine", daemon=True)

    def _input(self) -> npt.NDArray[np.float32]:
        seconds = 1.0
        t = np.arange(int(RATE * seconds)) / RATE
        if self.freq is None:
            mono = np.random.default_rng(0).normal(0.0, 0.1, t.size)
        else:
            mono = 0.25 * np.sin(2 * np.pi * self.freq * t)
        return np.repeat(mono[:, None], 2, axis=1).astype(np.float32)

    def _run(self) -> None:
        source = self._input()
        position = 0
        due = time.monotonic()
        while not self._stop.is_set():
            block = np.ascontiguousarray(source[position : position + BLOCK])
            position = (position + BLOCK) % (source.shape[0] - BLOCK)
            self.engine.process(block)
            due += BLOCK / RATE
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # fell far behind (a loaded machine): do not try to catch up in a burst
                due = time.monotonic()

    def start(self) -> PacedEngine:
        """Start the block thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the block thread."""
        self._stop.set()
        self._thread.join(HANG_CAP_S)

    # EngineLike, recording pushes
    def push_parameters(self, values: npt.NDArray[np.float32], sequence: int = 0) -> bool:
        accepted = bool(self.engine.push_parameters(values, sequence))
        if accepted:
            self.pushes.append((sequence, values.copy()))
        return accepted

    def read_analysis(self, out: npt.NDArray[np.float32]) -> int:
        return int(self.engine.read_analysis(out))

    def set_analysis_enabled(self, on: bool) -> None:
        self.engine.set_analysis_enabled(on)

    def applied(self) -> int:
        """The engine's applied_sequence counter."""
        return int(self.engine.counters()["applied_sequence"])

    def blocks(self) -> int:
        """Blocks processed so far."""
        return int(self.engine.counters()["blocks"])


@contextmanager
def paced_engine(base: npt.NDArray[np.float32] | None = None, freq: float | None = 1000.0) -> Iterator[PacedEngine]:
    """A started PacedEngine, stopped at exit."""
    engine = PacedEngine(base, freq).start()
    try:
        yield engine
    finally:
        engine.stop()


class RecordingHandler(FallbackTableHandler):
    """The fallback handler, remembering the analysis windows it was given."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[AnalysisWindow | None] = []

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """Records `window`, then answers as FallbackTableHandler does."""
        self.windows.append(window)
        return super().describe(words, intensity, window)


class BareSidecar:
    """A bare ROUTER that answers the link's hello and then sends whatever the test wants."""

    def __init__(self) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full queue blocks the sender instead of dropping
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.peer = b""
        self.seq = 0

    def accept(self, timeout: float = HANG_CAP_S) -> None:
        """Wait for hello and answer welcome."""
        assert self.socket.poll(int(timeout * 1000))
        self.peer, payload = self.socket.recv_multipart()
        hello = decode(payload, "sidecar")
        assert hello.kind == "hello"
        self.send("welcome", re=hello.seq, session=77, snapshot=hello.fields["snapshot"], handler="fake")

    def send(self, kind: str, **fields: Any) -> None:
        """A valid message of type `kind` to the link."""
        self.seq += 1
        self.socket.send_multipart([self.peer, encode(kind, self.seq, **fields)])

    def send_raw(self, payload: bytes) -> None:
        """`payload` to the link exactly as given."""
        self.socket.send_multipart([self.peer, payload])

    def close(self) -> None:
        """Close the socket at once (nothing lingers)."""
        self.socket.close(0)
