"""Melody descriptors: the melody line of a piece, its contour, intervals, range, scale or mode, motifs and phrases.

What music21 does here: the scales' pitch classes come from music21.scale (MajorScale, MinorScale,
HarmonicMinorScale, MelodicMinorScale, DorianScale, PhrygianScale, LydianScale, MixolydianScale, LocrianScale);
the pentatonic and blues collections, which music21 has no deterministic class for, are taken as degrees of
music21's major and natural-minor scales (major pentatonic = 1 2 3 5 6 of major, minor pentatonic = 1 3 4 5 7 of
natural minor, blues = minor pentatonic plus the raised fourth). Pitch names come from music21.pitch. Everything
else (skyline, Huron contour, scale fitting, motif search, phrase segmentation) is hand-written: music21 has no
counterpart that reads a flat note list.

`analyze_melody(notes, tonic_pc=None)` returns (floats rounded to 4 decimals; `time`/`end_time` in seconds appear
only where the file gives a tempo)::

    {
      "notes": 48,                                   # notes in the melody line
      "contour": "convex",                           # Huron's class of the whole line (null without notes)
      "interval_histogram": {"semitones": [-12, ..., 12], "counts": [0, ..., 0]},  # 25 bins, ends clipped
      "range": {"lowest": 60, "highest": 74, "semitones": 14, "lowest_name": "C4", "highest_name": "D5"},
      "scale": {"tonic": "C", "tonic_pc": 0, "name": "major pentatonic", "fit": 1.0,
                "pitch_classes": [0, 2, 4, 7, 9],
                "alternatives": [{"tonic": "C", "tonic_pc": 0, "name": "major", "fit": 1.0}, ...]},  # next 3
      "motifs": [{"notes": 4, "count": 3, "intervals": [2, 2, -4], "duration_ratios": [1.0, 1.0, 2.0],
                  "offsets": [0.0, 8.0, 16.0], "times": [...]}, ...],
      "phrases": [{"offset": 0.0, "end": 8.0, "notes": 9, "contour": "convex", "time": 0.0, "end_time": 4.0}, ...]
    }

(`range` and `scale` are null for a piece without notes.)

Rules:
- melody line: the notes of voice 0 (the first part); where that part holds chords, the highest note at each onset
  (skyline), each note cut where the next melody note starts.
- contour (Huron 1996): compare the first pitch with the mean of the middle pitches, and that mean with the last
  pitch; differences under half a semitone count as level. up/up "ascending", down/down "descending", up/down
  "convex", down/up "concave", level/level "horizontal", and "horizontal-ascending", "horizontal-descending",
  "ascending-horizontal", "descending-horizontal" for the mixed ones. Two notes: the middle is their mean.
- scale: every tonic × {major, natural minor, harmonic minor, melodic minor, dorian, phrygian, lydian, mixolydian,
  locrian, major pentatonic, minor pentatonic, blues}; fit = duration-weighted share of melody notes whose pitch
  class is in the scale. Ranking: highest fit (to 4 decimals); then the given tonic_pc; then fewer notes in the
  scale (a tune using only five pitch classes is pentatonic, not major); then a tonic equal to the melody's last
  note; then the tonic's duration weight in the melody; then the order of the list above.
- motifs: n-grams of 3..6 consecutive melody notes compared by their intervals (semitones) and duration ratios
  (each note's length, as cut in the melody line, over the previous one's; rests between notes are not part of the
  pattern), so transposed and augmented copies match. Occurrences are taken
  left to right without sharing notes; a pattern needs >= 2. Ranked by notes × count (then longer first, then
  earlier); a pattern each of whose occurrences shares notes with an occurrence of a better-ranked reported one is
  left out (a sub-pattern, or a longer repeated passage seen through a shifted 6-note window). The top 5 remain.
- phrases: a phrase ends after a note followed by a rest of at least half a beat, after a note sounding at a
  fermata, and after a note whose inter-onset interval is at least twice the median of its 9-note neighbourhood,
  at least a beat and longer than the next note's (only when the phrase has 4 notes by then and the piece goes on
  for 2 more notes, and only in scores without fermatas: where the score marks its phrase ends, held notes inside
  a phrase are not ends). A phrase whose last note starts more than four bars after its first is split at its
  longest inter-onset interval (the latest of equals) between one and four bars after its start, until none is.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple, NotRequired, TypedDict

import music21

from idaw.theory.notes import NoteEvent, Notes
from idaw.theory.pitch_names import PITCH_NAMES

_EPS = 1e-6

SCALE_NAMES: tuple[str, ...] = (
    "major",
    "natural minor",
    "harmonic minor",
    "melodic minor",
    "dorian",
    "phrygian",
    "lydian",
    "mixolydian",
    "locrian",
    "major pentatonic",
    "minor pentatonic",
    "blues",
)
"""The scales and modes `analyze_melody` fits, in its tie-breaking order (major is ionian, natural minor aeolian)."""

_DIATONIC: dict[str, type[music21.scale.ConcreteScale]] = {
    "major": music21.scale.MajorScale,
    "natural minor": music21.scale.MinorScale,
    "harmonic minor": music21.scale.HarmonicMinorScale,
    "melodic minor": music21.scale.MelodicMinorScale,
    "dorian": music21.scale.DorianScale,
    "phrygian": music21.scale.PhrygianScale,
    "lydian": music21.scale.LydianScale,
    "mixolydian": music21.scale.MixolydianScale,
    "locrian": music21.scale.LocrianScale,
}


class IntervalHistogram(TypedDict):
    semitones: list[int]
    counts: list[int]


class PitchRange(TypedDict):
    lowest: int
    highest: int
    semitones: int
    lowest_name: str
    highest_name: str


class ScaleCandidate(TypedDict):
    tonic: str
    tonic_pc: int
    name: str
    fit: float


class ScaleFit(TypedDict):
    tonic: str
    tonic_pc: int
    name: str
    fit: float
    pitch_classes: list[int]
    alternatives: list[ScaleCandidate]


class MotifEntry(TypedDict):
    notes: int
    count: int
    intervals: list[int]
    duration_ratios: list[float]
    offsets: list[float]
    times: NotRequired[list[float]]


class Phrase(TypedDict):
    offset: float
    end: float
    time: NotRequired[float]
    end_time: NotRequired[float]
    notes: int
    contour: str | None


class MelodyAnalysis(TypedDict):
    """What `analyze_melody` returns (module docstring)."""

    notes: int
    contour: str | None
    interval_histogram: IntervalHistogram
    range: PitchRange | None
    scale: ScaleFit | None
    motifs: list[MotifEntry]
    phrases: list[Phrase]


MOTIF_LENGTHS = range(3, 7)
MAX_MOTIFS = 5
MAX_PHRASE_BARS = 4.0


def _r(value: float) -> float:
    """A plain float rounded to 4 decimals (the JSON convention of idaw.theory)."""
    return round(float(value), 4)


def _degrees(scale: music21.scale.ConcreteScale, degrees: Sequence[int]) -> set[int]:
    """Pitch classes of the given scale degrees of a music21 scale."""
    pcs: set[int] = set()
    for degree in degrees:
        pitch = scale.pitchFromDegree(degree)
        if pitch is not None:
            pcs.add(int(pitch.pitchClass))
    return pcs


@functools.cache
def scale_pitch_classes(name: str) -> frozenset[int]:
    """Pitch classes of scale `name` (one of SCALE_NAMES) on tonic C, taken from music21.scale."""
    if name in _DIATONIC:
        # The ascending form: melodic minor keeps its raised sixth and seventh (the jazz melodic minor collection).
        return frozenset(_degrees(_DIATONIC[name]("C"), range(1, 8)))
    if name == "major pentatonic":
        return frozenset(_degrees(_DIATONIC["major"]("C"), (1, 2, 3, 5, 6)))
    minor = _DIATONIC["natural minor"]("C")
    pentatonic = _degrees(minor, (1, 3, 4, 5, 7))
    if name == "minor pentatonic":
        return frozenset(pentatonic)
    if name == "blues":
        fourth = minor.pitchFromDegree(4)
        return frozenset(pentatonic | {(int(fourth.pitchClass) + 1) % 12})
    raise ValueError(f"unknown scale {name!r}; known: {', '.join(SCALE_NAMES)}")


# ---------------------------------------------------------------------------------------------------------------
# The melody line


def melody_line(notes: Notes) -> list[NoteEvent]:
    """The melody: voice 0's notes, the highest at each onset, each cut where the next one starts."""
    highest: dict[float, NoteEvent] = {}
    for event in notes.events:
        if event.voice != 0:
            continue
        kept = highest.get(event.offset)
        if kept is None or event.pitch > kept.pitch:
            highest[event.offset] = event
    line = [highest[offset] for offset in sorted(highest)]
    cut: list[NoteEvent] = []
    for index, event in enumerate(line):
        if index + 1 < len(line) and line[index + 1].offset < event.end - _EPS:
            event = replace(event, duration=round(line[index + 1].offset - event.offset, 6))
        cut.append(event)
    return cut


# ---------------------------------------------------------------------------------------------------------------
# Contour, intervals, range


def _direction(before: float, after: float) -> str:
    if after - before >= 0.5:
        return "ascending"
    if before - after >= 0.5:
        return "descending"
    return "horizontal"


def huron_contour(pitches: Sequence[int]) -> str | None:
    """Huron's contour class of a pitch sequence (first, mean of the middle, last), None when it is empty."""
    if not pitches:
        return None
    first, last = float(pitches[0]), float(pitches[-1])
    middle = statistics.fmean(pitches[1:-1]) if len(pitches) > 2 else (first + last) / 2
    rise, fall = _direction(first, middle), _direction(middle, last)
    if rise == fall:
        return rise
    if rise == "ascending" and fall == "descending":
        return "convex"
    if rise == "descending" and fall == "ascending":
        return "concave"
    return f"{rise}-{fall}"


def interval_histogram(line: Sequence[NoteEvent]) -> IntervalHistogram:
    """Counts of melodic intervals -12..+12 semitones between consecutive melody notes (larger ones clipped)."""
    counts = [0] * 25
    for before, after in itertools.pairwise(line):
        counts[max(-12, min(12, after.pitch - before.pitch)) + 12] += 1
    return IntervalHistogram(semitones=list(range(-12, 13)), counts=counts)


def _pitch_name(midi: int) -> str:
    return str(music21.pitch.Pitch(midi=midi).nameWithOctave).replace("-", "b")


# ---------------------------------------------------------------------------------------------------------------
# Scale


def _tonic_names(line: Sequence[NoteEvent]) -> dict[int, str]:
    """How each pitch class is spelled in the melody where the file spells it (flats as 'b'), else a default."""
    names = dict(enumerate(PITCH_NAMES))
    weights: dict[tuple[int, str], float] = defaultdict(float)
    for event in line:
        if event.spelling:
            weights[(event.pitch % 12, event.spelling)] += event.duration
    for (pc, spelling), _ in sorted(weights.items(), key=lambda item: item[1]):
        names[pc] = spelling.replace("-", "b")
    return names


class RankedScale(NamedTuple):
    """One tonic × scale with its fit; `rank` orders candidates best first."""

    rank: tuple[float, ...]
    tonic: int
    name: str
    fit: float
    pitch_classes: list[int]


def fit_scales(line: Sequence[NoteEvent], tonic_pc: int | None = None) -> list[RankedScale]:
    """Every tonic × scale, best first (ranking rule in the module docstring)."""
    weight = [0.0] * 12
    for event in line:
        weight[event.pitch % 12] += event.duration
    total = sum(weight)
    if total <= 0:
        return []
    last_pc = line[-1].pitch % 12
    candidates: list[RankedScale] = []
    for order, name in enumerate(SCALE_NAMES):
        shape = scale_pitch_classes(name)
        for tonic in range(12):
            pcs = sorted((pc + tonic) % 12 for pc in shape)
            fit = _r(sum(weight[pc] for pc in pcs) / total)
            rank = (
                -fit,
                0 if tonic_pc is not None and tonic == tonic_pc % 12 else 1,
                len(pcs),
                0 if tonic == last_pc else 1,
                -weight[tonic],
                order,
                tonic,
            )
            candidates.append(RankedScale(rank, tonic, name, fit, pcs))
    candidates.sort(key=lambda c: c.rank)
    return candidates


def best_scale(line: Sequence[NoteEvent], tonic_pc: int | None = None) -> ScaleFit | None:
    """The best-fitting scale with its pitch classes and the next three candidates, None for an empty line."""
    ranked = fit_scales(line, tonic_pc)
    if not ranked:
        return None
    names = _tonic_names(line)
    best = ranked[0]
    alternatives = [ScaleCandidate(tonic=names[c.tonic], tonic_pc=c.tonic, name=c.name, fit=c.fit) for c in ranked[1:4]]
    return ScaleFit(
        tonic=names[best.tonic],
        tonic_pc=best.tonic,
        name=best.name,
        fit=best.fit,
        pitch_classes=best.pitch_classes,
        alternatives=alternatives,
    )


# ---------------------------------------------------------------------------------------------------------------
# Motifs


def _pattern(line: Sequence[NoteEvent], start: int, length: int) -> tuple[tuple[int, float], ...]:
    """Intervals and duration ratios of notes start..start+length-1: the transposition- and tempo-free shape."""
    return tuple(
        (line[i + 1].pitch - line[i].pitch, round(line[i + 1].duration / line[i].duration, 4))
        for i in range(start, start + length - 1)
    )


class Motif(NamedTuple):
    """A recurring pattern: its length in notes, how often it occurs, where (note indices) and its shape."""

    length: int
    occurrences: int
    starts: list[int]
    pattern: tuple[tuple[int, float], ...]


def find_motifs(line: Sequence[NoteEvent], limit: int = MAX_MOTIFS) -> list[Motif]:
    """Recurring 3..6-note patterns (rules in the module docstring), best first, at most `limit`."""
    found: list[Motif] = []
    for length in MOTIF_LENGTHS:
        starts: dict[tuple[tuple[int, float], ...], list[int]] = defaultdict(list)
        for start in range(len(line) - length + 1):
            starts[_pattern(line, start, length)].append(start)
        for pattern, candidates in starts.items():
            chosen: list[int] = []
            for start in candidates:
                if not chosen or start >= chosen[-1] + length:
                    chosen.append(start)
            if len(chosen) >= 2:
                found.append(Motif(length, len(chosen), chosen, pattern))
    # Best first; a pattern is left out when each of its occurrences shares notes with an occurrence of a pattern
    # already kept: a sub-pattern, or the same longer passage seen through a shifted window.
    found.sort(key=lambda m: (-m.length * m.occurrences, -m.length, m.starts[0]))
    kept: list[Motif] = []
    for motif in found:
        taken = [(s, s + other.length) for other in kept for s in other.starts]
        if kept and all(any(s < b and a < s + motif.length for a, b in taken) for s in motif.starts):
            continue
        kept.append(motif)
        if len(kept) == limit:
            break
    return kept


def _motif_entry(notes: Notes, line: Sequence[NoteEvent], motif: Motif) -> MotifEntry:
    offsets = [line[s].offset for s in motif.starts]
    entry = MotifEntry(
        notes=motif.length,
        count=motif.occurrences,
        intervals=[interval for interval, _ in motif.pattern],
        duration_ratios=[ratio for _, ratio in motif.pattern],
        offsets=[_r(o) for o in offsets],
    )
    if notes.tempo_map:
        entry["times"] = [_r(notes.seconds_at(o) or 0.0) for o in offsets]
    return entry


# ---------------------------------------------------------------------------------------------------------------
# Phrases


def _has_fermata(event: NoteEvent, fermatas: Sequence[float]) -> bool:
    return any(event.offset - _EPS <= f < event.end - _EPS for f in fermatas)


def _split_long(line: Sequence[NoteEvent], first: int, last: int, bar: float) -> list[tuple[int, int]]:
    """Split notes first..last where their last note starts over MAX_PHRASE_BARS bars after the first, at the
    longest inter-onset gap (the latest of equals) from one bar to MAX_PHRASE_BARS bars after the start."""
    pieces: list[tuple[int, int]] = []
    while line[last].offset - line[first].offset > MAX_PHRASE_BARS * bar + _EPS:
        start = line[first].offset
        cuts = [
            i
            for i in range(first + 1, last + 1)
            if bar - _EPS <= line[i].offset - start <= MAX_PHRASE_BARS * bar + _EPS
        ]
        if not cuts:
            break
        cut = max(cuts, key=lambda i: (line[i].offset - line[i - 1].offset, i))
        pieces.append((first, cut - 1))
        first = cut
    pieces.append((first, last))
    return pieces


def phrase_bounds(notes: Notes, line: Sequence[NoteEvent]) -> list[tuple[int, int]]:
    """Index ranges (first, last note) of the melody's phrases (rules in the module docstring)."""
    if not line:
        return []
    beat = notes.beat_length if notes.beat_length > _EPS else 1.0
    bar = notes.bar_length if notes.bar_length > _EPS else 4.0
    marked = bool(notes.fermatas) and any(_has_fermata(e, notes.fermatas) for e in line)
    iois = [line[i + 1].offset - line[i].offset for i in range(len(line) - 1)]
    ends: list[int] = []
    first = 0
    for i in range(len(line) - 1):
        gap = line[i + 1].offset - line[i].end
        end_here = gap >= beat / 2 - _EPS or _has_fermata(line[i], notes.fermatas)
        if not end_here and not marked and i - first + 1 >= 4 and i + 1 < len(iois):
            # A held note ends a phrase when the music moves on faster after it (not in a run of long notes).
            around = iois[max(0, i - 4) : i + 5]
            long_note = iois[i] >= beat - _EPS and iois[i] >= 2 * statistics.median(around) - _EPS
            end_here = long_note and iois[i + 1] < iois[i] - _EPS
        if end_here:
            ends.append(i)
            first = i + 1
    ends.append(len(line) - 1)
    bounds: list[tuple[int, int]] = []
    first = 0
    for last in ends:
        bounds.extend(_split_long(line, first, last, bar))
        first = last + 1
    return bounds


# ---------------------------------------------------------------------------------------------------------------
# Everything together


def _phrase(notes: Notes, line: Sequence[NoteEvent], first: int, last: int) -> Phrase:
    offset, end = line[first].offset, line[last].end
    contour = huron_contour([event.pitch for event in line[first : last + 1]])
    phrase = Phrase(offset=_r(offset), end=_r(end), notes=last - first + 1, contour=contour)
    start_seconds, end_seconds = notes.seconds_at(offset), notes.seconds_at(end)
    if start_seconds is not None and end_seconds is not None:
        phrase["time"] = _r(start_seconds)
        phrase["end_time"] = _r(end_seconds)
    return phrase


def pitch_range(line: Sequence[NoteEvent]) -> PitchRange | None:
    """Lowest and highest melody note (MIDI and name) and the span in semitones, None for an empty line."""
    if not line:
        return None
    lowest, highest = min(e.pitch for e in line), max(e.pitch for e in line)
    return PitchRange(
        lowest=lowest,
        highest=highest,
        semitones=highest - lowest,
        lowest_name=_pitch_name(lowest),
        highest_name=_pitch_name(highest),
    )


def analyze_melody(notes: Notes, tonic_pc: int | None = None) -> MelodyAnalysis:
    """The melody descriptors of `notes`, JSON-ready (shape and rules in the module docstring).

    `tonic_pc` (0 = C .. 11 = B), e.g. from the piece's key, breaks ties between equally fitting scales.
    """
    line = melody_line(notes)
    return MelodyAnalysis(
        notes=len(line),
        contour=huron_contour([event.pitch for event in line]),
        interval_histogram=interval_histogram(line),
        range=pitch_range(line),
        scale=best_scale(line, tonic_pc),
        motifs=[_motif_entry(notes, line, motif) for motif in find_motifs(line)],
        phrases=[_phrase(notes, line, first, last) for first, last in phrase_bounds(notes, line)],
    )
