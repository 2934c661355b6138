"""The acoustic chord model (idaw.listen.chord_model): what it computes, the shipped weights, bad weight files, and
`idaw train chords` end to end on a few rendered pieces."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from idaw.base.errors import IdawError
from idaw.listen import chord_model
from idaw.listen.evaluate import chord_label
from idaw.listen.train_chords import parse_chord
from idaw.theory.harmony import CHORD_TYPES
from idaw.theory.pitch_names import PITCH_NAMES
from idaw.theory.progressions import QUALITIES
from tests.support.idaw_command import RunIdaw, one_error_line
from tests.support.needs import need, need_module, need_program
from tests.support.weights_files import weights_file


def shipped() -> chord_model.ChordModel:
    need(chord_model.WEIGHTS_PATH.is_file(), f"{chord_model.WEIGHTS_PATH} is missing: run `idaw train chords`")
    model = chord_model.shipped()
    assert model is not None
    return model


def triad_chroma(root: int, quality: str, bass_interval: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Treble and bass chroma of a plain chord: its tones at 1.0, the bass on one of them."""
    treble = np.zeros((1, 12))
    for interval in CHORD_TYPES[quality]:
        treble[0, (root + interval) % 12] = 1.0
    bass = np.zeros((1, 12))
    bass[0, (root + bass_interval) % 12] = 1.0
    return treble, bass


def test_log_probabilities_sum_to_one_and_follow_a_transposition() -> None:
    model = shipped()
    rng = np.random.default_rng(3)
    treble, bass = rng.random((5, 12)), rng.random((5, 12))
    log_probs = model.log_probs(treble, bass)
    assert log_probs.shape == (5, 12, len(QUALITIES))
    assert np.allclose(np.exp(log_probs).sum(axis=(1, 2)), 1.0)
    for shift in (1, 5, 11):  # the same chroma a few semitones up: the same chords, their roots moved
        moved = model.log_probs(np.roll(treble, shift, axis=1), np.roll(bass, shift, axis=1))
        assert np.allclose(moved, np.roll(log_probs, shift, axis=1), atol=1e-9)


@pytest.mark.parametrize("quality", ["major", "minor", "dominant seventh"])
@pytest.mark.parametrize("root", [0, 4, 9])
def test_plain_chords_in_root_position_are_named(root: int, quality: str) -> None:
    log_probs = shipped().log_probs(*triad_chroma(root, quality))[0]
    best_root, best_quality = np.unravel_index(int(np.argmax(log_probs)), log_probs.shape)
    assert (int(best_root), QUALITIES[int(best_quality)]) == (root, quality)


def test_a_first_inversion_keeps_its_root() -> None:
    """C major over E: chroma templates read it as E minor (two of three tones shared, E loudest in the bass)."""
    log_probs = shipped().log_probs(*triad_chroma(0, "major", bass_interval=4))[0]
    assert log_probs[0, QUALITIES.index("major")] > log_probs[4, QUALITIES.index("minor")]


def test_the_training_reads_back_every_chord_the_evaluation_names() -> None:
    need_module("mir_eval", "pip install mir_eval")
    for root, quality in itertools.product(range(12), QUALITIES):
        assert parse_chord(chord_label(PITCH_NAMES[root], quality)) == (root, quality)
    assert parse_chord("F#:min7/b3") == (6, "minor seventh")  # a slash bass keeps the root and quality
    assert parse_chord("Bb") == (10, "major")  # a bare root is a major triad in mir_eval's syntax
    for unlabelled in ("N", "X", "C:sus4", "D:min9"):  # none, unknown, and shorthands idaw has no quality for
        assert parse_chord(unlabelled) is None


@pytest.mark.parametrize(
    ("case", "change", "text", "words"),
    [
        ("not json", None, "{not json", "not valid JSON"),
        ("other format", {"format": "rtneural"}, None, "not an idaw chord model"),
        ("other qualities", {"qualities": ["major", "minor"]}, None, "qualities"),
        ("wrong shape", {"w1": [[0.0] * 3]}, None, "w1 has shape"),
        ("not numbers", {"b2": ["a"] * len(QUALITIES)}, None, "b2 is not a list of numbers"),
        ("NaN", {"b1": [float("nan")] * chord_model.HIDDEN}, None, "NaN or infinite"),
    ],
)
def test_a_bad_weights_file_is_one_clear_error(
    tmp_path: Path, case: str, change: dict[str, Any] | None, text: str | None, words: str
) -> None:
    path = weights_file(tmp_path / "chords.json", shipped, change, text)
    with pytest.raises(IdawError) as raised:
        chord_model.load(path)
    message = str(raised.value)
    assert words in message and "\n" not in message and str(path) in message, (case, message)


def test_an_oversized_weights_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (chord_model.MAX_FILE_BYTES + 1))
    with pytest.raises(IdawError, match="too large"):
        chord_model.load(path)


def test_train_chords_end_to_end_on_ten_pieces(tmp_path: Path, run_idaw: RunIdaw) -> None:
    need_program("fluidsynth", "fluidsynth")
    out = tmp_path / "weights"
    done = run_idaw("train", "chords", "--data", tmp_path / "data", "--count", "10", "--epochs", "60", "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    model = chord_model.load(out / "chords.json")
    metrics = json.loads((out / "chords.metrics.json").read_text())
    assert metrics["pieces"] + len(metrics["pieces_left_out"]) == 10 and metrics["held_out_pieces"] >= 1
    # Better than chance (1 in 108 chords) by far after 60 epochs (120 steps) on about 500 beats.
    assert metrics["valid_accuracy"] > 0.15, metrics
    assert np.isfinite(model.w1).all()
    bad = run_idaw("train", "chords", "--data", tmp_path / "data", "--epochs", "0", "--out", out)
    assert bad.returncode == 2 and "--epochs 0" in one_error_line(bad.stderr)
