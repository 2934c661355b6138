"""The MIDI guardian (realtime/midi_guard.py) on its own: what it believes sounding, and for real on a dummy-driver
JACK server: a sender process (an rtmidi port of its own plus the guardian) killed with SIGKILL has its notes ended
by the guardian (how soon is printed: within a second on a quiet machine; a loaded one may wake the guardian later);
one that closes cleanly gets nothing from it; connections made after the start are followed; a guardian that cannot
start says so in one line. Every wait is for a count or a state, with a cap (STEP_CAP_S) only a hang reaches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from idaw.base.errors import DeviceError
from realtime.midi_guard import GUARD_PORT, Guardian, start_guard
from tests.support.jack_midi_clients import MidiRig, note_pairs
from tests.support.jack_server import JackServer
from tests.support.repo import REPO
from tests.support.sidecar_helpers import wait_until

RATE, PERIOD = 48000, 256
STEP_CAP_S = 30.0
"""How long a step may wait for what it checks before the test fails: a guard against a hang only."""


def test_the_guardian_ends_what_it_was_told_and_ignores_noise() -> None:
    guardian = Guardian()
    for line in ["on 4 67", "on 5 50", "on 5 53", "off 5 50", "bogus", "on x 1", "on 4", "", "on 20 300"]:
        guardian.take(line)
    # "on 20 300" is masked into MIDI's ranges (channel 4, pitch 44) rather than refused: a guard errs on the side
    # of a superfluous note-off.
    assert guardian.messages() == [[0x84, 44, 0], [0x84, 67, 0], [0x85, 53, 0], [0xB4, 123, 0], [0xB5, 123, 0]]
    guardian.take("clear")
    assert guardian.messages() == [[0xB4, 123, 0], [0xB5, 123, 0]]  # the channels stay: All Notes Off is cheap
    assert not guardian.ended
    guardian.take("end")
    assert guardian.ended


SENDER = """
import sys, time
from realtime.midi_guard import start_guard
from realtime.midi_out import open_jack_port

connect = sys.argv[1] or None
port, destination = open_jack_port("guard-test-sender", "midi_out", connect)
guard = start_guard("guard-test-sender-guard", "guard-test-sender:midi_out", [destination] if destination else [])
print(guard.port, flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "on":
        guard.note_on(int(words[1]), int(words[2]))
        port.send_message([0x90 | int(words[1]), int(words[2]), 100])
    elif words[0] == "close":
        guard.close()
        port.close_port()
    print("ok", flush=True)
"""


class Sender:
    """A process with a JACK MIDI port and a guardian, driven line by line through its stdin."""

    def __init__(self, server: JackServer, connect: str) -> None:
        env = server.env()
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, connect],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        self.guard_port = self.proc.stdout.readline().strip()
        assert self.guard_port.endswith(f":{GUARD_PORT}"), self.proc.stderr.read() if self.proc.stderr else ""

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.mark.jack
def test_after_sigkill_the_guardian_ends_the_notes(jack_server: JackServer) -> None:
    rig = MidiRig(jack_server, 30).start()
    sender = Sender(jack_server, rig.midi_port)
    try:
        for note in ("on 3 60", "on 3 64", "on 9 36"):
            sender.tell(note)
        assert wait_until(lambda: len(rig.received()) == 3, STEP_CAP_S)
        killed_at = rig.control.frame_time
        os.kill(sender.proc.pid, signal.SIGKILL)
        sender.proc.wait(10)
        assert wait_until(lambda: sender.guard_port not in rig.port_names(), STEP_CAP_S), "the guardian did not exit"
        received = rig.received()
    finally:
        sender.kill()
        rig.close()
    after = [(frame, list(data)) for frame, data in received[3:]]
    assert [d for _, d in after] == [[0x83, 60, 0], [0x83, 64, 0], [0x89, 36, 0], [0xB3, 123, 0], [0xB9, 123, 0]]
    assert note_pairs(received)[1] == []
    print(f"\nguardian: the last note-off came {(after[-1][0] - killed_at) / RATE:.3f} s after the kill (not asserted)")


@pytest.mark.jack
def test_a_clean_close_gets_nothing_from_the_guardian(jack_server: JackServer) -> None:
    rig = MidiRig(jack_server, 30).start()
    sender = Sender(jack_server, rig.midi_port)
    try:
        sender.tell("on 0 60")
        sender.tell("close")
        assert wait_until(lambda: sender.guard_port not in rig.port_names(), STEP_CAP_S), "the guardian did not exit"
        os.kill(sender.proc.pid, signal.SIGKILL)  # whatever happens now, the guardian is gone: nothing more comes
        sender.proc.wait(10)
        time.sleep(0.3)
        received = rig.received()
    finally:
        sender.kill()
        rig.close()
    assert [list(d) for _, d in received] == [[0x90, 60, 100]]


@pytest.mark.jack
def test_the_guardian_follows_connections_made_later(jack_server: JackServer) -> None:
    rig = MidiRig(jack_server, 30).start()
    sender = Sender(jack_server, "")  # a port connected to nothing
    try:
        rig.control.connect("guard-test-sender:midi_out", rig.midi_port)
        assert wait_until(
            lambda: sender.guard_port in [p.name for p in rig.control.get_all_connections(rig.midi_port)], STEP_CAP_S
        ), "the guardian did not follow the new connection"
        sender.tell("on 2 70")
        assert wait_until(lambda: len(rig.received()) == 1, STEP_CAP_S)
        os.kill(sender.proc.pid, signal.SIGKILL)
        sender.proc.wait(10)
        assert wait_until(lambda: len(rig.received()) >= 3, STEP_CAP_S), rig.received()
        received = rig.received()
    finally:
        sender.kill()
        rig.close()
    assert [list(d) for _, d in received] == [[0x92, 70, 100], [0x82, 70, 0], [0xB2, 123, 0]]


def test_a_guardian_without_a_server_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"idaw_no_such_server_{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(DeviceError) as error:
        start_guard("idaw-guard-test", "nobody:midi_out", [])
    text = str(error.value)
    assert text.startswith("cannot start the MIDI guard: ") and "\n" not in text, text
