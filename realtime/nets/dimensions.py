"""Dimension tables shared by training and run time, free of torch so `idaw live` loads fast.

realtime/nets/architectures.py documents every dimension; this module holds the pieces other modules compute with.
The emotion map (valence, arousal) -> embedding lives in the C++ core (idaw_core.emotion_from_valence_arousal,
plugin_cpp/core/include/idaw/emotion_map.h), shared by the training labels, the Python host and the plugin.
"""

from __future__ import annotations

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
