"""Issue 11's must-show for generated MIDI, on a sample of its cases: the generator's files read back by music21 (not
by idaw.theory) establish the key asked, voice chords without parallel fifths or octaves, keep melody and bass apart,
and cadence at phrase ends; with the theory layer off (--no-theory) the same nets do not. The full run (24 keys ×
4 moods × 3 seeds, with MusPy's metrics against the corpus) is `python -m realtime.midi_theory_check`; its figures are
in the README. Also: the generated progression table matches the corpus it comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idaw.theory import export_progressions
from realtime import midi_offline, midi_settings
from realtime import midi_theory_check as check
from tests.support.needs import need

CASES = [
    check.Case(key, valence, arousal, seed)
    for key, seed in (("C:major", 1), ("A:minor", 2), ("F#:major", 3), ("Eb:minor", 1), ("Bb:major", 2))
    for valence, arousal in ((-0.6, -0.6), (0.6, 0.6))
]
"""Ten cases: both modes, sharp and flat keys, calm-sad and excited-happy corners."""
BARS = 32


def run_all(folder: Path, theory: bool) -> list[dict[str, Any]]:
    folder.mkdir()
    return [check.run_case(case, folder, BARS, 120.0, theory) for case in CASES]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    folder = midi_settings.DEFAULT_MODELS
    need(all((folder / f"{n}.json").is_file() for n in midi_settings.NETS), f"no trained nets in {folder}")
    base = tmp_path_factory.mktemp("generation")
    return {"on": run_all(base / "on", True), "off": run_all(base / "off", False)}


def test_the_key_asked_is_the_key_heard(rows: dict[str, list[dict[str, Any]]]) -> None:
    heard = [(r["key"], r["key_heard"]) for r in rows["on"] if not r["key_match"]]
    assert heard == [], heard  # issue 11: >= 95 % of runs; in this sample every one
    off = sum(r["key_match"] for r in rows["off"])
    assert off < len(CASES)  # the nets alone miss keys: the layer is what establishes them


def test_no_parallel_fifths_or_octaves(rows: dict[str, list[dict[str, Any]]]) -> None:
    for row in rows["on"]:
        voicings, outer = row["chord_voicings"], row["melody_bass"]
        assert voicings["voice_pairs"] >= 60 and voicings["parallels"] == 0, (row["key"], voicings)
        assert outer["voice_pairs"] >= 10, (row["key"], outer)
    pairs = sum(r["melody_bass"]["voice_pairs"] for r in rows["on"])
    parallels = sum(r["melody_bass"]["parallels"] for r in rows["on"])
    assert parallels * 100 <= pairs  # at most 1 per 100 voice pairs between melody and bass
    assert sum(r["chord_voicings"]["parallels"] for r in rows["off"]) > 0


def test_phrases_end_on_authentic_or_half_cadences(rows: dict[str, list[dict[str, Any]]]) -> None:
    ends = sum(r["cadences"]["phrase_ends"] for r in rows["on"])
    cadences = sum(r["cadences"]["authentic"] + r["cadences"]["half"] for r in rows["on"])
    assert ends == len(CASES) * BARS // check.PHRASE_BARS
    assert cadences >= 0.8 * ends
    for row in rows["on"]:  # every 8 bars close on the tonic: the piece ends on an authentic cadence
        assert row["cadences"]["ends"][-1]["type"] == "authentic", row["cadences"]
    off = sum(r["cadences"]["authentic"] + r["cadences"]["half"] for r in rows["off"])
    assert off < cadences


def test_four_tracks_in_every_file(rows: dict[str, list[dict[str, Any]]]) -> None:
    for row in rows["on"]:
        assert row["parts_from"] == "track names"
        notes = row["notes"]
        assert notes["melody"] >= 32 and notes["chords"] == BARS and notes["bass"] >= BARS and notes["drums"] >= BARS


def test_the_layer_counts_the_net_choices_it_kept(rows: dict[str, list[dict[str, Any]]]) -> None:
    on = check.summarize(rows["on"], None)["kept"]
    off = check.summarize(rows["off"], None)["kept"]
    assert off["chords_kept"] == off["chord_choices"] > 0 and off["melody_kept"] == off["melody_choices"] > 0
    assert 0 < on["chords_kept"] < on["chord_choices"]  # it filters, it does not replace the net
    assert 0 < on["melody_kept"] < on["melody_choices"]


def test_the_summary_says_how_many_net_choices_the_layer_kept() -> None:
    counters = {"chords_kept": 21, "chord_choices": 32, "melody_kept": 180, "melody_choices": 240}
    assert midi_offline.theory_kept(counters) == "21 of 32 chords and 180 of 240 melody notes"
    assert midi_offline.theory_kept({**counters, "chord_choices": 0, "melody_choices": 0}) == ""


def test_the_progression_table_is_generated_from_the_corpus() -> None:
    assert export_progressions.main(["--check"]) == 0
    major = export_progressions.change_table("major")
    names = [name for name, *_ in export_progressions.FUNCTIONAL_CHORDS["major"]]
    # In Bach's chorales V goes to I (or gains its seventh) more than anywhere else, and V7 goes to I.
    v, v7 = major[names.index("V")], major[names.index("V7")]
    others = [i for i, name in enumerate(names) if name not in ("I", "V", "V7")]
    assert v[names.index("I")] > max(v[i] for i in others)
    assert names[int(v7.argmax())] == "I"
