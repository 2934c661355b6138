"""The pluggable describe handler: words + intensity (+ the latest analysis window) -> an EQ snapshot.

The sidecar calls a `DescribeHandler`; the semantic EQ model (sidecar/semantic_eq/) will be one, and
`FallbackTableHandler` is the one that works without ML: a small table of SAFE-DB median settings;
`SemanticEqAdapter` wraps the model. `load_handler('fallback' | 'semantic-eq' | 'package.module:factory')`
picks one at start-up.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from sidecar.protocol import SCHEMA, flat_values

DEFAULT_HANDLER = "fallback"
"""The handler `idaw sidecar` loads unless told otherwise (switch to the semantic EQ model once it ships)."""


@dataclass(frozen=True)
class AnalysisWindow:
    """The newest audio an engine sent: mono float32 `samples` at `rate` Hz, starting at stream index `start`."""

    samples: npt.NDArray[np.float32]
    rate: int
    start: int
    received: float
    """time.monotonic() when it arrived."""


@dataclass(frozen=True)
class DescribeResult:
    """What a handler returns: a full snapshot of every snapshot_params name, and the words it used."""

    values: Mapping[str, float]
    used: Sequence[str] = field(default_factory=tuple)


@runtime_checkable
class DescribeHandler(Protocol):
    """Turns descriptive words into an EQ snapshot. Called on the sidecar's one thread, never concurrently."""

    name: str
    """Short name reported to engines and in status replies (at most 64 bytes)."""

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """The snapshot for `words` at `intensity` (0 = flat, 1 = full), given the newest analysis window if any.

        Must return every name of SCHEMA.snapshot_params with an in-range value; the sidecar validates it and
        answers 'handler_failed' (keeping the previous snapshot) when it is not.
        """
        ...

    def feedback(self, words: Sequence[str], snapshot: int, rating: float) -> None:
        """Record the user's rating (-1..1) of a snapshot the handler produced (may do nothing)."""
        ...


_LOG_PARAMS = frozenset(p.name for p in SCHEMA.parameters if p.unit == "Hz" or p.name.endswith("_q"))

FALLBACK_TABLE: dict[str, dict[str, float]] = {
    # SAFE-DB medians. Gains scale with intensity; frequencies and Q stay put.
    "warm": {"mid1_gain": 4.8, "mid1_freq": 320.0, "mid1_q": 0.8, "high_gain": -1.5, "high_freq": 8200.0},
    "bright": {
        "low_gain": -2.1,
        "low_freq": 150.0,
        "mid3_gain": 4.8,
        "mid3_freq": 3100.0,
        "mid3_q": 0.8,
        "high_gain": 4.0,
        "high_freq": 6000.0,
    },
}
"""Descriptor -> EQ settings (SAFE-DB medians); parameters a word does not name stay flat."""


class FallbackTableHandler:
    """The handler that needs no model: FALLBACK_TABLE settings, gains scaled by intensity (flat at 0).

    Several known words are averaged per parameter (gains arithmetically, frequencies and Q geometrically);
    unknown words are ignored. It does not look at the audio.
    """

    name = "fallback-table"

    def __init__(self, table: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.table = {k.lower(): dict(v) for k, v in (FALLBACK_TABLE if table is None else table).items()}
        self.ratings: list[tuple[tuple[str, ...], int, float]] = []

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """The averaged table settings of the known `words`, gains times `intensity`; see the class doc."""
        used = [w for w in dict.fromkeys(w.strip().lower() for w in words) if w in self.table]
        values = flat_values()
        for name in values:
            settings = [self.table[w][name] for w in used if name in self.table[w]]
            if not settings:
                continue
            if name in _LOG_PARAMS:  # geometric mean (exact for one word)
                values[name] = (
                    settings[0] if len(settings) == 1 else math.exp(sum(map(math.log, settings)) / len(settings))
                )
            else:
                values[name] = intensity * sum(settings) / len(settings)
        return DescribeResult(values, used)

    def feedback(self, words: Sequence[str], snapshot: int, rating: float) -> None:
        """Keep the rating in memory (the fallback does not learn)."""
        self.ratings.append((tuple(words), snapshot, rating))
        del self.ratings[:-1000]


class SemanticEqAdapter:
    """The semantic EQ model (sidecar/semantic_eq/handler.py, SemanticEqHandler) as a DescribeHandler.

    The model is loaded when the adapter is made (before the sidecar reports ready), so describe latency is
    measured with the model in memory. `model` may be given (tests); it needs describe(words, intensity, audio,
    rate) returning an object with `eq` (the 13 EQ values in snapshot_params order) and `words_used`.
    """

    name = "semantic-eq"

    def __init__(self, model: Any = None) -> None:
        if model is None:
            from sidecar.semantic_eq.handler import SemanticEqHandler

            model = SemanticEqHandler()
            # Load the synonym model before the sidecar reports ready, so the first unknown word is as fast
            # as the rest (loading it on demand takes seconds, longer than a host waits for an answer).
            model.warm_up()
        self.model = model

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """The model's EQ for `words`, adapted to `window` when there is one."""
        audio = None if window is None else window.samples
        rate = SCHEMA.analysis["rate"] if window is None else window.rate
        result = self.model.describe(list(words), intensity, audio, int(rate))
        eq = [float(v) for v in result.eq]
        return DescribeResult(dict(zip(SCHEMA.snapshot_params, eq, strict=True)), tuple(result.words_used))

    def feedback(self, words: Sequence[str], snapshot: int, rating: float) -> None:
        """Passed on when the model takes feedback, else ignored."""
        record = getattr(self.model, "feedback", None)
        if callable(record):
            record(words, snapshot, rating)


def load_handler(spec: str = DEFAULT_HANDLER) -> DescribeHandler:
    """The handler `spec` names: 'fallback', 'semantic-eq', or 'module:callable' where callable() returns a
    DescribeHandler.

    Raises ValueError with a one-line reason when the module, the model's weights, the callable or the result is
    wrong.
    """
    if spec == "fallback":
        return FallbackTableHandler()
    if spec == "semantic-eq":
        try:
            return SemanticEqAdapter()
        except (ImportError, OSError) as error:
            raise ValueError(f"handler 'semantic-eq' cannot be loaded ({type(error).__name__}: {error})") from None
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"handler '{spec}': use 'fallback' or 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"handler '{spec}' cannot be loaded ({type(error).__name__}: {error})") from None
    handler = factory()
    if not isinstance(handler, DescribeHandler):
        raise ValueError(f"handler '{spec}' returned {type(handler).__name__}, which has no describe()/feedback()")
    return handler
