"""Harmony: which chord sounds on each beat, its Roman numeral in the local key, its function, harmonic rhythm.

music21 names chords and writes and reads Roman numeral figures (`roman.RomanNumeral`,
`roman.romanNumeralFromChord`); every figure idaw prints is parsed back by music21 and must give the same root,
pitch classes and inversion. Hand-written here: choosing the chord of a beat among the notes that sound in it.
music21's `chordify` takes every vertical slice as it is, so a passing tone or a suspension becomes a chord of its
own; idaw scores 12 roots × 9 chord types against the duration-weighted pitch classes of the beat (notes at the
beat's onset count fully, notes that start inside it less), preferring chords of the local key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import music21
import numpy as np
import numpy.typing as npt

from idaw.theory.keys import KeyLabel
from idaw.theory.notes import Notes

CHORD_TYPES: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "diminished": (0, 3, 6),
    "augmented": (0, 4, 8),
    "dominant seventh": (0, 4, 7, 10),
    "minor seventh": (0, 3, 7, 10),
    "major seventh": (0, 4, 7, 11),
    "half-diminished seventh": (0, 3, 6, 10),
    "diminished seventh": (0, 3, 6, 9),
}
"""Chord qualities idaw names, as intervals above the root in semitones."""

_SEVENTHS_WITHOUT_FIFTH = {
    frozenset((0, 4, 10)): "dominant seventh",
    frozenset((0, 3, 10)): "minor seventh",
    frozenset((0, 4, 11)): "major seventh",
}

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)
"""Pitch classes above the tonic that count as the key's own (minor: natural minor plus the leading tone)."""


def quality_name(intervals: frozenset[int]) -> str:
    """The quality of a chord given as intervals above its root ('major', 'dominant seventh', ...; 'other')."""
    for name, template in CHORD_TYPES.items():
        if intervals == frozenset(template):
            return name
    return _SEVENTHS_WITHOUT_FIFTH.get(intervals, "other")


@dataclass(frozen=True)
class ChordLabel:
    """One chord: where it starts, how long it lasts, what it is and what it does in its key."""

    offset: float
    duration: float
    root: int
    """Root pitch class (0 = C)."""
    quality: str
    """One of CHORD_TYPES' names, or 'other'."""
    inversion: int
    """0 root position, 1 first (third in the bass), 2 second (fifth), 3 third (seventh)."""
    key: KeyLabel
    roman: str = ""
    """The Roman numeral figure in music21's syntax ('V65', 'viio7', 'V/V'); empty until figured."""

    @property
    def root_name(self) -> str:
        """The root spelled as in key names ('D', 'Bb', 'F#')."""
        return spell_pitch_class(self.root, self.key)

    @property
    def function(self) -> str:
        """Harmonic function in its key: 'T' tonic, 'S' subdominant (predominant), 'D' dominant."""
        return harmonic_function(self.roman, (self.root - self.key.tonic) % 12, self.key.minor)

    def same_harmony(self, other: ChordLabel) -> bool:
        """True when `other` is the same chord in the same key (a held or repeated harmony)."""
        return (self.root, self.quality, self.inversion, self.key) == (
            other.root,
            other.quality,
            other.inversion,
            other.key,
        )


def spell_pitch_class(pc: int, key: KeyLabel) -> str:
    """A pitch class spelled for a key: sharps in sharp keys and flats in flat keys ('Bb', 'F#')."""
    sharps = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    flats = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
    relative_major = (key.tonic + 3) % 12 if key.minor else key.tonic
    flat_side = relative_major in (5, 10, 3, 8, 1, 6)
    return (flats if flat_side else sharps)[pc % 12]


def harmonic_function(roman: str, degree: int, minor: bool) -> str:
    """T, S or D for a chord with root `degree` semitones above the tonic: applied chords ('V/V', 'viio7/vi')
    are dominants; I, iii and vi (VI in minor only when it follows V, which this cannot see: T) are tonic; ii, IV
    and bII are subdominant; V and vii dominant."""
    if "/" in roman:
        return "D"
    if degree in (7, 11, 10 if minor else -1):
        return "D"
    if degree in (2, 5, 1) or (degree == 8 and not minor):
        return "S"
    return "T"


# ---- choosing the chord of a beat -------------------------------------------------------------------------------


def beat_weights(notes: Notes, start: float, end: float) -> tuple[npt.NDArray[np.float64], int | None]:
    """Pitch-class weights of the span [start, end): a note sounding at `start` counts 1, one starting inside the
    span half its share of the span. Returns the weights and the lowest pitch sounding at `start` (the bass)."""
    weights = np.zeros(12)
    bass: int | None = None
    span = max(end - start, 1e-9)
    for note in notes.sounding(start, end):
        if note.offset <= start + 1e-9:
            weights[note.pitch % 12] += 1.0
            bass = note.pitch if bass is None else min(bass, note.pitch)
        else:
            weights[note.pitch % 12] += 0.5 * (min(note.end, end) - note.offset) / span
    if bass is None:
        starting = [n for n in notes.sounding(start, end)]
        bass = min((n.pitch for n in starting), default=None)
    return weights, bass


_TEMPLATE_MATRIX = np.array([[1.0 if i in t else 0.0 for i in range(12)] for t in CHORD_TYPES.values()])
_QUALITIES = list(CHORD_TYPES)


def chord_scores(weights: npt.NDArray[np.float64], bass: int | None, key: KeyLabel | None) -> npt.NDArray[np.float64]:
    """Score of every (root, quality) for the weights: 12 × len(CHORD_TYPES), higher is better; chords of `key`
    are preferred (no key: none is)."""
    total = float(weights.sum())
    scores = np.full((12, len(_QUALITIES)), -1e9)
    if total <= 0:
        return scores
    in_key = set() if key is None else {(key.tonic + s) % 12 for s in (MINOR_SCALE if key.minor else MAJOR_SCALE)}
    present = weights > 0.25
    for root in range(12):
        rolled = np.roll(weights, -root)
        rolled_present = np.roll(present, -root)
        for q, template in enumerate(_TEMPLATE_MATRIX):
            covered = float(rolled @ template)
            outside = total - covered
            intervals = CHORD_TYPES[_QUALITIES[q]]
            # A missing fifth is common (in sevenths and in full cadences); any other missing tone costs.
            missing = sum(1 for i in intervals if not rolled_present[i] and i not in (7,))
            score = covered - 1.1 * outside - 0.8 * missing
            if len(intervals) == 4:
                score -= 0.15  # a seventh only where its seventh really sounds
            if not rolled_present[0]:
                score -= 0.6  # a chord whose root is absent is rarely what is heard
            if bass is not None and (bass - root) % 12 == 0:
                score += 0.25
            if in_key and all((root + i) % 12 in in_key for i in intervals):
                score += 0.35
            if _QUALITIES[q] == "augmented":
                score -= 0.3
            scores[root, q] = score
    return scores


def inversion_of(root: int, quality: str, bass: int | None) -> int:
    """0–3 from the bass's place in the chord; 0 when the bass is not a chord tone (a passing bass)."""
    if bass is None or quality not in CHORD_TYPES:
        return 0
    interval = (bass - root) % 12
    intervals = CHORD_TYPES[quality]
    if interval not in intervals:
        return 0
    return intervals.index(interval)


def merge_changes(labels: Sequence[ChordLabel]) -> list[ChordLabel]:
    """One label per harmony change: consecutive labels of the same chord in the same key become one."""
    merged: list[ChordLabel] = []
    for label in labels:
        if merged and merged[-1].same_harmony(label):
            last = merged[-1]
            merged[-1] = ChordLabel(
                last.offset,
                label.offset + label.duration - last.offset,
                last.root,
                last.quality,
                last.inversion,
                last.key,
                last.roman,
            )
        else:
            merged.append(label)
    return merged


# ---- Roman numeral figures --------------------------------------------------------------------------------------

_MAJOR_DEGREES = {
    0: "I",
    1: "bII",
    2: "II",
    3: "bIII",
    4: "III",
    5: "IV",
    6: "#IV",
    7: "V",
    8: "bVI",
    9: "VI",
    10: "bVII",
    11: "VII",
}
# music21 reads minor-key numerals by quality: lower-case vi and vii are the raised degrees, upper-case VI and VII
# the natural ones; III is the natural third degree.
_MINOR_DEGREES = {
    0: "I",
    1: "bII",
    2: "II",
    3: "III",
    5: "IV",
    6: "#IV",
    7: "V",
    8: "VI",
    9: "VI",
    10: "VII",
    11: "VII",
}
_SUFFIX = {
    "major": "",
    "minor": "",
    "diminished": "o",
    "augmented": "+",
    "dominant seventh": "",
    "minor seventh": "",
    "major seventh": "",
    "half-diminished seventh": "ø",
    "diminished seventh": "o",
}
_INVERSIONS_TRIAD = ("", "6", "64")
_INVERSIONS_SEVENTH = ("7", "65", "43", "42")
_LOWER = {"minor", "diminished", "minor seventh", "half-diminished seventh", "diminished seventh"}


def _plain_figure(degree: int, quality: str, inversion: int, minor: bool) -> str | None:
    numeral = (_MINOR_DEGREES if minor else _MAJOR_DEGREES).get(degree)
    if numeral is None or quality == "other":
        return None
    if quality in _LOWER:
        numeral = numeral.lower()
    seventh = len(CHORD_TYPES[quality]) == 4
    figures = _INVERSIONS_SEVENTH if seventh else _INVERSIONS_TRIAD
    return numeral + _SUFFIX[quality] + figures[min(inversion, len(figures) - 1)]


def _candidate_figures(root: int, quality: str, inversion: int, key: KeyLabel) -> list[str]:
    """Figures to try, the plainest first: the degree's own numeral; applied chords (V/x, viio/x) toward every
    degree, diatonic targets first; for chromatic sevenths in root position the numeral with its seventh altered
    ('IVb7')."""
    degree = (root - key.tonic) % 12
    figures: list[str] = []
    plain = _plain_figure(degree, quality, inversion, key.minor)
    scale = MINOR_SCALE if key.minor else MAJOR_SCALE
    own_chord = all((degree + i) % 12 in scale for i in CHORD_TYPES.get(quality, ()))
    if plain and own_chord:
        figures.append(plain)
    targets = sorted(range(1, 12), key=lambda t: (t not in scale, t))
    applied_as = {
        "major": 7,
        "dominant seventh": 7,
        "diminished": 11,
        "diminished seventh": 11,
        "half-diminished seventh": 11,
    }
    if quality in applied_as:
        own = _plain_figure(applied_as[quality], quality, inversion, key.minor)
        for target in targets:
            if (target + applied_as[quality]) % 12 != degree:
                continue
            target_figure = _plain_figure(target, _diatonic_triad(target, key), 0, key.minor)
            if own and target_figure:
                figures += [f"{own}/{variant}" for variant in _with_accidentals(target_figure)]
    if plain and not own_chord:  # a chord foreign to the key: as an applied chord first, if it is one
        figures.append(plain)
    if plain and len(CHORD_TYPES.get(quality, ())) == 4 and inversion == 0:
        figures += [plain[:-1] + "b7", plain[:-1] + "#7"]
    # music21 reads the sixth and seventh degrees of minor by case (vi, vii raised; VI, VII natural): a chord whose
    # case disagrees with its degree needs the accidental written.
    return [variant for figure in figures for variant in _with_accidentals(figure)]


def _with_accidentals(figure: str) -> list[str]:
    """The figure, then (when it has none) with a flat and with a sharp in front."""
    return [figure] if figure[:1] in ("b", "#") else [figure, "b" + figure, "#" + figure]


def _diatonic_triad(degree: int, key: KeyLabel) -> str:
    scale = (0, 2, 3, 5, 7, 8, 10) if key.minor else (0, 2, 4, 5, 7, 9, 11)
    if degree not in scale:
        return "major"
    i = scale.index(degree)
    third = (scale[(i + 2) % 7] - degree) % 12
    fifth = (scale[(i + 4) % 7] - degree) % 12
    return quality_name(frozenset((0, third, fifth)))


@functools.lru_cache(maxsize=4096)
def roman_figure(root: int, quality: str, inversion: int, key: KeyLabel) -> str:
    """The Roman numeral of a chord in a key, in music21's figure syntax, checked by parsing it back with music21
    (same root, pitch classes and inversion): the first of the candidate figures that passes, else music21's own
    `romanNumeralFromChord` if that passes, else '' (a few chromatic chords, e.g. an inverted major seventh on a
    raised degree, have no figure music21 reads back as the same chord; their root and quality still say what
    they are)."""
    if quality not in CHORD_TYPES:
        return ""
    m21_key = key.to_music21()
    intervals = CHORD_TYPES[quality]
    for figure in _candidate_figures(root, quality, inversion, key):
        if _reads_back(figure, m21_key, root, intervals, inversion):
            return figure
    pitches = [music21.pitch.Pitch(midi=48 + (root + intervals[inversion % len(intervals)]) % 12)]
    pitches += [music21.pitch.Pitch(midi=60 + (root + i) % 12) for i in intervals]
    rn = music21.roman.romanNumeralFromChord(music21.chord.Chord(pitches), m21_key, preferSecondaryDominants=True)
    figure = str(rn.figure)
    return figure if _reads_back(figure, m21_key, root, intervals, inversion) else ""


def _reads_back(figure: str, key: music21.key.Key, root: int, intervals: tuple[int, ...], inversion: int) -> bool:
    try:
        parsed = music21.roman.RomanNumeral(figure, key)
        return bool(
            parsed.root().pitchClass == root
            and {p % 12 for p in parsed.pitchClasses} == {(root + i) % 12 for i in intervals}
            and parsed.inversion() == inversion
        )
    except Exception:  # music21 raises several kinds on figures it cannot read: then it is not this chord
        return False


def figured(label: ChordLabel) -> ChordLabel:
    """The label with its Roman numeral filled in."""
    if label.quality == "other":
        return label
    return ChordLabel(
        label.offset,
        label.duration,
        label.root,
        label.quality,
        label.inversion,
        label.key,
        roman_figure(label.root, label.quality, label.inversion, label.key),
    )


def harmonic_rhythm(changes: Sequence[ChordLabel], notes: Notes) -> dict[str, float]:
    """How fast the harmony moves: changes per bar and the mean duration of a harmony in quarter notes."""
    if not changes:
        return {"changes_per_bar": 0.0, "mean_duration": 0.0}
    bars = max(notes.duration / notes.bar_length, 1e-9)
    return {
        "changes_per_bar": round(len(changes) / bars, 4),
        "mean_duration": round(float(np.mean([c.duration for c in changes])), 4),
    }
