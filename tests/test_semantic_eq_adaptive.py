"""The adaptive traversal through the engine: flat at intensity 0, monotonic, SAFE-like, adaptive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from idaw.base.errors import IdawError
from realtime import offline, params
from sidecar.semantic_eq import curvefit, data, eqmath, traversal
from sidecar.semantic_eq.evaluate_adaptive import BAND_CENTRES, band_levels
from sidecar.semantic_eq.handler import EQ_SLICE, SemanticEqHandler
from tests.support.needs import need
from tests.support.repo import REPO

DATA = REPO.parent / "shared" / "data"
LMMS = Path("/usr/share/lmms/samples")
CLIPS = ("instruments/piano01.ogg", "stringsnpads/strings01.ogg", "instruments/church_organ02.ogg")
RATE = 44100


@pytest.fixture(scope="module")
def handler() -> SemanticEqHandler:
    return SemanticEqHandler()


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    need(all((LMMS / c).exists() for c in CLIPS), "lmms-common samples not found (Debian package lmms-common)")
    out = []
    for name in CLIPS:
        audio, rate = sf.read(LMMS / name, dtype="float32", always_2d=True)
        mono = soxr.resample(audio.mean(axis=1), rate, RATE).astype(np.float32)[: 4 * RATE]
        out.append((mono * (0.2 / np.abs(mono).max())).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def safe_medians() -> dict[str, np.ndarray]:
    need((DATA / data.SAFE_FILE).exists(), f"SAFE-DB not found under {DATA}")
    words, settings = data.safe_arrays(data.read_safe(DATA))
    w = np.array(words)
    return {k: np.median(eqmath.response_db(settings[w == k], BAND_CENTRES), axis=0) for k in ("warm", "bright")}


def _render(audio: np.ndarray, eq: np.ndarray) -> np.ndarray:
    snapshot = params.defaults()
    snapshot[EQ_SLICE] = eq.astype(np.float32)
    return offline.render_array(audio, RATE, snapshot)


def _size(eq: np.ndarray) -> float:
    return float(np.sqrt(np.mean(eqmath.response_db(eq, eqmath.log_grid()) ** 2)))


def test_intensity_zero_is_exactly_flat_and_bit_identical(handler: SemanticEqHandler, clips: list[np.ndarray]) -> None:
    for audio in clips[:2]:
        for word in ("warm", "bright"):
            result = handler.describe([word], 0.0, audio, RATE)
            assert np.array_equal(result.eq, traversal.flat_eq())
            assert all(result.eq[g] == 0.0 for g in eqmath.GAIN_INDEX)
            assert np.array_equal(offline.render_array(audio, RATE, result.snapshot), audio)


def test_change_grows_monotonically_with_intensity(handler: SemanticEqHandler, clips: list[np.ndarray]) -> None:
    audio = clips[0]
    before = band_levels(audio)
    for word in ("warm", "bright"):
        eq_sizes, ltas_sizes = [], []
        for t in np.linspace(0.0, 1.0, 11):
            eq = handler.describe([word], float(t), audio, RATE).eq
            eq_sizes.append(_size(eq))
            ltas_sizes.append(float(np.sqrt(np.mean((band_levels(_render(audio, eq)) - before) ** 2))))
        assert eq_sizes[0] == 0.0 and ltas_sizes[0] == 0.0
        assert np.all(np.diff(eq_sizes) > 0), eq_sizes
        assert np.all(np.diff(ltas_sizes) > 0), ltas_sizes


def test_warm_and_bright_follow_safe_medians_on_real_audio(
    handler: SemanticEqHandler, clips: list[np.ndarray], safe_medians: dict[str, np.ndarray]
) -> None:
    for audio in clips:
        before = band_levels(audio)
        used = before > before.max() - 50.0
        for word in ("warm", "bright"):
            change = band_levels(_render(audio, handler.describe([word], 0.7, audio, RATE).eq)) - before
            corr = float(np.corrcoef(change[used], safe_medians[word][used])[0, 1])
            assert corr >= 0.8, (word, corr)


def test_audio_that_already_has_the_character_gets_a_smaller_change(
    handler: SemanticEqHandler, clips: list[np.ndarray], safe_medians: dict[str, np.ndarray]
) -> None:
    freqs = eqmath.log_grid()
    words, settings = data.safe_arrays(data.read_safe(DATA))
    w = np.array(words)
    median_eq = {
        k: curvefit.fit_curve(np.median(eqmath.response_db(settings[w == k], freqs), axis=0), freqs)[0]
        for k in ("warm", "bright")
    }
    audio = clips[0]
    for word, opposite in (("warm", "bright"), ("bright", "warm")):
        already = _size(handler.describe([word], 0.7, _render(audio, median_eq[word]), RATE).eq)
        needs = _size(handler.describe([word], 0.7, _render(audio, median_eq[opposite]), RATE).eq)
        assert already < needs, (word, already, needs)


def test_no_audio_or_silence_falls_back_to_the_flat_reference(handler: SemanticEqHandler) -> None:
    for audio in (None, np.zeros(32000, dtype=np.float32)):
        result = handler.describe(["warm"], 0.7, audio, 16000)
        assert not result.adapted
        assert _size(result.eq) > 0.5
    with pytest.raises(IdawError):
        handler.describe(["warm"], 1.5)
    snapshot = handler.describe(["bright"], 0.5).snapshot
    assert snapshot.dtype == np.float32 and snapshot[EQ_SLICE].shape == (13,)


def test_the_sidecar_adapter_runs_the_model() -> None:
    from idaw.base.protocol import SCHEMA
    from sidecar.handlers import AnalysisWindow, SemanticEqAdapter

    adapter = SemanticEqAdapter()
    noise = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.05
    result = adapter.describe(["warm"], 0.6, AnalysisWindow(noise, 16000, 0, 0.0))
    assert set(result.values) == set(SCHEMA.snapshot_params) and tuple(result.used) == ("warm",)
    flat = adapter.describe(["bright"], 0.0, None)
    assert all(flat.values[name] == 0.0 for name in flat.values if name.endswith("_gain"))
