"""The listening analysis on real rendered music against human analyses: a few of the test set's evaluation
chorales (fluidsynth, instruments and kits never used in training), scored with mir_eval as the benchmark does.

The thresholds sit well below what the full evaluation split reaches (benchmarks/bench_listen.py; README): these
items are a sample of four, where one wrong key is a quarter of the score.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from idaw.listen.evaluate import evaluate
from idaw.listen.testset import build_testset
from tests.support.needs import need_program

ITEMS = 4


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    need_program("fluidsynth", "fluidsynth")
    folder: Path = tmp_path_factory.mktemp("listen_eval")
    items = build_testset(folder, split="eval", count=ITEMS, seed=0, progress=False)
    assert len(items) == ITEMS
    result = evaluate(items, analysers=("idaw", "idaw_causal", "librosa"))
    analysers: dict[str, dict[str, float]] = result["analysers"]
    return analysers


def test_key_tempo_and_beats_are_heard(scores: dict[str, dict[str, float]]) -> None:
    idaw = scores["idaw"]
    assert idaw["items"] == ITEMS
    assert idaw["key_weighted"] >= 0.7, idaw
    assert idaw["tempo_accuracy2"] == 1.0, idaw
    assert idaw["beat_f_measure"] >= 0.85, idaw
    assert scores["idaw_causal"]["beat_f_measure"] >= 0.7, scores["idaw_causal"]


def test_chords_are_heard_better_than_chroma_templates(scores: dict[str, dict[str, float]]) -> None:
    idaw, templates = scores["idaw"], scores["librosa"]
    assert idaw["chords_majmin"] >= 0.75, idaw
    assert idaw["chords_majmin"] > templates["chords_majmin"], (idaw, templates)
