"""The sidecar's fast start: one short refinement from a descriptor's shipped character fit stands in for the
six-start fit (traversal.py, "Speed"), on real instrument clips and noise, without losing fit quality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from sidecar.semantic_eq import eqmath, traversal
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


RESPONSE_TOLERANCE_DB = 0.4
"""How far a refit's response (dB, on the bundle's grid) may lie from the shipped fit's. Another x86 CPU decodes the
word's settings through other SIMD widths (float32 sums in another order: the last bits differ), and the multi-start
fit amplifies that: with every decoded value moved by up to 4 float32 ulps, 128 times per word, the refit's
response moved by up to 0.35 dB (boomy; warm 0.08, bright 0.09) and its parameters by up to 1.6 of the unit range
of 2 (a band with almost no gain has an almost free frequency), so parameters are not compared. Measured with
`python -m benchmarks.character_fit_sensitivity --word warm --word bright --word boomy --perturbations 128 --ulps 4`;
0.4 is that maximum rounded up."""
FIT_ERROR_TOLERANCE_DB = 0.1
"""How much worse (dB RMS against the word's character curve) the shipped fit may be than a refit on this machine:
the same measurement's largest rise of the fit error, 0.080 dB (boomy), rounded up."""


def test_shipped_bundle_has_a_character_fit_per_word_that_training_reproduces(bundle: Bundle) -> None:
    """On any x86 CPU, training's fit of a word's character (traversal.character_fit) gives the shipped fit's EQ
    curve, and the shipped fit is as good a fit of the character this machine decodes, both within what one float32
    rounding step in the decoder moves the fit by (RESPONSE_TOLERANCE_DB, FIT_ERROR_TOLERANCE_DB)."""
    assert bundle.characters is not None
    assert bundle.characters.shape == (len(bundle.words), 13)
    assert np.all(np.isfinite(bundle.characters))
    assert np.all((bundle.characters >= eqmath.LOWER) & (bundle.characters <= eqmath.UPPER))
    flat = traversal.latent_curve(bundle, bundle.flat_latent())
    for word in ("warm", "bright", "boomy"):
        i = bundle.words.index(word)
        shipped = bundle.characters[i]
        refit = traversal.character_fit(bundle, bundle.centroids[i])
        curve = traversal.latent_curve(bundle, bundle.centroids[i]) - flat
        curve -= curve.mean()  # the character (traversal._character)
        shipped_response, refit_response = (eqmath.response_db(p, bundle.freqs) for p in (shipped, refit))
        moved = float(np.max(np.abs(shipped_response - refit_response)))
        assert moved <= RESPONSE_TOLERANCE_DB, (word, moved)
        shipped_error, refit_error = (
            float(np.sqrt(np.mean((r - curve) ** 2))) for r in (shipped_response, refit_response)
        )
        assert shipped_error <= refit_error + FIT_ERROR_TOLERANCE_DB, (word, shipped_error, refit_error)
        # And the fit means something: the character is several dB, the fit within a fraction of it.
        assert float(np.max(np.abs(curve))) > 5 * RESPONSE_TOLERANCE_DB
        assert shipped_error < 0.1 * float(np.sqrt(np.mean(curve**2))), (word, shipped_error)


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
