"""Levels measured on their own, apart from the code under test: the peak of audio oversampled by scipy."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly


def peak_db(audio: npt.NDArray[np.float32], oversampling: int) -> float:
    """The largest magnitude of `audio` (frames, channels) or (frames,), in dB: oversampled `oversampling` times by
    scipy's polyphase resampler (4 is BS.1770-4's true peak, dBTP), the sample peak (dBFS) when it is 1; never below
    the sample peak. -inf for silence."""
    data = audio.astype(np.float64)
    up = resample_poly(data, oversampling, 1, axis=0) if oversampling > 1 else data
    peak = float(max(np.max(np.abs(up)), np.max(np.abs(data))))
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf
