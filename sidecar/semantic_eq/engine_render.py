"""Audio through the real engine (the native module idaw_core), for the semantic-EQ evaluation tools only.

The sidecar itself never renders audio and runs without idaw_core; only the evaluation run of
`idaw train semantic-eq` (evaluate_models.py, evaluate_adaptive.py) does, and it calls the engine directly rather
than through realtime (sidecar never imports realtime). This is realtime.offline.render's path at the audio's own
rate: a fresh engine, the parameters set at once, whole blocks of BLOCK_SIZE frames.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import idaw_core

F32 = npt.NDArray[np.float32]
BLOCK_SIZE = 256
"""Frames per engine block (realtime.offline's default)."""


def render_mono(audio: npt.ArrayLike, rate: int, snapshot: npt.ArrayLike) -> F32:
    """A processed copy of mono `audio` at `rate` Hz, rendered with the full parameter vector `snapshot`.

    Raises ValueError naming the first parameter the engine refuses (a wrong length, or a value out of range).
    """
    vector = np.ascontiguousarray(snapshot, dtype=np.float32)
    if vector.shape != (idaw_core.NUM_PARAMS,):
        raise ValueError(f"expected {idaw_core.NUM_PARAMS} parameter values, got shape {vector.shape}")
    bad = int(idaw_core.check_parameters(vector))
    if bad >= 0:
        raise ValueError(f"parameter {bad} = {vector[bad]:g} is out of the engine's range")
    frames = np.array(np.asarray(audio, dtype=np.float32)[:, np.newaxis], order="C", copy=True)
    engine = idaw_core.Engine()
    engine.prepare(float(rate), BLOCK_SIZE, 1)
    engine.set_parameters_now(vector)
    engine.render(frames, BLOCK_SIZE)  # in place
    out: F32 = frames[:, 0].copy()
    return out
