"""The VST3 in pedalboard (Spotify's Python host): parameters by name, audio equal to the Python host's render.

pedalboard sets a continuous parameter through the plugin's own text parser, but checks the answer against the
values it sampled at 1000 points when loading the plugin and may fall back to the nearest sampled point. So the
test reads back what the plugin holds (from its saved state, exact), checks it is the value asked for or within
one of pedalboard's sampling steps of it, and renders the Python side with the held values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime import params
from realtime.offline import render_array
from tests.needs import need
from tests.plugin_support import (
    CHAIN,
    PluginBuild,
    chain_input,
    max_abs_diff,
    plugin_build,
    plugin_state,
    state_values,
    vector,
)

TOLERANCE = 1e-6

try:
    import pedalboard
except ImportError:  # pragma: no cover - reported by need() below
    pedalboard = None


@pytest.fixture(scope="module")
def build() -> PluginBuild:
    """The built plugin (skip, or fail in CI, when missing)."""
    return plugin_build()


@pytest.fixture(scope="module")
def plugin(build: PluginBuild):  # type: ignore[no-untyped-def]
    """The VST3 loaded by pedalboard."""
    need(pedalboard is not None, "pedalboard is not installed: pip install pedalboard")
    return pedalboard.load_plugin(str(build.vst3))


def sampling_step(name: str, value: float) -> float:
    """Width of one of pedalboard's 1000 sampling steps around `value` (log scale for frequencies and Q)."""
    spec = params.SPECS[params.INDEX[name]]
    if spec.scale == "log":
        return value * (math.exp(math.log(spec.maximum / spec.minimum) / 1000) - 1)
    return (spec.maximum - spec.minimum) / 1000


def set_and_read_back(plugin, values: dict[str, float]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Set `values` by name through pedalboard; return what the plugin holds."""
    for name, value in values.items():
        setattr(plugin, name, value)
    held = state_values(plugin_state(plugin.raw_state))
    for name, value in values.items():
        assert abs(held[name] - value) <= sampling_step(name, value) * 1.0001, (name, value, held[name])
    return held


def test_parameters_by_name(plugin) -> None:  # type: ignore[no-untyped-def]
    names = set(plugin.parameters.keys())
    assert set(CHAIN) <= names, sorted(set(CHAIN) - names)
    assert not any(n.startswith("midi_cc") for n in names)
    assert plugin.low_freq == pytest.approx(150.0) and plugin.mid1_q == pytest.approx(0.71, abs=0.005)
    assert plugin.parameters["low_gain"].range[:2] == (-12.0, 12.0)
    assert plugin.parameters["high_freq"].range[:2] == (580.0, 20000.0)


@pytest.mark.parametrize(("rate", "channels", "buffer_size"), [(48000, 2, 512), (44100, 1, 64), (96000, 2, 1)])
def test_render_matches_offline(plugin, rate: int, channels: int, buffer_size: int) -> None:  # type: ignore[no-untyped-def]
    held = set_and_read_back(plugin, CHAIN)
    exact = [name for name in CHAIN if held[name] == pytest.approx(CHAIN[name], rel=1e-6)]
    assert len(exact) >= len(CHAIN) // 2, f"pedalboard moved most values: {held}"
    audio = chain_input(rate, 0.5, channels=channels)
    out = plugin.process(np.ascontiguousarray(audio.T), rate, buffer_size=buffer_size, reset=True)
    expected = render_array(audio, rate, vector({name: held[name] for name in CHAIN}), block_size=buffer_size)
    assert out.shape == (channels, audio.shape[0])
    diff = max_abs_diff(out.T, expected)
    assert diff <= TOLERANCE, f"max abs diff {diff:.3g}"
    assert max_abs_diff(out.T, audio) > 0.05


def test_state_survives_a_reload(build: PluginBuild, plugin) -> None:  # type: ignore[no-untyped-def]
    held = set_and_read_back(plugin, {"mid2_gain": -6.5, "drive": 12.0, "mix": 0.4})
    other = pedalboard.load_plugin(str(build.vst3))
    other.raw_state = plugin.raw_state
    assert state_values(plugin_state(other.raw_state)) == held
    assert other.mid2_gain == pytest.approx(-6.5) and other.drive == pytest.approx(12.0)
