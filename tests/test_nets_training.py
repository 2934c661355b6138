"""`idaw train nets`: corpus pipeline targets, weak labels, early stopping, determinism, and a tiny end-to-end run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.needs import need, need_module, need_program

torch = need_module("torch", "install the project's dependencies into the venv (make setup)")
need_module("music21", "install the project's dependencies into the venv (make setup)")

from realtime.nets.architectures import (  # noqa: E402
    HARMONY_CONTEXT,
    NETS,
    chord_class,
)
from realtime.nets.audio_features import SOUNDFONT, log_mel  # noqa: E402
from realtime.nets.corpus import PieceRef, SymbolicPiece, extract, load_piece  # noqa: E402
from realtime.nets.dataset import build_tables  # noqa: E402
from realtime.nets.labels import piece_labels  # noqa: E402
from realtime.nets.train import EarlyStopping  # noqa: E402

TINY = 6  # pieces: 2 chorales, 2 Essen songs, 2 fiddle tunes


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of parsed scores / rendered mel frames shared by the tests of this file."""
    return tmp_path_factory.mktemp("idaw-cache")


def _need_renderer() -> None:
    need_program("fluidsynth", "fluidsynth")
    need(SOUNDFONT.exists(), f"{SOUNDFONT} missing; install the Debian package fluid-soundfont-gm")


def _chorale(name: str, cache: Path) -> SymbolicPiece:
    piece = load_piece(PieceRef(f"chorale/{name}", "chorale", f"bach/{name}"), cache)
    assert piece is not None
    return piece


# --- early stopping -------------------------------------------------------------------------------------------


def test_early_stopping_counts_only_gains_above_min_delta() -> None:
    stop = EarlyStopping(patience=3, min_delta=0.01)
    losses = [1.0, 0.9, 0.895, 0.893, 0.85, 0.849, 0.845, 0.842]
    improved = []
    for epoch, loss in enumerate(losses, 1):
        improved.append(stop.update(epoch, loss))
        if stop.should_stop:
            break
    # 0.895 and 0.893 are within 0.01 of 0.9; 0.85 resets the count; then three small gains end the run.
    assert improved == [True, True, False, False, True, False, False, False]
    assert stop.should_stop and stop.best_epoch == 5 and stop.best == pytest.approx(0.85)


def test_early_stopping_patience_ten_runs_to_the_end_while_improving() -> None:
    stop = EarlyStopping()  # the defaults asked for: patience 10, min delta 0.001
    assert (stop.patience, stop.min_delta) == (10, 0.001)
    for epoch in range(1, 31):
        stop.update(epoch, 1.0 / epoch)
    assert not stop.should_stop and stop.best_epoch == 30
    for epoch in range(31, 41):
        stop.update(epoch, 1.0)
    assert stop.should_stop and stop.bad_epochs == 10


# --- data pipeline on known chorales ----------------------------------------------------------------------------


def test_bwv269_key_cadence_and_table_shapes(cache: Path) -> None:
    piece = _chorale("bwv269", cache)
    assert (piece.meta["key_tonic"], piece.meta["key_mode"]) == (7, "major")  # G major
    assert (piece.meta["ts_num"], piece.meta["ts_den"], piece.meta["pickup_ql"]) == (3, 4, 2.0)
    # Final cadence: D major (V) on the second-to-last chord, G major (I) on the last beats.
    roots = [(int(r), int(q)) for r, q, _ in piece.chords[-3:]]
    assert roots == [(2, 0), (7, 0), (7, 0)]

    mel = np.zeros((1000, 128), np.float32)  # frames are not needed for the symbolic targets
    t = build_tables(piece, mel)
    steps = round(piece.meta["length_ql"] / 0.25)
    assert t.melody.shape == (steps, 128) and t.melody.dtype == np.uint8
    assert t.melody[0].nonzero()[0].tolist() == [67]  # soprano starts on G4
    assert np.all(t.melody.sum(axis=1) <= 1)  # one melody voice
    assert t.harmony_rest.shape[1] == 64 and len(t.harmony_target) == len(t.harmony_rest)
    assert t.harmony_target[-1] == chord_class(7, "maj")
    key = HARMONY_CONTEXT["key_tonic"]
    assert isinstance(key, slice)
    assert np.all(t.harmony_rest[:, key.start - 64 : key.stop - 64].argmax(axis=1) == 7)
    np.testing.assert_allclose(t.harmony_rest[:, 0:12].sum(axis=1), 1.0, atol=1e-5)  # melody pc profile
    assert t.dynamics_rest.shape == (len(t.beat_times), 20) and t.dynamics_target.shape == (len(t.beat_times), 16)
    known = t.dynamics_target[~np.isnan(t.dynamics_target)]
    assert known.size and known.min() >= 0.0 and known.max() <= 1.0
    assert t.groove_onset.shape == (0, 16)  # 3/4 bars have no 16-step 4/4 groove row
    assert t.frame_emotion.shape == (1000, 12) and np.all(np.abs(t.frame_emotion) <= 1.0)


def test_four_four_chorale_groove_and_minor_key(cache: Path) -> None:
    piece = _chorale("bwv153.1", cache)
    assert (piece.meta["key_tonic"], piece.meta["key_mode"]) == (9, "minor")  # A minor
    t = build_tables(piece, np.zeros((10, 128), np.float32))
    assert t.groove_onset.shape[1] == 16 and len(t.groove_onset) >= 5
    assert set(np.unique(t.groove_onset)) <= {0.0, 1.0}
    assert np.all(t.groove_onset[:, 0::4].mean(axis=0) > 0.8)  # every beat of a chorale bar has an onset
    assert np.all(t.groove_timing == 0.0)  # quantised, no triplets, not a swung dance


def test_log_mel_matches_the_spec_on_a_tone() -> None:
    sr = 22050
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(sr) / sr)).astype(np.float32)
    frames = log_mel(tone)
    assert frames.shape == (1 + (sr - 2048) // 512, 128)
    assert frames.min() >= -1.0 and frames.max() <= 1.0
    assert np.all(np.abs(log_mel(np.zeros(4096, np.float32)) + 1.0) < 1e-6)  # silence -> -100 dB -> -1
    peak = int(np.argmax(frames.mean(axis=0)))
    # Slaney mel is linear below 1 kHz: 128 bands over 0-11025 Hz put band k's centre at ~25.8 Hz * (k + 1),
    # so 440 Hz peaks in band 16.
    assert peak == 16


# --- weak labels ------------------------------------------------------------------------------------------------


def _cadence(minor: bool, qpm: float | None = None, repeats: int = 4, split: int = 1) -> SymbolicPiece:
    import music21

    m21: Any = music21  # untyped library: go through Any
    third, sixth = ("E-", "A-") if minor else ("E", "A")
    progression = [
        ["C3", f"{third}4", "G4", "C5"],
        ["F3", f"{sixth}3", "C4", "F4"],
        ["G3", "B3", "D4", "G4"],
        ["C3", f"{third}4", "G4", "C5"],
    ] * repeats
    parts = [m21.stream.Part() for _ in range(4)]
    for p in parts:
        p.append(m21.meter.TimeSignature("4/4"))
    if qpm is not None:
        parts[0].insert(0, m21.tempo.MetronomeMark(number=qpm))
    for pitches in progression:
        for voice, name in enumerate(reversed(pitches)):
            for _ in range(split):
                parts[voice].append(m21.note.Note(name, quarterLength=4.0 / split))
    return extract(PieceRef("test/cadence", "chorale", "-"), m21.stream.Score(parts))


def test_weak_labels_major_beats_minor_and_faster_is_more_aroused() -> None:
    major, minor = piece_labels(_cadence(False)), piece_labels(_cadence(True))
    assert major.cues["mode"] > 0 > minor.cues["mode"]
    assert major.valence > minor.valence
    slow_piece = _cadence(False, qpm=60, split=4)
    assert slow_piece.meta["tempo_source"] == "marking" and slow_piece.meta["tempo_qpm"] == 60
    slow, fast = piece_labels(slow_piece), piece_labels(_cadence(False, qpm=180, split=4))
    assert fast.arousal > slow.arousal and fast.cues["tempo"] > slow.cues["tempo"]
    sparse, dense = piece_labels(_cadence(False, qpm=90, split=2)), piece_labels(_cadence(False, qpm=90, split=8))
    assert dense.arousal > sparse.arousal and dense.cues["density"] > sparse.cues["density"]
    for labels in (major, minor, slow, fast, sparse, dense):
        assert -1.0 <= labels.valence <= 1.0 and -1.0 <= labels.arousal <= 1.0


# --- the command, end to end ------------------------------------------------------------------------------------


def test_train_nets_end_to_end_on_a_tiny_subset(cache: Path, tmp_path: Path, run_idaw: Any) -> None:
    _need_renderer()
    out = tmp_path / "out"
    result = run_idaw(
        "train",
        "nets",
        "--max-pieces",
        str(TINY),
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(NETS) <= set(metrics)
    assert 0.0 <= metrics["HarmonyPredictor"]["audio"]["top3"] <= 1.0
    assert "f1" in metrics["MelodyTransformer"]["audio"] and "valence_mae" in metrics["EmotionRecognizer"]
    assert sum(metrics["data"]["pieces"]["test"].values()) >= 1
    for name, (cls, n_params) in NETS.items():
        net = cls()
        net.load_state_dict(torch.load(out / f"{name}.pt", map_location="cpu", weights_only=True))
        assert sum(p.numel() for p in net.parameters()) == n_params
        history = json.loads((out / f"{name}.history.json").read_text())
        assert 1 <= len(history["epochs"]) <= 2 and history["best_epoch"] >= 1
        assert np.isfinite(history["epochs"][0]["train_loss"])
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["in_shape"][-1] == net.input_size
        assert (out / f"{name}.onnx").stat().st_size > 4 * n_params * 0.9
    assert not any(p.suffix == ".wav" for p in out.iterdir())
    assert any((cache / "audio-v3").iterdir())  # rendered frames went to the cache, not the output


def test_same_seed_gives_the_same_first_epoch(cache: Path, tmp_path: Path) -> None:
    _need_renderer()
    from realtime.nets.pipeline import Config, run

    def first_epochs(seed: int, name: str) -> dict[str, tuple[float, float]]:
        cfg = Config(out=tmp_path / name, cache=cache, epochs=1, max_pieces=TINY, seed=seed, progress=False)
        run(cfg, lambda _message: None)
        losses = {}
        for net in NETS:
            epoch = json.loads((cfg.out / f"{net}.history.json").read_text())["epochs"][0]
            losses[net] = (epoch["train_loss"], epoch["val_loss"])
        return losses

    first, again, other = first_epochs(0, "a"), first_epochs(0, "b"), first_epochs(1, "c")
    assert first == again
    assert first != other
    shutil.rmtree(tmp_path)
