"""A private JACK server (dummy driver) for tests and benchmarks, and the `jack_server` pytest helper.

`JackServer` starts `jackd -n NAME -R -d dummy -r RATE -p PERIOD` under a server name of its own, so it never
touches a user's default server, waits until clients can connect, and stops it with SIGTERM (SIGKILL if it
hangs). Clients find it through `env()` (JACK_DEFAULT_SERVER) or `jack.Client(..., servername=server.name)`.
`start_for_test()` skips on a user's machine without jackd and fails under IDAW_REQUIRE_ALL=1 (tests/needs.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
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
