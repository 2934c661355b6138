"""JACK clients for testing `idaw live --midi`: `MidiRig` feeds idaw's audio inputs a constant (or plays music once
asked), records in which JACK cycles idaw's audio output was live (so engine block k is the k-th live cycle: sample s
of the engine is JACK frame live_frames[s // period] + s % period), and records every MIDI message arriving at its
MIDI input with its JACK frame time (cycle start + the event's offset).

The clients themselves run in a small C++ program (jack_midi_rig.cpp, compiled here on first use): a Python JACK
callback must take the GIL, and on a loaded machine it then runs past its cycle and JACK drops the cycle for it, so
the rig measured the machine rather than idaw. Python drives the program over its stdin and reads its state back as
JSON; queries (ports, connections, the frame now) go through `control`, a JACK client with no callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tests.support.needs import need
from tests.support.repo import REPO

if TYPE_CHECKING:
    from tests.support.jack_server import JackServer

LEVEL = 0.25
"""What the feeder plays: idaw's flat chain passes it unchanged, so its output is non-zero in every cycle it runs."""
RIG_SOURCE = Path(__file__).with_name("jack_midi_rig.cpp")
COMMAND_CAP_S = 30.0
"""How long one command to the rig program may take: a guard against a hang only."""
Result = TypeVar("Result")


def rig_program() -> Path:
    """The compiled rig (build/test-tools/jack_midi_rig-HASH, built once per source version with the system's C++
    compiler and libjack's headers: the Debian packages g++ and libjack-jackd2-dev)."""
    digest = hashlib.sha256(RIG_SOURCE.read_bytes()).hexdigest()[:12]
    program = REPO / "build" / "test-tools" / f"jack_midi_rig-{digest}"
    if program.exists():
        return program
    compiler = shutil.which("c++")
    need(compiler is not None, "no C++ compiler (c++) to build the JACK test rig; install the Debian package g++")
    need(Path("/usr/include/jack/jack.h").exists(), "no JACK headers; install the Debian package libjack-jackd2-dev")
    assert compiler is not None
    program.parent.mkdir(parents=True, exist_ok=True)
    partial = program.with_name(f"{program.name}.{os.getpid()}.tmp")
    built = subprocess.run(
        [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-o", str(partial), str(RIG_SOURCE), "-ljack", "-lpthread"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, f"building the JACK test rig failed:\n{built.stderr}"
    partial.replace(program)  # atomic: a concurrent build leaves one whole program
    return program


class RigCapacityError(AssertionError):
    """The rig program's fixed arrays filled up during the run: what it recorded is incomplete."""


class MidiRig:
    """A feeder (audio out_0, out_1) and a recorder (audio in_0, in_1 and MIDI midi_in) on one JACK server.

    Pass `--input-device FEEDER --output-device RECORDER --midi-connect RECORDER:midi_in` to idaw live. With `music`
    (mono float32 at the server's rate) the feeder plays silence until play(), then the music once. The recorded
    state (live_frames, overrun_frames, ...) is read from the program by received() and by close().
    """

    def __init__(
        self,
        server: JackServer,
        max_seconds: float,
        feeder: str = "idaw-midi-feeder",
        recorder: str = "idaw-midi-recorder",
        music: np.ndarray[Any, np.dtype[np.float32]] | None = None,
    ) -> None:
        import jack

        self.period = server.period
        self.rate = server.rate
        self.live_frames = np.zeros(0, np.int64)
        """Frame time of each cycle in which idaw's output was non-zero, in order."""
        self.live_cycles = 0
        self.played_frames = np.zeros(0, np.int64)
        """Frame time of each cycle the feeder played a piece of the music in (music sample p went out at frame
        played_frames[p // period] + p % period)."""
        self.cycles = 0
        self.xruns = 0
        self.xrun_frames: list[int] = []
        """Frame time (of the recorder's last cycle) at each xrun JACK reported."""
        self.frame_steps_off = 0
        """Consecutive recorder cycles whose frame times were not one period apart (skipped cycles)."""
        self.overrun_frames: list[int] = []
        """Frame time of each cycle whose recorder callback ended after its cycle was over (JACK had moved on: what
        it read from the MIDI input may already belong to the next cycle, so such a cycle measures nothing)."""
        self.events: list[tuple[int, bytes]] = []
        """(frame time, message bytes) of every MIDI message received, in arrival order."""
        self._folder = tempfile.TemporaryDirectory(prefix="idaw-midi-rig-")
        arguments = [server.name, feeder, recorder, str(max_seconds), str(LEVEL)]
        if music is not None:
            music_path = Path(self._folder.name) / "music.f32"
            np.asarray(music, np.float32).tofile(music_path)
            arguments.append(str(music_path))
        self._arguments = arguments
        self._process: subprocess.Popen[str] | None = None
        self._midi_port = f"{recorder}:midi_in"
        self.control = jack.Client(f"{recorder}-control", no_start_server=True, servername=server.name)
        """A JACK client without a callback, for what the tests ask the server (ports, connections, frame_time)."""

    @property
    def midi_port(self) -> str:
        """Full name of the MIDI input."""
        return self._midi_port

    @property
    def start_frame(self) -> int | None:
        """The frame the music started at (None before it played)."""
        return int(self.played_frames[0]) if self.played_frames.size else None

    def start(self) -> MidiRig:
        """Starts the program and waits until both clients are active; returns self."""
        self._process = subprocess.Popen(
            [str(rig_program()), *self._arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")
        return self

    def _expect(self, word: str) -> None:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if line != word:
            self._process.kill()
            _, stderr = self._process.communicate(timeout=COMMAND_CAP_S)
            raise AssertionError(f"the JACK test rig said {line!r}, not {word!r}: {stderr.strip()}")

    def _command(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None, "start() the rig first"
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        self._expect("ok")

    def play(self) -> None:
        """Starts the music (a rig made with `music`)."""
        self._command("play")

    def refresh(self) -> None:
        """Reads the recorded state from the program into the attributes."""
        path = Path(self._folder.name) / "state.json"
        self._command(f"dump {path}")
        state = json.loads(path.read_text())
        if state["events_dropped"] or state["frames_dropped"] or state["cut_messages"]:
            raise RigCapacityError(
                "the rig's arrays were too small for the run (a test setting, not idaw): events dropped "
                f"{state['events_dropped']}, frames dropped {state['frames_dropped']}, "
                f"messages cut {state['cut_messages']}"
            )
        self.live_frames = np.asarray(state["live_frames"], np.int64)
        self.live_cycles = int(self.live_frames.size)
        self.played_frames = np.asarray(state["played_frames"], np.int64)
        self.overrun_frames = [int(f) for f in state["overrun_frames"]]
        self.xrun_frames = [int(f) for f in state["xrun_frames"]]
        self.xruns = len(self.xrun_frames)
        self.cycles = int(state["cycles"])
        self.frame_steps_off = int(state["frame_steps_off"])
        self.events = [(int(row[0]), bytes(row[1:])) for row in state["events"]]

    def received(self) -> list[tuple[int, bytes]]:
        """The messages received so far (the state is read afresh while the rig runs)."""
        if self._process is not None and self._process.poll() is None:
            self.refresh()
        return list(self.events)

    def engine_frame(self, sample_time: int) -> int | None:
        """The JACK frame time of an engine sample (None beyond the cycles recorded)."""
        block = sample_time // self.period
        if block >= self.live_cycles:
            return None
        return int(self.live_frames[block]) + sample_time % self.period

    def music_frame(self, sample: int) -> int | None:
        """The JACK frame at which music sample `sample` went out (None if it was not played)."""
        cycle = sample // self.period
        if cycle >= self.played_frames.size:
            return None
        return int(self.played_frames[cycle]) + sample % self.period

    def port_names(self) -> list[str]:
        """Every port on the server. A port that vanishes between JACK listing it and JACK-Client looking it up
        (a client being removed right then) makes get_ports() raise: the listing is simply taken again."""
        import jack

        for _ in range(20):
            try:
                return [p.name for p in self.control.get_ports()]
            except jack.JackError:
                continue
        return [p.name for p in self.control.get_ports()]

    def close(self) -> None:
        """Reads the final state, then closes the program and the control client (safe twice, also after the
        server died: the state is then the last one read). A RigCapacityError from the final read is raised again
        once everything is closed: the state it read is incomplete, and no test may pass on it."""
        process = self._process
        too_small: RigCapacityError | None = None
        if process is not None:
            try:
                if process.poll() is None:
                    self.refresh()
                    assert process.stdin is not None
                    process.stdin.write("quit\n")
                    process.stdin.close()
                process.wait(timeout=COMMAND_CAP_S)
            except RigCapacityError as error:
                too_small = error
                process.kill()
                process.wait()
            except (AssertionError, OSError, ValueError, subprocess.TimeoutExpired):
                process.kill()  # the program or the server is gone: the last state read stands
                process.wait()
            finally:
                self._process = None
        with contextlib.suppress(Exception):  # the server may be gone
            self.control.close()
        self._folder.cleanup()
        if too_small is not None:
            raise too_small


def rig_troubles(rig: MidiRig) -> str:
    """What went wrong on the recorder's side during a run ("" when nothing did): its callback ran past its cycle
    (overruns), JACK reported xruns (it then skips cycles of late clients), or consecutive cycles were not one period
    apart. In any of these the recorder may have missed or misplaced messages idaw sent."""
    parts = [
        f"{count} {what}"
        for count, what in (
            (len(rig.overrun_frames), "recorder overruns"),
            (rig.xruns, "xruns"),
            (rig.frame_steps_off, "skipped recorder cycles"),
        )
        if count
    ]
    return ", ".join(parts)


def repeat_while_the_rig_failed(run: Callable[[Path, list[MidiRig]], Result], folder: Path, attempts: int) -> Result:
    """Runs `run(run_folder, rigs)` (which appends each MidiRig it makes to `rigs` and asserts what it checks) until
    one run passes. A run that fails while its recorder had troubles (rig_troubles) is repeated, up to `attempts`
    runs in all: a loaded machine can preempt even the C++ recorder, and a message it then misses is not idaw's. A
    run that fails with a healthy recorder fails at once, so a fault of idaw fails the first run that shows it."""
    failures = []
    for attempt in range(attempts):
        run_folder = folder / f"run{attempt}"
        run_folder.mkdir()
        rigs: list[MidiRig] = []
        try:
            return run(run_folder, rigs)
        except AssertionError as failure:
            troubles = "; ".join(t for t in (rig_troubles(r) for r in rigs) if t)
            if not troubles:
                raise
            failures.append(f"run {attempt + 1} ({troubles}): {str(failure).splitlines()[0]}")
    raise AssertionError("every run failed, each while the recorder had troubles:\n" + "\n".join(failures))


def note_pairs(
    events: list[tuple[int, bytes]], doubles: list[tuple[int, int, int]] | None = None
) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int]]]:
    """Pairs received messages into notes: ([(channel, pitch, on frame, off frame)], [(channel, pitch) still on]).
    All Notes Off (CC 123) ends every note of its channel. A note-on while its key sounds fails an assertion, or,
    when a `doubles` list is given (a receiver that may have lost messages), ends the note before it and is
    appended there as (channel, pitch, frame)."""
    sounding: dict[tuple[int, int], int] = {}
    notes: list[tuple[int, int, int, int]] = []
    for frame, data in events:
        status = data[0] & 0xF0
        channel = data[0] & 0x0F
        if status == 0x90 and data[2] > 0:
            if (channel, data[1]) in sounding:
                assert doubles is not None, f"note-on while {channel}/{data[1]} sounds"
                doubles.append((channel, data[1], frame))
                notes.append((channel, data[1], sounding[(channel, data[1])], frame))
            sounding[(channel, data[1])] = frame
        elif status == 0x80 or (status == 0x90 and data[2] == 0):
            start = sounding.pop((channel, data[1]), None)
            if start is not None:
                notes.append((channel, data[1], start, frame))
        elif status == 0xB0 and data[1] == 123:
            for key in [k for k in sounding if k[0] == channel]:
                notes.append((*key, sounding.pop(key), frame))
    return notes, sorted(sounding)


def as_array(events: list[tuple[int, bytes]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Received messages as rows (frame, status, data1, data2)."""
    return np.array([(f, *d[:3]) for f, d in events], np.int64).reshape(-1, 4)
