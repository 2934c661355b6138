"""The descriptor vocabulary and each descriptor's centroid in the VAE latent.

A word enters the vocabulary when it has enough labelled settings: at least 3 SAFE-DB rows from training
contributors, or at least 2 SocialFX contributions, or an Audealize entry (each aggregates >= 2 contributions).
Strings with digits or brackets (SAFE lab codes such as 're27') are left out. A word's centroid is the mean
latent (VAE encoder mean) over all its training settings; its curve is the mean dB target of those settings.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sidecar.semantic_eq.labelled import Labelled

F64 = npt.NDArray[np.float64]
MIN_SAFE, MIN_SOCIALFX = 3, 2
_EXCLUDE = re.compile(r"[\d()\[\]{}<>/\\]")
STOP_WORDS = frozenset({"default", "test", "none", "nothing", "n/a", "na"})


@dataclass
class Vocabulary:
    """Known descriptors with their training-set counts, latent centroids (V, 32) and mean dB curves (V, F)."""

    words: list[str]
    counts: list[int]
    centroids: F64
    curves: F64

    def index(self, word: str) -> int:
        """Position of `word`, or -1."""
        try:
            return self.words.index(word)
        except ValueError:
            return -1


def eligible_words(lab: Labelled) -> list[str]:
    """Sorted words that qualify for the vocabulary (training rows only)."""
    per_source: dict[str, Counter[str]] = {"safe": Counter(), "socialfx": Counter(), "audealize": Counter()}
    for word, source, split in zip(lab.words, lab.sources, lab.splits, strict=True):
        if split == "train":
            per_source[source][word] += 1
    chosen = {w for w, c in per_source["safe"].items() if c >= MIN_SAFE}
    chosen |= {w for w, c in per_source["socialfx"].items() if c >= MIN_SOCIALFX}
    chosen |= set(per_source["audealize"])
    return sorted(w for w in chosen if w not in STOP_WORDS and not _EXCLUDE.search(w) and len(w) >= 2)


def build_vocabulary(lab: Labelled, latents: F64) -> Vocabulary:
    """Vocabulary from training rows, given every row's latent mean (N, 32)."""
    words = eligible_words(lab)
    train = np.array([s == "train" for s in lab.splits])
    row_words = np.array(lab.words)
    centroids, curves, counts = [], [], []
    for w in words:
        rows = train & (row_words == w)
        counts.append(int(rows.sum()))
        centroids.append(latents[rows].mean(axis=0))
        curves.append(lab.targets[rows].mean(axis=0))
    latent_dim = latents.shape[1]
    return Vocabulary(
        words=words,
        counts=counts,
        centroids=np.array(centroids).reshape(len(words), latent_dim),
        curves=np.array(curves).reshape(len(words), lab.targets.shape[1]),
    )
