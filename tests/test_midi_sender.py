"""The MIDI sender on its own, with a stand-in engine and port: events go out in time order when due, and no note
is left on after close(), after the port fails, or when the sending thread stalls (watchdog). Also the sample-clock
to steady-clock map."""

from __future__ import annotations

import threading
import time

import pytest

import idaw_core
from realtime.midi_clock import SEND_BEFORE_BLOCK, ClockMap
from realtime.midi_file import MidiRecording
from realtime.midi_out import MidiSender

RATE = 48000.0
BLOCK = 256
BLOCK_NS = BLOCK / RATE * 1e9


class FakeEngine:
    """Blocks of 256 frames that start on time by the steady clock; hands out a fixed list of events once."""

    def __init__(self, events: list[tuple[int, int, int, int]], stall_after: int | None = None) -> None:
        self.t0 = idaw_core.steady_ns()
        self.events = list(events)
        self.drains = 0
        self.stall_after = stall_after
        self.release = threading.Event()

    def drain_midi(self, max_events: int = 65536) -> list[tuple[int, int, int, int]]:
        self.drains += 1
        if self.stall_after is not None and self.drains > self.stall_after:
            self.release.wait(10.0)
        out, self.events = self.events, []
        return out

    def block_clock(self) -> tuple[int, int, int, int]:
        k = int((idaw_core.steady_ns() - self.t0) // BLOCK_NS)
        return k * BLOCK, int(self.t0 + k * BLOCK_NS) + 20_000, BLOCK, k + 1


class FakePort:
    """Records (steady ns, message); raises once at message number `fail_at` (0-based)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[tuple[int, list[int]]] = []
        self.fail_at = fail_at
        self.calls = 0
        self.closed = False

    def send_message(self, message: list[int]) -> None:
        self.calls += 1
        if self.fail_at is not None and self.calls - 1 == self.fail_at:
            raise OSError("device unplugged")
        self.sent.append((idaw_core.steady_ns(), list(message)))

    def close_port(self) -> None:
        self.closed = True

    def messages(self) -> list[list[int]]:
        return [m for _, m in self.sent]


def sounding_after(messages: list[list[int]]) -> set[tuple[int, int]]:
    """(channel, pitch) still on after the messages (All Notes Off ends a channel)."""
    on: set[tuple[int, int]] = set()
    for status, d1, d2 in messages:
        if status & 0xF0 == 0x90 and d2 > 0:
            on.add((status & 0x0F, d1))
        elif status & 0xF0 == 0x80:
            on.discard((status & 0x0F, d1))
        elif status & 0xF0 == 0xB0 and d1 == 123:
            on = {k for k in on if k[0] != status & 0x0F}
    return on


def melody(start: int, count: int, step: int, channel: int = 0) -> list[tuple[int, int, int, int]]:
    """`count` notes one `step` apart, each lasting half a step; the last one is left without its note-off."""
    events = []
    for i in range(count):
        t = start + i * step
        events.append((t, 0x90 | channel, 60 + i % 12, 100))
        if i < count - 1:
            events.append((t + step // 2, 0x80 | channel, 60 + i % 12, 0))
    return events


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_clock_map_takes_the_earliest_callback_and_restarts_after_a_jump() -> None:
    clock = ClockMap(RATE, window=16)
    assert not clock.ready
    for k, late in enumerate([30_000, 5_000, 80_000, 12_000]):
        clock.observe(k * BLOCK, int(1e9 + k * BLOCK_NS) + late, BLOCK, k + 1)
    clock.observe(3 * BLOCK, 0, BLOCK, 4)  # the same block again: ignored
    assert clock.ready and clock.block_frames == BLOCK
    assert clock.wall_ns(0) == pytest.approx(1e9 + 5_000)
    assert clock.wall_ns(RATE) == pytest.approx(2e9 + 5_000)
    assert clock.sample_at(1e9 + 5_000 + 1e8) == RATE // 10
    # An event inside block 10 goes out a quarter block before that block's callback.
    assert clock.send_ns(10 * BLOCK + 100) == pytest.approx(clock.wall_ns((10 - SEND_BEFORE_BLOCK) * BLOCK))
    # Cycles skipped (an xrun): callbacks now come 3 blocks later than before; after a few the map follows.
    for k in range(4, 20):
        clock.observe(k * BLOCK, int(1e9 + (k + 3) * BLOCK_NS) + 5_000, BLOCK, k + 1)
    assert clock.restarts == 1
    assert clock.wall_ns(0) == pytest.approx(1e9 + 3 * BLOCK_NS + 5_000)


def test_events_go_out_in_order_when_due_and_close_ends_every_note() -> None:
    events = melody(int(0.15 * RATE), 20, 2400) + melody(int(0.15 * RATE), 5, 9600, channel=1)
    given = events[::-1]  # any order: the sender sorts by time (ties keep the order given)
    engine = FakeEngine(given)
    port = FakePort()
    recording = MidiRecording(RATE, 120)
    sender = MidiSender(engine, port, RATE, recording=recording, keep_log=True).start()
    last = max(e[0] for e in events)
    assert wait_for(lambda: len(port.sent) == len(events), last / RATE + 2.0)
    summary = sender.close()
    assert port.closed and not sender.alive
    scheduled = port.sent[: len(events)]
    order = sorted(given, key=lambda e: e[0])
    assert [m for _, m in scheduled] == [[s, d1, d2] for _, s, d1, d2 in order]
    # Each went out a quarter block before its block's callback, give or take the scheduler.
    clock = sender.clock
    for (sent_ns, _), (t, *_rest) in zip(scheduled, order, strict=True):
        block_start = (t // BLOCK) * BLOCK
        early = clock.wall_ns(block_start) - sent_ns
        assert -BLOCK_NS < early < BLOCK_NS, (t, early)
    # close(): the two notes left on are ended, then All Notes Off on both channels.
    stop = port.messages()[len(events) :]
    assert sorted(map(tuple, stop)) == sorted([(0x80, 60 + 19 % 12, 0), (0x81, 64, 0), (0xB0, 123, 0), (0xB1, 123, 0)])
    assert sounding_after(port.messages()) == set()
    assert summary["sent"] == len(events) and summary["stop_messages"] == 4 and summary["error"] is None
    assert len(sender.log()["events"]) == len(events)
    assert all(n.end > n.start for n in recording.notes())
    assert sender.close() is summary  # idempotent


def test_a_failing_port_still_ends_the_notes() -> None:
    engine = FakeEngine(melody(int(0.05 * RATE), 10, 1200))
    port = FakePort(fail_at=5)  # the sixth message fails, the port works again afterwards
    sender = MidiSender(engine, port, RATE).start()
    assert wait_for(lambda: not sender.alive, 3.0)
    assert sender.stats.error is not None and "device unplugged" in sender.stats.error
    assert sounding_after(port.messages()) == set()
    assert port.messages()[-1] == [0xB0, 123, 0]
    sent = len(port.sent)
    summary = sender.close()
    assert summary["error"] is not None
    # Nothing more after the failure's stop messages but close()'s own All Notes Off.
    assert [m for m in port.messages()[sent:] if m[0] & 0xF0 != 0xB0] == []


def test_the_watchdog_ends_the_notes_of_a_stalled_sender() -> None:
    engine = FakeEngine([*melody(int(0.05 * RATE), 4, 1200), (int(5 * RATE), 0x90, 70, 90)], stall_after=30)
    port = FakePort()
    sender = MidiSender(engine, port, RATE, watchdog_seconds=0.3).start()
    assert wait_for(lambda: any(m == [0xB0, 123, 0] for m in port.messages()), 3.0)
    assert sender.stats.watchdog is not None and "stalled" in sender.stats.watchdog
    assert sounding_after(port.messages()) == set()
    count = len(port.sent)
    engine.release.set()  # the sender wakes up: it must not send the note due at 5 s
    time.sleep(0.2)
    assert len(port.sent) == count
    sender.close()
    assert sounding_after(port.messages()) == set()
    assert [70] not in [m[1:2] for m in port.messages() if m[0] == 0x90]
