"""Weak valence/arousal labels computed from the score — there is no emotion-annotated music offline.

Each label is a fixed formula of musical cues that the music-psychology literature links to perceived emotion
(Gabrielsson & Lindström 2010; Eerola et al. 2013): mode and chord qualities for valence, tempo, note density,
loudness and articulation for arousal. The constants are fixed (not fitted to the data), so a piece's labels do not
depend on which other pieces are loaded. They are heuristics: they say what a listener *might* report for the
surface features, not what anyone did report. See realtime/nets/TRAINING.md.

valence = tanh(1.2 * mode + 0.8 * harmony + 0.3 * register + 0.3 * tempo)
arousal = tanh(1.0 * density + 0.6 * tempo + 0.5 * loudness + 0.3 * articulation)

mode      +1 major / -1 minor (music21 Krumhansl-Schmuckler key), times the key's correlation coefficient
harmony   (major-type chords - minor/diminished-type chords) / labelled chords in the window; 0 without harmony
register  (mean pitch of the top voice - 67) / 12, clipped to [-1, 1]
tempo     log2(running notes per second / 3), clipped to [-1, 1]
density   log2(distinct onsets per second / 3), clipped to [-1.5, 1.5]
loudness  (mean MIDI velocity - 80) / 40
articulation  fraction of notes marked staccato or accented minus half the fraction slurred
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import idaw_core
from realtime.nets.audio_features import note_velocities
from realtime.nets.chords import QUALITY_INDEX
from realtime.nets.corpus import ACCENT, SLUR, STACCATO, SymbolicPiece
from realtime.nets.grids import beat_grid, onset_counts

MAJOR_TYPE = {QUALITY_INDEX[q] for q in ("major", "dominant7", "major7", "augmented", "suspended")}
MINOR_TYPE = {QUALITY_INDEX[q] for q in ("minor", "minor7", "diminished", "half-diminished7", "diminished7")}
WINDOW_BEATS = 4  # local labels look this many beats either side
LABEL_DIMS = 12
"""Emotion dims the labels supervise: 0-11 (valence .. the Plutchik intensities); 12-63 are latent."""


@dataclass(frozen=True)
class WeakLabels:
    """Piece-level labels in [-1, 1] and the cue values they were computed from."""

    valence: float
    arousal: float
    cues: dict[str, float]


def _harmony(chords: npt.NDArray[np.int16]) -> float:
    q = chords[:, 1] if len(chords) else np.zeros(0, dtype=np.int16)
    labelled = int(np.sum(q >= 0))
    if labelled == 0:
        return 0.0
    major = sum(int(np.sum(q == i)) for i in MAJOR_TYPE)
    minor = sum(int(np.sum(q == i)) for i in MINOR_TYPE)
    return (major - minor) / labelled


def _combine(cues: dict[str, float]) -> tuple[float, float]:
    valence = np.tanh(1.2 * cues["mode"] + 0.8 * cues["harmony"] + 0.3 * cues["register"] + 0.3 * cues["tempo"])
    arousal = np.tanh(1.0 * cues["density"] + 0.6 * cues["tempo"] + 0.5 * cues["loudness"] + 0.3 * cues["articulation"])
    return float(valence), float(arousal)


def _mode(piece: SymbolicPiece) -> float:
    sign = 1.0 if piece.meta["key_mode"] == "major" else -1.0
    return sign * float(np.clip(piece.meta["key_confidence"], 0.0, 1.0))


def _tempo(piece: SymbolicPiece) -> float:
    return float(np.clip(np.log2(float(piece.meta["running_rate"]) / 3.0), -1.0, 1.0))


def _register(pitches: npt.NDArray[np.float32]) -> float:
    return float(np.clip((float(np.mean(pitches)) - 67.0) / 12.0, -1.0, 1.0)) if len(pitches) else 0.0


def _articulation(flags: npt.NDArray[np.int64]) -> float:
    if len(flags) == 0:
        return 0.0
    sharp = np.mean((flags & (STACCATO | ACCENT)) > 0)
    slurred = np.mean((flags & SLUR) > 0)
    return float(sharp - 0.5 * slurred)


def _density(onsets: float, seconds: float) -> float:
    rate = onsets / max(seconds, 1e-3)
    return float(np.clip(np.log2(max(rate, 1e-3) / 3.0), -1.5, 1.5))


def piece_labels(piece: SymbolicPiece) -> WeakLabels:
    """The piece's weak (valence, arousal) and the cues, each as documented in the module docstring."""
    notes = piece.notes
    top = notes[notes[:, 4] == 0]
    cues = {
        "mode": _mode(piece),
        "harmony": _harmony(piece.chords),
        "register": _register(top[:, 2]),
        "tempo": _tempo(piece),
        "density": _density(float(len(np.unique(np.round(notes[:, 0], 4)))), piece.seconds),
        "loudness": float((np.mean(note_velocities(piece)) - 80.0) / 40.0) if len(notes) else 0.0,
        "articulation": _articulation(notes[:, 5].astype(np.int64)),
    }
    valence, arousal = _combine(cues)
    return WeakLabels(valence, arousal, cues)


def emotion_dims(valence: float, arousal: float, cues: dict[str, float]) -> npt.NDArray[np.float32]:
    """float32 (12,): emotion-embedding dims 0-11 (architectures.EMOTION) from the weak labels.

    0 valence, 1 arousal (as above); 2 dominance = tanh(0.7 loudness - 0.6 register + 0.4 density + 0.3 articulation
    + 0.3 mode); 3 intensity = 2 * min(1, |(valence, arousal)| / sqrt 2) - 1; 4-11 Plutchik intensities p as 2p - 1,
    p = exp(-d^2 / (2 * 0.35^2)) with d the distance from (valence, arousal) to each emotion's prototype point.
    Dims 0-1 and 3-11 are the C++ core's map (idaw_core.emotion_from_valence_arousal, idaw/emotion_map.h), which the
    plugin and the Python host feed the nets at run time. Dims 2-11 carry no information beyond the cues and
    (valence, arousal).
    """
    dominance = np.tanh(
        0.7 * cues["loudness"]
        - 0.6 * cues["register"]
        + 0.4 * cues["density"]
        + 0.3 * cues["articulation"]
        + 0.3 * cues["mode"]
    )
    out = idaw_core.emotion_from_valence_arousal(valence, arousal)[:LABEL_DIMS].copy()
    out[2] = dominance  # architectures.EMOTION["dominance"]; the core leaves it 0
    return out


def beat_labels(piece: SymbolicPiece) -> npt.NDArray[np.float32]:
    """float32 (n_beats, 12): `emotion_dims` per beat of `grids.beat_grid`, from the same formulas applied to a
    window of WINDOW_BEATS beats either side (mode and tempo stay piece-level; harmony, register, density, loudness
    and articulation are local)."""
    beat, start, n = beat_grid(piece)
    out = np.zeros((n, LABEL_DIMS), dtype=np.float32)
    if n == 0:
        return out
    counts = onset_counts(piece, beat, start, n)
    notes, vel = piece.notes, note_velocities(piece)
    index = np.clip(np.floor((notes[:, 0] - start) / beat).astype(np.int64), 0, n - 1)
    chords = piece.chords if len(piece.chords) == n else np.full((n, 3), -1, dtype=np.int16)
    base = {"mode": _mode(piece), "tempo": _tempo(piece)}
    seconds_per_beat = beat * piece.seconds_per_ql
    for b in range(n):
        lo, hi = max(0, b - WINDOW_BEATS), min(n, b + WINDOW_BEATS + 1)
        mask = (index >= lo) & (index < hi)
        top = mask & (notes[:, 4] == 0)
        cues = {
            **base,
            "harmony": _harmony(chords[lo:hi]),
            "register": _register(notes[top, 2]),
            "density": _density(float(counts[lo:hi].sum()), (hi - lo) * seconds_per_beat),
            "loudness": float((np.mean(vel[mask]) - 80.0) / 40.0) if mask.any() else 0.0,
            "articulation": _articulation(notes[mask, 5].astype(np.int64)),
        }
        out[b] = emotion_dims(*_combine(cues), cues)
    return out
