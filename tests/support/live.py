"""`idaw live` as a subprocess, for the tests that run it on a private JACK server; the checks of the one line it
writes when it refuses to run (one_live_error, refused_live)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.idaw_command import one_error_line
from tests.support.jack_server import JackServer
from tests.support.repo import REPO

ERROR_PREFIX = "idaw live: error: "


class Live:
    """`idaw live` as a subprocess (stdout through a pipe, stderr to a file); kill() is safe to call any time.

    Waiting never polls: a blocked read or waitpid holds no GIL, so the test's own JACK callbacks (Python, in
    this process) are never kept waiting by this thread. A timer thread kills the process on a timeout.
    """

    def __init__(self, server: JackServer, tmp: Path, *args: str, sidecar: bool = False) -> None:
        self.err_path = tmp / "live.err"
        if not sidecar:  # these tests are about the engine; the sidecar link has tests of its own
            args = ("--no-sidecar", *args)
        env = server.env()
        env.pop("IDAW_DEBUG", None)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "idaw.cli", "live", *args],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        self._out: list[str] = []
        self.expired = False

    def _watchdog(self, timeout: float) -> threading.Timer:
        def expire() -> None:
            self.expired = True
            self.proc.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        return timer

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Read stdout until a line contains `text` (fails if the process exits or time runs out first)."""
        assert self.proc.stdout is not None
        timer = self._watchdog(timeout)
        try:
            for line in self.proc.stdout:
                self._out.append(line)
                if text in line:
                    return
        finally:
            timer.cancel()
        pytest.fail(
            f"no '{text}' from idaw live (exit {self.proc.wait()}, expired {self.expired}); stderr: {self.stderr}"
        )

    def wait(self, timeout: float) -> int:
        """Exit status; kills the process (and fails) if it runs past `timeout` seconds."""
        timer = self._watchdog(timeout)
        try:
            status = self.proc.wait()
        finally:
            timer.cancel()
        if self.proc.stdout is not None:
            self._out.append(self.proc.stdout.read())
        if self.expired:
            pytest.fail(f"idaw live did not exit within {timeout:g} s; stderr: {self.stderr}")
        return status

    @property
    def stdout(self) -> str:
        """What was read from stdout so far (all of it once wait() returned)."""
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def one_live_error(status: int, stderr: str, statuses: tuple[int, ...] = (2, 3)) -> str:
    """The one line `idaw live` wrote to `stderr` when it refused to run, after checking it: an exit `status` of
    `statuses` (2: a bad option or file, 3: the audio device), no traceback, that one line, starting ERROR_PREFIX."""
    assert status in statuses, (status, stderr)
    line = one_error_line(stderr)
    assert line.startswith(ERROR_PREFIX), line
    return line


def refused_live(
    server: JackServer, tmp: Path, *args: str, statuses: tuple[int, ...] = (2, 3), timeout: float = 60.0
) -> str:
    """Run `idaw live --duration 1 ARGS` (without a sidecar) on `server` to its end; its one error line, checked by
    one_live_error."""
    live = Live(server, tmp, "--duration", "1", *args)
    try:
        status = live.wait(timeout=timeout)
    finally:
        live.kill()
    return one_live_error(status, live.stderr, statuses)
