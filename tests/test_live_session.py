"""`idaw live` closes everything it started when a later start step fails (realtime/live.py, _LiveSession), on a
real dummy-driver JACK server.

Two real failures: MIDI that cannot start (a --midi-models folder holding a broken net file: the failure comes after
PortAudio opened its JACK client), and a sidecar that cannot be attached (a --sidecar endpoint beyond loopback without
keys: the failure comes after MIDI started, its guardian process runs and the audio stream runs). A small driver runs
`idaw live` through realtime.live.run() and, after the one-line error, stays alive until the test lets it go, so the
test can look at the JACK server while the failed process still exists: nothing of it may be left there (no client
of PortAudio's or of the MIDI guardian, no port of those or of the MIDI port), and SIGTERM must end it the default
way (the stop handlers idaw live installs were restored). Through the `idaw` command the same failures exit with
status 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jack_server import JackServer
from tests.support.midi_helpers import generator_nets
from tests.support.needs import need
from tests.support.repo import REPO
from tests.support.sidecar_helpers import wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

IDAW = Path(sys.executable).with_name("idaw")
CLIENT = "idaw-session-test"
CLIENTS = (CLIENT, f"{CLIENT}-midi-guard", f"{CLIENT}-midi")
"""PortAudio's JACK client (it holds the stream's ports), the MIDI guardian's and the MIDI port's. The last is the
python-rtmidi object that owns the port: closing MIDI closes the port, and the portless client goes when that object
is collected, as after a run that ends normally; only its ports are checked."""
PORTLESS_OK = f"{CLIENT}-midi"
STEP_CAP_S = 60.0
"""How long a step may wait for what it checks before the test fails: a guard against a hang only."""
BROKEN_NET = "HarmonyPredictor"
REMOTE_SIDECAR = "tcp://192.0.2.1:5555"
"""An endpoint beyond loopback (TEST-NET-1): it needs CURVE keys, which the test does not give."""

DRIVER = """
import argparse, sys
from idaw.base.errors import IdawError
from realtime import live

parser = argparse.ArgumentParser(prog="idaw live")
live.add_arguments(parser)
try:
    live.run(parser.parse_args(sys.argv[1:]))
    print("ran", flush=True)
except IdawError as error:
    print(f"failed: {error}", flush=True)
sys.stdin.readline()  # stay alive until the test has looked at the JACK server
"""


class FailedLive:
    """The driver running `idaw live ARGS` in a subprocess; stays alive after run() until release()."""

    def __init__(self, server: JackServer, tmp: Path, *args: str) -> None:
        env = server.env()
        env.pop("IDAW_DEBUG", None)
        env["PYTHONUNBUFFERED"] = "1"
        self.err_path = tmp / "driver.err"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", DRIVER, "--client-name", CLIENT, "--duration", "30", *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.lines: list[str] = []

    def outcome(self) -> str:
        """The driver's outcome line ("failed: MESSAGE" or "ran"); the lines before it are in self.lines."""
        assert self.proc.stdout is not None
        timer = threading.Timer(STEP_CAP_S, self.proc.kill)  # a guard against a hang only
        timer.start()
        try:
            for line in self.proc.stdout:
                if line.startswith(("failed: ", "ran")):
                    return line.strip()
                self.lines.append(line)
        finally:
            timer.cancel()
        pytest.fail(f"the driver ended without an outcome (exit {self.proc.wait()}): {self.stderr()}")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def terminate(self) -> int:
        """Send SIGTERM while the driver waits; returns its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STEP_CAP_S)
        except subprocess.TimeoutExpired:  # still waiting: SIGTERM only set a stop flag nobody reads
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            return self.proc.wait(STEP_CAP_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def jack_leftovers(server: JackServer) -> list[str]:
    """Which of CLIENTS exist on `server` (but PORTLESS_OK), and any port of theirs."""
    import jack

    observer = jack.Client("idaw-session-observer", no_start_server=True, servername=server.name)
    try:
        found = []
        for name in CLIENTS:
            if name == PORTLESS_OK:
                continue
            try:
                observer.get_uuid_for_client_name(name)
                found.append(f"client {name}")
            except jack.JackError:
                pass
        found += [f"port {p.name}" for p in observer.get_ports() if p.name.split(":", 1)[0] in CLIENTS]
        return found
    finally:
        observer.close()


@pytest.fixture
def broken_nets(tmp_path: Path) -> Path:
    """A --midi-models folder with the generator's nets, one of them cut in half (not valid JSON)."""
    folder = tmp_path / "nets"
    shutil.copytree(generator_nets(), folder)
    net = folder / f"{BROKEN_NET}.json"
    text = net.read_text()
    net.write_text(text[: len(text) // 2])
    return folder


def failing_runs(broken: Path, tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per case: the `idaw live` options, and what the error line must contain."""
    missing_keys = tmp / "no-keys"
    return {
        "midi cannot start": (
            ["--no-sidecar", "--midi", "--midi-models", str(broken)],
            ["cannot use", str(broken / f"{BROKEN_NET}.json")],
        ),
        "sidecar cannot attach after the audio and MIDI started": (
            [
                *("--midi", "--midi-models", str(generator_nets())),
                *("--sidecar", REMOTE_SIDECAR, "--sidecar-keys", str(missing_keys)),
            ],
            [str(missing_keys)],
        ),
    }


CASES = ["midi cannot start", "sidecar cannot attach after the audio and MIDI started"]


@pytest.fixture
def no_leftovers(jack_server: JackServer) -> Iterator[JackServer]:
    """The server, checked to hold nothing of idaw's before the test (a leftover would hide what the test checks)."""
    assert jack_leftovers(jack_server) == []
    yield jack_server


@pytest.mark.parametrize("case", CASES)
def test_a_failed_start_closes_everything_started_before_it(
    no_leftovers: JackServer, tmp_path: Path, broken_nets: Path, case: str
) -> None:
    server = no_leftovers
    args, expected = failing_runs(broken_nets, tmp_path)[case]
    run = FailedLive(server, tmp_path, *args)
    try:
        outcome = run.outcome()
        assert outcome.startswith("failed: "), f"{outcome}; stderr: {run.stderr()}"
        assert all(text in outcome for text in expected), outcome
        started = "".join(run.lines)
        if case != "midi cannot start":  # the failure came after the audio and MIDI ran
            assert "Ctrl-C to stop" in started and f"MIDI on JACK port {CLIENT}-midi:" in started, started
        left: list[str] = []

        def nothing_left() -> bool:
            left[:] = jack_leftovers(server)
            return not left

        assert wait_until(nothing_left, STEP_CAP_S, 0.05), f"left on the JACK server by the failed run: {left}"
        assert run.proc.poll() is None, "the driver should still be alive here"
        status = run.terminate()
    finally:
        run.kill()
    assert status == -signal.SIGTERM, f"SIGTERM did not end the failed run (exit {status}): the stop handlers remain"
    assert "Traceback" not in run.stderr(), run.stderr()


@pytest.mark.parametrize("case", CASES)
def test_a_failed_start_exits_with_one_line(
    no_leftovers: JackServer, tmp_path: Path, broken_nets: Path, case: str
) -> None:
    need(IDAW.exists(), f"the idaw console script is not installed at {IDAW} (run make setup)")
    args, expected = failing_runs(broken_nets, tmp_path)[case]
    env = no_leftovers.env()
    env.pop("IDAW_DEBUG", None)
    done = subprocess.run(
        [str(IDAW), "live", "--client-name", CLIENT, "--duration", "30", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_CAP_S,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert lines[0].startswith("idaw live: error: ") and all(text in lines[0] for text in expected), lines[0]
    assert wait_until(lambda: not jack_leftovers(no_leftovers), STEP_CAP_S, 0.05), jack_leftovers(no_leftovers)
