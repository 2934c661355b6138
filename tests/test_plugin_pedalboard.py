"""The VST3 in pedalboard (Spotify's Python host): parameters by name, audio equal to the Python host's render.

pedalboard sets a continuous parameter (`plugin.low_freq = 400`) through the plugin's own text parser, but checks
the answer against the values it sampled at 1000 points when loading the plugin and may fall back to the nearest
sampled point (e.g. mid2_freq = 1500 becomes 1500.41). So the test reads back what the plugin holds (from its
saved state, exact), checks it is the value asked for or within one of pedalboard's sampling steps of it, and
renders the Python side with the held values. Normalised values (`plugin.parameters[name].raw_value`) land
exactly; a second test renders those against the requested chain itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

from realtime import params
from realtime.offline import render_array
from tests.support.needs import need_module
from tests.support.plugin import (
    CHAIN,
    NO_SIDECAR,
    PluginBuild,
    chain_input,
    max_abs_diff,
    plugin_state,
    state_values,
    vector,
)

TOLERANCE = 1e-6

if TYPE_CHECKING:
    from pedalboard import VST3Plugin
    from pedalboard._pedalboard import AudioProcessorParameter  # where it is defined (pedalboard re-exports it)


@pytest.fixture(scope="module", autouse=True)
def no_sidecar() -> Iterator[None]:
    """The plugin runs in this process: point its sidecar link at an address nobody binds."""
    saved = {k: os.environ.get(k) for k in NO_SIDECAR}
    os.environ.update(NO_SIDECAR)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def load(build: PluginBuild) -> VST3Plugin:
    """The VST3 loaded by pedalboard (skip, or fail in CI, without pedalboard)."""
    pedalboard = need_module("pedalboard", "pip install pedalboard")
    plugin: VST3Plugin = pedalboard.VST3Plugin(str(build.vst3))
    return plugin


def by_name(plugin: VST3Plugin, name: str) -> float:
    """The value of parameter `name` read as pedalboard's attribute of that name (`plugin.low_freq`), which it adds
    at run time for each parameter."""
    return float(getattr(plugin, name))


def parameters(plugin: VST3Plugin) -> dict[str, AudioProcessorParameter]:
    """pedalboard's parameters by name."""
    # pedalboard adds `parameters` at run time (a mixin appended to ExternalPlugin's bases), which its stubs miss.
    found: dict[str, AudioProcessorParameter] = plugin.parameters  # type: ignore[attr-defined]
    return found


@pytest.fixture(scope="module")
def plugin(build: PluginBuild) -> VST3Plugin:
    """The VST3 loaded by pedalboard."""
    return load(build)


def sampling_step(name: str, value: float) -> float:
    """Width of one of pedalboard's 1000 sampling steps around `value` (log scale for frequencies and Q)."""
    spec = params.SPECS[params.INDEX[name]]
    if spec.scale == "log":
        return value * (math.exp(math.log(spec.maximum / spec.minimum) / 1000) - 1)
    return (spec.maximum - spec.minimum) / 1000


def set_and_read_back(plugin: VST3Plugin, values: dict[str, float]) -> dict[str, float]:
    """Set `values` by name through pedalboard; return what the plugin holds."""
    for name, value in values.items():
        setattr(plugin, name, value)
    held = state_values(plugin_state(plugin.raw_state))
    for name, value in values.items():
        assert abs(held[name] - value) <= sampling_step(name, value) * 1.0001, (name, value, held[name])
    return held


def test_parameters_by_name(plugin: VST3Plugin) -> None:
    names = set(parameters(plugin).keys())
    assert set(CHAIN) <= names, sorted(set(CHAIN) - names)
    assert not any(n.startswith("midi_cc") for n in names)
    assert by_name(plugin, "low_freq") == pytest.approx(150.0)
    assert by_name(plugin, "mid1_q") == pytest.approx(0.71, abs=0.005)
    assert parameters(plugin)["low_gain"].range[:2] == (-12.0, 12.0)
    assert parameters(plugin)["high_freq"].range[:2] == (580.0, 20000.0)


@pytest.mark.parametrize(("rate", "channels", "buffer_size"), [(48000, 2, 512), (44100, 1, 64), (96000, 2, 1)])
def test_render_matches_offline(plugin: VST3Plugin, rate: int, channels: int, buffer_size: int) -> None:
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


def normalised(name: str, value: float) -> float:
    """The plugin's normalised position of `value` (linear, or logarithmic for frequencies and Q)."""
    spec = params.SPECS[params.INDEX[name]]
    if spec.scale == "log":
        return math.log(value / spec.minimum) / math.log(spec.maximum / spec.minimum)
    return (value - spec.minimum) / (spec.maximum - spec.minimum)


def test_raw_values_set_exact_parameters(plugin: VST3Plugin) -> None:
    """Through raw_value (normalised) every value lands where asked, and the render equals the requested chain."""
    for name, value in CHAIN.items():
        parameters(plugin)[name].raw_value = normalised(name, value)
    held = state_values(plugin_state(plugin.raw_state))
    for name, value in CHAIN.items():
        assert held[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name
    audio = chain_input(48000, 0.5)
    out = plugin.process(np.ascontiguousarray(audio.T), 48000, buffer_size=256, reset=True)
    assert max_abs_diff(out.T, render_array(audio, 48000, vector(CHAIN), block_size=256)) <= TOLERANCE


def test_state_survives_a_reload(build: PluginBuild, plugin: VST3Plugin) -> None:
    held = set_and_read_back(plugin, {"mid2_gain": -6.5, "drive": 12.0, "mix": 0.4})
    other = load(build)
    other.raw_state = plugin.raw_state
    assert state_values(plugin_state(other.raw_state)) == held
    assert by_name(other, "mid2_gain") == pytest.approx(-6.5) and by_name(other, "drive") == pytest.approx(12.0)
