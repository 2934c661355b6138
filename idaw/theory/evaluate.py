"""Evaluation against human analyses: the 20 Roman-numeral analyses of Bach chorales in music21's corpus.

`python -m idaw.theory.evaluate [--json FILE]` scores idaw's analysis and music21's plain baseline (one global key,
`roman.romanNumeralFromChord` on chordified beats) side by side, on every beat of every chorale:

- key accuracy: the local key (tonic and mode) equals the analyst's;
- full Roman numeral accuracy: same key, chord root, chord quality and inversion;
- cadence recall: at each phrase end of the analysis (a fermata in the score), a cadence of the analyst's type
  (read off the analyst's chords: V→I authentic, ending on V half, IV→I plagal, V→vi deceptive) is found there.

The analyses are by Andrew Jones, proofread by Dmitri Tymoczko and Hamish Robb (music21's corpus,
`bach/choraleAnalyses/riemenschneider001–020.rntxt`); the scores are the corpus's own chorales.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import music21

from idaw.theory import harmony
from idaw.theory.cadences import Cadence, cadence_type, find_cadences, phrase_ends
from idaw.theory.decode import label_piece
from idaw.theory.keys import KeyLabel
from idaw.theory.notes import Notes, notes_from_score
from idaw.theory.progressions import corpus_model

# Riemenschneider number → the chorale's score in music21's corpus (the analyses' "BWV" headers, spelled as the
# corpus files are named).
CHORALES: dict[int, str] = {
    1: "bach/bwv269",
    2: "bach/bwv347",
    3: "bach/bwv153.1",
    4: "bach/bwv86.6",
    5: "bach/bwv267",
    6: "bach/bwv281",
    7: "bach/bwv17.7",
    8: "bach/bwv40.8",
    9: "bach/bwv248.12-2",
    10: "bach/bwv38.6",
    11: "bach/bwv41.6",
    12: "bach/bwv65.2",
    13: "bach/bwv33.6",
    14: "bach/bwv184.5",
    15: "bach/bwv277",
    16: "bach/bwv311",
    17: "bach/bwv145.5",
    18: "bach/bwv318",
    19: "bach/bwv351",
    20: "bach/bwv302",
}

UNALIGNED = {
    11: "the corpus's score of BWV 41.6 is 11 beats longer than the analysis (35 bars against 32, numbered "
    "differently), so the analysis cannot be placed on its beats"
}
"""Chorales left out of the scores (their analyses still count in the progressions), and why."""


@dataclass(frozen=True)
class ChordTruth:
    """What an analyst wrote at one time: key, chord root, quality, inversion, figure."""

    offset: float
    key: KeyLabel
    root: int
    quality: str
    inversion: int
    figure: str

    def full(self) -> tuple[int, int, str, int]:
        """The fields a full Roman numeral match compares."""
        return (self.key.index, self.root, self.quality, self.inversion)


def analysis_path(number: int) -> str:
    """Path of the analysis file `riemenschneiderNNN.rntxt` inside the installed music21."""
    return os.path.join(
        os.path.dirname(music21.__file__), "corpus", "bach", "choraleAnalyses", f"riemenschneider{number:03d}.rntxt"
    )


def read_analysis(number: int, notes: Notes) -> list[ChordTruth]:
    """The analyst's chords, at score offsets (placed by measure number and beat, so pickups line up)."""
    parsed = music21.converter.parse(analysis_path(number), format="romanText")
    starts: dict[int, float] = {}
    for number, start in zip(notes.measure_numbers, notes.measure_offsets, strict=True):
        starts.setdefault(number, start)  # a measure split in two (at a repeat sign) starts at its first part
    truths: list[ChordTruth] = []
    for rn in parsed.recurse().getElementsByClass(music21.roman.RomanNumeral):
        measure = rn.measureNumber
        if measure not in starts or rn.key is None:
            continue
        beat = float(rn.beat)
        pickup = measure == notes.measure_numbers[0] and _measure_length(notes, 0) < notes.bar_length - 1e-9
        start = starts[measure] - (notes.bar_length - _measure_length(notes, 0) if pickup else 0.0)
        offset = round(start + (beat - 1.0) * notes.beat_length, 6)
        key = KeyLabel.from_music21(rn.key)
        root = rn.root().pitchClass
        pcs = frozenset((p - root) % 12 for p in rn.pitchClasses)
        truths.append(ChordTruth(offset, key, root, harmony.quality_name(pcs), min(rn.inversion(), 3), rn.figure))
    truths.sort(key=lambda t: t.offset)
    shift = transposition(truths, notes)
    if shift:
        truths = [
            ChordTruth(
                t.offset,
                KeyLabel((t.key.tonic + shift) % 12, t.key.minor),
                (t.root + shift) % 12,
                t.quality,
                t.inversion,
                t.figure,
            )
            for t in truths
        ]
    return truths


def transposition(truths: Sequence[ChordTruth], notes: Notes) -> int:
    """Semitones by which the corpus score sounds above the analysis (two of the corpus's chorales are
    transposed against their analyses): the shift under which the analysed chords best cover the notes."""
    best, best_cover = 0, -1.0
    weights = [harmony.beat_weights(notes, t.offset, t.offset + notes.beat_length)[0] for t in truths]
    for shift in range(12):
        cover = 0.0
        for truth, w in zip(truths, weights, strict=True):
            tones = [(truth.root + i + shift) % 12 for i in harmony.CHORD_TYPES.get(truth.quality, (0, 4, 7))]
            cover += float(sum(w[tone] for tone in tones))
        if cover > best_cover:
            best, best_cover = shift, cover
    return best


def _measure_length(notes: Notes, index: int) -> float:
    bounds = [*notes.measure_offsets, notes.duration]
    return bounds[index + 1] - bounds[index]


def truth_at(truths: Sequence[ChordTruth], offset: float) -> ChordTruth | None:
    """The analyst's chord sounding at `offset` (the last one written at or before it)."""
    current = None
    for truth in truths:
        if truth.offset <= offset + 1e-6:
            current = truth
        else:
            break
    return current


def cadence_type_of(before: ChordTruth, at: ChordTruth) -> str | None:
    """The cadence an analyst's two chords make at a phrase end (idaw.theory.cadences' rules applied to the
    analyst's own chords): None when they make none."""
    return cadence_type(at.key, (before.root, before.quality, before.inversion), (at.root, at.quality, at.inversion))


@dataclass
class Scores:
    """Counts for one analyser over the chorales."""

    beats: int = 0
    key_right: int = 0
    roman_right: int = 0
    phrase_ends: int = 0
    cadential_phrase_ends: int = 0
    """Phrase ends where the analyst's chords make a cadence (the recall's denominator)."""
    cadences_found: int = 0
    per_chorale: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Accuracies and counts, JSON-ready."""
        return {
            "beats": self.beats,
            "key_accuracy": round(self.key_right / max(self.beats, 1), 4),
            "roman_accuracy": round(self.roman_right / max(self.beats, 1), 4),
            "phrase_ends": self.phrase_ends,
            "cadential_phrase_ends": self.cadential_phrase_ends,
            "cadence_recall": round(self.cadences_found / max(self.cadential_phrase_ends, 1), 4),
            "per_chorale": self.per_chorale,
        }


Analyser = Callable[[Notes, music21.stream.Score, list[float], int], tuple[list[KeyLabel], list[harmony.ChordLabel]]]


def idaw_analyser(
    notes: Notes, score: music21.stream.Score, beats: list[float], number: int
) -> tuple[list[KeyLabel], list[harmony.ChordLabel]]:
    """idaw's keys and chords at each beat, its progressions counted on the other 19 analyses (never on the one
    it is scored against)."""
    model = corpus_model(exclude=[os.path.basename(analysis_path(number))])
    return label_piece(notes, beats, model, phrase_ends=phrase_ends(notes))


def baseline_analyser(
    notes: Notes, score: music21.stream.Score, beats: list[float], number: int
) -> tuple[list[KeyLabel], list[harmony.ChordLabel]]:
    """music21's plain analysis: one global key (`score.analyze('key')`), `romanNumeralFromChord` on the chordified
    score's chord sounding at each beat."""
    key = score.analyze("key")
    label = KeyLabel.from_music21(key)
    chordified = score.chordify()  # type: ignore[no-untyped-call]
    sounding = list(chordified.flatten().getElementsByClass(music21.chord.Chord))
    labels: list[harmony.ChordLabel] = []
    index = 0
    for beat in beats:
        while index + 1 < len(sounding) and float(sounding[index + 1].offset) <= beat + 1e-6:
            index += 1
        chord = sounding[index]
        rn = music21.roman.romanNumeralFromChord(chord, key)
        root = rn.root().pitchClass
        pcs = frozenset((p - root) % 12 for p in rn.pitchClasses)
        labels.append(
            harmony.ChordLabel(
                offset=beat,
                duration=notes.beat_length,
                root=root,
                quality=harmony.quality_name(pcs),
                inversion=min(rn.inversion(), 3),
                key=label,
                roman=rn.figure,
            )
        )
    return [label] * len(beats), labels


def evaluate(numbers: Sequence[int], analysers: dict[str, Analyser]) -> dict[str, Any]:
    """Each analyser's scores on the given chorales (see the module docstring)."""
    totals = {name: Scores() for name in analysers}
    for number in numbers:
        score = music21.corpus.parse(CHORALES[number])
        notes = notes_from_score(score)
        truths = read_analysis(number, notes)
        beats = [b for b in notes.beat_offsets() if b >= truths[0].offset - 1e-6]
        ends = [f for f in notes.fermatas if f >= truths[0].offset]
        for name, analyser in analysers.items():
            keys, chords = analyser(notes, score, beats, number)
            s = totals[name]
            key_right = roman_right = 0
            for beat, key, chord in zip(beats, keys, chords, strict=True):
                truth = truth_at(truths, beat)
                if truth is None:
                    continue
                key_right += key.index == truth.key.index
                roman_right += (key.index, chord.root, chord.quality, chord.inversion) == truth.full()
            cadential, found = _cadences_matched(truths, ends, find_cadences(harmony.merge_changes(chords), notes))
            s.beats += len(beats)
            s.key_right += key_right
            s.roman_right += roman_right
            s.phrase_ends += len(ends)
            s.cadential_phrase_ends += cadential
            s.cadences_found += found
            s.per_chorale.append(
                {
                    "chorale": number,
                    "score": CHORALES[number],
                    "beats": len(beats),
                    "key_accuracy": round(key_right / max(len(beats), 1), 4),
                    "roman_accuracy": round(roman_right / max(len(beats), 1), 4),
                    "phrase_ends": len(ends),
                    "cadential_phrase_ends": cadential,
                    "cadences_found": found,
                }
            )
    return {name: totals[name].summary() for name in analysers}


def _cadences_matched(
    truths: Sequence[ChordTruth], phrase_ends: Sequence[float], found: Sequence[Cadence]
) -> tuple[int, int]:
    """(phrase ends where the analyst's chords cadence, of those where a cadence of that type was found)."""
    matched = expected_count = 0
    for end in phrase_ends:
        at = truth_at(truths, end)
        if at is None:
            continue
        earlier = [t for t in truths if t.offset < at.offset - 1e-6]
        if not earlier:
            continue
        expected = cadence_type_of(earlier[-1], at)
        if expected is None:
            continue
        expected_count += 1
        # Our cadence counts when it lands on the phrase end's chord (within a beat) with the analyst's type.
        if any(abs(c.offset - at.offset) <= 1.0 + 1e-6 and _same_family(c.type, expected) for c in found):
            matched += 1
    return expected_count, matched


def _same_family(found: str, expected: str) -> bool:
    authentic = {"PAC", "IAC"}
    return found == expected or (found in authentic and expected in authentic)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the evaluation as JSON (and write it to --json FILE)."""
    parser = argparse.ArgumentParser(prog="python -m idaw.theory.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chorales",
        type=int,
        nargs="*",
        default=[n for n in sorted(CHORALES) if n not in UNALIGNED],
        help="Riemenschneider numbers (default: all 20 but those in UNALIGNED)",
    )
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    result = evaluate(args.chorales, {"idaw": idaw_analyser, "music21_baseline": baseline_analyser})
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    short = {name: {k: v for k, v in r.items() if k != "per_chorale"} for name, r in result.items()}
    print(json.dumps(short, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
