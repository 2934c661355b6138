"""DynamicsEngine targets: 16 expression parameters per beat from the score, via a rule-based performance model.

Corpus scores carry almost no performance data (velocities are flat, timing is quantised, few dynamics marks), so
each target is what a small set of published performance rules (KTH rule system: phrase arch, high-loud, metric
accent, duration contrast, melodic lead, punctuation at fermatas; Friberg et al. 2006) plus the score's own markings
(dynamics, accents, staccato/tenuto, slurs, fermatas, ornaments) say a player would do, encoded with the README's
decoding formulas inverted. The net learns to reproduce these rules from its compact context; it cannot learn
anything the rules do not encode. Parameters with no evidence in a quantised score are masked (NaN targets, no
loss), as realtime/nets/README.md asks: see MASKED.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from realtime.nets.audio_features import note_velocities
from realtime.nets.corpus import ACCENT, FERMATA, ORNAMENT, SLUR, STACCATO, TENUTO, SymbolicPiece
from realtime.nets.dimensions import EXPRESSION_PARAMS
from realtime.nets.grids import metric_weight

F32 = npt.NDArray[np.float32]
PARAMS = EXPRESSION_PARAMS
#: Parameters never trained (targets NaN): no evidence in a quantised score (timing, rubato, vibrato, chord roll)
#: or no markings anywhere in the corpus (pedal). melody_prominence is also masked for one-voice pieces.
MASKED = ("timing_offset", "timing_jitter", "rubato", "sustain_pedal", "chord_roll", "vibrato_depth")
_MASKED_INDEX = [PARAMS.index(name) for name in MASKED]


def _phrase_progress(phrase_pos: npt.NDArray[np.int64], beat_in_bar: npt.NDArray[np.int64], per_bar: int) -> F32:
    return np.asarray(np.clip((phrase_pos * per_bar + beat_in_bar) / max(4 * per_bar - 1, 1), 0, 1), dtype=np.float32)


def note_performance(piece: SymbolicPiece, progress_of_note: F32) -> tuple[F32, F32]:
    """(velocity 1-127, duration ratio 0-1) per note from the rules (markings first, then defaults)."""
    notes = piece.notes
    flags = notes[:, 5].astype(np.int64)
    vel = note_velocities(piece).copy()
    vel += 10.0 * metric_weight(piece, notes[:, 0]) - 5.0  # metric accent
    vel += np.where(flags & ACCENT, 15.0, 0.0)
    vel += 10.0 * np.sin(np.pi * progress_of_note) - 5.0  # phrase arch: louder mid-phrase
    vel += np.where(notes[:, 4] == 0, 0.4 * (notes[:, 2] - 67.0), 0.0)  # high-loud (melody)
    if int(piece.meta["n_parts"]) > 1:
        vel += np.where(notes[:, 4] == 0, 8.0, 0.0)  # melody lead
    seconds = notes[:, 1] * piece.seconds_per_ql
    ratio = np.where(seconds < 0.2, 0.8, 0.9)  # duration contrast: short notes detached more
    ratio = np.where(flags & SLUR, 1.0, ratio)
    ratio = np.where(flags & (TENUTO | FERMATA), 1.0, ratio)
    ratio = np.where(flags & STACCATO, 0.45, ratio)
    return np.clip(vel, 1, 127).astype(np.float32), ratio.astype(np.float32)


def expression_targets(
    piece: SymbolicPiece,
    beat_ql: npt.NDArray[np.float64],
    beat: float,
    metric: F32,
    phrase: npt.NDArray[np.int64],
    bar_start: float,
) -> F32:
    """float32 (n_beats, 16): targets in [0, 1] (columns in PARAMS order) for the notes starting in each beat, NaN
    where masked. Each is the README decoding inverted, applied to the rule performance (`note_performance`):

    velocity_mean = (mean velocity - 1) / 126; velocity_spread = std / 24; downbeat_accent = on-beat accent / 32,
    the accent being 10 * (metric weight - 0.25) plus 15 * the fraction of on-beat notes marked with an accent;
    offbeat_accent = (15 * fraction accented + 8 * fraction syncopated) of the off-beat notes / 32; crescendo =
    0.5 + velocity change to the next beat / 32 (phrase arch and dynamics marks); articulation = mean sounding/written
    ratio - 0.1; articulation_spread = its std / 0.25; melody_prominence = 0.5 + (melody - accompaniment velocity)
    / 48 (NaN for one-voice pieces); ornament_probability = fraction of notes with an ornament mark;
    phrase_end_ritardando = 1 on a beat holding a fermata, 0.5 on the last beat of a phrase's fourth bar, else 0.
    Beats without onsets keep velocity_mean from the previous beat and mask the note-dependent columns.
    """
    bar = float(piece.meta["bar_ql"])
    per_bar = max(1, round(bar / beat))
    notes = piece.notes
    n = len(beat_ql)
    out = np.full((n, 16), np.nan, dtype=np.float32)
    if n == 0:
        return out
    beat_index = np.clip(np.floor((notes[:, 0] - beat_ql[0]) / beat + 1e-6).astype(np.int64), 0, n - 1)
    bar_index = np.clip(((beat_ql - bar_start + 1e-6) // bar).astype(np.int64), 0, len(phrase) - 1)
    in_bar = np.clip(np.round((beat_ql - (bar_start + bar_index * bar)) / beat).astype(np.int64), 0, per_bar - 1)
    progress = _phrase_progress(phrase[bar_index], in_bar, per_bar)
    vel, ratio = note_performance(piece, progress[beat_index])
    flags = notes[:, 5].astype(np.int64)
    frac = ((notes[:, 0] - beat_ql[0]) / beat) % 1.0
    on_beat = np.isclose(frac, 0.0, atol=1e-3) | np.isclose(frac, 1.0, atol=1e-3)
    syncopated = ~on_beat & ((notes[:, 0] + notes[:, 1]) > beat_ql[beat_index] + beat + 1e-6)
    accented = (flags & ACCENT) > 0
    beat_weight = metric_weight(piece, beat_ql.astype(np.float32))
    n_parts = int(piece.meta["n_parts"])
    marked = note_velocities(piece)
    beat_vel = np.full(n, np.nan)
    arch = np.full(n, np.nan)  # dynamics marking + phrase arch only (metric and accents are their own params)
    for i in range(n):
        m = beat_index == i
        if m.any():
            beat_vel[i] = float(np.mean(vel[m]))
            arch[i] = float(np.mean(marked[m])) + 10.0 * np.sin(np.pi * progress[i]) - 5.0
    for i in range(n):
        m = beat_index == i
        col = out[i]
        fermata = bool(np.any(flags[m] & FERMATA))
        last_beat = phrase[bar_index[i]] == 3 and in_bar[i] == per_bar - 1
        col[15] = 1.0 if fermata else (0.5 if last_beat else 0.0)
        if not m.any():
            prev = out[i - 1, 0] if i else np.nan
            col[0] = prev
            continue
        col[0] = (beat_vel[i] - 1.0) / 126.0
        col[1] = float(np.std(vel[m])) / 24.0
        on, off = m & on_beat, m & ~on_beat
        col[2] = (10.0 * (beat_weight[i] - 0.25) + 15.0 * float(np.mean(accented[on]))) / 32.0 if on.any() else 0.0
        col[3] = (
            (15.0 * float(np.mean(accented[off])) + 8.0 * float(np.mean(syncopated[off]))) / 32.0
            if (off.any())
            else 0.0
        )
        nxt = arch[i + 1] if i + 1 < n and not np.isnan(arch[i + 1]) else arch[i]
        col[4] = 0.5 + (nxt - arch[i]) / 32.0
        col[5] = float(np.mean(ratio[m])) - 0.1
        col[6] = float(np.std(ratio[m])) / 0.25
        melody, accomp = m & (notes[:, 4] == 0), m & (notes[:, 4] != 0)
        if n_parts > 1 and melody.any() and accomp.any():
            col[11] = 0.5 + (float(np.mean(vel[melody])) - float(np.mean(vel[accomp]))) / 48.0
        col[13] = float(np.mean((flags[m] & ORNAMENT) > 0))
    out[:, _MASKED_INDEX] = np.nan
    return np.where(np.isnan(out), np.nan, np.clip(out, 0.0, 1.0)).astype(np.float32)
