"""What the MIDI generator offers a follower (plugin_cpp/core/include/idaw/midi_generator.h): a key change waits for
the next bar line; a control's beat_anchor moves the grid's beats onto a heard beat train; and the engine says where
on its sample clock the analysis stream starts (Engine.analysis_origin), so a heard beat can be placed on that clock.

Run offline on the engine with the shipped nets: every event's sample time is exact, so the checks are exact up to
the generator's own micro-timing (at most 0.45 of a step, its documented clamp).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import idaw_core
from realtime import midi_settings

RATE, BLOCK = 48000, 256
TEMPO = 120.0
STEP = RATE * 15.0 / TEMPO  # samples per sixteenth
BEAT, BAR = 4 * STEP, 16 * STEP
DRUM_CHANNEL = 9


def engine_with_nets() -> idaw_core.Engine:
    engine = idaw_core.Engine()
    engine.prepare(RATE, BLOCK, 2)
    midi_settings.install_nets(engine, None)
    return engine


def run_blocks(engine: idaw_core.Engine, seconds: float, events: list[tuple[int, int, int, int]]) -> None:
    """Process `seconds` of silence in blocks, collecting every generated event."""
    audio = np.zeros((BLOCK, 2), np.float32)
    for _ in range(round(seconds * RATE / BLOCK)):
        engine.process(audio)
        events.extend(engine.drain_midi())


def note_ons(events: list[tuple[int, int, int, int]], drums: bool) -> list[tuple[int, int]]:
    """(time, pitch) of each note-on, drums only or pitched only, in time order."""
    return sorted(
        (t, d1) for t, status, d1, d2 in events if status & 0xF0 == 0x90 and d2 > 0 and ((status & 0x0F) == 9) == drums
    )


def settings(key_tonic: int = 0) -> midi_settings.MidiSettings:
    """C major (or another major key) at TEMPO, drums on channel 10."""
    return replace(midi_settings.MidiSettings(tempo_bpm=TEMPO, drum_channel=DRUM_CHANNEL), key_tonic=key_tonic)


def test_a_key_change_waits_for_the_next_bar_line() -> None:
    engine = engine_with_nets()
    events: list[tuple[int, int, int, int]] = []
    midi_settings.push(engine, settings(), enabled=True, sequence=1)
    run_blocks(engine, 5.3, events)  # the change comes in the middle of a bar
    pushed_at = engine.block_clock()[0] + BLOCK
    midi_settings.push(engine, settings(key_tonic=4), enabled=True, sequence=2)  # C major -> E major
    run_blocks(engine, 8.0, events)
    first_step = engine.midi_lookahead_samples(TEMPO)  # enabled in block 0: step 0 starts one lookahead later
    frontier = pushed_at + first_step  # roughly the first step not yet generated when the change is taken up
    bar_line = first_step + BAR * np.ceil((frontier - first_step) / BAR)
    assert engine.midi_counters()["key_changes"] == 1
    slack = 0.45 * STEP
    pitched = note_ons(events, drums=False)
    before = [p for t, p in pitched if t < bar_line - slack]
    after = [p for t, p in pitched if t >= bar_line + slack]
    assert before and after
    assert all(midi_settings.in_key(p, 0, 0) for p in before), "a note of the new key before the bar line"
    assert all(midi_settings.in_key(p, 4, 0) for p in after), "a note outside the new key after the bar line"
    assert any(not midi_settings.in_key(p, 0, 0) for p in after), "the new key never sounded"


@pytest.mark.parametrize("offset_beats", [0.3, -0.2])
def test_a_beat_anchor_moves_the_grid_onto_the_heard_beats(offset_beats: float) -> None:
    engine = engine_with_nets()
    events: list[tuple[int, int, int, int]] = []
    midi_settings.push(engine, settings(), enabled=True, sequence=1)
    run_blocks(engine, 4.0, events)
    first_step = engine.midi_lookahead_samples(TEMPO)
    anchor = round(first_step + 10 * BEAT + offset_beats * BEAT)  # a heard beat train off the grid's by offset
    push_at = engine.block_clock()[0] + BLOCK
    midi_settings.push(engine, settings(), enabled=True, sequence=2, beat_anchor=anchor)
    run_blocks(engine, 6.0, events)
    counters = engine.midi_counters()
    assert counters["phase_locks"] == 1
    assert counters["last_phase_shift"] == pytest.approx(offset_beats * BEAT, abs=1.0)

    def phase_error(time: int, train: float) -> float:
        """Distance (samples) from `time` to the nearest beat of the train through `train`."""
        return abs((time - train + BEAT / 2) % BEAT - BEAT / 2)

    kicks = [t for t, p in note_ons(events, drums=True) if p in (36, 38)]  # kick and snare: on the beats
    old = [t for t in kicks if t < push_at]
    new = [t for t in kicks if t > push_at + 2 * engine.midi_lookahead_samples(TEMPO)]
    assert len(old) >= 4 and len(new) >= 8
    slack = 0.45 * STEP
    assert max(phase_error(t, first_step) for t in old) <= slack  # the grid's own beats before
    assert max(phase_error(t, anchor) for t in new) <= slack  # the heard beats after
    assert np.median([phase_error(t, anchor) for t in new]) < np.median([phase_error(t, anchor) for t in old])


def test_the_analysis_origin_is_where_the_stream_started() -> None:
    engine = idaw_core.Engine()
    engine.prepare(RATE, BLOCK, 2)
    audio = np.zeros((BLOCK, 2), np.float32)
    assert engine.analysis_origin() == 0
    for _ in range(10):
        engine.process(audio)
    engine.set_analysis_enabled(True)
    for _ in range(3):
        engine.process(audio)
    assert engine.analysis_origin() == 10 * BLOCK
    engine.set_analysis_enabled(False)
    engine.process(audio)
    engine.set_analysis_enabled(True)
    engine.process(audio)
    assert engine.analysis_origin() == 14 * BLOCK  # switched on again: a new stream
