"""Keys and chords decoded together, beat by beat: the most likely path of (key, chord) through a piece.

Each beat's notes say which chords fit (idaw.theory.harmony's chord scores, key-blind) and which keys
(music21's key profiles); the learned progressions (idaw.theory.progressions) say which chord follows which in a
key and how rarely keys change. The Viterbi path over 24 keys × 108 chords weighs both, so a chord is read in the
key its neighbours imply (a D major triad is V in G but II in C), and a key change is placed where the harmony
turns, not where a window of notes happens to tip. Hand-written: music21 has no such decoder.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from idaw.theory import harmony
from idaw.theory.keys import KeyLabel, key_correlations, key_distance, key_profiles
from idaw.theory.notes import Notes
from idaw.theory.progressions import QUALITIES, STATES, ProgressionModel, state_index

_DISTANCES = np.array([[key_distance(a, b) for b in range(24)] for a in range(24)], dtype=np.float64)


@dataclass(frozen=True)
class DecodeSettings:
    """Weights of the decoder's evidence (chosen on the Bach chorale analyses, with the progressions counted on
    the other chorales each time: see idaw.theory.evaluate)."""

    chord_weight: float = 4.0
    """How sharply a beat's notes pick its chord (multiplies the chord scores)."""
    key_weight: float = 7.0
    """How much the key profile of the notes around a beat counts (multiplies the correlation)."""
    key_half_window_beats: float = 3.0
    distance_cost: float = 0.0
    """Extra cost per step of key distance on a change (log units), on top of the learned moves."""
    learned_move_weight: float = 2.0
    """Weight of the learned log probability of where a key change goes (relative, dominant, ...)."""
    tonic_at_phrase_end: float = 2.0
    """Bonus (log units) for the tonic triad of the key at a phrase end: phrases close in the key they are in."""
    dominant_at_phrase_end: float = 1.0
    """Bonus for the key's V at a phrase end (a half cadence)."""


def _key_evidence(notes: Notes, beats: Sequence[float], settings: DecodeSettings) -> npt.NDArray[np.float64]:
    profiles = key_profiles()
    width = settings.key_half_window_beats * notes.beat_length
    evidence = np.zeros((len(beats), 24))
    for i, time in enumerate(beats):
        weights = np.zeros(12)
        for note in notes.sounding(time - width, time + width):
            lo, hi = max(note.offset, time - width), min(note.end, time + width)
            weights[note.pitch % 12] += (hi - lo) * max(0.0, 1.0 - abs(0.5 * (lo + hi) - time) / width)
        evidence[i] = key_correlations(weights, profiles)
    return evidence


def _chord_evidence(notes: Notes, beats: Sequence[float]) -> tuple[npt.NDArray[np.float64], list[int | None]]:
    """T × 12 roots × qualities (key-blind chord scores) and each beat's bass."""
    ends = [*beats[1:], max(notes.duration, beats[-1] + notes.beat_length)]
    scores = np.zeros((len(beats), 12, len(QUALITIES)))
    basses: list[int | None] = []
    for i, (start, end) in enumerate(zip(beats, ends, strict=True)):
        weights, bass = harmony.beat_weights(notes, start, end)
        basses.append(bass)
        if weights.sum() <= 0:
            continue  # silence: every chord equally likely, the progression decides
        scores[i] = harmony.chord_scores(weights, bass, None)
    return scores, basses


def onset_segments(notes: Notes, beats: Sequence[float]) -> list[list[int]]:
    """Beats grouped into decoding steps: a beat where no note starts (everything held) joins the step before,
    so a chord held for a bar is one chord, not four repeats of it (the progressions were counted on chorales,
    which strike a chord on nearly every beat)."""
    onsets = sorted({n.offset for n in notes.events})
    segments: list[list[int]] = []
    for i, beat in enumerate(beats):
        end = beats[i + 1] if i + 1 < len(beats) else beat + notes.beat_length
        first = bisect.bisect_left(onsets, beat - 1e-9)
        struck = first < len(onsets) and onsets[first] < end - 1e-9
        if segments and not struck:
            segments[-1].append(i)
        else:
            segments.append([i])
    return segments


@dataclass(frozen=True)
class BeatEvidence:
    """What the decoder reads at each beat: chord scores (beats × 12 roots × qualities, key-blind, higher is
    better), key evidence (beats × 24 keys: correlations with the key profiles around the beat), the bass pitch
    (or pitch class) of each beat, and the decoding steps (beats grouped where nothing new is struck)."""

    chord_scores: npt.NDArray[np.float64]
    key_evidence: npt.NDArray[np.float64]
    basses: list[int | None]
    segments: list[list[int]]


def evidence_from_notes(notes: Notes, beats: Sequence[float], settings: DecodeSettings) -> BeatEvidence:
    """The decoder's evidence read from a score's notes."""
    chord_scores, basses = _chord_evidence(notes, beats)
    return BeatEvidence(chord_scores, _key_evidence(notes, beats, settings), basses, onset_segments(notes, beats))


class _Lattice:
    """The decoder's lattice for one piece: its steps (beats grouped by `onset_segments`), the score of every
    (key, chord) state at each step (`emission`), and the learned moves between states (`within`: chord to chord
    in a key, 24 × STATES × STATES; `starts`: the first chord in a key, 24 × STATES)."""

    def __init__(
        self,
        notes: Notes,
        beats: Sequence[float],
        model: ProgressionModel,
        settings: DecodeSettings,
        phrase_ends: Sequence[float],
        evidence: BeatEvidence | None,
    ) -> None:
        if evidence is None:
            evidence = evidence_from_notes(notes, beats, settings)
        self.evidence = evidence
        self.segments = evidence.segments
        self._beats = beats
        self._settings = settings
        self._phrase_ends = phrase_ends
        self._half_beat = 0.5 * notes.beat_length
        degrees = np.arange(12)
        self._roots_of_key = [(key % 12 + degrees) % 12 for key in range(24)]
        modes = np.array([key >= 12 for key in range(24)], dtype=np.int64)
        self.within = model.transitions[modes]
        self.starts = model.starts[modes]

    def emission(self, step: int) -> npt.NDArray[np.float64]:
        """Score of each (key, chord) state for one step: its beats' chord scores of the root that the chord's
        degree names in the key summed over its beats (a held chord weighs as much as the same chord struck on
        each beat; only the progression sees it once), plus the key's profile evidence around them (its mean:
        the window already spans the neighbouring beats). At a step that holds a phrase end the key's tonic triad
        (or its V) is favoured."""
        segment, settings = self.segments[step], self._settings
        chords = self.evidence.chord_scores[segment].sum(axis=0)
        keys = self.evidence.key_evidence[segment].mean(axis=0)
        result = np.empty((24, STATES))
        for key in range(24):
            result[key] = settings.chord_weight * chords[self._roots_of_key[key]].reshape(STATES)
            result[key] += settings.key_weight * keys[key]
        if any(abs(self._beats[i] - end) < self._half_beat for i in segment for end in self._phrase_ends):
            result[:12, _TONIC_MAJOR] += settings.tonic_at_phrase_end
            result[12:, _TONIC_MINOR] += settings.tonic_at_phrase_end
            result[12:, _TONIC_MAJOR] += settings.tonic_at_phrase_end  # a Picardy third
            result[:, _DOMINANT] += settings.dominant_at_phrase_end
        return result

    def stay(self, score: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        """One step without a key change: the best score of each (key, chord) state reached from `score` within
        its key, and the chord it came from (both 24 × STATES)."""
        moves = score[:, :, None] + self.within  # key × from × to
        came_from = np.argmax(moves, axis=1)
        return np.take_along_axis(moves, came_from[:, None, :], axis=1)[:, 0, :], came_from


_TONIC_MAJOR, _TONIC_MINOR = state_index(0, "major"), state_index(0, "minor")
_DOMINANT = state_index(7, "major")


def decode(
    notes: Notes,
    beats: Sequence[float],
    model: ProgressionModel,
    settings: DecodeSettings = DecodeSettings(),
    phrase_ends: Sequence[float] = (),
    evidence: BeatEvidence | None = None,
) -> tuple[list[KeyLabel], list[tuple[int, str, int | None]]]:
    """The key and chord of each beat: ([KeyLabel], [(root, quality, bass pitch)]). Beats where nothing is struck
    share the step before (`onset_segments`); at a step that holds a phrase end the key's tonic triad (or its V)
    is favoured. `evidence` replaces what is read from the notes (a recording's: idaw.listen)."""
    if not beats:
        return [], []
    lattice = _Lattice(notes, beats, model, settings, phrase_ends, evidence)
    change_cost = (
        -model.log_change
        + settings.distance_cost * _DISTANCES
        - settings.learned_move_weight * np.where(np.isfinite(model.key_moves), model.key_moves, 0.0)
    )
    np.fill_diagonal(change_cost, np.inf)

    steps = len(lattice.segments)
    score = lattice.starts + lattice.emission(0)
    # Back pointers are small integers: 3 bytes a state a step (idaw.theory.analysis bounds the beats).
    back_key = np.zeros((steps, 24, STATES), dtype=np.int8)
    back_state = np.zeros((steps, 24, STATES), dtype=np.int16)
    keys_index = np.arange(24)[:, None]
    for t in range(1, steps):
        stay_best, stay_from = lattice.stay(score)
        best_in_key = score.max(axis=1)
        best_state_in_key = score.argmax(axis=1)
        moved = best_in_key[:, None] - change_cost  # from key × to key
        move_from = np.argmax(moved, axis=0)  # to key
        move_best = moved[move_from, np.arange(24)][:, None] + lattice.starts  # to key × to state
        take_move = move_best > stay_best
        back_key[t] = np.where(take_move, move_from[:, None], keys_index)
        back_state[t] = np.where(take_move, best_state_in_key[move_from][:, None], stay_from)
        score = np.where(take_move, move_best, stay_best) + lattice.emission(t)

    key, state = np.unravel_index(int(np.argmax(score)), score.shape)
    path = [(int(key), int(state))]
    for t in range(steps - 1, 0, -1):
        key, state = back_key[t, key, state], back_state[t, key, state]
        path.append((int(key), int(state)))
    path.reverse()
    basses = lattice.evidence.basses
    keys: list[KeyLabel] = []
    chords: list[tuple[int, str, int | None]] = []
    for segment, (k, s) in zip(lattice.segments, path, strict=True):
        for _i in segment:
            keys.append(KeyLabel.from_index(k))
            chords.append(((k % 12 + s // len(QUALITIES)) % 12, QUALITIES[s % len(QUALITIES)], basses[segment[0]]))
    return keys, chords


def single_key_scores(
    notes: Notes,
    beats: Sequence[float],
    model: ProgressionModel,
    settings: DecodeSettings = DecodeSettings(),
    phrase_ends: Sequence[float] = (),
    evidence: BeatEvidence | None = None,
) -> npt.NDArray[np.float64]:
    """For each of the 24 keys (KeyLabel.index order), the score of the best path of chords through the whole
    piece held in that one key: how well the key explains all of its harmony, progressions and cadences included.
    The best of them is the piece's home key (idaw.theory.analysis.home_key).

    Each path's score is raised by its mode's entropy rate per step (`ProgressionModel.entropy_rates`): the
    learned minor progressions are more varied than the major ones, so every step of a path costs more in minor
    for that alone, and a piece in the natural minor (i–VII–VI–VII) would be heard in its relative major."""
    if not beats:
        return np.zeros(24)
    lattice = _Lattice(notes, beats, model, settings, phrase_ends, evidence)
    score = lattice.starts + lattice.emission(0)
    for t in range(1, len(lattice.segments)):
        score = lattice.stay(score)[0] + lattice.emission(t)
    rates = model.entropy_rates()
    best: npt.NDArray[np.float64] = score.max(axis=1) + len(lattice.segments) * np.repeat(rates, 12)
    return best


def label_piece(
    notes: Notes,
    beats: Sequence[float],
    model: ProgressionModel,
    settings: DecodeSettings = DecodeSettings(),
    phrase_ends: Sequence[float] = (),
    evidence: BeatEvidence | None = None,
) -> tuple[list[KeyLabel], list[harmony.ChordLabel]]:
    """Keys and figured chord labels for each beat (the spans between consecutive beats); `evidence` as for
    `decode`."""
    keys, chords = decode(notes, beats, model, settings, phrase_ends, evidence)
    ends = [*beats[1:], max(notes.duration, beats[-1] + notes.beat_length)] if beats else []
    labels = [
        harmony.figured(
            harmony.ChordLabel(start, end - start, root, quality, harmony.inversion_of(root, quality, bass), key)
        )
        for start, end, key, (root, quality, bass) in zip(beats, ends, keys, chords, strict=True)
    ]
    return keys, labels
