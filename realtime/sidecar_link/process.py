"""Starting and stopping a sidecar subprocess (`python -m sidecar`) for host commands and tests.

`SidecarProcess(endpoint).start()` returns once the sidecar has bound its socket (it writes the bound endpoint
to a ready file); `stop()` sends SIGTERM, `kill()` SIGKILL, `restart()` starts a new one on the same endpoint.
The child exits by itself when its parent process dies (--exit-with-parent). The handler defaults to 'fallback'
here (quick to start, for tests and tools); the host commands pass theirs (default idaw.base.defaults.DEFAULT_HANDLER,
the semantic-EQ model).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

START_TIMEOUT_S = 20.0
"""How long start() waits for the sidecar to bind (a model may take a while to load)."""


class SidecarStartError(RuntimeError):
    """The sidecar subprocess exited or did not become ready; the message ends with its log."""


class SidecarProcess:
    """One sidecar subprocess. The first start() on 'tcp://127.0.0.1:*' fixes the port; restarts reuse it."""

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:*",
        handler: str = "fallback",
        extra_args: Sequence[str] = (),
        python: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.handler = handler
        self.extra_args = list(extra_args)
        self.python = python or sys.executable
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._dir = tempfile.TemporaryDirectory(prefix="idaw-sidecar-")
        self.log_path = Path(self._dir.name) / "sidecar.log"

    def command(self, ready_file: Path) -> list[str]:
        """The command line of the child."""
        return [
            self.python,
            "-m",
            "sidecar",
            "--bind",
            self.endpoint,
            "--handler",
            self.handler,
            "--ready-file",
            str(ready_file),
            "--exit-with-parent",
            *self.extra_args,
        ]

    @property
    def pid(self) -> int | None:
        """Process id of the running child (None when not started)."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the child and wait until it listens; returns the bound endpoint. Raises SidecarStartError."""
        if self.running:
            return self.endpoint
        ready = Path(self._dir.name) / f"ready-{self.starts}"
        self.starts += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        repo = str(Path(__file__).resolve().parents[2])  # the repository root, for `-m sidecar`
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(ready),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the host's terminal is the host's to handle
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists():
                self.endpoint = ready.read_text(encoding="utf-8").strip()
                return self.endpoint
            if self.process.poll() is not None:
                raise SidecarStartError(f"sidecar exited with status {self.process.returncode}: {self.log_tail()}")
            time.sleep(0.005)
        self.kill()
        raise SidecarStartError(f"sidecar did not start within {timeout:g} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the child (as a crash would) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self, timeout: float = 3.0) -> int | None:
        """SIGTERM the child, SIGKILL after `timeout`; returns its exit status (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def restart(self, timeout: float = START_TIMEOUT_S) -> str:
        """Stop (if running) and start again on the same endpoint; returns it."""
        self.stop()
        return self.start(timeout)

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of the child's output, joined with ' | '."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip()) or "(empty log)"

    def close(self) -> None:
        """Stop the child and remove its temporary folder."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> SidecarProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
