"""A SymbolicPiece on regular time grids: which notes sound / start in each beat or sixteenth, and metric position."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from realtime.nets.corpus import SymbolicPiece

SIXTEENTH = 0.25  # quarter notes


def beat_grid(piece: SymbolicPiece) -> tuple[float, float, int]:
    """(beat length in quarter notes, offset of beat 0's start (<= 0), number of beats covering the piece)."""
    beat = float(piece.meta["beat_ql"])
    start = -(float(piece.meta["pickup_ql"]) % beat)
    n = int(np.ceil((float(piece.meta["length_ql"]) - start) / beat - 1e-9))
    return beat, start, max(n, 0)


def window_roll(
    piece: SymbolicPiece, step: float, start: float, n_steps: int, onsets_only: bool = False
) -> npt.NDArray[np.bool_]:
    """bool (n_steps, 128) piano roll over steps [start + i * step, start + (i + 1) * step).

    Pitch p is True in step i when a note of pitch p covers more than half of the step (the README's definition
    of "sounds during the step"), or, with onsets_only, when a note starts in the step.
    """
    roll = np.zeros((n_steps, 128), dtype=bool)
    for onset, dur, pitch, *_ in piece.notes:
        a, b = (onset - start) / step, (onset + dur - start) / step
        if onsets_only:
            i = int(np.floor(a + 1e-6))
            if 0 <= i < n_steps:
                roll[i, int(pitch)] = True
            continue
        for i in range(max(int(np.floor(a)), 0), min(int(np.ceil(b)), n_steps)):
            if min(b, i + 1) - max(a, i) > 0.5 + 1e-6:
                roll[i, int(pitch)] = True
    return roll


def onset_counts(piece: SymbolicPiece, step: float, start: float, n_steps: int) -> npt.NDArray[np.float32]:
    """float32 (n_steps,): distinct onset times (chords count once) starting in each step."""
    counts = np.zeros(n_steps, dtype=np.float32)
    for onset in np.unique(np.round(piece.notes[:, 0], 4)):
        i = int(np.floor((onset - start) / step + 1e-6))
        if 0 <= i < n_steps:
            counts[i] += 1
    return counts


def sixteenth_onsets(piece: SymbolicPiece) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int]:
    """(onset strength per sixteenth (S,), exact-position residual per sixteenth in sixteenths (S,), sixteenths/bar).

    Sixteenth 0 is the start of the first full bar's grid (the pickup is shifted so bars line up). Strength is 1 for
    an onset, 0 for none; the residual is how far the notated onset lies from the grid point (triplets: +-1/3),
    which is the only "micro-timing" quantised scores have.
    """
    bar = float(piece.meta["bar_ql"])
    start = -(float(piece.meta["pickup_ql"]) % bar)
    n = int(np.ceil((float(piece.meta["length_ql"]) - start) / SIXTEENTH))
    strength = np.zeros(n, dtype=np.float32)
    residual = np.zeros(n, dtype=np.float32)
    for onset in np.unique(np.round(piece.notes[:, 0], 4)):
        pos = (onset - start) / SIXTEENTH
        i = int(np.round(pos))
        if 0 <= i < n:
            strength[i] = 1.0
            residual[i] = float(pos - i)
    return strength, residual, max(1, round(bar / SIXTEENTH))


def metric_weight(piece: SymbolicPiece, offsets: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """float32 in [0, 1] per offset: 1 on the downbeat, 0.75 on other beats of a compound/simple bar's strong half,
    0.5 on other beats, 0.25 on off-beat eighths, 0 on finer subdivisions (a Lerdahl-Jackendoff-style metric grid)."""
    bar, beat = float(piece.meta["bar_ql"]), float(piece.meta["beat_ql"])
    pos = (offsets + float(piece.meta["pickup_ql"])) % bar
    out = np.zeros(len(offsets), dtype=np.float32)
    on_beat = np.isclose(pos / beat, np.round(pos / beat), atol=1e-3)
    half = bar / 2 if round(bar / beat) % 2 == 0 else bar
    out[np.isclose(pos / (beat / 2), np.round(pos / (beat / 2)), atol=1e-3)] = 0.25
    out[on_beat] = 0.5
    out[on_beat & np.isclose(pos % half, 0, atol=1e-3)] = 0.75
    out[np.isclose(pos, 0, atol=1e-3) | np.isclose(pos, bar, atol=1e-3)] = 1.0
    return out
