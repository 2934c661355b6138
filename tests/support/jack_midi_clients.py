"""JACK clients for testing `idaw live --midi`: `MidiRig` feeds idaw's audio inputs a constant, records in which JACK
cycles idaw's audio output was live (so engine block k is the k-th live cycle: sample s of the engine is JACK frame
live_frames[s // period] + s % period), and records every MIDI message arriving at its MIDI input with its JACK frame
time (cycle start + the event's offset).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tests.support.jack_server import JackServer

LEVEL = 0.25
"""What the feeder plays: idaw's flat chain passes it unchanged, so its output is non-zero in every cycle it runs."""


class MidiRig:
    """A feeder (audio out_0, out_1) and a recorder (audio in_0, in_1 and MIDI midi_in) on one JACK server.

    Pass `--input-device FEEDER --output-device RECORDER --midi-connect RECORDER:midi_in` to idaw live.
    """

    def __init__(
        self,
        server: JackServer,
        max_seconds: float,
        feeder: str = "idaw-midi-feeder",
        recorder: str = "idaw-midi-recorder",
    ) -> None:
        import jack

        self.period = server.period
        self.rate = server.rate
        cycles = int(max_seconds * server.rate / server.period) + 1
        self.live_frames = np.zeros(cycles, np.int64)
        """Frame time of each cycle in which idaw's output was non-zero, in order."""
        self.live_cycles = 0
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
        self.lock = threading.Lock()
        self._last_frame = -1
        self.feeder = jack.Client(feeder, no_start_server=True, servername=server.name)
        self.recorder = jack.Client(recorder, no_start_server=True, servername=server.name)
        self._outs = [self.feeder.outports.register(f"out_{c}") for c in range(2)]
        self._ins = [self.recorder.inports.register(f"in_{c}") for c in range(2)]
        self.midi_in = self.recorder.midi_inports.register("midi_in")
        self._midi_port = str(self.midi_in.name)
        self.feeder.set_process_callback(self._feed)
        self.recorder.set_process_callback(self._record)
        self.recorder.set_xrun_callback(self._xrun)

    @property
    def midi_port(self) -> str:
        """Full name of the MIDI input."""
        return self._midi_port

    def _feed(self, frames: int) -> None:
        for port in self._outs:
            port.get_array().fill(LEVEL)

    def _record(self, frames: int) -> None:
        frame = self.recorder.last_frame_time
        if self._last_frame >= 0 and frame - self._last_frame != self.period:
            self.frame_steps_off += 1
        self._last_frame = frame
        self.cycles += 1
        if self._ins[0].get_array()[0] != 0.0 and self.live_cycles < self.live_frames.size:
            self.live_frames[self.live_cycles] = frame
            self.live_cycles += 1
        got = [(frame + offset, bytes(data)) for offset, data in self.midi_in.incoming_midi_events()]
        if got:
            with self.lock:
                self.events.extend(got)
        if self.recorder.frame_time - frame >= self.period:  # frame_time: the frame now, by the server's clock
            self.overrun_frames.append(frame)

    def _xrun(self, delay_us: float) -> None:
        self.xruns += 1
        self.xrun_frames.append(self._last_frame)

    def start(self) -> MidiRig:
        """Activates both clients; returns self."""
        self.feeder.activate()
        self.recorder.activate()
        return self

    def received(self) -> list[tuple[int, bytes]]:
        """A copy of the messages received so far."""
        with self.lock:
            return list(self.events)

    def engine_frame(self, sample_time: int) -> int | None:
        """The JACK frame time of an engine sample (None beyond the cycles recorded)."""
        block = sample_time // self.period
        if block >= self.live_cycles:
            return None
        return int(self.live_frames[block]) + sample_time % self.period

    def port_names(self) -> list[str]:
        """Every port on the server. A port that vanishes between JACK listing it and JACK-Client looking it up
        (a client being removed right then) makes get_ports() raise: the listing is simply taken again."""
        import jack

        for _ in range(20):
            try:
                return [p.name for p in self.recorder.get_ports()]
            except jack.JackError:
                continue
        return [p.name for p in self.recorder.get_ports()]

    def close(self) -> None:
        """Deactivates and closes both clients (safe twice, also after the server died)."""
        for client in (self.feeder, self.recorder):
            try:
                client.deactivate()
                client.close()
            except Exception:
                pass


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
