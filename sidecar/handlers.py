"""The pluggable describe handler: words + intensity (+ the latest analysis window) -> an EQ snapshot.

The sidecar calls a `DescribeHandler`; the semantic EQ model (sidecar/semantic_eq/) will be one, and
`FallbackTableHandler` is the one that works without ML: a small table of SAFE-DB median settings;
`SemanticEqAdapter` wraps the model (the default). `load_handler('semantic-eq' | 'fallback' |
'package.module:factory')` picks one at start-up; `start_background(handler)` runs once the sidecar listens.
"""

from __future__ import annotations

import importlib
import math
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from idaw.base.defaults import DEFAULT_HANDLER
from idaw.base.protocol import SCHEMA, flat_values
from idaw.base.protocol.replies import STILL_LOADING


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


class StillLoadingError(RuntimeError):
    """An unknown word arrived while the synonym model is still loading; the message contains STILL_LOADING."""


MAX_STALE_S = 2.0
"""How much older than the newest analysis window the window a repeated describe is adapted to may be."""


class SemanticEqAdapter:
    """The semantic EQ model (sidecar/semantic_eq/handler.py, SemanticEqHandler) as a DescribeHandler.

    The EQ models load when the adapter is made (about 2 s, before the sidecar reports ready), and one describe
    of a known word runs then, so the first real request is as fast as the rest. The synonym model
    (all-MiniLM-L6-v2, only needed for words outside the vocabulary, about 5 s) loads on a background thread
    that `start_background()` starts once the sidecar listens. Until it is loaded, a request with a word outside
    the vocabulary is refused at once with StillLoadingError ('handler_failed', detail containing
    STILL_LOADING): the sidecar's one thread never waits for it, and requesters retry
    (idaw.base.protocol.replies.describe_retrying). Vocabulary words are answered meanwhile. Without
    start_background() an unknown word loads the model on demand.

    `model` may be given (tests); it needs describe(words, intensity, audio, rate) returning an object with `eq`
    (the 13 EQ values in snapshot_params order) and `words_used`; warm_up() and unknown_words(words) are used
    when it has them.
    """

    name = "semantic-eq"

    def __init__(self, model: Any = None, torch_threads: int | None = None) -> None:
        """`torch_threads`: torch's intra-op threads for this process (None leaves them alone)."""
        if model is None:
            from sidecar.semantic_eq.handler import SemanticEqHandler

            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
            model = SemanticEqHandler()
            self._exercise(model)
        self.model = model
        self._synonyms_ready = threading.Event()
        self._loading_since: float | None = None
        self._lock = threading.Lock()
        self._fitted: dict[tuple[str, ...], AnalysisWindow] = {}
        """Words -> the newest window whose fit the model holds."""
        self._pending: set[tuple[str, ...]] = set()
        self._jobs: queue.Queue[tuple[tuple[str, ...], AnalysisWindow]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.stale_answers = 0
        self.synonyms_load_s: float | None = None
        """How long the background load took (None until it finished)."""

    @staticmethod
    def _exercise(model: Any) -> None:
        """One describe of a vocabulary word, with and without audio: imports and first-call costs paid now."""
        rate = int(SCHEMA.analysis["rate"])
        noise = np.random.default_rng(0).normal(0.0, 0.05, 2 * rate).astype(np.float32)
        model.describe(["warm"], 0.5, None, rate)
        model.describe(["warm"], 0.5, noise, rate)

    def start_background(self) -> None:
        """Start loading the synonym model on a daemon thread (once); returns at once."""
        warm_up = getattr(self.model, "warm_up", None)
        if self._loading_since is not None or not callable(warm_up):
            self._synonyms_ready.set()
            return
        self._loading_since = time.monotonic()

        def load() -> None:
            try:
                warm_up()
            except Exception:  # unavailable synonyms: an unknown word then gets the resolver's own error
                pass
            finally:
                self.synonyms_load_s = time.monotonic() - (self._loading_since or 0.0)
                self._synonyms_ready.set()

        threading.Thread(target=load, name="idaw-synonym-model", daemon=True).start()

    @property
    def synonyms_ready(self) -> bool:
        """True once the background load finished (or when there is none to wait for)."""
        return self._synonyms_ready.is_set() or self._loading_since is None

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """The model's EQ for `words`, adapted to `window` when there is one.

        Raises StillLoadingError for a word outside the vocabulary while the synonym model loads.
        """
        if not self.synonyms_ready:
            unknown = getattr(self.model, "unknown_words", None)
            outside = unknown(list(words)) if callable(unknown) else []
            if outside:
                waited = time.monotonic() - (self._loading_since or 0.0)
                raise StillLoadingError(
                    f"the synonym model is {STILL_LOADING} ({waited:.1f} s so far) and '{outside[0][:40]}' is "
                    "outside the vocabulary; retry in a moment"
                )
        key = tuple(words)
        use = self._window_for(key, window)
        audio = None if use is None else use.samples
        rate = SCHEMA.analysis["rate"] if use is None else use.rate
        result = self.model.describe(list(words), intensity, audio, int(rate))
        if use is not None and use is window and self._refreshable(key):
            self._mark_fitted(key, use)
        eq = [float(v) for v in result.eq]
        return DescribeResult(dict(zip(SCHEMA.snapshot_params, eq, strict=True)), tuple(result.words_used))

    def _refreshable(self, key: tuple[str, ...]) -> bool:
        """Whether `key` may be fitted on the background thread (every word in the vocabulary)."""
        unknown = getattr(self.model, "unknown_words", None)
        return callable(unknown) and not unknown(list(key))

    def _window_for(self, key: tuple[str, ...], window: AnalysisWindow | None) -> AnalysisWindow | None:
        """The window to adapt `key` to now: `window`, or the newest one already fitted (queueing `window`)."""
        if window is None:
            return None
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is None or fitted.start == window.start or window.received - fitted.received > MAX_STALE_S:
                return window
            if key not in self._pending:
                self._pending.add(key)
                self._jobs.put((key, window))
                if self._worker is None:
                    self._worker = threading.Thread(target=self._refresh, name="idaw-eq-refresh", daemon=True)
                    self._worker.start()
            self.stale_answers += 1
            return fitted

    def _mark_fitted(self, key: tuple[str, ...], window: AnalysisWindow) -> None:
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is None or window.received >= fitted.received:
                self._fitted[key] = window
            if len(self._fitted) > 8:  # the model's cache holds 16 fits: keep well within it
                del self._fitted[next(iter(self._fitted))]

    def _refresh(self) -> None:
        """Background thread: fit queued (words, window) pairs into the model's cache."""
        while True:
            key, window = self._jobs.get()
            try:
                self.model.describe(list(key), 0.0, window.samples, int(window.rate))
                self._mark_fitted(key, window)
            except Exception:  # the next request computes it in the foreground and reports any error
                pass
            finally:
                with self._lock:
                    self._pending.discard(key)

    def feedback(self, words: Sequence[str], snapshot: int, rating: float) -> None:
        """Passed on when the model takes feedback, else ignored."""
        record = getattr(self.model, "feedback", None)
        if callable(record):
            record(words, snapshot, rating)


def start_background(handler: DescribeHandler) -> None:
    """Start the handler's background loading (once the sidecar listens), when it has any."""
    start = getattr(handler, "start_background", None)
    if callable(start):
        start()


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
            # One request at a time: a single torch thread is faster for these small models on a shared machine
            # (22 against 53 ms median per adapted describe on the 2-core test VM) and leaves cores to the audio.
            return SemanticEqAdapter(torch_threads=1)
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
