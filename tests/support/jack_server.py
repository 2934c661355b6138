"""A private JACK server (dummy driver) for tests and benchmarks.

`JackServer` starts `jackd -n NAME -R -d dummy -r RATE -p PERIOD` under a server name of its own, so it never
touches a user's default server, waits until clients can connect (jack_wait), and stops it with SIGTERM (SIGKILL
if it hangs, and at interpreter exit at the latest). Clients find it through `env()` (JACK_DEFAULT_SERVER) or
`jack.Client(..., servername=server.name)`; its log tells who caused an xrun (`xrun_culprits`).
`start_for_test()` skips on a user's machine without jackd or JACK-Client and fails under IDAW_REQUIRE_ALL=1
(tests/support/needs.py). Clients that feed and record a device under test are in tests/support/jack_clients.py.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

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
        self._killed = False
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

    def start(self, timeout: float = 30.0) -> JackServer:
        """Start jackd and wait until it accepts clients; returns self. Raises JackServerError on failure (or when it
        does not accept clients within `timeout`: a guard against a hang, generous for a busy machine).

        When JACK's server registry is full of servers that died without unregistering, their slots are
        reclaimed (see reclaim_dead_servers) and the start is tried once more.
        """
        try:
            return self._start(timeout)
        except JackServerError as error:
            if "Too many servers already active" not in str(error) or not reclaim_dead_servers():
                raise
        self.process = None
        return self._start(timeout)

    def _start(self, timeout: float) -> JackServer:
        if self.process is not None:
            return self
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,
            )
        atexit.register(self.stop)  # never leave a jackd behind, whatever happens to the caller
        deadline = time.monotonic() + timeout
        jack_wait = shutil.which("jack_wait")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JackServerError(f"jackd exited with status {self.process.returncode}: {self.log_tail(20)}")
            if self._accepting(jack_wait):
                return self
            time.sleep(0.05)
        self.stop()
        raise JackServerError(f"jackd did not come up within {timeout:g} s: {self.log_tail()}")

    def _accepting(self, jack_wait: str | None) -> bool:
        """True once the server answers (jack_wait -c, or the server's socket when jack_wait is missing)."""
        if jack_wait is not None:
            try:
                result = subprocess.run(
                    [jack_wait, "-c", "-s", self.name],
                    env=self.env(),
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                )
            except subprocess.TimeoutExpired:  # a busy machine: not known to be up yet, ask again until the deadline
                return False
            return "not running" not in result.stdout and result.returncode == 0
        return any(p.name.startswith(f"jack_{self.name}") for p in Path("/dev/shm").glob("jack*"))

    @property
    def running(self) -> bool:
        """Whether jackd is still alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop jackd (SIGTERM, then SIGKILL after `timeout`); returns its exit status (None if never started).

        A server that was killed (kill()) is started once more under its name and stopped cleanly: jackd
        killed with SIGKILL keeps its slot in JACK's server registry (8 slots, shared by every user of this
        machine) until a server of the same name starts, so each crash test would otherwise use one up.
        """
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
        if self._killed:
            self._killed = False
            self.process = None
            try:
                self._start(10.0)
            except JackServerError:
                self._remove_shm()
            self.stop(timeout)
        elif status != 0:
            self._remove_shm()
        return status

    def kill(self) -> None:
        """Kill jackd abruptly (SIGKILL), as a crash would; clients see the server vanish."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
            self._killed = True

    def _remove_shm(self) -> None:
        """Delete the shared memory and semaphores a jackd that did not exit cleanly left in /dev/shm."""
        shm = Path("/dev/shm")
        for pattern in (f"jack_{self.name}_*", f"jack_sem.*_{self.name}_*"):
            for leftover in shm.glob(pattern):
                leftover.unlink(missing_ok=True)

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

    def skipped_cycles(self, since: int = 0) -> int:
        """Cycles after byte `since` of the log in which jackd did not run the graph, because a client had not
        finished the previous one ("Process error" in async mode): every client misses those cycles."""
        return self._log_since(since).count("Process error")

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


REGISTRY = Path("/dev/shm/jack-shm-registry")
"""jack2's server registry (POSIX shared memory): a header, then 8 slots of (pid, "jack-UID:NAME:")."""


def dead_server_names() -> list[str]:
    """Names of servers JACK's registry still lists although their jackd is gone (killed with SIGKILL, say).

    jack2 frees such a slot only when a server of the same name starts. Returns [] when the registry is
    missing or not laid out as jack2's shm.h has it.
    """
    try:
        data = REGISTRY.read_bytes()[:8192]
        header_length = struct.unpack_from("<I", data, 16)[0]
    except (OSError, struct.error):
        return []
    slots, first = 8, 24
    entry = (header_length - first) // slots
    if entry < 8 or first + slots * entry > len(data):
        return []
    names = []
    for slot in range(slots):
        offset = first + slot * entry
        pid = struct.unpack_from("<i", data, offset)[0]
        label = data[offset + 4 : offset + entry].split(b"\0")[0].decode(errors="replace")
        parts = label.split(":")
        if pid > 0 and len(parts) >= 2 and parts[1] and not _alive(pid):
            names.append(parts[1])
    return names


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_dead_servers() -> int:
    """Free the registry slots of dead servers by starting and cleanly stopping a jackd under each name;
    returns how many were freed."""
    freed = 0
    for name in dead_server_names():
        server = JackServer(name=name)
        try:
            server._start(10.0)
            freed += 1
        except JackServerError:
            pass
        finally:
            server.close()
    return freed


def start_for_test(rate: int = 48000, period: int = 256) -> JackServer:
    """A started JackServer for a test; skips (or fails under IDAW_REQUIRE_ALL=1) when jackd or JACK-Client is
    missing. The caller must close() it (the pytest fixtures do)."""
    from tests.support.needs import need, need_program  # here: it imports pytest, which benchmarks need not have

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


@contextlib.contextmanager
def serving(rate: int = 48000, period: int = 256) -> Iterator[JackServer]:
    """start_for_test(rate, period) for the length of a `with` block; the server is closed at its end."""
    server = start_for_test(rate, period)
    try:
        yield server
    finally:
        server.close()
