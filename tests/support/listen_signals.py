"""Small pieces of music with known content, for the corpus tests and benchmark: MIDI chorales written with mido and
recordings of struck chords synthesised from harmonic tones (what they hold is known exactly)."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import numpy.typing as npt
import soundfile as sf

TICKS = 480
"""MIDI ticks per quarter note."""
CADENCE = ((72, 67, 64, 48), (72, 65, 57, 53), (71, 67, 62, 55), (72, 67, 64, 48))
"""I IV V I in C major, four voices (soprano first), MIDI note numbers."""
C_MAJOR_BARS = ((0, (0, 4, 7)), (9, (0, 3, 7)), (5, (0, 4, 7)), (7, (0, 4, 7)))
"""I vi IV V in C major as (root pitch class, intervals above it) per bar."""


def write_midi(
    path: Path, chords: tuple[tuple[int, ...], ...] = CADENCE, bpm: float = 120.0, transpose: int = 0
) -> Path:
    """A type-1 MIDI file at `path`: a tempo track, then one track per voice, each chord a whole note; returns path."""
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    song.tracks.append(meta)
    for voice in range(len(chords[0])):
        track = mido.MidiTrack()
        for chord in chords:
            note = chord[voice] + transpose
            track.append(mido.Message("note_on", note=note, velocity=80, channel=voice, time=0))
            track.append(mido.Message("note_off", note=note, velocity=0, channel=voice, time=4 * TICKS))
        song.tracks.append(track)
    song.save(str(path))
    return path


def tone(freq: float, seconds: float, rate: int, amplitude: float) -> npt.NDArray[np.float64]:
    """A harmonic tone (8 partials, 1/k) with a 5 ms attack and an exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.zeros(len(t))
    for k in range(1, 9):
        if freq * k < rate / 2:
            wave += np.sin(2 * np.pi * freq * k * t) / k
    out: npt.NDArray[np.float64] = amplitude * np.minimum(t / 0.005, 1.0) * np.exp(-3.0 * t) * wave
    return out


def chords(
    bars: tuple[tuple[int, tuple[int, ...]], ...] = C_MAJOR_BARS,
    bpm: float = 120.0,
    repeats: int = 1,
    transpose: int = 0,
    rate: int = 22050,
) -> npt.NDArray[np.float32]:
    """The progression played `repeats` times in 4/4, a chord struck on every beat and the root in the bass on each
    bar's first beat, peak 0.8; mono float32 samples at `rate`."""
    period = 60.0 / bpm
    count = len(bars) * 4 * repeats
    out = np.zeros(int((count + 2) * period * rate))
    for i in range(count):
        root, intervals = bars[(i // 4) % len(bars)]
        root = (root + transpose) % 12
        at = int(i * period * rate)
        for interval in intervals:
            note = tone(440.0 * 2 ** ((60 + root + interval - 69) / 12), period, rate, 0.12)
            out[at : at + len(note)] += note
        if i % 4 == 0:
            bass = tone(440.0 * 2 ** ((36 + root - 69) / 12), period * 4, rate, 0.35)
            out[at : at + len(bass)] += bass[: len(out) - at]
    samples: npt.NDArray[np.float32] = (0.8 * out / np.abs(out).max()).astype(np.float32)
    return samples


def write_chords_wav(path: Path, bpm: float = 120.0, repeats: int = 1, transpose: int = 0, rate: int = 22050) -> Path:
    """`chords(...)` written as a 16-bit mono WAV at `path`; returns path."""
    sf.write(str(path), chords(bpm=bpm, repeats=repeats, transpose=transpose, rate=rate), rate, subtype="PCM_16")
    return path
