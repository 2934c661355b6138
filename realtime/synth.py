"""The demo clip, synthesised from scratch: no downloaded audio ships with idaw."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TEMPO_BPM = 100.0
BASS_LINE = (36, 36, 43, 41)  # MIDI notes, one per beat: C2 C2 G2 F2
CHORDS = ((60, 64, 67), (57, 60, 64), (55, 59, 62), (53, 57, 60))  # C Am G F, one per bar


def midi_to_hz(note: float) -> float:
    """Equal-tempered frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def _envelope(length: int, rate: int, attack: float, decay: float) -> npt.NDArray[np.float64]:
    t = np.arange(length) / rate
    return np.minimum(1.0, t / attack) * np.exp(-t / decay)


def _saw(freq: float, length: int, rate: int, harmonics: int = 24) -> npt.NDArray[np.float64]:
    t = np.arange(length) / rate
    out = np.zeros(length)
    for k in range(1, harmonics + 1):
        if k * freq < rate / 2:
            out += np.sin(2 * np.pi * k * freq * t) / k
    return out


def demo_clip(rate: int = 48000, bars: int = 4, seed: int = 0) -> npt.NDArray[np.float32]:
    """A stereo groove (kick, hi-hat, bass, chord pad) at 100 BPM; float32 (frames, 2), peak -6 dBFS.

    Deterministic for a given seed: the same clip every time, so renders can be compared.
    """
    rng = np.random.default_rng(seed)
    beat = round(rate * 60.0 / TEMPO_BPM)
    length = beat * 4 * bars
    left = np.zeros(length)
    right = np.zeros(length)
    for b in range(4 * bars):
        start = b * beat
        # Kick: a pitch-dropping sine.
        n = min(beat, length - start)
        t = np.arange(n) / rate
        kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 9)
        left[start : start + n] += 0.8 * kick
        right[start : start + n] += 0.8 * kick
        # Hi-hat on the off-beat: high-passed noise burst, slightly to the right.
        off = start + beat // 2
        m = min(beat // 4, length - off)
        if m > 0:
            noise = np.diff(rng.standard_normal(m + 1)) * _envelope(m, rate, 0.001, 0.03)
            left[off : off + m] += 0.12 * noise
            right[off : off + m] += 0.2 * noise
        # Bass: a saw per beat.
        bass = _saw(midi_to_hz(BASS_LINE[b % 4]), n, rate, harmonics=12) * _envelope(n, rate, 0.005, 0.25)
        left[start : start + n] += 0.35 * bass
        right[start : start + n] += 0.35 * bass
    for bar in range(bars):
        start = bar * 4 * beat
        n = min(4 * beat, length - start)
        pad = sum(_saw(midi_to_hz(note), n, rate) for note in CHORDS[bar % 4]) * _envelope(n, rate, 0.3, 2.5)
        left[start : start + n] += 0.12 * pad
        right[start : start + n] += 0.10 * pad
    stereo = np.stack([left, right], axis=1)
    stereo *= 0.5 / np.max(np.abs(stereo))
    return stereo.astype(np.float32)
