"""The acoustic chord model: how likely each chord (12 roots × idaw's qualities) is, given one beat's chroma.

A small network shared by all twelve roots, so it is the same in every key (transposition-equivariant): for root r
it reads the beat's treble chroma and bass chroma rotated so that r is at 0 (24 values), passes them through one
hidden layer (HIDDEN units, tanh) and gives one logit per quality; a softmax over all 12 × qualities gives
log-probabilities, the chord evidence of the key and chord decoder (idaw.theory.decode). It learns what chroma
templates do not know: inversions (a C major triad over E reads as much like E minor as like C), the leakage of
overtones, passing tones.

Trained by `idaw train chords` (idaw.listen.train_chords) on the test set's train split (fluidsynth renders of
Bach chorales never used for evaluation, with weak labels from idaw's own symbolic analysis); the weights ship in
idaw/listen/weights/chords.json (plain numbers, read with json: nothing is unpickled). Inference is numpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError
from idaw.theory.progressions import QUALITIES

F64 = npt.NDArray[np.float64]

FEATURES: Final = 24
"""Treble chroma (12) and bass chroma (12), rotated to the candidate root."""
HIDDEN: Final = 32
WEIGHTS_PATH: Final = Path(__file__).parent / "weights" / "chords.json"
FORMAT: Final = "idaw-chord-model-1"
MAX_FILE_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class ChordModel:
    """Weights of the network: hidden = tanh(w1 @ x + b1); logits = w2 @ hidden + b2."""

    w1: F64
    b1: F64
    w2: F64
    b2: F64
    qualities: tuple[str, ...]

    def log_probs(self, treble: F64, bass: F64) -> F64:
        """Log-probabilities (beats × 12 roots × qualities, summing to 1 over each beat's 12 × qualities) of the
        chords of beats with treble and bass chroma `treble`, `bass` (beats × 12 each, any scale)."""
        features = rooted_features(treble, bass)  # beats × 12 × FEATURES
        hidden = np.tanh(features @ self.w1.T + self.b1)
        logits = hidden @ self.w2.T + self.b2  # beats × 12 × qualities
        flat = logits.reshape(len(logits), -1)
        flat = flat - flat.max(axis=1, keepdims=True)
        flat = flat - np.log(np.exp(flat).sum(axis=1, keepdims=True))
        result: F64 = flat.reshape(logits.shape)
        return result

    def to_json(self) -> dict[str, Any]:
        """The weights as plain lists, with the format tag and shapes."""
        return {
            "format": FORMAT,
            "qualities": list(self.qualities),
            "w1": self.w1.tolist(),
            "b1": self.b1.tolist(),
            "w2": self.w2.tolist(),
            "b2": self.b2.tolist(),
        }


def unit_rows(values: F64) -> F64:
    """Each row scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    result: F64 = np.where(norms > 1e-9, values / np.maximum(norms, 1e-9), 0.0)
    return result


def rooted_features(treble: F64, bass: F64) -> F64:
    """beats × 12 roots × FEATURES: for each root r, the unit treble and bass chroma rotated so r is at index 0."""
    treble, bass = unit_rows(np.asarray(treble, np.float64)), unit_rows(np.asarray(bass, np.float64))
    index = (np.arange(12)[:, None] + np.arange(12)[None, :]) % 12  # [root, i] → pitch class root + i
    result: F64 = np.concatenate([treble[:, index], bass[:, index]], axis=2)
    return result


def from_json(data: Any, name: str = "the chord model") -> ChordModel:
    """The model in a parsed JSON document; IdawError naming what is wrong (shapes, non-finite numbers, format)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IdawError(f"{name}: not an idaw chord model (format {FORMAT!r} expected)")
    if data.get("qualities") != list(QUALITIES):
        raise IdawError(f"{name}: its chord qualities are not idaw's ({', '.join(QUALITIES)})")
    shapes = {"w1": (HIDDEN, FEATURES), "b1": (HIDDEN,), "w2": (len(QUALITIES), HIDDEN), "b2": (len(QUALITIES),)}
    arrays: dict[str, F64] = {}
    for key, shape in shapes.items():
        try:
            array = np.asarray(data.get(key), dtype=np.float64)
        except (TypeError, ValueError):
            raise IdawError(f"{name}: {key} is not a list of numbers") from None
        if array.shape != shape:
            raise IdawError(f"{name}: {key} has shape {array.shape}; allowed: {shape}")
        if not np.all(np.isfinite(array)):
            raise IdawError(f"{name}: {key} holds NaN or infinite numbers")
        arrays[key] = array
    return ChordModel(arrays["w1"], arrays["b1"], arrays["w2"], arrays["b2"], tuple(QUALITIES))


def load(path: str | os.PathLike[str] = WEIGHTS_PATH) -> ChordModel:
    """The model stored at `path` (IdawError, one line, for a missing, oversized or malformed file)."""
    from idaw.theory.load import read_json_bounded

    name = os.fspath(path)
    return from_json(read_json_bounded(name, MAX_FILE_BYTES, "an idaw chord model (.json)"), name)


@lru_cache(maxsize=1)
def shipped() -> ChordModel | None:
    """The shipped model, or None where the weights file is absent (a checkout before `idaw train chords`)."""
    return load(WEIGHTS_PATH) if WEIGHTS_PATH.is_file() else None
