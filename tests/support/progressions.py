"""Synthesised chord progressions with known beats and keys, for the listening tests: harmonic tones with a decaying
envelope, one chord per beat, a bass note on each bar's first beat."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from idaw.listen.audio import SAMPLE_RATE

# I vi IV V in C major and i iv V i in A minor, as (root pitch class, intervals) per bar.
C_MAJOR = ((0, (0, 4, 7)), (9, (0, 3, 7)), (5, (0, 4, 7)), (7, (0, 4, 7)))
A_MINOR = ((9, (0, 3, 7)), (2, (0, 3, 7)), (4, (0, 4, 7)), (9, (0, 3, 7)))


def tone(freq: float, seconds: float, rate: int, amplitude: float) -> npt.NDArray[np.float64]:
    """A harmonic tone (8 partials, 1/k) with a fast attack and an exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.zeros(len(t))
    for k in range(1, 9):
        if freq * k < rate / 2:
            wave += np.sin(2 * np.pi * freq * k * t) / k
    envelope = np.minimum(t / 0.005, 1.0) * np.exp(-3.0 * t)
    result: npt.NDArray[np.float64] = amplitude * envelope * wave
    return result


def progression(
    bars: tuple[tuple[int, tuple[int, ...]], ...],
    bpm: float,
    beats_per_bar: int = 4,
    repeats: int = 4,
    transpose: int = 0,
    rate: int = SAMPLE_RATE,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """The progression played `repeats` times, a chord struck on every beat (mid register) and its root in the
    bass on each first beat; returns the samples and the beat times."""
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
