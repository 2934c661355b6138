"""The sidecar's describe handler: words + intensity + the latest analysis window -> a full parameter snapshot.

    handler = SemanticEqHandler()                     # loads the shipped weights (CPU only)
    result = handler.describe(["warm"], 0.7, window, ANALYSIS_RATE, base=current_snapshot)
    result.snapshot   # float32 vector for the engine (every parameter; only the 13 EQ values change)
    result.words_used # the known descriptors actually used, e.g. ('warm',) or ('warm', 'relaxing')

Unknown words are mapped to known ones by sentence embedding (`synonyms.resolve`); a word with no reasonable
neighbour raises `synonyms.NoCloseDescriptorError`, whose message lists the closest known words.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from idaw.base import params as engine_params
from idaw.base.errors import IdawError
from idaw.base.protocol import SCHEMA
from sidecar.semantic_eq import synonyms, traversal
from sidecar.semantic_eq.bundle import Bundle, load_bundle

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
FILLER = frozenset(
    {
        "a",
        "an",
        "and",
        "the",
        "it",
        "its",
        "make",
        "more",
        "sound",
        "sounding",
        "bit",
        "little",
        "slightly",
        "very",
        "much",
        "less",
        "please",
        "some",
        "too",
        "really",
        "quite",
        "rather",
        "somewhat",
        "kind",
        "of",
        "sort",
    }
)
ANALYSIS_RATE = int(SCHEMA.analysis["rate"])
"""The rate of the sidecar's analysis windows (idaw/base/protocol/protocol.json), the default rate of describe's
audio."""
EQ_SLICE = engine_params.EQ_SLICE
"""Where the 13 EQ values lie in the engine's snapshot vector."""


@dataclass(frozen=True)
class Description:
    """What one describe request produced."""

    snapshot: F32
    """Full engine parameter vector (`base` with the 13 EQ values replaced)."""
    eq: F64
    """The 13 EQ values (dB, Hz, Q) in SAFE-DB order."""
    words_used: tuple[str, ...]
    """Known descriptors that shaped the target, heaviest first."""
    weights: tuple[float, ...]
    """Weight of each word in `words_used` (sums to 1)."""
    resolutions: tuple[synonyms.Resolution, ...]
    """Per requested word, how it was understood."""
    intensity: float
    adapted: bool
    """True when the audio window was analysed (False: silent/short/no audio, the flat EQ's latent was used)."""
    fit_error_db: float
    """dB RMS between the relative target curve and the 13-parameter EQ fitted to it."""
    message: str
    """One line for the user: which words were used and how."""


def split_words(words: str | Sequence[str]) -> list[str]:
    """Requested descriptors: a phrase is split on commas, 'and' and spaces; filler words are dropped."""
    items = [words] if isinstance(words, str) else list(words)
    out: list[str] = []
    for item in items:
        for part in re.split(r"[,;/+&]|\band\b", item.lower()):
            tokens = [t for t in part.split() if t not in FILLER]
            out.extend(tokens)
    return out


class SemanticEqHandler:
    """Describe handler for the sidecar: resolves words, analyses audio, returns an engine snapshot.

    describe() may be called from two threads at once for words in the vocabulary (the cache is locked); words
    outside it use the synonym model, which must be used from one thread at a time.
    """

    def __init__(
        self,
        weights_dir: Path | None = None,
        bundle: Bundle | None = None,
        cache_size: int = 16,
        orthogonal_weight: float | None = None,
    ) -> None:
        """Load the bundle (default: the shipped weights). `orthogonal_weight` is lam of traversal.py."""
        self.bundle = bundle if bundle is not None else load_bundle(weights_dir)
        self.orthogonal_weight = orthogonal_weight
        self._flat_latent = self.bundle.flat_latent()
        self._cache: OrderedDict[tuple[object, ...], tuple[F64, float, bool]] = OrderedDict()
        self._characters: dict[tuple[object, ...], F64] = {}  # character fits of word combinations (traversal.py)
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def warm_up(self) -> bool:
        """Load the sentence-embedding model now (about 4 s, 90 MB) instead of at the first unknown word.

        The sidecar calls this on a background thread once it listens (handlers.SemanticEqAdapter); it must not
        run while another thread resolves an unknown word.

        Returns False when synonyms are unavailable (the model package or the bundle's embeddings are missing).
        """
        if self.bundle.embeddings is None:
            return False
        try:
            synonyms.load()
        except synonyms.SynonymsUnavailableError:
            return False
        return True

    @property
    def vocabulary(self) -> list[str]:
        """Every known descriptor."""
        return list(self.bundle.words)

    def phrases(self, words: str | Sequence[str]) -> list[str]:
        """The descriptors `words` asks for: a known multi-word phrase whole, anything else split (split_words)."""
        items = [words] if isinstance(words, str) else list(words)
        phrases: list[str] = []
        for item in items:
            whole = " ".join(item.lower().split())
            phrases.extend([whole] if whole in self.bundle.words else split_words(item))
        return phrases

    def unknown_words(self, words: str | Sequence[str]) -> list[str]:
        """The descriptors of `words` outside the vocabulary: those that need the synonym model to resolve."""
        known = set(self.bundle.words)
        return [p for p in self.phrases(words) if p not in known]

    def resolve(self, words: str | Sequence[str]) -> list[synonyms.Resolution]:
        """How each requested word maps to known descriptors (a known multi-word phrase is kept whole).

        Raises NoCloseDescriptorError when a word has no reasonable neighbour; see `resolve_some`.
        """
        resolutions, refused = self.resolve_some(words)
        if refused:
            raise refused[0]
        return resolutions

    def resolve_some(
        self, words: str | Sequence[str]
    ) -> tuple[list[synonyms.Resolution], list[synonyms.NoCloseDescriptorError]]:
        """(resolutions of the words that map to known descriptors, errors of those that do not)."""
        phrases = self.phrases(words)
        if not phrases:
            raise IdawError("no descriptor given; try e.g. 'warm' or 'bright'")
        resolutions: list[synonyms.Resolution] = []
        refused: list[synonyms.NoCloseDescriptorError] = []
        for phrase in phrases:
            try:
                resolutions.append(synonyms.resolve(phrase, self.bundle.words, self.bundle.embeddings))
            except synonyms.NoCloseDescriptorError as error:
                refused.append(error)
        return resolutions, refused

    def target_latent(self, resolutions: Sequence[synonyms.Resolution]) -> tuple[F64, dict[str, float]]:
        """(mean latent of the resolved words, known word -> total weight); each requested word counts equally."""
        weights: dict[str, float] = {}
        for r in resolutions:
            for word, w, _ in r.neighbours:
                weights[word] = weights.get(word, 0.0) + w / len(resolutions)
        z = sum(w * self.bundle.centroids[self.bundle.words.index(word)] for word, w in weights.items())
        return np.asarray(z, dtype=np.float64), weights

    def describe(
        self,
        words: str | Sequence[str],
        intensity: float,
        audio: npt.ArrayLike | None = None,
        rate: int = ANALYSIS_RATE,
        base: npt.ArrayLike | None = None,
    ) -> Description:
        """The EQ for `words` at `intensity` (0..1) adapted to `audio` (mono window at `rate`); see Description.

        Words with no reasonable neighbour are skipped (and named in `message`) when others resolve; when none
        does, NoCloseDescriptorError is raised. IdawError for a bad intensity or no words.
        """
        t = float(intensity)
        if not np.isfinite(t) or not 0.0 <= t <= 1.0:
            raise IdawError(f"intensity must be within 0..1, got {intensity!r}")
        resolutions, refused = self.resolve_some(words)
        if not resolutions:  # nothing usable: the first refusal names the closest known words
            raise refused[0]
        z_target, weights = self.target_latent(resolutions)
        full, error, adapted = self._full_eq(z_target, weights, audio, rate)
        eq = traversal.at_intensity(full, t)
        snapshot = engine_params.defaults() if base is None else np.array(base, dtype=np.float32, copy=True)
        snapshot[EQ_SLICE] = eq.astype(np.float32)
        ranked = sorted(weights.items(), key=lambda kv: -kv[1])
        return Description(
            snapshot=snapshot,
            eq=eq,
            words_used=tuple(w for w, _ in ranked),
            weights=tuple(v for _, v in ranked),
            resolutions=tuple(resolutions),
            intensity=t,
            adapted=adapted,
            fit_error_db=error,
            message=_message(resolutions, t, adapted, [e.word for e in refused]),
        )

    __call__ = describe

    def _full_eq(
        self, z_target: F64, weights: dict[str, float], audio: npt.ArrayLike | None, rate: int
    ) -> tuple[F64, float, bool]:
        """(full-intensity setting, fit error, adapted), cached per (words, audio) so the knob moves cheaply."""
        samples = None if audio is None else np.ascontiguousarray(audio, dtype=np.float32)
        digest = "" if samples is None else hashlib.sha1(samples.tobytes()).hexdigest()
        key = (tuple(sorted((w, round(v, 6)) for w, v in weights.items())), digest, int(rate))
        with self._cache_lock:  # describe may run on two threads (handlers.SemanticEqAdapter refreshes in the back)
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        z_audio = None if samples is None else traversal.audio_latent(self.bundle, samples, rate)
        adapted = z_audio is not None
        full, error, _ = traversal.full_intensity_eq(
            self.bundle,
            self._flat_latent if z_audio is None else z_audio,
            z_target,
            lam=self.orthogonal_weight,
            character=self._character(key[0], weights, z_target),
        )
        with self._cache_lock:
            self._cache[key] = (full, error, adapted)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return full, error, adapted

    def _character(self, key: tuple[object, ...], weights: dict[str, float], z_target: F64) -> F64 | None:
        """The character fit traversal.full_intensity_eq starts from: shipped for one vocabulary word, fitted once
        (and kept) for a word combination; None when lam is not 0 (the fast start does not apply)."""
        lam = traversal.ORTHOGONAL_WEIGHT if self.orthogonal_weight is None else self.orthogonal_weight
        if lam != 0.0:
            return None
        shipped = self.bundle.characters
        if shipped is not None and len(weights) == 1:
            return np.asarray(shipped[self.bundle.words.index(next(iter(weights)))], dtype=np.float64)
        with self._cache_lock:
            if key in self._characters:
                return self._characters[key]
        fitted = traversal.character_fit(self.bundle, z_target)
        with self._cache_lock:
            if len(self._characters) >= 256:  # a long session of ever new combinations: start over
                self._characters.clear()
            self._characters[key] = fitted
        return fitted


def _message(resolutions: Sequence[synonyms.Resolution], intensity: float, adapted: bool, ignored: list[str]) -> str:
    parts = []
    for r in resolutions:
        if r.direct:
            parts.append(f"'{r.word}'")
        else:
            near = ", ".join(f"{w} ({s:.2f})" for w, _, s in r.neighbours)
            parts.append(f"'{r.word}' via {near}")
    how = "adapted to the audio" if adapted else "no usable audio, so relative to a flat EQ"
    skipped = f"; ignored (no close known word): {', '.join(repr(w) for w in ignored)}" if ignored else ""
    return f"{' + '.join(parts)} at intensity {intensity:.2f} ({how}){skipped}"
