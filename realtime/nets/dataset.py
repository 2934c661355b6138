"""Per-piece training tables for the five nets, on each net's own time step (architectures module docstring).

Everything except the emotion embedding is computed here from the score; the embedding (64) is filled in later by
`chain.emotion_at` either from the trained EmotionRecognizer run over the piece's audio ("audio" mode) or from the
weak labels with the latent dims zeroed ("direct" mode, like text/biometric input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from realtime.nets.audio_features import frame_end_seconds
from realtime.nets.chords import to_class
from realtime.nets.corpus import FERMATA, SymbolicPiece
from realtime.nets.expression import expression_targets
from realtime.nets.grids import SIXTEENTH, beat_grid, metric_weight, sixteenth_onsets, window_roll
from realtime.nets.labels import beat_labels

F32 = npt.NDArray[np.float32]
AUX_SIZE = 26  # ER training-only head: melody pitch class (12), chroma (12), melody register, recent onset
GROOVE_SWING = {"hornpipe": 0.4, "clog": 0.4, "strathspey": 0.2}  # off-beat eighth delay, sixteenths (convention)


@dataclass
class PieceTables:
    """Inputs (minus the emotion embedding) and targets of one piece; times are seconds from the piece start.

    frame_emotion (F, 12) weak targets for embedding dims 0-11 per mel frame; frame_aux (F, AUX_SIZE).
    step_* : one row per sixteenth (MelodyTransformer); melody (S, 128) uint8 piano roll of the top voice.
    bar_* : one row per bar (HarmonyPredictor); harmony_rest (B, 64) = context dims 64-127; harmony_target (B,)
        chord class, -1 where the piece has no harmony (monophonic sources).
    beat_* : one row per beat (DynamicsEngine); dynamics_rest (D, 20) = context dims 12-31; dynamics_target (D, 16).
    groove_* : one row per 4/4 bar (GroovePredictor); groove_onset (G, 16) in {0, 1}; groove_timing (G, 16) micro
        timing in sixteenths (0 where no onset).
    *_emotion : weak emotion dims 0-11 at each row's time (for "direct" mode).
    """

    pid: str
    group: str
    source: str
    mel: F32
    frame_emotion: F32
    frame_aux: F32
    step_times: npt.NDArray[np.float64]
    melody: npt.NDArray[np.uint8]
    step_emotion: F32
    bar_times: npt.NDArray[np.float64]
    harmony_rest: F32
    harmony_target: npt.NDArray[np.int64]
    bar_emotion: F32
    beat_times: npt.NDArray[np.float64]
    dynamics_rest: F32
    dynamics_target: F32
    beat_emotion: F32
    groove_times: npt.NDArray[np.float64]
    groove_onset: F32
    groove_timing: F32
    groove_emotion: F32


def _one_hot(index: int, size: int) -> F32:
    out = np.zeros(size, dtype=np.float32)
    if 0 <= index < size:
        out[index] = 1.0
    return out


def _pc_profile(notes: F32, lo: float, hi: float) -> F32:
    """Duration-weighted pitch-class profile of notes within [lo, hi), summing to 1 (zeros if silent)."""
    prof = np.zeros(12, dtype=np.float32)
    for onset, dur, pitch, *_ in notes:
        overlap = min(onset + dur, hi) - max(onset, lo)
        if overlap > 0:
            prof[int(pitch) % 12] += overlap
    total = prof.sum()
    return prof / total if total > 0 else prof


def bar_phrase_positions(piece: SymbolicPiece, n_bars: int, bar_start: float) -> npt.NDArray[np.int64]:
    """Bar position 0-3 in a 4-bar phrase. Fermatas in the top voice (chorales) end phrases; otherwise 4-bar phrases
    from the first full bar (a pickup bar counts as position 3)."""
    bar = float(piece.meta["bar_ql"])
    top = piece.notes[piece.notes[:, 4] == 0]
    ends = {int((o - bar_start) // bar) for o, *_r, f in top if int(f) & FERMATA}
    pos = np.zeros(n_bars, dtype=np.int64)
    first = 1 if bar_start < 0 else 0
    count = 3 if first else 0
    for b in range(n_bars):
        if b == first:
            count = 0
        pos[b] = count % 4
        count = 0 if b in ends else count + 1
    return pos


def _tempo_feature(piece: SymbolicPiece) -> float:
    return float(np.clip((float(piece.meta["tempo_qpm"]) - 120.0) / 60.0, -1.0, 1.0))


def _melody_stats(top: F32, lo: float, hi: float) -> tuple[float, float, float]:
    """(onsets / 16 clipped to 1, register feature, range feature) of the top voice in [lo, hi)."""
    inside = top[(top[:, 0] < hi) & (top[:, 0] + top[:, 1] > lo)]
    onsets = float(np.sum((top[:, 0] >= lo) & (top[:, 0] < hi)))
    if len(inside) == 0:
        return min(onsets / 16.0, 1.0), 0.0, 0.0
    register = float(np.clip((np.mean(inside[:, 2]) - 60.0) / 24.0, -1.0, 1.0))
    spread = float(np.clip((np.max(inside[:, 2]) - np.min(inside[:, 2])) / 24.0, 0.0, 1.0))
    return min(onsets / 16.0, 1.0), register, spread


def _bar_chords(piece: SymbolicPiece, n_bars: int, bar_start: float) -> tuple[npt.NDArray[np.int64], F32]:
    """(chord class of each bar, class of every beat). A bar's chord is the class with the highest summed beat
    weight, a beat weighing 1 + its metric weight, + 2 when it holds a fermata (the phrase's goal chord)."""
    beat, beat_start, n_beats = beat_grid(piece)
    classes = np.asarray([to_class(int(r), int(q)) for r, q, _ in piece.chords], dtype=np.int64)
    if len(classes) != n_beats:
        classes = np.full(n_beats, 60, dtype=np.int64)
    starts = beat_start + np.arange(n_beats) * beat
    weight = 1.0 + metric_weight(piece, starts.astype(np.float32)).astype(np.float64)
    fermata_notes = piece.notes[(piece.notes[:, 5].astype(np.int64) & FERMATA) > 0]
    for onset in fermata_notes[:, 0]:
        weight[int(np.clip((onset - beat_start) // beat, 0, n_beats - 1))] += 2.0 / max(1, len(fermata_notes))
    per_bar = np.full(n_bars, 60, dtype=np.int64)
    bar = float(piece.meta["bar_ql"])
    for b in range(n_bars):
        lo = max(round((bar_start + b * bar - beat_start) / beat), 0)
        hi = min(round((bar_start + (b + 1) * bar - beat_start) / beat), n_beats)
        scores: dict[int, float] = {}
        for i in range(lo, hi):
            scores[int(classes[i])] = scores.get(int(classes[i]), 0.0) + float(weight[i])
        if scores:
            per_bar[b] = max(scores, key=lambda c: scores[c])  # dict order = first occurrence wins ties
    return per_bar, classes.astype(np.float32)


def build_tables(piece: SymbolicPiece, mel: F32) -> PieceTables:
    """All training rows of one piece (see PieceTables)."""
    spq = piece.seconds_per_ql
    length = float(piece.meta["length_ql"])
    top = piece.notes[piece.notes[:, 4] == 0]
    beat_emotion_all = beat_labels(piece)
    beat, beat_start, n_beats = beat_grid(piece)

    def emotion_at(ql: npt.NDArray[np.float64]) -> F32:
        idx = np.clip(np.floor((ql - beat_start) / beat).astype(np.int64), 0, max(n_beats - 1, 0))
        return beat_emotion_all[idx] if n_beats else np.zeros((len(ql), 12), dtype=np.float32)

    # Frames: weak emotion and the auxiliary musical-state targets at the moment each frame ends.
    frame_ql = frame_end_seconds(len(mel)) / spq
    n_steps = int(np.ceil(length / SIXTEENTH))
    all_roll = window_roll(piece, SIXTEENTH, 0.0, n_steps)
    top_piece = SymbolicPiece(piece.ref, top, piece.dynamics, piece.chords, piece.meta)
    melody = window_roll(top_piece, SIXTEENTH, 0.0, n_steps)
    onsets = np.asarray(window_roll(piece, SIXTEENTH, 0.0, n_steps, onsets_only=True).any(axis=1), dtype=bool)
    step_of_frame = np.clip((frame_ql // SIXTEENTH).astype(np.int64), 0, max(n_steps - 1, 0))
    inside = frame_ql < length
    aux = np.zeros((len(mel), AUX_SIZE), dtype=np.float32)
    if n_steps:
        mel_roll = melody[step_of_frame] & inside[:, None]
        top_pitch = 127 - np.argmax(mel_roll[:, ::-1], axis=1)
        highest = np.asarray(np.where(mel_roll.any(axis=1), top_pitch, -1), dtype=np.int64)
        aux[np.arange(len(mel))[highest >= 0], (highest[highest >= 0] % 12)] = 1.0
        chroma = (all_roll[step_of_frame] & inside[:, None]).reshape(len(mel), -1)
        for pc in range(12):
            aux[:, 12 + pc] = chroma[:, pc::12].any(axis=1)
        aux[:, 24] = np.where(highest >= 0, np.clip((highest - 60.0) / 24.0, -1, 1), 0.0)
        aux[:, 25] = onsets[step_of_frame] & inside
    step_ql = (np.arange(n_steps) * SIXTEENTH).astype(np.float64)

    # Bars: harmony context dims 64-127 and the bar's chord.
    bar = float(piece.meta["bar_ql"])
    bar_start = -(float(piece.meta["pickup_ql"]) % bar)
    n_bars = int(np.ceil((length - bar_start) / bar - 1e-9))
    phrase = bar_phrase_positions(piece, n_bars, bar_start)
    bar_chord, beat_class = _bar_chords(piece, n_bars, bar_start)
    has_harmony = bool(np.any(piece.chords[:, 0] >= 0)) if len(piece.chords) else False
    rows = []
    for b in range(n_bars):
        lo, hi = bar_start + b * bar, bar_start + (b + 1) * bar
        prev = int(bar_chord[b - 1]) if b > 0 else 60
        density, register, _ = _melody_stats(top, lo, hi)
        rows.append(
            np.concatenate(
                [
                    _pc_profile(top, lo, hi),
                    _pc_profile(top, lo - bar, lo),
                    _one_hot(int(piece.meta["key_tonic"]), 12),
                    _one_hot(0 if piece.meta["key_mode"] == "major" else 1, 2),
                    _one_hot(prev % 12 if prev < 60 else -1, 12),
                    _one_hot(prev // 12 if prev < 60 else -1, 5),
                    [1.0 if prev >= 60 else 0.0],
                    _one_hot(int(phrase[b]), 4),
                    [_tempo_feature(piece), density, register, 1.0 if b == 0 else 0.0],
                ]
            )
        )
    bar_ql = (bar_start + np.arange(n_bars) * bar).astype(np.float64)

    # Beats: dynamics context dims 12-31 and expression targets.
    beats_per_bar = max(1, round(bar / beat))
    beat_ql = (beat_start + np.arange(n_beats) * beat).astype(np.float64)
    drows = []
    for i in range(n_beats):
        b = int(np.clip((beat_ql[i] - bar_start + 1e-6) // bar, 0, max(n_bars - 1, 0)))
        in_bar = round((beat_ql[i] - (bar_start + b * bar)) / beat)
        lo = bar_start + b * bar
        density, register, spread = _melody_stats(top, lo, lo + bar)
        cls = int(beat_class[i]) if len(beat_class) else 60
        quality = cls // 12 if cls < 60 else -1
        change = 1.0 if i > 0 and cls != int(beat_class[i - 1]) else 0.0
        progress = (phrase[b] * beats_per_bar + in_bar) / (4 * beats_per_bar - 1) if n_bars else 0.0
        drows.append(
            np.concatenate(
                [
                    _one_hot(min(in_bar, 3), 4),
                    _one_hot(int(phrase[b]) if n_bars else 0, 4),
                    [_tempo_feature(piece), density, register, spread],
                    _one_hot(quality, 5),
                    [1.0 if quality < 0 else 0.0, change, min(progress, 1.0)],
                ]
            )
        )

    # Groove: 4/4-length bars (2/4 bars are paired) of sixteenth onsets, with convention-based swing.
    strength, residual, _per_bar = sixteenth_onsets(piece)
    g_onset, g_timing, g_ql = [], [], []
    if bar in (2.0, 4.0) and float(piece.meta["beat_ql"]) in (1.0, 2.0):
        swing = GROOVE_SWING.get(str(piece.meta["tune_type"]), 0.0)
        for first in range(0, len(strength) - 15, 16):
            onset = strength[first : first + 16]
            timing = residual[first : first + 16].copy()
            if swing and np.all(strength[first : first + 16][1::2] == 0):  # even eighths notated: swing them
                timing[2::4] = np.where(onset[2::4] > 0, timing[2::4] + swing, 0.0)
            g_onset.append(onset)
            g_timing.append(np.clip(timing, -0.5, 0.5) * onset)
            g_ql.append(bar_start + first * SIXTEENTH)
    g_ql_arr = np.asarray(g_ql, dtype=np.float64)

    metric = metric_weight(piece, beat_ql.astype(np.float32))
    return PieceTables(
        pid=piece.ref.pid,
        group=str(piece.meta["group"]),
        source=piece.ref.source,
        mel=mel,
        frame_emotion=emotion_at(frame_ql),
        frame_aux=aux,
        step_times=step_ql * spq,
        melody=melody.astype(np.uint8),
        step_emotion=emotion_at(step_ql),
        bar_times=np.maximum(bar_ql, 0.0) * spq,
        harmony_rest=np.asarray(rows, dtype=np.float32).reshape(-1, 64),
        harmony_target=bar_chord if has_harmony else np.full(n_bars, -1, dtype=np.int64),
        bar_emotion=emotion_at(bar_ql),
        beat_times=np.maximum(beat_ql, 0.0) * spq,
        dynamics_rest=np.asarray(drows, dtype=np.float32).reshape(-1, 20),
        dynamics_target=expression_targets(piece, beat_ql, beat, metric, phrase, bar_start),
        beat_emotion=emotion_at(beat_ql),
        groove_times=np.maximum(g_ql_arr, 0.0) * spq,
        groove_onset=np.asarray(g_onset, dtype=np.float32).reshape(-1, 16),
        groove_timing=np.asarray(g_timing, dtype=np.float32).reshape(-1, 16),
        groove_emotion=emotion_at(g_ql_arr),
    )
