"""A private JACK server (dummy driver) for tests and benchmarks, and the `jack_server` pytest helper.

`JackServer` starts `jackd -n NAME -R -d dummy -r RATE -p PERIOD` under a server name of its own, so it never
touches a user's default server, waits until clients can connect, and stops it with SIGTERM (SIGKILL if it
hangs). Clients find it through `env()` (JACK_DEFAULT_SERVER) or `jack.Client(..., servername=server.name)`.
`start_for_test()` skips on a user's machine without jackd and fails under IDAW_REQUIRE_ALL=1 (tests/needs.py).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

JACKD_PACKAGE = "jackd2"
"""Debian package that provides jackd and jack_wait."""


class JackServerError(RuntimeError):
    """jackd could not be started (the message carries the end of its log)."""


class JackServer:
    """One private jackd with the dummy driver. Use as a context manager, or call start() and stop()."""

    def __init__(self, rate: int = 48000, period: int = 256, name: str | None = None, realtime: bool = True) -> None:
        self.rate = rate
        self.period = period
        self.name = name or f"idaw_test_{os.getpid()}_{time.monotonic_ns() % 1_000_000}"
        self.realtime = realtime
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="idaw-jackd-")
        self.log_path = Path(self._log_dir.name) / "jackd.log"

    def command(self) -> list[str]:
        """The jackd command line this server runs."""
        jackd = shutil.which("jackd") or "jackd"
        rt = ["-R"] if self.realtime else ["-r"]
        return [jackd, "-n", self.name, *rt, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a client process of this server (and never one that starts a server itself)."""
        env = dict(os.environ if base is None else base)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_START_SERVER"] = "1"
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        return env

    def start(self, timeout: float = 10.0) -> JackServer:
        """Start jackd and wait until it accepts clients; returns self. Raises JackServerError on failure."""
        if self.process is not None:
            return self
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env(), start_new_session=True,
            )
        atexit.register(self.stop)  # never leave a jackd behind, whatever happens to the caller
        deadline = time.monotonic() + timeout
        jack_wait = shutil.which("jack_wait")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JackServerError(f"jackd exited with status {self.process.returncode}: {self.log_tail()}")
            if self._accepting(jack_wait):
                return self
            time.sleep(0.05)
        self.stop()
        raise JackServerError(f"jackd did not come up within {timeout:g} s: {self.log_tail()}")

    def _accepting(self, jack_wait: str | None) -> bool:
        """True once the server answers (jack_wait -c, or the server's socket when jack_wait is missing)."""
        if jack_wait is not None:
            result = subprocess.run(
                [jack_wait, "-c", "-s", self.name], env=self.env(), capture_output=True, text=True,
                timeout=5, check=False,
            )
            return "not running" not in result.stdout and result.returncode == 0
        return any(p.name.startswith(f"jack_{self.name}") for p in Path("/dev/shm").glob("jack*"))

    @property
    def running(self) -> bool:
        """Whether jackd is still alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop jackd (SIGTERM, then SIGKILL after `timeout`); returns its exit status (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        status = self.process.returncode
        return status

    def kill(self) -> None:
        """Kill jackd abruptly (SIGKILL), as a crash would; clients see the server vanish."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_size(self) -> int:
        """Bytes in jackd's log so far: a mark for xrun_culprits()."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, since: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def xrun_culprits(self, since: int = 0) -> list[str]:
        """For each xrun in jackd's log after byte `since`, the client it blamed first: jackd lists every
        unfinished client in graph order, so the first is the late one and the rest were waiting for it."""
        culprits = []
        for event in self._log_since(since).split("Process error"):
            names = re.findall(r"XRun: client = (.+?) was not finished", event)
            if names:
                culprits.append(names[0])
        return culprits

    def late_wakeups(self, since: int = 0) -> int:
        """How often, after byte `since` of its log, jackd's own driver thread woke up too late for a cycle
        ("JackTimedDriver::Process XRun"): the machine stalled the server itself, no client was to blame."""
        return self._log_since(since).count("JackTimedDriver::Process XRun")

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of jackd's output, joined with ' | '."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip()) or "(empty log)"

    def close(self) -> None:
        """Stop the server and remove its log directory."""
        self.stop()
        self._log_dir.cleanup()

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def start_for_test(rate: int = 48000, period: int = 256) -> JackServer:
    """A started JackServer for a test; skips (or fails under IDAW_REQUIRE_ALL=1) when jackd or JACK-Client is
    missing. The caller must close() it (the pytest fixtures do)."""
    try:
        from tests.needs import need, need_program
    except ImportError:  # pytest puts tests/ itself on sys.path
        from needs import need, need_program  # type: ignore[no-redef]

    need_program("jackd", JACKD_PACKAGE)
    need_program("jack_wait", JACKD_PACKAGE)
    try:
        import jack  # noqa: F401  (JACK-Client: the tests' own clients)
    except (ImportError, OSError) as error:
        need(False, f"JACK-Client is not usable ({error}); pip install JACK-Client")
    server = JackServer(rate=rate, period=period)
    try:
        return server.start()
    except JackServerError:
        server.close()
        raise


class PlayRecord:
    """Two JACK clients for testing a device-like client (e.g. `idaw live`) sample by sample.

    The player feeds `signal` (frames, channels), looping, on ports out_0.. from activation on. The recorder
    records every cycle, with the cycle's frame time: its ports in_0.. are for the outputs of the client under
    test, and its ports tee_0.. are wired to the player, so the input the client got is recorded in the very
    same cycle as its output. The recorder also counts JACK xruns and cycles whose size was not the period.
    """

    def __init__(self, server: JackServer, signal: np.ndarray[Any, np.dtype[np.float32]], max_seconds: float,
                 player: str = "idaw-test-player", recorder: str = "idaw-test-recorder") -> None:
        import jack

        self.period = server.period
        frames, self.channels = signal.shape
        loop = -(-frames // self.period) * self.period  # a whole number of periods, zero-padded
        self._signal = np.zeros((self.channels, loop), np.float32)
        self._signal[:, :frames] = signal.T
        self.max_cycles = int(max_seconds * server.rate / self.period) + 1
        # np.ones, not np.zeros: every page is touched now, so the audio thread never takes a page fault
        self._rec = np.ones((2 * self.channels, self.max_cycles * self.period), np.float32)
        self.frame_times = np.ones(self.max_cycles, np.int64)
        self.cycles = 0
        self.played = 0
        self.xrun_cycles: list[int] = []
        self.odd_blocks = 0
        self.settled = 0
        self.player = jack.Client(player, no_start_server=True, servername=server.name)
        self.recorder = jack.Client(recorder, no_start_server=True, servername=server.name)
        self._outs = [self.player.outports.register(f"out_{c}") for c in range(self.channels)]
        self._ins = [self.recorder.inports.register(f"in_{c}") for c in range(self.channels)]
        self._tees = [self.recorder.inports.register(f"tee_{c}") for c in range(self.channels)]
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.recorder.set_xrun_callback(self._xrun)

    def _play(self, frames: int) -> None:
        start = (self.played * self.period) % self._signal.shape[1]
        for c, port in enumerate(self._outs):
            port.get_array()[:] = self._signal[c, start : start + frames]
        self.played += 1

    def _record(self, frames: int) -> None:
        k = self.cycles
        if frames != self.period:
            self.odd_blocks += 1
        if k < self.max_cycles:
            begin = k * self.period
            for c, port in enumerate(self._ins + self._tees):
                self._rec[c, begin : begin + frames] = port.get_array()
            self.frame_times[k] = self.recorder.last_frame_time
        self.cycles = k + 1

    def _xrun(self, delay_us: float) -> None:
        self.xrun_cycles.append(self.cycles)

    @property
    def xruns(self) -> int:
        """JACK xruns reported since the clients settled (start() returned)."""
        return sum(1 for k in self.xrun_cycles if k >= self.settled)

    def start(self, settle_seconds: float = 0.1) -> PlayRecord:
        """Activate both clients, wire player -> tee and let the graph settle; returns self.

        Activating a client can cost the server one xrun and repeat a frame time; cycles and xruns from before
        the end of `settle_seconds` are not counted (see `settled`).
        """
        self.player.activate()
        self.recorder.activate()
        for out, tee in zip(self._outs, self._tees, strict=True):
            self.player.connect(out, tee)
        time.sleep(settle_seconds)
        self.settled = self.cycles
        return self

    @property
    def looped_signal(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """What the player loops, (frames, channels): the signal zero-padded to whole periods."""
        return self._signal.T

    @property
    def overflowed(self) -> bool:
        """True when the recording ran out of room (cycles after max_seconds were not kept)."""
        return self.cycles > self.max_cycles

    def recording(self) -> tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.float32]]]:
        """(output of the client under test, input it was fed), each (frames, channels), for the kept cycles."""
        n = min(self.cycles, self.max_cycles) * self.period
        out = np.ascontiguousarray(self._rec[: self.channels, :n].T)
        fed = np.ascontiguousarray(self._rec[self.channels :, :n].T)
        return out, fed

    def connections(self) -> dict[str, list[str]]:
        """Every recorder and player port with the ports it is connected to."""
        ports = self._ins + self._tees + self._outs
        return {p.name: sorted(q.name for q in self.recorder.get_all_connections(p)) for p in ports}

    def close(self) -> None:
        """Deactivate and close both clients (safe to call twice, also after the server died)."""
        for client in (self.player, self.recorder):
            try:
                client.deactivate()
                client.close()
            except Exception:
                pass


def active_blocks(out: np.ndarray[Any, np.dtype[np.float32]], period: int) -> tuple[int, int, bool]:
    """(first, last, contiguous): indices of the first and last period-sized blocks of `out` (frames, channels)
    holding any non-zero sample, and whether every block between them does; (-1, -1, False) if none does."""
    blocks = out[: out.shape[0] // period * period].reshape(-1, period, out.shape[1])
    nonzero = np.flatnonzero(np.any(blocks != 0, axis=(1, 2)))
    if nonzero.size == 0:
        return -1, -1, False
    first, last = int(nonzero[0]), int(nonzero[-1])
    return first, last, nonzero.size == last - first + 1
