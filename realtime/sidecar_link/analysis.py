"""Analysis windows for the sidecar: drain the engine's mono ring, decimate to ~16 kHz, cut overlapping windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from idaw.base.protocol import SCHEMA

MAX_DRAIN_S = 10.0
"""At most this much audio is drained in one pump (the core's ring holds about 10 s at 48 kHz)."""


class AnalysisSource(Protocol):
    """Anything with the engine's read_analysis(out) -> count."""

    def read_analysis(self, out: npt.NDArray[np.float32]) -> int:
        """Pop mono samples into `out`; returns how many were written."""
        ...


Listener = Callable[[npt.NDArray[np.float32], int], None]
"""Called with each resampled piece of the analysis stream and its rate (see WindowMaker.add_listener)."""


class WindowMaker:
    """Turns the engine's analysis stream into windows of `window_s` seconds every `hop_s`, at `rate` Hz.

    rate is the protocol's analysis rate (22.05 kHz), or the engine's own rate when that is lower. The engine's ring
    has one reader, so whoever pumps a WindowMaker is it; others get the resampled stream as listeners.
    """

    def __init__(
        self, engine_rate: int, rate: int | None = None, window_s: float | None = None, hop_s: float | None = None
    ) -> None:
        analysis = SCHEMA.analysis
        self.engine_rate = engine_rate
        self.rate = min(int(rate or analysis["rate"]), engine_rate)
        self.window_n = int(self.rate * (window_s or analysis["window_s"]))
        self.hop_n = max(1, int(self.rate * (hop_s or analysis["hop_s"])))
        self.total_in = 0
        """Engine-rate samples drained so far."""
        self.total_out = 0
        """Analysis-rate samples produced so far."""
        self._read = np.empty(max(1024, engine_rate // 10), dtype=np.float32)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._since_hop = 0
        self._listeners: tuple[Listener, ...] = ()
        self._resampler: Any = None
        if self.rate != engine_rate:
            import soxr

            self._resampler = soxr.ResampleStream(engine_rate, self.rate, 1, dtype="float32", quality="HQ")

    def add_listener(self, listener: Listener) -> None:
        """Also hand every resampled piece (float32 mono at `rate`, in order, none skipped) to `listener`, on the
        thread that feeds; it must return quickly (e.g. put the piece in a queue). Safe while another thread feeds
        (one thread at a time adds or removes)."""
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop handing pieces to `listener` (no-op when it is not one); as safe as add_listener."""
        self._listeners = tuple(x for x in self._listeners if x is not listener)

    def drain(self, source: AnalysisSource) -> npt.NDArray[np.float32]:
        """Every sample waiting in `source`'s ring (at most MAX_DRAIN_S), at the engine rate."""
        chunks: list[npt.NDArray[np.float32]] = []
        limit = int(MAX_DRAIN_S * self.engine_rate)
        drained = 0
        while drained < limit:
            count = int(source.read_analysis(self._read))
            if count <= 0:
                break
            chunks.append(self._read[:count].copy())
            drained += count
            if count < self._read.size:
                break
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def feed(self, samples: npt.NDArray[np.float32]) -> tuple[int, npt.NDArray[np.float32]] | None:
        """Add engine-rate samples; returns (start index, window) when a hop is complete, else None."""
        if samples.size == 0:
            return None
        self.total_in += samples.size
        out = samples if self._resampler is None else self._resampler.resample_chunk(samples)
        out = np.nan_to_num(np.asarray(out, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        for listener in self._listeners:
            listener(out, self.rate)
        self._buffer = np.concatenate([self._buffer, out])[-self.window_n :]
        self.total_out += out.size
        self._since_hop += out.size
        if self._since_hop < self.hop_n or self._buffer.size < self.hop_n:
            return None
        self._since_hop = 0
        return self.total_out - self._buffer.size, self._buffer.copy()

    def pump(self, source: AnalysisSource) -> tuple[int, npt.NDArray[np.float32]] | None:
        """drain() then feed(): the window due now, if any."""
        return self.feed(self.drain(source))
