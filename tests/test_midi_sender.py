"""The MIDI sender on its own, with a stand-in engine and port: events go out in time order when due, and no note
is left on after close(), after the port fails, or when the sending thread stalls (watchdog). Also the sample-clock
to steady-clock map."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

import idaw_core
from realtime.midi_clock import GATE_AFTER_CALLBACK, SEND_BEFORE_BLOCK, ClockMap
from realtime.midi_file import MidiRecording
from realtime.midi_out import MidiSender
from tests.support.sidecar_helpers import wait_until

RATE = 48000.0
BLOCK = 256
BLOCK_NS = BLOCK / RATE * 1e9
STEP_CAP_S = 30.0
"""How long a step may wait for what it checks before the test fails: a guard against a hang only."""


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

    def send_message(self, message: Sequence[int]) -> None:
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
    assert wait_until(lambda: len(port.sent) == len(events), last / RATE + STEP_CAP_S)
    summary = sender.close()
    assert port.closed and not sender.alive
    scheduled = port.sent[: len(events)]
    order = sorted(given, key=lambda e: e[0])
    assert [m for _, m in scheduled] == [[s, d1, d2] for _, s, d1, d2 in order]
    # Each was meant to go out a quarter block before its block's callback (the sender's own target, from its log)
    # and went out no more than a block early: both hold whatever the load. How late a busy machine woke the sending
    # thread after the target is the machine's business, not a rule of the sender: not asserted.
    clock = sender.clock
    logged = sender.log()["events"]
    assert [tuple(e[:4]) for e in logged] == order
    for (sent_ns, _), (t, *_rest), (*_, target_ns, _) in zip(scheduled, order, logged, strict=True):
        block_start = (t // BLOCK) * BLOCK
        assert -BLOCK_NS < clock.wall_ns(block_start) - target_ns < BLOCK_NS, (t, target_ns)
        assert clock.wall_ns(block_start) - sent_ns < BLOCK_NS, (t, sent_ns)
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
    assert wait_until(lambda: not sender.alive, STEP_CAP_S)
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
    assert wait_until(lambda: any(m == [0xB0, 123, 0] for m in port.messages()), STEP_CAP_S)
    assert sender.stats.watchdog is not None and "stalled" in sender.stats.watchdog
    assert sounding_after(port.messages()) == set()
    count = len(port.sent)
    engine.release.set()  # the sender wakes up: it must not send the note due at 5 s
    time.sleep(0.2)
    assert len(port.sent) == count
    sender.close()
    assert sounding_after(port.messages()) == set()
    assert [70] not in [m[1:2] for m in port.messages() if m[0] == 0x90]


def test_the_gate_holds_an_event_until_the_previous_block_was_seen() -> None:
    clock = ClockMap(RATE, window=16)
    for k in range(10):
        clock.observe(k * BLOCK, int(1e9 + k * BLOCK_NS), BLOCK, k + 1)
    latest = int(1e9 + 9 * BLOCK_NS)
    assert clock.earliest_ns(9 * BLOCK + 5) == 0.0  # its own block has begun: any time
    assert clock.earliest_ns(10 * BLOCK + 5) == pytest.approx(latest + GATE_AFTER_CALLBACK * BLOCK_NS)
    assert clock.earliest_ns(11 * BLOCK) is None  # the block before it has not been seen yet
    assert clock.earliest_ns(3 * BLOCK) == 0.0  # already late


class StallingEngine(FakeEngine):
    """Like FakeEngine, but after `stall_at` ns the server stalls for `stall_ns`: every later callback comes that
    much later than before (the map, still on the old times, is early)."""

    def __init__(self, events: list[tuple[int, int, int, int]], stall_at: float, stall_ns: float) -> None:
        super().__init__(events)
        self.stall_at, self.stall_ns = stall_at, stall_ns

    def callback_ns(self, k: int) -> float:
        on_time = float(self.t0 + k * BLOCK_NS)
        return on_time if on_time < self.t0 + self.stall_at else on_time + self.stall_ns

    def block_clock(self) -> tuple[int, int, int, int]:
        now = idaw_core.steady_ns()
        k = int((now - self.t0) // BLOCK_NS)
        while k > 0 and self.callback_ns(k) > now:
            k -= 1
        return k * BLOCK, int(self.callback_ns(k)), BLOCK, k + 1


def test_after_a_stall_no_event_goes_out_before_the_previous_block() -> None:
    # An event every 1.5 blocks; at 0.3 s the server stalls for 2.5 blocks. The map (the earliest callbacks of the
    # last 64 blocks) then predicts every block 2.5 blocks early until it restarts; sent by the map alone, the events
    # of those blocks would land a period or more early.
    events = [
        (int(0.1 * RATE) + i * 384, 0x90 if i % 2 == 0 else 0x80, 60, 100 if i % 2 == 0 else 0) for i in range(80)
    ]
    engine = StallingEngine(events, stall_at=0.3e9, stall_ns=2.5 * BLOCK_NS)
    port = FakePort()
    sender = MidiSender(engine, port, RATE, keep_log=True).start()
    assert wait_until(lambda: len(port.sent) == len(events), STEP_CAP_S)
    sender.close()
    held = sender.stats.held
    logged = sender.log()["events"]
    assert [e[0] for e in logged] == [e[0] for e in events]
    for (sent_ns, _), (sample, *_rest), (*_, target_ns, _) in zip(port.sent, events, logged, strict=False):
        previous_block = sample // BLOCK - 1
        assert sent_ns >= engine.callback_ns(previous_block) + GATE_AFTER_CALLBACK * BLOCK_NS - 1, sample
        # and meant for no later than the start of the block after its own (else it would land more than a period
        # late): the sender's own target, from its log. When a busy machine woke the thread to send it is not
        # asserted.
        assert target_ns < engine.callback_ns(sample // BLOCK + 1), (sample, target_ns, held)
    assert held > 0 and sender.summary()["held_by_gate"] == held


class FakeGuard:
    """Records what a GuardLink would be told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.port = "fake:all_notes_off"
        self.error: str | None = None

    def note_on(self, channel: int, pitch: int) -> None:
        self.lines.append(f"on {channel} {pitch}")

    def note_off(self, channel: int, pitch: int) -> None:
        self.lines.append(f"off {channel} {pitch}")

    def clear(self) -> None:
        self.lines.append("clear")

    def close(self, clean: bool = True, timeout: float = 2.0) -> None:
        self.lines.append("end" if clean else "gone")


def test_ending_the_notes_from_another_thread_mid_stream_keeps_the_books_exact() -> None:
    # 3,000 events, one every 8 samples: the watchdog's path (all_notes_off from another thread) lands while they
    # are being sent. What the port got must be exactly the log's events followed by its stop messages, the stop
    # messages end exactly the notes that were sent, and nothing goes out afterwards. A last note due a minute later
    # keeps the stream unfinished however late this thread gets to call all_notes_off.
    events = []
    for i in range(1500):
        t = int(0.05 * RATE) + 16 * i
        events += [(t, 0x90 | (i % 3), 40 + i % 40, 90), (t + 8, 0x80 | (i % 3), 40 + i % 40, 0)]
    events.append((int(60 * RATE), 0x90, 70, 90))
    engine = FakeEngine(events)
    port = FakePort()
    guard = FakeGuard()
    sender = MidiSender(engine, port, RATE, keep_log=True, guard=guard).start()
    assert wait_until(lambda: len(port.sent) > 300, STEP_CAP_S)
    sender.all_notes_off("test")
    time.sleep(0.05)  # pacing: close() comes a little after, as it would in use; nothing depends on the length
    sender.close()
    log = sender.log()
    assert 300 < len(log["events"]) < len(events)
    assert port.messages() == [row[1:4] for row in log["events"]] + [row[1:4] for row in log["stop"]]
    assert sounding_after(port.messages()) == set()
    sent_notes = sounding_after([row[1:4] for row in log["events"]])
    assert {(s & 0x0F, p) for s, p, _ in (row[1:4] for row in log["stop"]) if s & 0xF0 == 0x80} == sent_notes
    assert guard.lines[-3:] == ["clear", "clear", "end"]


def test_the_guard_hears_of_every_note_before_it_sounds_and_after_it_ends() -> None:
    events = melody(int(0.05 * RATE), 6, 1200, channel=2)
    guard = FakeGuard()
    port = FakePort()
    sender = MidiSender(FakeEngine(events), port, RATE, guard=guard).start()
    assert wait_until(lambda: len(port.sent) == len(events), STEP_CAP_S)
    sender.close()
    told = [line for line in guard.lines if line.startswith(("on", "off"))]
    assert told == [f"{'on' if s & 0xF0 == 0x90 else 'off'} 2 {p}" for _, s, p, _ in sorted(events)]
    assert guard.lines[-2:] == ["clear", "end"]


def test_a_sender_that_could_not_end_its_notes_leaves_them_to_the_guard() -> None:
    class DeadPort(FakePort):
        def send_message(self, message: Sequence[int]) -> None:
            if message[0] & 0xF0 == 0xB0 or message[0] & 0xF0 == 0x80:
                raise OSError("device unplugged")
            super().send_message(message)

    guard = FakeGuard()
    sender = MidiSender(FakeEngine(melody(int(0.05 * RATE), 3, 1200)), DeadPort(), RATE, guard=guard)
    sender.start()
    assert wait_until(lambda: not sender.alive, STEP_CAP_S)
    sender.close()
    assert "clear" not in guard.lines and guard.lines[-1] == "gone"
