"""Sends the engine's MIDI events to a JACK MIDI port through python-rtmidi, on time, and never leaves a note on.

`MidiSender` runs one thread (not the audio thread) that drains the engine's MIDI ring into a heap ordered by sample
time, maps sample times to the steady clock (realtime/midi_clock.py) and sends each event when it is due: at the
map's target, and never before the engine's callback of the previous block has been seen (ClockMap.earliest_ns), so
a map that is too early after a server stall cannot send an event a period early. The generator works `lookahead`
ahead of the audio (docs/MIDI.md), so every event is known long before that.

One lock covers the port and the sender's books: each event is sent, tracked (sounding notes, channels), counted,
recorded and logged in one step, and the stop path takes the same lock, so it always sees exactly the notes that went
out, and nothing goes out after it. `close()` (stop, Ctrl-C, SIGTERM, end of --duration) drops what is not yet due
and sends a note-off for every sounding note plus All Notes Off (CC 123) on every channel used. If the sending
thread dies (an exception, a device error) it does the same on its way out; a watchdog thread does it when the
sender stops beating (stuck) or is gone, and an atexit hook when the interpreter exits without close(). A process
killed with SIGKILL can send nothing itself: with a `guard` (realtime/midi_guard.py, a separate process told of each
note through a pipe) the guardian then sends the note-offs and All Notes Off.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

import idaw_core
from idaw.base.errors import DeviceError
from realtime.midi_clock import ClockMap
from realtime.midi_file import MidiRecording
from realtime.midi_guard import quiet_libjack

POLL_SECONDS = 0.005
"""Longest sleep between two drains of the engine's ring (events arrive far earlier than they are due)."""
SEND_SLACK_NS = 200_000
"""An event due this soon by the map is sent now instead of sleeping for it (the observed gate still holds)."""
GATE_POLL_SECONDS = 0.001
"""How often a sender held by the gate (the previous block not seen yet) looks at the engine's clock again."""
WATCHDOG_SECONDS = 1.0
"""A sender that has not beaten for this long counts as stuck."""
FLUSH_SECONDS = 0.05
"""Time given to the JACK client to pass on the last messages before the port closes."""
RT_PRIORITY = 20
"""SCHED_FIFO priority of the sending thread where the system allows it (below JACK's own threads)."""
SWITCH_INTERVAL = 0.001
"""Python's GIL switch interval while sending: another busy Python thread delays a send at most this long."""
ALL_NOTES_OFF = 123


class MidiPort(Protocol):
    """What the sender needs of an output port (python-rtmidi's MidiOut has it)."""

    def send_message(self, message: Sequence[int]) -> None: ...

    def close_port(self) -> None: ...


class Guard(Protocol):
    """What the sender needs of a guardian link (realtime.midi_guard.GuardLink has it)."""

    port: str
    error: str | None

    def note_on(self, channel: int, pitch: int) -> None: ...

    def note_off(self, channel: int, pitch: int) -> None: ...

    def clear(self) -> None: ...

    def close(self, clean: bool = ..., timeout: float = ...) -> None: ...


class MidiSource(Protocol):
    """What the sender needs of the engine (idaw_core.Engine has it)."""

    def drain_midi(self, max_events: int = ...) -> list[tuple[int, int, int, int]]: ...

    def block_clock(self) -> tuple[int, int, int, int]: ...


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def open_jack_port(client_name: str, port_name: str, connect: str | None) -> tuple[Any, str | None]:
    """(python-rtmidi MidiOut with an open JACK MIDI output port `client_name:port_name`, the destination port it was
    connected to or None). `connect` names a JACK MIDI input port exactly or by a unique part. DeviceError (one line)
    when JACK or the destination is missing."""
    try:
        import rtmidi
    except ImportError as error:
        raise DeviceError(f"python-rtmidi is not usable ({error}); pip install python-rtmidi") from None
    quiet_libjack(rtmidi)
    try:
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client_name)
    except (rtmidi.RtMidiError, OSError) as error:
        raise DeviceError(f"cannot open a JACK MIDI client (is a JACK server running?): {_one_line(error)}") from None
    try:
        if connect is None:
            out.open_virtual_port(port_name)
            return out, None
        ports = [str(p) for p in out.get_ports()]
        matches = [i for i, p in enumerate(ports) if p == connect] or [i for i, p in enumerate(ports) if connect in p]
        if len(matches) != 1:
            which = "no" if not matches else "more than one"
            raise DeviceError(
                f"{which} JACK MIDI input matches --midi-connect '{connect}'; available: {', '.join(ports) or 'none'}"
            )
        out.open_port(matches[0], name=port_name)
        return out, ports[matches[0]]
    except (rtmidi.RtMidiError, OSError) as error:
        out.delete()
        raise DeviceError(f"cannot open the JACK MIDI port '{port_name}': {_one_line(error)}") from None
    except DeviceError:
        out.delete()
        raise


@dataclass
class SenderStats:
    """What the sender did; `late_ns` holds (sent - target) for every scheduled event."""

    sent: int = 0
    note_ons: int = 0
    note_offs: int = 0
    stop_messages: int = 0
    dropped_at_stop: int = 0
    late_ns: list[int] = field(default_factory=list)
    held: int = 0
    """Events the observed gate held back after the map said they were due (the map was early)."""
    error: str | None = None
    watchdog: str | None = None
    realtime: bool = False


class MidiSender:
    """Drains `engine`'s MIDI ring on a thread of its own and sends each event to `port` when due (see the module
    docstring). `recording` gets every message sent; with `keep_log` every scheduled event is also kept with its
    target and send times (log()). `guard` (realtime/midi_guard.py) is told of each note and closed by close()."""

    def __init__(
        self,
        engine: MidiSource,
        port: MidiPort,
        sample_rate: float,
        *,
        recording: MidiRecording | None = None,
        keep_log: bool = False,
        steady_ns: Callable[[], int] = idaw_core.steady_ns,
        watchdog_seconds: float = WATCHDOG_SECONDS,
        realtime_priority: int | None = RT_PRIORITY,
        guard: Guard | None = None,
    ) -> None:
        self.engine = engine
        self.port = port
        self.clock = ClockMap(sample_rate)
        self.recording = recording
        self.stats = SenderStats()
        self._keep_log = keep_log
        self._log: list[list[int]] = []
        self._stop_log: list[list[int]] = []
        self._steady_ns = steady_ns
        self._watchdog_seconds = watchdog_seconds
        self._priority = realtime_priority
        self.guard = guard
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._held_seq = -1
        self._sounding: dict[tuple[int, int], int] = {}
        self._channels: set[int] = set()
        self._lock = threading.Lock()  # the port (JACK's ring has one writer) and every book of what was sent
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._dead = False  # after an emergency stop nothing more is sent
        self._ended_cleanly = False  # the last all_notes_off() sent every message
        self._beat = time.monotonic()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._switch_interval: float | None = None
        self._summary: dict[str, Any] | None = None

    # ---- life cycle -----------------------------------------------------------------------------------------------

    def start(self) -> MidiSender:
        """Starts the sending thread and the watchdog; returns self."""
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self._beat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="idaw-midi-out", daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, name="idaw-midi-watchdog", daemon=True)
        self._watchdog.start()
        atexit.register(self.close)
        return self

    def close(self, reason: str = "stop") -> dict[str, Any]:
        """Stops sending, ends every sounding note (note-offs + All Notes Off on each channel used), closes the port,
        then tells the guard it may go; returns summary(). Safe to call more than once and from any thread but the
        sender's. A sending thread that does not stop in time cannot send anything after this: the stop path takes
        the port's lock and marks the sender dead."""
        if self._summary is not None:
            return self._summary
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self.stats.dropped_at_stop = len(self._heap)
        self.all_notes_off(reason)
        self._closed.set()
        time.sleep(FLUSH_SECONDS)
        with contextlib.suppress(Exception):  # a port whose server died: nothing left to close
            self.port.close_port()
            # python-rtmidi keeps its JACK client (portless) until the object is deleted: end it now, not at GC.
            release = getattr(self.port, "delete", None)
            if release is not None:
                release()
        if self.guard is not None:
            with self._books():
                # Without a clean all-notes-off (the port blocked or failed) the guardian is let go without "end":
                # it then ends the notes itself.
                self.guard.close(clean=self._ended_cleanly)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        atexit.unregister(self.close)
        self._summary = self.summary()
        return self._summary

    @property
    def alive(self) -> bool:
        """True while the sending thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # ---- sending thread -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._raise_priority()
        try:
            while not self._stop.is_set() and not self._dead:
                self._beat = time.monotonic()
                wait_ns = self._pump()
                if wait_ns > 0:
                    self._stop.wait(wait_ns / 1e9)
        except Exception as error:  # a device error or a bug: end the notes, then give up
            self.stats.error = f"{type(error).__name__}: {_one_line(error)}"
            self.all_notes_off("sender failed")

    def _raise_priority(self) -> None:
        if self._priority is None:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self._priority))  # this thread only (Linux)
            self.stats.realtime = True
        except (OSError, AttributeError):
            pass

    def _pump(self) -> int:
        """Drains the ring, sends what is due; returns how long (ns) the thread may sleep."""
        for sample_time, status, data1, data2 in self.engine.drain_midi():
            heapq.heappush(self._heap, (int(sample_time), self._seq, int(status), int(data1), int(data2)))
            self._seq += 1
        self.clock.observe(*self.engine.block_clock())
        if not self.clock.ready:
            return int(POLL_SECONDS * 1e9)
        while self._heap:
            sample_time = self._heap[0][0]
            target = self.clock.send_ns(sample_time)
            now = self._steady_ns()
            if target > now + SEND_SLACK_NS:
                return int(min(target - now, POLL_SECONDS * 1e9))
            earliest = self.clock.earliest_ns(sample_time)
            if earliest is None or earliest > now:  # the map is early: wait for the engine's clock to get there
                if self._held_seq != self._heap[0][1]:
                    self._held_seq = self._heap[0][1]
                    self.stats.held += 1
                wait = GATE_POLL_SECONDS * 1e9 if earliest is None else min(earliest - now, GATE_POLL_SECONDS * 1e9)
                return max(int(wait), 1)
            _, _, status, data1, data2 = heapq.heappop(self._heap)
            self._send(sample_time, status, data1, data2, int(max(target, earliest)))
        return int(POLL_SECONDS * 1e9)

    def _send(self, sample_time: int, status: int, data1: int, data2: int, target_ns: int) -> None:
        """Sends one event and books it (tracking, counts, recording, log) in one step under the lock; nothing once
        the sender is dead. A port error propagates (the thread then ends the notes)."""
        kind, channel = status & 0xF0, status & 0x0F
        note_on = kind == 0x90 and data2 > 0
        note_off = kind == 0x80 or (kind == 0x90 and data2 == 0)
        with self._lock:
            if self._dead:
                return
            if note_on and self.guard is not None:
                self.guard.note_on(channel, data1)  # before the send: the guard may end a note that never went out
            self.port.send_message([status, data1, data2])
            sent_ns = self._steady_ns()
            if note_off and self.guard is not None:
                self.guard.note_off(channel, data1)
            self._track(channel, data1, note_on, note_off)
            self.stats.sent += 1
            self.stats.late_ns.append(sent_ns - target_ns)
            if self.recording is not None:
                self.recording.add(sample_time, status, data1, data2)
            if self._keep_log:
                self._log.append([sample_time, status, data1, data2, target_ns, sent_ns])

    def _track(self, channel: int, pitch: int, note_on: bool, note_off: bool) -> None:
        """Counts a sent note-on or note-off into the sounding notes (call with the lock held)."""
        key = (channel, pitch)
        if note_on:
            self._sounding[key] = self._sounding.get(key, 0) + 1
            self._channels.add(channel)
            self.stats.note_ons += 1
        elif note_off:
            self.stats.note_offs += 1
            left = self._sounding.get(key, 0) - 1
            if left > 0:
                self._sounding[key] = left
            else:
                self._sounding.pop(key, None)

    # ---- ending notes ---------------------------------------------------------------------------------------------

    def all_notes_off(self, reason: str) -> int:
        """Sends a note-off for every sounding note and All Notes Off (CC 123) on every channel used, then sends
        nothing more; returns the number of messages sent. Thread-safe."""
        if not self._lock.acquire(timeout=1.0):  # the sender is stuck inside the port: nothing can be sent
            self.stats.watchdog = self.stats.watchdog or f"{reason}: the port is blocked"
            return 0
        try:
            self._dead = True
            now = self._steady_ns()
            sample = self.clock.sample_at(now) if self.clock.ready else 0
            messages = [[0x80 | ch, pitch, 0] for (ch, pitch) in sorted(self._sounding)]
            messages += [[0xB0 | ch, ALL_NOTES_OFF, 0] for ch in sorted(self._channels)]
            sent = 0
            for message in messages:
                try:
                    self.port.send_message(message)
                except Exception as error:  # keep trying the rest: another message may still get through
                    self.stats.error = self.stats.error or f"{type(error).__name__}: {_one_line(error)}"
                    continue
                sent += 1
                if self.recording is not None:
                    self.recording.add(sample, *message)
                self._stop_log.append([sample, *message, now])
            self._sounding.clear()
            self._ended_cleanly = sent == len(messages)
            if self.guard is not None and self._ended_cleanly:
                self.guard.clear()
            self.stats.stop_messages += sent
            return sent
        finally:
            self._lock.release()

    def _watch(self) -> None:
        """Ends the notes when the sender dies or stalls (see the module docstring)."""
        while not self._closed.wait(0.1):
            if self._stop.is_set() or self._dead:
                continue
            if not self.alive:
                self.stats.watchdog = "the sending thread is gone"
            elif time.monotonic() - self._beat > self._watchdog_seconds:
                self.stats.watchdog = f"the sending thread stalled for over {self._watchdog_seconds:g} s"
            else:
                continue
            self.all_notes_off("watchdog")

    # ---- reporting ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _books(self) -> Iterator[None]:
        """The lock for reading the books, given up after a second (a sender stuck inside the port holds it)."""
        got = self._lock.acquire(timeout=1.0)
        try:
            yield
        finally:
            if got:
                self._lock.release()

    def summary(self) -> dict[str, Any]:
        """Counts and send-time lateness (µs: p50, p99, max of sent - target) as plain JSON values."""
        with self._books():
            late = np.asarray(self.stats.late_ns, dtype=np.float64) / 1e3
        block_us = 1e6 * self.clock.block_frames / self.clock.rate if self.clock.block_frames else math.nan
        return {
            "sent": self.stats.sent,
            "note_ons": self.stats.note_ons,
            "note_offs": self.stats.note_offs,
            "stop_messages": self.stats.stop_messages,
            "dropped_at_stop": self.stats.dropped_at_stop,
            "send_late_us": {
                "p50": round(float(np.percentile(late, 50)), 1) if late.size else None,
                "p99": round(float(np.percentile(late, 99)), 1) if late.size else None,
                "max": round(float(late.max()), 1) if late.size else None,
                "over_one_block": int(np.sum(late > block_us)) if late.size and block_us == block_us else 0,
            },
            "block_frames": self.clock.block_frames,
            "clock_restarts": self.clock.restarts,
            "held_by_gate": self.stats.held,
            "realtime_priority": self.stats.realtime,
            "guard": None if self.guard is None else {"port": self.guard.port, "error": self.guard.error},
            "error": self.stats.error,
            "watchdog": self.stats.watchdog,
        }

    def log(self) -> dict[str, Any]:
        """Every scheduled event as [sample_time, status, data1, data2, target_ns, sent_ns] and every stop message
        as [sample_time, status, data1, data2, sent_ns] (needs keep_log)."""
        with self._books():
            return {
                "sample_rate": self.clock.rate,
                "block_frames": self.clock.block_frames,
                "events": list(self._log),
                "stop": list(self._stop_log),
            }
