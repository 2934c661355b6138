"""Dimension tables and formulas shared by training and run time, free of torch so `idaw live` loads fast.

realtime/nets/architectures.py documents every dimension; this module holds the pieces other modules compute with.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: DynamicsEngine outputs (16, sigmoid in [0, 1]) for the notes of the coming beat; decoding in the README.
EXPRESSION_PARAMS = (
    "velocity_mean",
    "velocity_spread",
    "downbeat_accent",
    "offbeat_accent",
    "crescendo",
    "articulation",
    "articulation_spread",
    "timing_offset",
    "timing_jitter",
    "rubato",
    "sustain_pedal",
    "melody_prominence",
    "chord_roll",
    "ornament_probability",
    "vibrato_depth",
    "phrase_end_ritardando",
)

#: (valence, arousal) prototypes of joy, trust, fear, surprise, sadness, disgust, anger, anticipation
#: (architectures.PLUTCHIK order).
PLUTCHIK_VA = (
    (0.8, 0.5),
    (0.6, -0.4),
    (-0.6, 0.7),
    (0.1, 0.9),
    (-0.7, -0.6),
    (-0.7, 0.1),
    (-0.6, 0.8),
    (0.4, 0.4),
)
#: Width of each prototype's Gaussian on the (valence, arousal) plane.
PLUTCHIK_WIDTH = 0.35


def intensity_and_plutchik(valence: float, arousal: float) -> tuple[float, npt.NDArray[np.float64]]:
    """Emotion dims 3 and 4-11 for a (valence, arousal) point: (intensity, 8 Plutchik intensities).

    intensity = 2 * min(1, |(valence, arousal)| / sqrt 2) - 1; each Plutchik value is 2p - 1 with
    p = exp(-d^2 / (2 * PLUTCHIK_WIDTH^2)) and d the distance to that emotion's prototype point.
    """
    intensity = 2.0 * min(1.0, math.hypot(valence, arousal) / math.sqrt(2.0)) - 1.0
    proto = np.asarray(PLUTCHIK_VA)
    d2 = (proto[:, 0] - valence) ** 2 + (proto[:, 1] - arousal) ** 2
    return intensity, 2.0 * np.exp(-d2 / (2.0 * PLUTCHIK_WIDTH**2)) - 1.0
