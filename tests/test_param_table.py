"""The parameter table and EQ band layout of idaw/base/params.py (read from protocol.json) against the C++ core's.

The base reads the table from protocol.json so that a sidecar needs no native module; the engine's own table is
plugin_cpp/core/include/idaw/parameters.h. These tests hold the two together: the same names in the same order,
units, ranges, defaults and scales (as the engine's float32), and each EQ band's gain, frequency and Q parameters
and kind as the engine's EQ responds to them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

import idaw_core
from idaw.base import params
from idaw.base.protocol import SCHEMA

RATE = 48000.0
FREQS = np.geomspace(20.0, 20000.0, 241)
GAIN_DB = 9.0


def test_the_table_is_the_cores() -> None:
    core = idaw_core.param_specs()
    assert [s.name for s in params.SPECS] == [c["name"] for c in core]
    assert len(params.SPECS) == idaw_core.NUM_PARAMS
    for spec, c in zip(params.SPECS, core, strict=True):
        assert (spec.unit, spec.scale) == (c["unit"], c["scale"]), spec.name
        for mine, theirs in ((spec.minimum, c["min"]), (spec.maximum, c["max"]), (spec.default, c["default"])):
            assert np.float32(mine) == np.float32(theirs), spec.name  # the engine holds float32


def test_the_protocol_schema_reads_the_same_table() -> None:
    assert SCHEMA.parameters == params.SPECS
    assert SCHEMA.snapshot_params == params.EQ_PARAM_NAMES


def test_defaults_are_accepted_by_the_engine() -> None:
    assert idaw_core.check_parameters(params.defaults()) == -1


def _eq_only(values: dict[str, float]) -> npt.NDArray[np.float32]:
    """Defaults with every EQ gain 0 dB (every band bypassed) and `values` set."""
    vector = params.defaults()
    for band in params.EQ_BANDS:
        vector[params.INDEX[band.gain]] = 0.0
    for name, value in values.items():
        vector[params.INDEX[name]] = value
    return vector


def _response(values: dict[str, float]) -> npt.NDArray[np.float64]:
    return np.asarray(idaw_core.eq_response_db(_eq_only(values), RATE, FREQS))


def _at(values: dict[str, float], freq: float) -> float:
    return float(idaw_core.eq_response_db(_eq_only(values), RATE, np.array([freq]))[0])


def _rbj_shelf_db(gain_db: float, freq: float, q: float, at: float, high: bool) -> float:
    """The RBJ cookbook shelf's response in dB at `at` Hz (written here from the cookbook, not from the C++)."""
    a = 10.0 ** (gain_db / 40.0)
    w0, w = 2 * math.pi * freq / RATE, 2 * math.pi * at / RATE
    cos0, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    s = -1.0 if high else 1.0
    b = (
        a * ((a + 1) - s * (a - 1) * cos0 + 2 * math.sqrt(a) * alpha),
        s * 2 * a * ((a - 1) - s * (a + 1) * cos0),
        a * ((a + 1) - s * (a - 1) * cos0 - 2 * math.sqrt(a) * alpha),
    )
    den = (
        (a + 1) + s * (a - 1) * cos0 + 2 * math.sqrt(a) * alpha,
        -s * 2 * ((a - 1) + s * (a + 1) * cos0),
        (a + 1) + s * (a - 1) * cos0 - 2 * math.sqrt(a) * alpha,
    )
    z = np.exp(-1j * w * np.arange(3))
    return float(20 * np.log10(abs(np.dot(b, z)) / abs(np.dot(den, z))))


def test_every_band_is_flat_at_zero_gain() -> None:
    assert np.abs(_response({})).max() < 1e-9


@pytest.mark.parametrize("band", params.EQ_BANDS, ids=lambda b: b.gain)
def test_each_band_is_the_kind_and_parameters_the_table_says(band: params.EqBand) -> None:
    freq = params.SPECS[params.INDEX[band.freq]].default
    alone = {band.gain: GAIN_DB}
    # Its frequency parameter is where a peak reaches its full gain and a shelf half of it (cookbook filters).
    expected = GAIN_DB if band.kind == "peak" else GAIN_DB / 2
    assert _at(alone, freq) == pytest.approx(expected, abs=0.01)
    response = _response(alone)
    if band.kind == "peak":
        assert response.max() <= GAIN_DB + 1e-6
        assert abs(math.log2(FREQS[response.argmax()] / freq)) < 0.05
    else:
        low, high = response[0], response[-1]
        assert (low > high) == (band.kind == "low_shelf")
        q = params.SHELF_Q
        for at in (freq / 2, freq * 2):
            assert _at(alone, at) == pytest.approx(
                _rbj_shelf_db(GAIN_DB, freq, q, at, band.kind == "high_shelf"), abs=0.01
            )
    # Its frequency (and Q) change the response; the frequency and Q of every other band (bypassed: gain 0 dB)
    # change nothing.
    own = [band.freq] + ([band.q] if band.q else [])
    gains = {b.gain for b in params.EQ_BANDS}
    for name in params.EQ_PARAM_NAMES:
        if name in gains:
            continue
        spec = params.SPECS[params.INDEX[name]]
        scaled = math.log if spec.scale == "log" else float
        up = scaled(spec.maximum) - scaled(spec.default) >= scaled(spec.default) - scaled(spec.minimum)
        moved = spec.maximum if up else spec.minimum  # the end farther from the default
        changed = np.abs(_response({**alone, name: moved}) - response).max()
        if name in own:
            assert changed > 0.1, f"{name} should shape band {band.gain}"
        else:
            assert changed < 1e-9, f"{name} changed band {band.gain}, which it is not part of"
