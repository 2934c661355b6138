"""The sidecar's fast start: one short refinement from a descriptor's shipped character fit stands in for the
six-start fit (traversal.py, "Speed"), on real instrument clips and noise, without losing fit quality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from sidecar.semantic_eq import traversal
from sidecar.semantic_eq.bundle import Bundle, load_bundle
from sidecar.semantic_eq.handler import ANALYSIS_RATE, SemanticEqHandler

WORDS = 40
"""Vocabulary words checked (spread over the vocabulary)."""


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle()


@pytest.fixture(scope="module")
def windows() -> list[np.ndarray]:
    """Three 2 s analysis windows with different characters: white, bright (differentiated) and dark noise."""
    rng = np.random.default_rng(3)
    white = rng.standard_normal(2 * ANALYSIS_RATE) * 0.1
    bright = lfilter([1.0, -0.95], [1.0], white)
    dark = lfilter([0.05], [1.0, -0.95], white)
    return [w.astype(np.float32) for w in (white, bright, dark)]


def test_shipped_bundle_has_a_character_fit_per_word_that_training_reproduces(bundle: Bundle) -> None:
    assert bundle.characters is not None
    assert bundle.characters.shape == (len(bundle.words), 13)
    for word in ("warm", "bright", "boomy"):
        i = bundle.words.index(word)
        refit = traversal.character_fit(bundle, bundle.centroids[i])
        np.testing.assert_allclose(bundle.characters[i], refit, rtol=1e-4, atol=1e-3)  # stored as float32


def test_fast_start_fits_as_well_as_six_starts(bundle: Bundle, windows: list[np.ndarray]) -> None:
    assert bundle.characters is not None
    picks = np.linspace(0, len(bundle.words) - 1, WORDS).round().astype(int)
    worse: list[float] = []
    for window in windows:
        z_audio = traversal.audio_latent(bundle, window, ANALYSIS_RATE)
        assert z_audio is not None
        for i in picks:
            z_word = bundle.centroids[i]
            _, fast_error, _ = traversal.full_intensity_eq(bundle, z_audio, z_word, character=bundle.characters[i])
            _, full_error, _ = traversal.full_intensity_eq(bundle, z_audio, z_word, starts=6)
            worse.append(fast_error - full_error)
    excess = np.array(worse)
    # The fit error (dB RMS against the traversal's target curve) is the same at the median and rarely worse.
    assert abs(float(np.median(excess))) < 0.01, np.median(excess)
    assert np.mean(excess > 0.3) <= 0.05, np.sort(excess)[-10:]


def test_handler_uses_the_shipped_start_for_a_word_and_fits_a_combination_once(
    bundle: Bundle, windows: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SemanticEqHandler(bundle=bundle)
    fits: list[int] = []
    real_fit = traversal.character_fit

    def counting_fit(b: Bundle, z_target: np.ndarray, starts: int = 6) -> np.ndarray:
        fits.append(1)
        return real_fit(b, z_target, starts)

    monkeypatch.setattr(traversal, "character_fit", counting_fit)
    single = handler.describe(["warm"], 0.7, windows[0])
    assert single.words_used == ("warm",) and fits == []  # shipped: nothing fitted at request time
    handler.describe(["warm", "bright"], 0.7, windows[0])
    handler.describe(["warm", "bright"], 0.7, windows[1])  # another window: same combination, no second fit
    assert fits == [1]
