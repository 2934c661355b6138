"""The MIDI theory check (realtime/midi_theory_check.py) reads files right: MIDI files written here with mido, whose
parts, key, parallels, cadences and metrics are known by construction, read back to exactly that; then one small
run of the real generator through the whole harness (fields and ranges only: the generator's quality is what the
harness measures, not what these tests hold)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mido
import music21
import pytest

import idaw_core
from realtime import midi_theory_check as check
from tests.support.needs import need_module

need_module("muspy", "install it with: pip install muspy (it is in the project's test extras)")

PPQ = 480
BAR = 4 * PPQ
LEAD_IN = 300
"""Ticks before bar 1 (the generator's grid also starts a lookahead after tick 0)."""
STRUM_MS = (0, 12, 24, 36)
"""Roll of a strummed chord, lowest note first (ms; at 120 BPM a tick is 1.04 ms)."""

Note = tuple[int, int, int, int]
"""(channel, pitch, start tick, end tick)."""

# C major, two phrases: I IV V I | vi IV I V. Root in the bass, three upper voices (the generator's layout).
PROGRESSION = (
    (36, 48, 52, 55),
    (41, 48, 53, 57),
    (43, 47, 50, 55),
    (36, 48, 52, 55),
    (45, 48, 52, 57),
    (41, 48, 53, 57),
    (36, 48, 52, 55),
    (43, 47, 50, 55),
)
MELODY = (
    (64, 62, 60, 62),
    (69, 67, 65, 64),
    (71, 67, 62, 65),
    (72, 67, 64, 60),
    (72, 71, 69, 67),
    (69, 72, 71, 69),
    (64, 67, 72, 67),
    (71, 74, 67, 62),
)
"""Four quarter notes a bar. Downbeats against the bass (C F G C A F C G): thirds and sixths, never a fifth or octave
after a fifth or octave, so no melody-bass parallels; 7 chord changes, each one voice pair."""
EARLY_CHORD_TICKS = {0: -48, 4: -29}
"""Bar index -> how early its chord is struck: the first note of all comes 50 ms early (so bar 1 is not simply the
first onset), and bar 5's vi opens phrase 2 about 30 ms early (read without the onset tolerance, phrase 1 would end
I-vi, no cadence)."""

# By hand: voice pairs with at least one moving voice, per change of voicing: I-IV 6, IV-V 6, V-I 6, I-vi 5 (C and E
# stay), vi-IV 5 (C and A stay), IV-I 6, I-V 6.
VOICE_PAIRS_WITH_ROOT = 40
# Without the root (upper three voices): I-IV 3, IV-V 3, V-I 3, I-vi 2, vi-IV 2, IV-I 3, I-V 3.
VOICE_PAIRS_UPPER = 19


def bar_start(index: int) -> int:
    """Tick of bar `index` (0-based)."""
    return LEAD_IN + index * BAR


def ms_ticks(ms: float) -> int:
    """Ticks of `ms` milliseconds at 120 BPM."""
    return round(ms / 500 * PPQ)


def melody_notes(channel: int, melody: Sequence[Sequence[int]] = MELODY, late_ms: float = 5) -> list[Note]:
    """Quarter notes (450 ticks long), the downbeat `late_ms` after the bar line."""
    notes = []
    for bar, pitches in enumerate(melody):
        for beat, pitch in enumerate(pitches):
            start = bar_start(bar) + beat * PPQ + (ms_ticks(late_ms) if beat == 0 else 0)
            notes.append((channel, pitch, start, bar_start(bar) + beat * PPQ + 450))
    return notes


def strummed_chords(channel: int, chords: Sequence[Sequence[int]] = PROGRESSION) -> list[Note]:
    """Each chord rolled upwards from its bar line (or EARLY_CHORD_TICKS before it), held to just before the next."""
    notes = []
    for bar, pitches in enumerate(chords):
        start = bar_start(bar) + EARLY_CHORD_TICKS.get(bar, 0)
        for pitch, ms in zip(pitches, STRUM_MS, strict=False):
            notes.append((channel, pitch, start + ms_ticks(ms), bar_start(bar + 1) - 10))
    return notes


def write_midi(path: Path, tracks: Sequence[tuple[str, Sequence[Note]]]) -> Path:
    """A standard MIDI file (type 0 with one track, else type 1) at 120 BPM in 4/4; an empty name writes no
    track_name."""
    midi = mido.MidiFile(type=0 if len(tracks) == 1 else 1, ticks_per_beat=PPQ)
    for index, (name, notes) in enumerate(tracks):
        timed: list[tuple[int, int, mido.Message]] = []
        for channel, pitch, start, end in notes:
            timed.append((start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=80)))
            timed.append((end, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
        timed.sort(key=lambda t: (t[0], t[1]))
        track = mido.MidiTrack()
        if name:
            track.append(mido.MetaMessage("track_name", name=name, time=0))
        if index == 0:
            track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
            track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        now = 0
        for tick, _, message in timed:
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(str(path))
    return path


def entropy(pitches: Sequence[int]) -> float:
    """Shannon entropy (bits) of the pitch-class histogram, by the definition."""
    counts = Counter(p % 12 for p in pitches)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def all_pitches(melody: Sequence[Sequence[int]], chords: Sequence[Sequence[int]]) -> list[int]:
    """Every pitch of a constructed piece."""
    return [p for bar in melody for p in bar] + [p for chord in chords for p in chord]


def test_one_track_melody_and_strummed_chords_read_as_constructed(tmp_path: Path) -> None:
    """Today's layout: one track, channel 0, melody over strummed chords. The strum heuristic must give back the
    eight constructed voicings and the 32 melody notes; key, parallels, cadences and metrics then equal the truth."""
    path = write_midi(tmp_path / "one.mid", [("idaw", melody_notes(0) + strummed_chords(0))])
    parts = check.split_parts(check.read_midi(path))
    assert parts.source == "channels + strum heuristic; bass = lowest chord note"
    assert [c.pitches for c in parts.chords] == list(PROGRESSION)
    assert [n.pitch for n in parts.melody] == [p for bar in MELODY for p in bar]
    assert abs(parts.origin_q - LEAD_IN / PPQ) < 0.1 * check.GRID_Q  # on the grid, not at the early first note

    row = check.check_file(path, "C:major")
    assert row["notes"] == {"melody": 32, "chords": 8, "chord_notes": 32, "bass": 0, "drums": 0, "other": 0}
    assert (row["key_heard"], row["key_match"]) == ("C major", True)
    voicings = row["chord_voicings"]
    assert (voicings["parallels"], voicings["voice_pairs"], voicings["transitions"]) == (0, VOICE_PAIRS_WITH_ROOT, 7)
    assert voicings["unequal_skipped"] == 0
    assert (row["melody_bass"]["parallels"], row["melody_bass"]["voice_pairs"]) == (0, 7)
    cadences = row["cadences"]
    assert (cadences["phrase_ends"], cadences["authentic"], cadences["half"], cadences["share"]) == (2, 1, 1, 1.0)
    assert cadences["ends"] == [
        {"bar": 4, "chords": ["V", "I"], "type": "authentic"},
        {"bar": 8, "chords": ["I", "V"], "type": "half"},
    ]
    metrics = row["metrics"]
    assert metrics["pitch_class_entropy"] == pytest.approx(entropy(all_pitches(MELODY, PROGRESSION)))
    assert metrics["scale_consistency"] == 1.0
    # Every bar has the same composed rhythm (quarter notes, a chord on the downbeat): rolls and early chords are
    # performance, inside half a sixteenth of the grid, so every bar reads {0, 4, 8, 12} and nothing differs. (Bar 1
    # taken at the first onset, 48 ticks early, would push the 35-tick roll notes 83 ticks late: the next step.)
    assert metrics["groove_consistency"] == 1.0
    assert check.check_file(path, "G:major")["key_match"] is False


def four_track_notes(channels: tuple[int, int, int, int]) -> list[list[Note]]:
    """Melody, chords (upper three voices), bass (whole-bar roots) and drums (kick 1+3, snare 2+4, hats in eighths:
    pitches 36, 38 and 42, i.e. C, D and F#, which must count for no key and no pitch metric) on the given
    channels."""
    melody_ch, chord_ch, bass_ch, drum_ch = channels
    upper = [chord[1:] for chord in PROGRESSION]
    bass = [(bass_ch, chord[0], bar_start(bar), bar_start(bar + 1) - 10) for bar, chord in enumerate(PROGRESSION)]
    drums = []
    for bar in range(len(PROGRESSION)):
        for beat in range(4):
            drums.append((drum_ch, 36 if beat % 2 == 0 else 38, bar_start(bar) + beat * PPQ, bar_start(bar) + 60))
        for eighth in range(8):
            tick = bar_start(bar) + eighth * PPQ // 2
            drums.append((drum_ch, 42, tick, tick + 60))
    return [melody_notes(melody_ch), strummed_chords(chord_ch, upper), bass, drums]


@pytest.mark.parametrize(
    ("names", "channels", "source"),
    [
        (("Melody", "Chords", "Bass", "Drums"), (0, 0, 0, 0), "track names"),  # names win over channels
        (("", "", "", ""), (0, 1, 2, 9), "channels"),
    ],
)
def test_four_parts_read_by_track_name_or_channel(
    tmp_path: Path, names: tuple[str, ...], channels: tuple[int, int, int, int], source: str
) -> None:
    """The four-track layout: parts come from track names when the tracks are named (here all on channel 0, where
    channels alone would call everything melody), else from the channels 0/1/2/9. The bass part, not the chords'
    lowest note, is the bass; drums count for no key, voice or pitch-class entropy (which equals the pitched
    notes')."""
    notes = four_track_notes(channels)
    path = write_midi(tmp_path / "four.mid", list(zip(names, notes, strict=True)))
    row = check.check_file(path, "C:major")
    assert row["parts_from"] == source
    assert row["notes"] == {"melody": 32, "chords": 8, "chord_notes": 24, "bass": 8, "drums": 96, "other": 0}
    assert (row["key_heard"], row["key_match"]) == ("C major", True)
    voicings = row["chord_voicings"]
    assert (voicings["parallels"], voicings["voice_pairs"], voicings["transitions"]) == (0, VOICE_PAIRS_UPPER, 7)
    assert (row["melody_bass"]["parallels"], row["melody_bass"]["voice_pairs"]) == (0, 7)
    assert [e["type"] for e in row["cadences"]["ends"]] == ["authentic", "half"]
    assert row["metrics"]["pitch_class_entropy"] == pytest.approx(entropy(all_pitches(MELODY, PROGRESSION)))


def test_parallel_fifths_and_octaves_counted_where_constructed(tmp_path: Path) -> None:
    """Root-position triads with doubled roots stepping up C-Dm-Em-F: each change moves root-fifth in parallel
    fifths and root-root in parallel octaves (3 + 3 of 3 x 6 voice pairs); the melody doubles the bass two octaves
    up at every downbeat: 3 parallel octaves in 3 melody-bass pairs."""
    chords = ((48, 52, 55, 60), (50, 53, 57, 62), (52, 55, 59, 64), (53, 57, 60, 65))
    melody = ((72, 79, 77, 76), (74, 81, 79, 77), (76, 83, 81, 79), (77, 84, 81, 79))
    path = write_midi(tmp_path / "fifths.mid", [("", melody_notes(0, melody) + strummed_chords(0, chords))])
    row = check.check_file(path, "C:major")
    voicings = row["chord_voicings"]
    assert (voicings["parallel_fifths"], voicings["parallel_octaves"], voicings["voice_pairs"]) == (3, 3, 18)
    assert voicings["per_100_pairs"] == pytest.approx(100 * 6 / 18)
    assert voicings["at"] == pytest.approx([4.0, 4.0, 8.0, 8.0, 12.0, 12.0], abs=0.05)  # bar 1 from the grid fit
    melody_bass = row["melody_bass"]
    assert (melody_bass["parallel_fifths"], melody_bass["parallel_octaves"], melody_bass["voice_pairs"]) == (0, 3, 3)
    assert melody_bass["at"] == pytest.approx([4.0, 8.0, 12.0], abs=0.05)


def test_a_minor_piece_is_heard_in_a_minor_and_cadences_there(tmp_path: Path) -> None:
    """i-iv-V-i in A minor with the raised leading tone: music21 hears A minor (so asking for C major is a miss),
    and the phrase ends on an authentic cadence in A minor but on none when read in C major (iii-vi)."""
    chords = ((45, 48, 52, 57), (38, 50, 53, 57), (40, 47, 52, 56), (45, 48, 52, 57))
    melody = ((72, 71, 69, 71), (74, 72, 71, 69), (71, 68, 64, 68), (69, 64, 60, 64))
    path = write_midi(tmp_path / "minor.mid", [("", melody_notes(0, melody) + strummed_chords(0, chords))])
    minor = check.check_file(path, "A:minor")
    assert (minor["key_heard"], minor["key_match"]) == ("A minor", True)
    assert minor["cadences"]["ends"][0]["type"] == "authentic"
    assert minor["cadences"]["ends"][0]["chords"][-1] == "i"
    major = check.check_file(path, "C:major")
    assert major["key_match"] is False
    assert major["cadences"]["ends"][0]["type"] == "none"


def chord_of(pitches: Sequence[int]) -> check.Chord:
    """A Chord of simultaneous notes (times do not matter to Roman numerals)."""
    return check.Chord(tuple(check.HeardNote(p, 0, 0, 0.0, 1.0, 0.0, 0.5) for p in sorted(pitches)))


@pytest.mark.parametrize(
    ("key", "before", "last", "expected"),
    [
        ("C:major", (43, 47, 50), (48, 52, 55), "authentic"),  # V - I
        ("C:major", (43, 47, 50, 53), (48, 52, 55), "authentic"),  # V7 - I
        ("C:major", (47, 50, 53), (48, 52, 55), "authentic"),  # viio - I
        ("C:major", (41, 45, 48), (43, 47, 50), "half"),  # IV - V
        ("C:major", (41, 45, 48), (48, 52, 55), "none"),  # IV - I (plagal: not counted)
        ("C:major", (43, 47, 50), (45, 48, 52), "none"),  # V - vi (deceptive)
        ("A:minor", (40, 44, 47), (45, 48, 52), "authentic"),  # V - i with G#
        ("A:minor", (40, 43, 47), (45, 48, 52), "modal"),  # v - i: no leading tone
        ("Eb:major", (46, 50, 53), (51, 55, 58), "authentic"),  # Bb - Eb
        ("F#:minor", (37, 41, 44), (42, 45, 49), "authentic"),  # C# (E#) - f#
    ],
)
def test_cadence_types_from_music21_roman_numerals(
    key: str, before: tuple[int, ...], last: tuple[int, ...], expected: str
) -> None:
    """The two last chords of a phrase, read by music21's romanNumeralFromChord in the key asked, give the cadence
    type of the module docstring."""
    asked = check.music21_key(key)
    kind = check.cadence_type(check.roman_numeral(chord_of(before), asked), check.roman_numeral(chord_of(last), asked))
    assert kind == expected


@pytest.mark.parametrize(
    ("quartet", "key", "expected"),
    [
        ((67, 69, 60, 62), "C:major", (True, False)),  # G/C -> A/D: parallel fifths
        ((79, 81, 60, 62), "C:major", (True, False)),  # compound fifths (twelfths)
        ((72, 74, 60, 62), "C:major", (False, True)),  # parallel octaves
        ((60, 74, 60, 62), "C:major", (False, True)),  # unison to octave in similar motion
        ((67, 72, 60, 53), "C:major", (False, False)),  # fifth to twelfth in contrary motion
        ((67, 67, 60, 60), "C:major", (False, False)),  # a repeated fifth does not move
        ((63, 65, 56, 58), "C:major", (True, False)),  # Ab/Eb -> Bb/F: a fifth even outside the key's notes
        ((68, 70, 61, 63), "E:major", (True, False)),  # G#/C# -> A#/D# in a sharp key
    ],
)
def test_parallels_by_music21_quartets(
    quartet: tuple[int, int, int, int], key: str, expected: tuple[bool, bool]
) -> None:
    """(parallel fifth, parallel octave) of (upper before, upper after, lower before, lower after): music21's
    VoiceLeadingQuartet on pitches spelled together, similar motion only."""
    asked = check.music21_key(key)
    assert check.parallels(*quartet, asked.tonic.pitchClass, asked.mode) == expected


def test_corpus_score_metrics_start_bars_after_the_pickup() -> None:
    """A 4/4 ABC tune with a one-beat pickup, then bars of 4 quarters, 2 halves, 2 quarters and a half. From the bar
    line the onsets per bar (4 steps a beat) are {12}, {0, 4, 8, 12}, {0, 8}, {0, 4, 8}: Hamming 3 + 2 + 1 over 3
    pairs of 16 steps. Counted from the pickup instead it would be 3 over 2 pairs (1 - 3/32)."""
    text = "X:1\nT:pickup\nM:4/4\nL:1/4\nK:C\nG | c d e f | e2 d2 | c B c2 |]\n"
    score = music21.converter.parseData(text, format="abc")  # as the corpus's folk songs are read
    assert isinstance(score, music21.stream.Score)
    metrics = check.score_metrics(score)
    assert metrics["groove_consistency"] == pytest.approx(1 - 6 / (3 * 16))
    assert metrics["scale_consistency"] == 1.0
    assert metrics["pitch_class_entropy"] == pytest.approx(entropy([67, 72, 74, 76, 77, 76, 74, 72, 71, 72]))


def test_reference_reads_chorales_and_folk_songs_from_the_corpus() -> None:
    """A small reference from music21's corpus: the pieces asked for, metrics in their ranges, quartiles ordered."""
    reference = check.reference_metrics(chorales=2, folk=4)
    pieces = reference["pieces"]
    assert (len(pieces["chorales"]), len(pieces["folk"])) == (2, 4)
    assert pieces["folk"][0]["name"] == f"{check.FOLK_SOURCES[0]}#1"
    for piece in pieces["chorales"] + pieces["folk"]:
        values = piece["metrics"]
        assert 0 < values["pitch_class_entropy"] <= math.log2(12)
        assert 0.5 < values["scale_consistency"] <= 1.0
        assert 0 < values["groove_consistency"] <= 1.0
    for corpus in ("chorales", "folk", "pooled"):
        for metric in check.METRICS:
            low, high = reference["iqr"][corpus][metric]
            assert low <= high


def assert_row_is_sane(row: dict[str, Any]) -> None:
    """Every field of a generated case's row, with types and ranges (no quality threshold)."""
    assert row["notes_written"] > 0
    kept = row["kept"]  # the generator's own count of the nets' choices and of those the theory layer kept
    assert kept["chord_choices"] >= 4 and 0 <= kept["chords_kept"] <= kept["chord_choices"]
    assert kept["melody_choices"] > 0 and 0 <= kept["melody_kept"] <= kept["melody_choices"]
    notes = row["notes"]
    assert sum(notes[k] for k in ("melody", "chord_notes", "bass", "drums", "other")) == row["notes_written"]
    assert isinstance(row["key_heard"], str) and isinstance(row["key_match"], bool)
    for name in ("chord_voicings", "melody_bass"):
        counts = row[name]
        assert counts["parallels"] == counts["parallel_fifths"] + counts["parallel_octaves"] <= counts["voice_pairs"]
        assert counts["per_100_pairs"] is None or 0 <= counts["per_100_pairs"] <= 100
    cadences = row["cadences"]
    assert cadences["phrase_ends"] == 1  # 4 bars rendered: one whole phrase and nothing of a fifth bar
    assert sum(cadences[k] for k in ("authentic", "half", "modal", "none")) == 1
    assert 0 <= cadences["share"] <= 1
    metrics = row["metrics"]
    assert 0 < metrics["pitch_class_entropy"] <= math.log2(12)
    assert 0 < metrics["scale_consistency"] <= 1 and 0 < metrics["groove_consistency"] <= 1


def test_generated_case_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real generator, 1 key x 1 mood x 1 seed x 4 bars, through the command: exit 0, a table on stdout, one
    row with every field, the summary's four goals; the file is 4 bars long from its first note."""
    out = tmp_path / "json"
    case = ["--keys", "D:minor", "--moods=0.6:-0.6", "--seeds", "2", "--bars", "4", "--chorales", "0", "--folk", "0"]
    code = check.main([*case, "--out", str(tmp_path / "files"), "--json", str(out)])
    assert code == 0
    assert "key heard = key asked" in capsys.readouterr().out
    document = json.loads(out.read_text())
    (row,) = document["rows"]
    assert (row["key"], row["valence"], row["arousal"], row["seed"]) == ("D:minor", 0.6, -0.6, 2)
    assert_row_is_sane(row)
    reading = check.read_midi(row["file"])
    first = min(n.start_q for n in reading.notes)
    assert 12 <= max(n.start_q for n in reading.notes) - first < 16
    parts = check.split_parts(reading)
    # Four named tracks (melody, chords, bass, drums), each in the generator's own register.
    assert parts.source == "track names"
    for notes, (low, high) in (
        ([n for c in parts.chords for n in c.notes], idaw_core.MIDI_CHORD_RANGE),
        (parts.melody, idaw_core.MIDI_MELODY_RANGE),
        (parts.bass, idaw_core.MIDI_BASS_RANGE),
    ):
        assert notes and all(low <= n.pitch <= high for n in notes)
    assert parts.drums
    assert len(document["summary"]["goals"]) == 4 and document["summary"]["runs"] == 1

    # Again against a stored reference (--reference): a pooled entropy range no run can be in, wide ranges otherwise.
    wide = {metric: [0.0, 10.0] for metric in check.METRICS}
    iqr = {"chorales": wide, "folk": wide, "pooled": {**wide, "pitch_class_entropy": [10.0, 11.0]}}
    stored = tmp_path / "reference.json"
    stored.write_text(json.dumps({"reference": {"pieces": {"chorales": [], "folk": []}, "iqr": iqr}}))
    assert check.main([*case, "--reference", str(stored), "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["rows"][0]["inside_iqr"]["pitch_class_entropy"] == {"chorales": True, "folk": True, "pooled": False}
    goals = {g["goal"]: (g["value"], g["met"]) for g in document["summary"]["goals"]}
    assert goals["pitch_class_entropy: runs in corpus IQR"] == (0.0, False)
    assert goals["scale_consistency: runs in corpus IQR"] == (1.0, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["--keys", "H:major"],
        ["--keys", "C:dorian"],
        ["--moods=2:0"],
        ["--moods", "calm"],
        ["--seeds", "one"],
        ["--bars", "2"],
        ["--reference", "/nonexistent/reference.json"],
    ],
)
def test_bad_options_give_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option: exit 2 and one line on stderr, before anything is generated."""
    assert check.main([*argv, "--chorales", "0", "--folk", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("midi_theory_check: error:") and "\n" not in err
