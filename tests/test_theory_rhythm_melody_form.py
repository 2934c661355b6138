"""Rhythm, melody and form analysis (idaw.theory.rhythm / melody / form) on pieces whose answer is known by
construction, and sanity checks on real pieces from music21's corpus (Bach chorales, folk tunes)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import music21
import pytest

from idaw.theory.form import analyze_form, bar_features, find_repeats, self_similarity
from idaw.theory.melody import analyze_melody, fit_scales, huron_contour, melody_line
from idaw.theory.notes import NoteEvent, Notes, notes_from_score
from idaw.theory.rhythm import analyze_rhythm, bar_spans, metric_grid

Line = Sequence[tuple[int, float]]
"""A melody as (MIDI pitch, duration in quarter notes); pitch < 0 is a rest."""
Block = tuple[Sequence[tuple[int, ...]], Sequence[Line]]
"""Bars of a piece: one chord (held for the bar, in voice 1) and one melody line (voice 0) per bar."""


def tiny(text: str) -> Notes:
    """Notes of a one-part tinyNotation piece ("4/4 c4 d e f")."""
    parsed = music21.converter.parse(f"tinyNotation: {text}")
    return notes_from_score(parsed if isinstance(parsed, music21.stream.Score) else music21.stream.Score([parsed]))


def corpus_notes(name: str, number: int | None = None) -> Notes:
    score = music21.corpus.parse(name, number=number) if number is not None else music21.corpus.parse(name)
    assert isinstance(score, music21.stream.Score)
    return notes_from_score(score)


def events_of(line: Line, voice: int = 0, start: float = 0.0) -> list[NoteEvent]:
    events: list[NoteEvent] = []
    offset = start
    for pitch, duration in line:
        if pitch >= 0:
            events.append(NoteEvent(offset, duration, pitch, voice))
        offset += duration
    return events


def piece(events: list[NoteEvent], bars: int, voices: int = 1) -> Notes:
    """A piece of `bars` full bars of 4/4 holding `events`."""
    return Notes(
        events=sorted(events, key=lambda n: (n.offset, n.pitch, n.voice)),
        voices=voices,
        duration=bars * 4.0,
        measure_offsets=[i * 4.0 for i in range(bars)],
        measure_numbers=list(range(1, bars + 1)),
    )


def as_json(value: object) -> object:
    return json.loads(json.dumps(value, allow_nan=False))


# ----------------------------------------------------------------------------------------------------------------
# Rhythm


@pytest.mark.parametrize(
    ("text", "beats_per_bar"),
    [("4/4 " + "c4 " * 12, 4), ("3/4 " + "c4 d e " * 4, 3), ("2/4 " + "e4 " * 8, 2)],
)
def test_straight_beats_have_no_syncopation_and_a_constant_groove(text: str, beats_per_bar: int) -> None:
    rhythm = analyze_rhythm(tiny(text))
    assert rhythm["syncopation"] == {"method": "longuet-higgins-lee", "index": 0.0, "syncopated_onsets": 0}
    assert rhythm["groove_consistency"] == 1.0
    weight = rhythm["metric_weight"]
    assert weight["downbeat"] == round(1 / beats_per_bar, 4)
    assert weight["beat"] == round(1 - 1 / beats_per_bar, 4)
    assert weight["division"] == weight["finer"] == 0.0
    # One onset on every beat of every bar, nothing between (16th grid: 4 steps per beat).
    assert rhythm["groove_template"] == [1.0 if s % 4 == 0 else 0.0 for s in range(4 * beats_per_bar)]


@pytest.mark.parametrize(
    ("offbeat", "onbeat"),
    [
        ("4/4 r8 c8 r8 d8 r8 e8 r8 f8 r8 g8 r8 a8 r8 b8 r8 c8", "4/4 c8 r8 d8 r8 e8 r8 f8 r8 g8 r8 a8 r8 b8 r8 c8 r8"),
        ("4/4 c8 d4 e8 f4 g4 c8 d4 e8 f4 g4", "4/4 c4 d8 e8 f4 g4 c4 d8 e8 f4 g4"),
        ("3/4 c8 d4 e4 f8 c8 d4 e4 f8", "3/4 c4 d8 e8 f4 c4 d8 e8 f4"),
        ("6/8 c4 d4 e8 f8 g4 a4 b8 c'8", "6/8 c4 d8 e4 f8 g4 a8 b4 c'8"),
    ],
)
def test_offbeat_onsets_are_more_syncopated_than_onbeat_ones(offbeat: str, onbeat: str) -> None:
    off, on = analyze_rhythm(tiny(offbeat))["syncopation"], analyze_rhythm(tiny(onbeat))["syncopation"]
    assert on["index"] == 0.0
    assert off["index"] >= 0.2
    assert off["syncopated_onsets"] >= 2


@pytest.mark.parametrize(
    ("text", "index"),
    [
        # Onset on the second eighth of beat 2 (weight -3) held over the half bar (-1): 2, over two onsets.
        ("4/4 c4 r8 c8~ c2", 1.0),
        # 6/8: the onset on the second eighth (-2) held over beat 2 (-1): 1, over three onsets.
        ("6/8 c4 c8~ c4 c8", 0.3333),
        # A rest on the stronger beat counts like a held note: beat 2 (-2) followed by the silent beat 3 (-1).
        ("4/4 r4 c4 r4 c4", 0.5),
        # Held over a position of the same weight (3/4: beat 2 through beat 3) is not a syncopation.
        ("3/4 c4 d2 e4 f2", 0.0),
    ],
)
def test_syncopation_index_matches_longuet_higgins_lee_by_hand(text: str, index: float) -> None:
    assert analyze_rhythm(tiny(text))["syncopation"]["index"] == index


def test_density_counts_onsets_not_notes_and_uses_the_tempo() -> None:
    chords = [NoteEvent(float(beat), 1.0, pitch, 1) for beat in range(8) for pitch in (48, 52, 55)]
    melody = events_of([(72, 0.5)] * 16)
    notes = piece([*chords, *melody], bars=2, voices=2)
    notes.tempo_map = [(0.0, 120.0)]
    density = analyze_rhythm(notes)["density"]
    # 16 eighth-note attacks (the chords start with every other one); 2 bars of 4/4 at 120 = 4 s.
    assert density == {"onsets": 16, "notes": 40, "per_beat": 2.0, "per_bar": 8.0, "per_second": 4.0}
    notes.tempo_map = []
    assert "per_second" not in analyze_rhythm(notes)["density"]


def test_groove_consistency_is_one_minus_the_mean_hamming_distance() -> None:
    # Bar 1: quarters; bar 2: eighths (4 more onsets); bar 3: quarters again. 8 differing steps of 2 × 16.
    notes = tiny("4/4 c4 c c c c8 c c c c c c c c4 c c c")
    rhythm = analyze_rhythm(notes)
    assert rhythm["groove_consistency"] == 0.75
    template = rhythm["groove_template"]
    assert template == [1.0 if s % 4 == 0 else round(1 / 3, 4) if s % 2 == 0 else 0.0 for s in range(16)]


@pytest.mark.parametrize(
    ("signature", "steps", "compound", "weights"),
    [
        ("4/4", 16, False, [0, -4, -3, -4, -2, -4, -3, -4, -1, -4, -3, -4, -2, -4, -3, -4]),
        ("3/4", 12, False, [0, -3, -2, -3, -1, -3, -2, -3, -1, -3, -2, -3]),
        ("6/8", 6, True, [0, -2, -2, -1, -2, -2]),
        ("12/8", 12, True, [0, -3, -3, -2, -3, -3, -1, -3, -3, -2, -3, -3]),
    ],
)
def test_metric_grid_follows_the_time_signature(signature: str, steps: int, compound: bool, weights: list[int]) -> None:
    grid = metric_grid(tiny(f"{signature} c1"))
    assert (grid.steps_per_bar, grid.compound, list(grid.weights)) == (steps, compound, weights)


def test_pickup_bar_counts_its_onsets_on_the_last_beats() -> None:
    # 3/4 with a one-beat pickup: | q | h q | h q | h. |, onsets at 0 (beat 3), 1, 3, 4, 6, 7.
    line: Line = [(67, 1.0), (72, 2.0), (71, 1.0), (69, 2.0), (71, 1.0), (72, 3.0)]
    notes = Notes(
        events=events_of(line),
        voices=1,
        duration=10.0,
        bar_length=3.0,
        time_signature="3/4",
        measure_offsets=[0.0, 1.0, 4.0, 7.0],
        measure_numbers=[0, 1, 2, 3],
    )
    rhythm = analyze_rhythm(notes)
    assert rhythm["metric_weight"] == {"downbeat": 0.5, "beat": 0.5, "division": 0.0, "finer": 0.0}
    # Step 0 is reached by the three full bars only; beat 3 (step 8) by all four, the last bar holding through it.
    assert rhythm["groove_template"] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.75, 0.0, 0.0, 0.0]
    assert rhythm["syncopation"]["index"] == 0.0


def test_a_bar_split_in_two_measures_keeps_its_beats() -> None:
    # 3/4 with bar 2 printed as two measures (3-5 and 5-6, as chorale editions split a bar at a fermata).
    line: Line = [(72, 1.0), (71, 1.0), (69, 1.0), (67, 2.0), (69, 1.0), (71, 3.0)]
    notes = Notes(
        events=events_of(line),
        voices=1,
        duration=9.0,
        bar_length=3.0,
        time_signature="3/4",
        measure_offsets=[0.0, 3.0, 5.0, 6.0],
        measure_numbers=[1, 2, 2, 3],
    )
    assert [span.grid_start for span in bar_spans(notes)] == [0.0, 3.0, 3.0, 6.0]
    # Onsets 0, 1, 2, 3, 5, 6: the one at 5 is beat 3 of bar 2, not a downbeat.
    assert analyze_rhythm(notes)["metric_weight"] == {"downbeat": 0.5, "beat": 0.5, "division": 0.0, "finer": 0.0}


@pytest.mark.parametrize(("name", "number"), [("bach/bwv269", None), ("bach/bwv66.6", None), ("airdsAirs/book1", 2)])
def test_rhythm_of_real_pieces_adds_up(name: str, number: int | None) -> None:
    notes = corpus_notes(name, number)
    rhythm = analyze_rhythm(notes)
    assert as_json(rhythm) == rhythm
    density = rhythm["density"]
    onsets = {round(n.offset, 6) for n in notes.events}
    assert density["onsets"] == len(onsets)
    assert density["notes"] == len(notes.events)
    assert density["per_beat"] == pytest.approx(len(onsets) * notes.beat_length / notes.duration, abs=1e-4)
    weight = rhythm["metric_weight"]
    assert weight["downbeat"] + weight["beat"] + weight["division"] + weight["finer"] == pytest.approx(1.0, abs=1e-3)
    # The template times the bars reaching each step gives back every onset (all of these lie on the grid).
    grid = metric_grid(notes)
    reach = [0] * grid.steps_per_bar
    for span in bar_spans(notes):
        for step in range(grid.steps_per_bar):
            reach[step] += span.start - 1e-6 <= span.grid_start + step * grid.step < span.end - 1e-6
    template = rhythm["groove_template"]
    assert sum(t * r for t, r in zip(template, reach, strict=True)) == pytest.approx(len(onsets), abs=0.05)
    consistency = rhythm["groove_consistency"]
    assert consistency is not None and 0.5 < consistency <= 1.0
    assert 0.0 <= rhythm["syncopation"]["index"] < 0.5  # a hymn and a march: little syncopation


# ----------------------------------------------------------------------------------------------------------------
# Melody


def test_melody_line_is_voice_zero_or_the_skyline_of_chords() -> None:
    # One part with chords: the highest note at each onset, cut where the next onset comes.
    chords = [
        NoteEvent(0.0, 2.0, 60, 0),
        NoteEvent(0.0, 2.0, 64, 0),
        NoteEvent(0.0, 2.0, 67, 0),
        NoteEvent(1.0, 1.0, 69, 0),
        NoteEvent(2.0, 2.0, 62, 0),
        NoteEvent(2.0, 2.0, 65, 0),
    ]
    line = melody_line(piece(chords, bars=1))
    assert [(n.offset, n.duration, n.pitch) for n in line] == [(0.0, 1.0, 67), (1.0, 1.0, 69), (2.0, 2.0, 65)]
    # Several parts: voice 0 even where another part goes higher.
    notes = piece([*events_of([(60, 2.0), (62, 2.0)]), *events_of([(72, 4.0)], voice=1)], bars=1, voices=2)
    assert [n.pitch for n in melody_line(notes)] == [60, 62]


@pytest.mark.parametrize(
    ("pitches", "contour"),
    [
        ([60, 62, 64, 65, 67], "ascending"),
        ([67, 65, 64, 62, 60], "descending"),
        ([60, 67, 69, 65, 60], "convex"),
        ([67, 60, 59, 62, 67], "concave"),
        ([60, 60, 61, 59, 60], "horizontal"),
        ([60, 60, 60, 60, 65], "horizontal-ascending"),
        ([65, 65, 65, 65, 60], "horizontal-descending"),
        ([60, 65, 64, 66, 65], "ascending-horizontal"),
        ([67, 62, 63, 61, 62], "descending-horizontal"),
        ([60, 64], "ascending"),
        ([60], "horizontal"),
        ([], None),
    ],
)
def test_huron_contour_classes(pitches: list[int], contour: str | None) -> None:
    assert huron_contour(pitches) == contour


def test_rising_scale_has_an_ascending_contour_and_its_steps_in_the_histogram() -> None:
    melody = analyze_melody(tiny("4/4 c4 d e f g a b c'"))
    assert melody["contour"] == "ascending"
    histogram = melody["interval_histogram"]
    counts = dict(zip(histogram["semitones"], histogram["counts"], strict=True))
    assert (counts[2], counts[1], sum(counts.values())) == (5, 2, 7)
    assert melody["range"] == {"lowest": 60, "highest": 72, "semitones": 12, "lowest_name": "C4", "highest_name": "C5"}


def test_interval_histogram_clips_leaps_beyond_an_octave() -> None:
    notes = piece(events_of([(60, 1.0), (64, 1.0), (62, 1.0), (62, 1.0), (79, 1.0), (60, 3.0)]), bars=2)
    histogram = analyze_melody(notes)["interval_histogram"]
    assert histogram["semitones"] == list(range(-12, 13))
    expected = [0] * 25
    for interval in (4, -2, 0, 12, -12):
        expected[interval + 12] += 1
    assert histogram["counts"] == expected


AMAZING_GRACE_C = (
    "3/4 G4 c2 e8 c8 e2 d4 c2 A4 G2 G4 c2 e8 c8 e2 d4 g2. g2 e4 g2 e8 c8 e2 d4 c2 A4 G2 G4 c2 e8 c8 e2 d4 c2."
)


@pytest.mark.parametrize(
    ("text", "tonic_pc", "tonic", "name"),
    [
        (AMAZING_GRACE_C, None, "C", "major pentatonic"),  # C D E G A only: pentatonic, not C major
        (AMAZING_GRACE_C, 9, "A", "minor pentatonic"),  # the same five notes heard from A
        ("4/4 a4 c' d' e' g'2 e'4 d' c' a g a c'2 a2", None, "A", "minor pentatonic"),
        ("4/4 a4 b c' d' e' f'# g' e' f'# d' b c' a2 e4 a", None, "A", "dorian"),
        ("4/4 a4 b c' d' e' f'# g' e' f'# d' b c' a2 e4 g", 9, "A", "dorian"),
        ("4/4 e4 f g a b c' d' c' b a g f e2 b4 e", None, "E", "phrygian"),
        ("4/4 f4 g a b c' d' e' f' e' d' b a f2 c'4 f", None, "F", "lydian"),
        ("4/4 g4 a b c' d' e' f' g' f' d' b c' g2 d'4 g", None, "G", "mixolydian"),
        ("4/4 a4 b c' d' e' f' g'# a' g'# f' e' d' c' b a2", None, "A", "harmonic minor"),
        ("4/4 c4 e- f f# g b- c'2 b-4 g f# f e- c c2", None, "C", "blues"),
        ("4/4 c4 d e f g a b c' b a g f e d c2", None, "C", "major"),
        ("4/4 a4 b c' d' e' f' g' a' g' f' e' d' c' b a2", None, "A", "natural minor"),
    ],
)
def test_best_scale_by_construction(text: str, tonic_pc: int | None, tonic: str, name: str) -> None:
    scale = analyze_melody(tiny(text), tonic_pc=tonic_pc)["scale"]
    assert scale is not None
    assert (scale["tonic"], scale["name"], scale["fit"]) == (tonic, name, 1.0)
    assert len(scale["alternatives"]) == 3


def test_scale_fit_is_the_duration_weighted_share_in_the_scale() -> None:
    # C, E, G and one C# lasting 1 of 16 quarter notes: C major fits 15/16; F harmonic minor (F G Ab Bb C Db E)
    # holds all four and ranks first.
    line = events_of([(60, 4.0), (64, 4.0), (61, 1.0), (67, 3.0), (72, 4.0)])
    fits = {(c.tonic, c.name): c.fit for c in fit_scales(line)}
    assert fits[(0, "major")] == 0.9375
    assert fits[(0, "minor pentatonic")] == 0.6875  # C and G only: 11 of 16
    best = analyze_melody(piece(line, bars=4))["scale"]
    assert best is not None
    assert (best["tonic"], best["name"], best["fit"], best["pitch_classes"]) == (
        "F",
        "harmonic minor",
        1.0,
        [0, 1, 4, 5, 7, 8, 10],
    )


MOTIF: Line = [(0, 0.5), (2, 0.5), (4, 1.0), (0, 2.0)]  # up 2, up 2, down 4; durations 1 : 1 : 2 : 4


def test_a_motif_repeated_three_times_is_found_with_its_offsets() -> None:
    def motif_on(root: int) -> Line:
        return [(root + step, duration) for step, duration in MOTIF]

    line: Line = [
        *motif_on(60),  # 0
        (67, 1.0),
        (72, 2.5),
        (71, 0.5),
        *motif_on(65),  # 8 (transposed)
        (64, 3.0),
        (65, 1.0),
        (69, 1.0),
        (74, 0.5),
        (72, 0.5),
        (71, 2.0),
        *motif_on(67),  # 20
        (62, 2.0),
        (60, 2.0),
    ]
    notes = piece(events_of(line), bars=7)
    motifs = analyze_melody(notes)["motifs"]
    assert motifs
    top = motifs[0]
    assert top["offsets"] == [0.0, 8.0, 20.0]
    assert (top["notes"], top["count"], top["intervals"], top["duration_ratios"]) == (4, 3, [2, 2, -4], [1.0, 2.0, 2.0])


def test_motif_occurrences_do_not_overlap() -> None:
    # Eight equal steps up: the 3-note pattern "up, up" fits at 0, 1, 2, ... but only 0, 2, 4 share no notes.
    notes = piece(events_of([(60 + 2 * i, 1.0) for i in range(7)] + [(50, 1.0)]), bars=2)
    motifs = analyze_melody(notes)["motifs"]
    assert motifs
    for motif in motifs:
        starts = [round(o) for o in motif["offsets"]]
        assert all(b - a >= motif["notes"] for a, b in itertools.pairwise(starts))


def test_phrases_end_at_rests_held_notes_and_a_maximum_length() -> None:
    rest_phrase: Line = [(60, 1), (62, 1), (64, 1), (65, 1), (67, 2), (-1, 2)]  # 0-6, rest to 8
    held_phrase: Line = [(67, 1), (65, 1), (64, 1), (62, 1), (60, 4)]  # 8-16, the long note ends it
    running: Line = [(60 + (i % 5), 0.5) for i in range(40)]  # 16-36: 20 quarter notes without a break
    notes = piece(events_of([*rest_phrase, *held_phrase, *running, (60, 4.0)]), bars=10)
    phrases = analyze_melody(notes)["phrases"]
    spans = [(p["offset"], p["end"]) for p in phrases]
    assert spans[:2] == [(0.0, 6.0), (8.0, 16.0)]
    assert phrases[1]["contour"] == "descending"
    # The 24 quarter notes of running eighths and the final note are cut into phrases of at most four bars.
    assert len(spans) >= 4
    assert all(end - offset <= 16.0 for offset, end in spans)
    assert spans[-1][1] == 40.0
    assert sum(p["notes"] for p in phrases) == 5 + 5 + 40 + 1


@pytest.mark.parametrize("name", ["bach/bwv269", "bach/bwv66.6", "bach/bwv10.7", "bach/bwv26.6"])
def test_chorale_phrases_end_at_the_fermatas(name: str) -> None:
    notes = corpus_notes(name)
    melody = analyze_melody(notes)
    assert as_json(melody) == melody
    line = melody_line(notes)
    phrases = melody["phrases"]
    assert len(phrases) >= 3
    fermata_ends = {round(n.end, 4) for n in line if any(n.offset <= f < n.end for f in notes.fermatas)}
    assert fermata_ends, "the chorale's melody carries fermatas"
    ends = [p["end"] for p in phrases]
    # Every fermata closes a phrase, and most phrases close at a fermata (a long one may be split once).
    assert fermata_ends <= set(ends)
    assert sum(end in fermata_ends for end in ends) >= 0.75 * len(ends)
    assert sum(p["notes"] for p in phrases) == len(line) == melody["notes"]
    scale = melody["scale"]
    assert scale is not None and scale["fit"] >= 0.9


@pytest.mark.parametrize("name", ["ryansMammoth/AdmiralsHornpipe", "ryansMammoth/AcaciaReel"])
def test_folk_tune_scale_matches_its_key_and_phrases_cover_the_tune(name: str) -> None:
    score = music21.corpus.parse(name)
    assert isinstance(score, music21.stream.Score)
    notes = notes_from_score(score)
    signature = next(iter(score.recurse().getElementsByClass(music21.key.KeySignature)))
    expected = signature.asKey("major")
    melody = analyze_melody(notes)
    scale = melody["scale"]
    assert scale is not None
    assert (scale["tonic"], scale["name"]) == (expected.tonic.name, "major")
    assert scale["fit"] >= 0.95
    phrases = melody["phrases"]
    assert phrases[0]["offset"] == 0.0 and phrases[-1]["end"] == pytest.approx(notes.duration, abs=0.5)
    assert all(a["end"] <= b["offset"] for a, b in itertools.pairwise(phrases))


def test_empty_piece_gives_empty_descriptors() -> None:
    notes = Notes(events=[], voices=1, duration=8.0)
    melody = analyze_melody(notes)
    assert (melody["notes"], melody["contour"], melody["range"], melody["scale"]) == (0, None, None, None)
    assert melody["motifs"] == [] and melody["phrases"] == []
    rhythm = analyze_rhythm(notes)
    assert rhythm["density"] == {"onsets": 0, "notes": 0, "per_beat": 0.0, "per_bar": 0.0}
    assert analyze_form(notes) == [{"offset": 0.0, "end": 8.0, "label": "A", "bars": 2}]


def test_a_midi_file_gets_times_in_seconds(tmp_path: Path) -> None:
    # MIDI always has a tempo: the chorale comes back at music21's 96 quarter notes per minute.
    score = music21.corpus.parse("bach/bwv66.6")
    midi = tmp_path / "chorale.mid"
    score.write("midi", fp=str(midi))
    parsed = music21.converter.parse(str(midi))
    assert isinstance(parsed, music21.stream.Score)
    notes = notes_from_score(parsed)
    seconds_per_quarter = 60.0 / notes.tempo_map[0][1]
    density = analyze_rhythm(notes)["density"]
    assert density.get("per_second") == round(density["onsets"] / (notes.duration * seconds_per_quarter), 4)
    phrases = analyze_melody(notes)["phrases"]
    sections = analyze_form(notes)
    assert phrases and sections
    for entry in [*phrases, *sections]:
        assert entry.get("time") == pytest.approx(entry["offset"] * seconds_per_quarter, abs=1e-3)
        assert entry.get("end_time") == pytest.approx(entry["end"] * seconds_per_quarter, abs=1e-3)


# ----------------------------------------------------------------------------------------------------------------
# Form

C, AM, F, G, DM, E7 = (
    (48, 52, 55),
    (45, 48, 52),
    (41, 45, 48),
    (43, 47, 50),
    (50, 53, 57),
    (40, 44, 47, 50),
)
BLOCK_A: Block = (
    [C, AM, F, G, C, F, G, C],
    [
        [(72, 1.0), (74, 1.0), (76, 2.0)],
        [(76, 1.0), (72, 1.0), (69, 2.0)],
        [(69, 0.5), (71, 0.5), (72, 1.0), (77, 2.0)],
        [(74, 2.0), (71, 2.0)],
        [(72, 1.0), (76, 1.0), (79, 1.0), (76, 1.0)],
        [(77, 2.0), (76, 1.0), (74, 1.0)],
        [(74, 1.0), (71, 1.0), (67, 2.0)],
        [(72, 4.0)],
    ],
)
BLOCK_B: Block = (
    [DM, G, E7, AM, DM, G, C, G],
    [
        [(77, 3.0), (76, 1.0)],
        [(74, 1.0), (74, 1.0), (74, 1.0), (71, 1.0)],
        [(71, 2.0), (68, 2.0)],
        [(69, 4.0)],
        [(65, 1.0), (69, 1.0), (74, 1.0), (72, 1.0)],
        [(71, 0.5), (72, 0.5), (74, 1.0), (79, 2.0)],
        [(76, 1.5), (74, 0.5), (72, 2.0)],
        [(71, 2.0), (67, 1.0), (74, 1.0)],
    ],
)
FS, B, CS, DSM = (54, 58, 61), (47, 51, 54), (49, 53, 56), (51, 54, 58)
BLOCK_FAR: Block = (  # new material in F sharp major, far from A's C major
    [FS, B, CS, FS, DSM, B, CS, FS],
    [
        [(78, 3.0), (73, 1.0)],
        [(71, 1.0), (75, 1.0), (78, 2.0)],
        [(77, 1.0), (73, 1.0), (68, 1.0), (73, 1.0)],
        [(70, 4.0)],
        [(75, 2.0), (70, 2.0)],
        [(71, 1.0), (66, 1.0), (71, 1.0), (75, 1.0)],
        [(68, 2.0), (73, 2.0)],
        [(66, 4.0)],
    ],
)
# A with the melody of its sixth bar changed (same chord and rhythm): a close variant.
BLOCK_A_VARIED: Block = (BLOCK_A[0], [*BLOCK_A[1][:6], [(79, 1.0), (77, 1.0), (74, 2.0)], BLOCK_A[1][7]])


def form_piece(blocks: Sequence[Block]) -> Notes:
    events: list[NoteEvent] = []
    bar = 0
    for chords, melodies in blocks:
        for chord, melody in zip(chords, melodies, strict=True):
            events += [NoteEvent(bar * 4.0, 4.0, pitch, 1) for pitch in chord]
            events += events_of(melody, start=bar * 4.0)
            bar += 1
    return piece(events, bars=bar, voices=2)


@pytest.mark.parametrize(
    ("blocks", "labels"),
    [
        ([BLOCK_A, BLOCK_A, BLOCK_B, BLOCK_A], ["A", "A", "B", "A"]),
        ([BLOCK_A, BLOCK_FAR, BLOCK_A], ["A", "B", "A"]),
        ([BLOCK_A, BLOCK_A_VARIED, BLOCK_B, BLOCK_A], ["A", "A'", "B", "A"]),
        ([BLOCK_A, BLOCK_FAR], ["A", "B"]),
    ],
)
def test_sections_of_pieces_built_from_8_bar_blocks(blocks: list[Block], labels: list[str]) -> None:
    sections = analyze_form(form_piece(blocks))
    assert as_json(sections) == sections
    assert [s["label"] for s in sections] == labels
    assert [(s["offset"], s["end"], s["bars"]) for s in sections] == [
        (32.0 * i, 32.0 * (i + 1), 8) for i in range(len(blocks))
    ]


def test_repeated_blocks_are_found_at_their_lags() -> None:
    notes = form_piece([BLOCK_A, BLOCK_A, BLOCK_B, BLOCK_A])
    similarity = self_similarity(bar_features(notes, bar_spans(notes)))
    found = {(r.start, r.lag, r.length) for r in find_repeats(similarity, 4)}
    # A at bars 0, 8 and 24: every pair of copies, each 8 bars long.
    assert {(0, 8, 8), (0, 24, 8), (8, 16, 8)} <= found
    assert all(start + lag + length <= 32 and length <= lag for start, lag, length in found)


def test_a_piece_of_one_repeated_bar_is_one_section() -> None:
    # An ostinato repeats at every lag: no structure to find in that.
    bar: Line = [(72, 1.0), (76, 0.5), (79, 0.5), (76, 2.0)]
    events = [event for i in range(16) for event in events_of(bar, start=4.0 * i)]
    events += [NoteEvent(4.0 * i, 4.0, pitch, 1) for i in range(16) for pitch in C]
    assert analyze_form(piece(events, bars=16, voices=2)) == [{"offset": 0.0, "end": 64.0, "label": "A", "bars": 16}]


def test_piece_under_four_bars_is_one_section() -> None:
    notes = tiny("4/4 c4 d e f g a b c' d' e' f' g'")
    assert analyze_form(notes) == [{"offset": 0.0, "end": 12.0, "label": "A", "bars": 3}]


def test_sections_carry_times_where_the_piece_has_a_tempo() -> None:
    notes = form_piece([BLOCK_A, BLOCK_A, BLOCK_B, BLOCK_A])
    notes.tempo_map = [(0.0, 120.0)]
    sections = analyze_form(notes)
    assert [(s["time"], s["end_time"]) for s in sections] == [(16.0 * i, 16.0 * (i + 1)) for i in range(4)]


@pytest.mark.parametrize(
    ("name", "number"),
    [("bach/bwv269", None), ("bach/bwv10.7", None), ("ryansMammoth/AdmiralsHornpipe", None), ("airdsAirs/book1", 2)],
)
def test_sections_of_real_pieces_tile_the_piece(name: str, number: int | None) -> None:
    notes = corpus_notes(name, number)
    sections = analyze_form(notes)
    assert as_json(sections) == sections
    assert sections[0]["offset"] == 0.0 and sections[-1]["end"] == pytest.approx(notes.duration, abs=1e-4)
    assert all(a["end"] == b["offset"] for a, b in itertools.pairwise(sections))
    assert sum(s["bars"] for s in sections) == len(bar_spans(notes))
    # Letters come in order of first appearance: A first, then B, C, ...
    letters: list[str] = []
    for section in sections:
        letter = section["label"].rstrip("'")
        if letter not in letters:
            letters.append(letter)
    assert letters == [chr(ord("A") + i) for i in range(len(letters))]
