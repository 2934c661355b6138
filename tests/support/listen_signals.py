"""Small pieces of music with known content, for the listening tests and the corpus benchmark: MIDI chorales written
with mido, and chord progressions synthesised from harmonic tones with a decaying envelope, one chord per beat and
the root in the bass on each bar's first beat (their beats and keys are known exactly)."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import numpy.typing as npt
import soundfile as sf

from idaw.listen.audio import SAMPLE_RATE

TICKS = 480
"""MIDI ticks per quarter note."""
CADENCE = ((72, 67, 64, 48), (72, 65, 57, 53), (71, 67, 62, 55), (72, 67, 64, 48))
"""I IV V I in C major, four voices (soprano first), MIDI note numbers."""
C_MAJOR = ((0, (0, 4, 7)), (9, (0, 3, 7)), (5, (0, 4, 7)), (7, (0, 4, 7)))
"""I vi IV V in C major as (root pitch class, intervals above it) per bar."""
A_MINOR = ((9, (0, 3, 7)), (2, (0, 3, 7)), (4, (0, 4, 7)), (9, (0, 3, 7)))
"""i iv V i in A minor, as C_MAJOR."""


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


def progression(
    bars: tuple[tuple[int, tuple[int, ...]], ...],
    bpm: float,
    beats_per_bar: int = 4,
    repeats: int = 4,
    transpose: int = 0,
    rate: int = SAMPLE_RATE,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """The progression played `repeats` times, a chord struck on every beat (mid register) and its root in the
    bass on each first beat, peak 0.8; returns the mono float32 samples at `rate` and the beat times (s)."""
    period = 60.0 / bpm
    count = len(bars) * beats_per_bar * repeats
    out = np.zeros(int((count + 2) * period * rate))
    beat_times: npt.NDArray[np.float64] = np.arange(count, dtype=np.float64) * period
    for i, start in enumerate(beat_times):
        root, intervals = bars[(i // beats_per_bar) % len(bars)]
        root = (root + transpose) % 12
        at = int(start * rate)
        for interval in intervals:
            note = tone(440.0 * 2 ** ((60 + root + interval - 69) / 12), period, rate, 0.12)
            out[at : at + len(note)] += note
        if i % beats_per_bar == 0:
            bass = tone(440.0 * 2 ** ((36 + root - 69) / 12), period * beats_per_bar, rate, 0.35)
            out[at : at + len(bass)] += bass[: len(out) - at]
    samples: npt.NDArray[np.float32] = (0.8 * out / np.abs(out).max()).astype(np.float32)
    return samples, beat_times


def with_kick_drum(
    samples: npt.NDArray[np.float32], beat_times: npt.NDArray[np.float64], freq: float = 43.65
) -> npt.NDArray[np.float32]:
    """`samples` (peak 0.8) with a kick drum on every beat: a sine at `freq` (F1 by default, where the body of many
    kicks rings) decaying with a 150 ms time constant, as loud as the music; peak 0.8 again."""
    t = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    hit = 0.6 * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.15)
    out = samples.astype(np.float64)
    for beat in beat_times:
        at = int(beat * SAMPLE_RATE)
        out[at : at + len(hit)] += hit[: len(out) - at]
    mixed: npt.NDArray[np.float32] = (0.8 * out / np.abs(out).max()).astype(np.float32)
    return mixed


def write_chords_wav(path: Path, bpm: float = 120.0, repeats: int = 1, transpose: int = 0, rate: int = 22050) -> Path:
    """C_MAJOR played `repeats` times in 4/4 (progression), written as a 16-bit mono WAV at `path`; returns path."""
    samples, _ = progression(C_MAJOR, bpm, 4, repeats, transpose, rate)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return path
