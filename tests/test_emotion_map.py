"""The valence/arousal -> 64-d emotion map has one home, the C++ core (plugin_cpp/core/include/idaw/emotion_map.h):
idaw_core exposes it, it follows its documented formula, and the training labels and the Python host use it, bit
for bit. The plugin compiles the same function; tests/test_plugin_host.py holds the plugin's MIDI, for the A minor
(-0.6, 0.45) and F# dorian (0.7, -0.3) points, to the Python host's, which reads this map."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import idaw_core
from realtime import midi_settings
from realtime.nets import labels

# The formula as emotion_map.h documents it, restated here as the test's oracle: a changed constant in the core
# must fail this test. Prototypes of joy, trust, fear, surprise, sadness, disgust, anger, anticipation.
PROTOTYPES = ((0.8, 0.5), (0.6, -0.4), (-0.6, 0.7), (0.1, 0.9), (-0.7, -0.6), (-0.7, 0.1), (-0.6, 0.8), (0.4, 0.4))
WIDTH = 0.35
# The core computes in double and rounds each value to float32 once: for values in [-1, 1] that is within half a
# float32 step at 1.0 (2^-24 / 2); a double exp() from another libm (numpy's own, a CPU's FMA variant) moves the
# double result by an ulp or so, far below that. One full float32 step at 1.0 (2^-24) bounds both.
FLOAT32_STEP = 2.0**-24

GRID = [(float(v), float(a)) for v in np.linspace(-1.25, 1.25, 41) for a in np.linspace(-1.25, 1.25, 41)]


def documented(valence: float, arousal: float) -> npt.NDArray[np.float64]:
    """Dims 0-11 in float64 from the documented formula (inputs clamped to [-1, 1])."""
    v, a = min(1.0, max(-1.0, valence)), min(1.0, max(-1.0, arousal))
    out = np.zeros(12)
    out[0], out[1] = v, a
    out[3] = 2.0 * min(1.0, math.hypot(v, a) / math.sqrt(2.0)) - 1.0
    for k, (pv, pa) in enumerate(PROTOTYPES):
        out[4 + k] = 2.0 * math.exp(-((pv - v) ** 2 + (pa - a) ** 2) / (2.0 * WIDTH**2)) - 1.0
    return out


def test_core_map_follows_its_documented_formula() -> None:
    for valence, arousal in GRID:
        got = idaw_core.emotion_from_valence_arousal(valence, arousal)
        assert got.shape == (int(idaw_core.EMOTION_DIMS),) and got.dtype == np.float32
        np.testing.assert_allclose(got[:12], documented(valence, arousal), rtol=0, atol=FLOAT32_STEP)
        assert got[2] == 0.0 and not got[12:].any()  # dominance and the latent dims: nothing to say
        assert np.all(np.abs(got) <= 1.0)
    # Spot values worked out by hand: the origin has no intensity; on its prototype an emotion is at full strength.
    assert idaw_core.emotion_from_valence_arousal(0.0, 0.0)[3] == -1.0
    assert idaw_core.emotion_from_valence_arousal(0.8, 0.5)[4] == 1.0
    assert idaw_core.emotion_from_valence_arousal(-0.7, -0.6)[8] == 1.0


def test_core_map_clamps_and_refuses_nothing() -> None:
    far = idaw_core.emotion_from_valence_arousal(5.0, -9.0)
    np.testing.assert_array_equal(far, idaw_core.emotion_from_valence_arousal(1.0, -1.0))
    neutral = idaw_core.emotion_from_valence_arousal(float("nan"), 0.25)  # NaN counts as 0: never NaN to the nets
    np.testing.assert_array_equal(neutral, idaw_core.emotion_from_valence_arousal(0.0, 0.25))
    not_a_number: Any = "0.5"  # on purpose: the binding must refuse it at run time
    with pytest.raises(TypeError):
        idaw_core.emotion_from_valence_arousal(not_a_number, 0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_labels_are_the_core_map(seed: int) -> None:
    rng = np.random.default_rng(seed)
    others = [0, 1, *range(3, 12)]  # every label dim but dominance, which comes from the cues
    for _ in range(200):
        cues = {k: float(rng.normal()) for k in ("mode", "harmony", "register", "tempo", "density", "loudness")}
        cues["articulation"] = float(rng.uniform(-0.5, 1.0))
        valence, arousal = labels._combine(cues)  # the weak labels, as training computes them
        got = labels.emotion_dims(valence, arousal, cues)
        assert got.shape == (labels.LABEL_DIMS,) and got.dtype == np.float32
        core = idaw_core.emotion_from_valence_arousal(valence, arousal)[: labels.LABEL_DIMS]
        np.testing.assert_array_equal(got[others].view(np.uint32), core[others].view(np.uint32))  # bit for bit
        dominance = math.tanh(
            0.7 * cues["loudness"]
            - 0.6 * cues["register"]
            + 0.4 * cues["density"]
            + 0.3 * cues["articulation"]
            + 0.3 * cues["mode"]
        )
        assert got[2] == pytest.approx(dominance, abs=FLOAT32_STEP)


def test_python_host_sends_the_core_map() -> None:
    for valence, arousal in GRID:
        got = midi_settings.emotion_from_valence_arousal(valence, arousal)
        want = idaw_core.emotion_from_valence_arousal(valence, arousal)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # The settings' default emotion (what `idaw live` sends without --valence/--arousal) is the map's neutral point.
    assert midi_settings.MidiSettings().emotion == tuple(float(x) for x in idaw_core.emotion_from_valence_arousal(0, 0))
