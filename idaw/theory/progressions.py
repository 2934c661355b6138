"""Functional progressions learned from human Roman-numeral analyses: how likely each chord follows another in a
key, how often the key changes, and which chord a new key starts on.

A chord in a key is a (degree, quality) pair: its root's distance above the tonic in semitones and one of
idaw.theory.harmony.CHORD_TYPES' qualities, 12 × 9 = 108 states per mode. The counts come from the 20 analyses of
Bach chorales in music21's corpus, read beat by beat (a chord held for two beats counts a repeat), so the model
describes the same grid the analyser decodes. The same tables give the generator its progressions (the theory
layer's "functional progressions learned from the corpus").

Hand-written: music21 reads the analyses (RomanText) and gives each numeral's key, root and pitches; the counting
and smoothing are here.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import music21
import numpy as np
import numpy.typing as npt

from idaw.theory.harmony import CHORD_TYPES, quality_name
from idaw.theory.keys import KeyLabel

QUALITIES = tuple(CHORD_TYPES)
STATES = 12 * len(QUALITIES)
"""Chords in a key: index = degree * len(QUALITIES) + quality index."""


def state_index(degree: int, quality: str) -> int:
    """The state of a chord `degree` semitones above the tonic with `quality` (a CHORD_TYPES name)."""
    return (degree % 12) * len(QUALITIES) + QUALITIES.index(quality)


def state_of(index: int) -> tuple[int, str]:
    """(degree, quality) of a state index."""
    return index // len(QUALITIES), QUALITIES[index % len(QUALITIES)]


@dataclass(frozen=True)
class AnalysedBeat:
    """One beat of a human analysis: its key and chord."""

    key: KeyLabel
    root: int
    quality: str


def analysis_files() -> list[str]:
    """The 20 RomanText analyses of Bach chorales shipped in music21's corpus, in order."""
    folder = os.path.join(os.path.dirname(music21.__file__), "corpus", "bach", "choraleAnalyses")
    return sorted(glob.glob(os.path.join(folder, "riemenschneider*.rntxt")))


def beats_of_analysis(path: str) -> list[AnalysedBeat]:
    """An analysis read beat by beat (each numeral repeated for every beat it lasts; chords music21 names with no
    CHORD_TYPES quality, such as augmented sixths, are left out, breaking the sequence there)."""
    parsed = music21.converter.parse(path, format="romanText")
    signature = parsed.recurse().getElementsByClass(music21.meter.TimeSignature).first()
    beat = float(signature.beatDuration.quarterLength) if signature is not None else 1.0
    beats: list[AnalysedBeat] = []
    for rn in parsed.recurse().getElementsByClass(music21.roman.RomanNumeral):
        if rn.key is None:
            continue
        root = rn.root().pitchClass
        quality = quality_name(frozenset((p - root) % 12 for p in rn.pitchClasses))
        count = max(1, round(float(rn.quarterLength) / beat))
        if quality == "other":
            beats.append(AnalysedBeat(KeyLabel.from_music21(rn.key), -1, quality))
            continue
        beats.extend([AnalysedBeat(KeyLabel.from_music21(rn.key), root, quality)] * count)
    return beats


@dataclass
class ProgressionCounts:
    """Raw counts from analyses (per mode: 0 major, 1 minor)."""

    transitions: npt.NDArray[np.float64]
    """2 × STATES × STATES: chord → next chord inside one key."""
    starts: npt.NDArray[np.float64]
    """2 × STATES: the first chord after a key change (and of each piece)."""
    key_moves: npt.NDArray[np.float64]
    """2 × 24: from a major (0) or minor (1) key to the key (tonic + i % 12, minor if i >= 12) a change reaches."""
    key_changes: int = 0
    steps: int = 0

    @staticmethod
    def empty() -> ProgressionCounts:
        """All counts zero."""
        return ProgressionCounts(np.zeros((2, STATES, STATES)), np.zeros((2, STATES)), np.zeros((2, 24)))

    def add(self, beats: Sequence[AnalysedBeat]) -> None:
        """Count one analysis's beats."""
        previous: AnalysedBeat | None = None
        for beat in beats:
            if beat.quality == "other":
                previous = None
                continue
            mode = int(beat.key.minor)
            state = state_index(beat.root - beat.key.tonic, beat.quality)
            if previous is None or previous.key != beat.key:
                self.starts[mode, state] += 1
                if previous is not None:
                    self.key_changes += 1
                    move = (beat.key.tonic - previous.key.tonic) % 12 + (12 if beat.key.minor else 0)
                    self.key_moves[int(previous.key.minor), move] += 1
                    self.steps += 1
            else:
                before = state_index(previous.root - previous.key.tonic, previous.quality)
                self.transitions[mode, before, state] += 1
                self.steps += 1
            previous = beat


ENTROPY_ITERATIONS = 200


@dataclass(frozen=True)
class ProgressionModel:
    """Log probabilities for decoding: transitions[mode, from, to], starts[mode, to], log_change, and
    key_moves[from key, to key] (24 × 24, the log probability of where a change goes)."""

    transitions: npt.NDArray[np.float64]
    starts: npt.NDArray[np.float64]
    log_change: float
    key_moves: npt.NDArray[np.float64]

    @staticmethod
    def from_counts(counts: ProgressionCounts, backoff: float = 2.0) -> ProgressionModel:
        """Smoothed log probabilities: each row backs off to the mode's chord frequencies with weight `backoff`
        (in counts), and the frequencies to uniform with half a count, so no chord is impossible."""
        unigram = counts.transitions.sum(axis=1) + counts.starts + 0.5
        unigram /= unigram.sum(axis=1, keepdims=True)
        rows = counts.transitions + backoff * unigram[:, None, :]
        rows /= rows.sum(axis=2, keepdims=True)
        starts = counts.starts + backoff * unigram
        starts /= starts.sum(axis=1, keepdims=True)
        change = (counts.key_changes + 1.0) / (counts.steps + 2.0)
        moves = counts.key_moves + 0.5
        moves /= moves.sum(axis=1, keepdims=True)
        key_moves = np.full((24, 24), -np.inf)
        for a in range(24):
            for b in range(24):
                if a != b:
                    key_moves[a, b] = np.log(moves[int(a >= 12), (b - a) % 12 + (12 if b >= 12 else 0)])
        return ProgressionModel(np.log(rows), np.log(starts), float(np.log(change)), key_moves)

    def entropy_rates(self) -> npt.NDArray[np.float64]:
        """Per mode (0 major, 1 minor), the entropy of the next chord in nats, averaged over the chords as often as
        the progressions visit them (their stationary distribution): how much a typical step of a path costs in
        log probability in that mode. On the chorales: 1.67 in major, 1.86 in minor."""
        rates = np.zeros(2)
        for mode in range(2):
            rows = np.exp(self.transitions[mode])
            visits = np.exp(self.starts[mode])
            for _ in range(ENTROPY_ITERATIONS):  # power iteration: the chains are small and mix in a few steps
                visits = visits @ rows
            rates[mode] = -float(np.sum(visits[:, None] * rows * self.transitions[mode]))
        return rates


def count_analyses(paths: Iterable[str]) -> ProgressionCounts:
    """Counts over the given analysis files."""
    counts = ProgressionCounts.empty()
    for path in paths:
        counts.add(beats_of_analysis(path))
    return counts


_CACHE: dict[tuple[str, ...], ProgressionModel] = {}


def corpus_model(exclude: Sequence[str] = ()) -> ProgressionModel:
    """The model counted from music21's Bach chorale analyses (optionally leaving some out, for a fair
    evaluation on them); counted once per process (about a second)."""
    key = tuple(sorted(os.path.basename(p) for p in exclude))
    if key not in _CACHE:
        excluded = set(key)
        _CACHE[key] = ProgressionModel.from_counts(
            count_analyses(p for p in analysis_files() if os.path.basename(p) not in excluded)
        )
    return _CACHE[key]
