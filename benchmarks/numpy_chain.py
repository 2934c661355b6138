"""The engine's chain written in numpy/scipy: the alternative the core is compared with.

Same stages and formulas as plugin_cpp/core (input gain -> tanh waveshaper with DC-blocked residual ->
five JUCE-formula biquads -> dry/wet -> output gain -> safety clamp), vectorised, in float64 like the core.
Two differences, both in numpy's favour: np.tanh stands in for the core's Pade tanh (they differ by
< 2e-6), and the limiter is only the core's final clamp to full scale, without its gain rider (a rider is
sequential and would need a Python loop per sample). Both are identities up to full scale, so the two agree
wherever the core's limiter is idle. Parameters are fixed: there are no ramps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

import idaw_core
from realtime import params

SHELF_Q = 0.71
"""Q of both shelves (kShelfQ in parameters.h)."""

DC_BLOCKER_HZ = 10.0
"""Corner of the one-pole high-pass on the drive residual (engine.cpp)."""

DRIVE_FADE_DB = 6.0
"""Drive blends in over its first 6 dB (engine.cpp)."""

Audio = npt.NDArray[np.float32]
Signal = npt.NDArray[np.float64]


def _amplitude(gain_db: float) -> float:
    """JUCE's A = sqrt(decibelsToGain(dB))."""
    return math.sqrt(10.0 ** (gain_db / 20.0))


def _omega(rate: float, freq: float) -> float:
    """Angular frequency with JUCE's 2 Hz floor and the core's just-below-Nyquist ceiling."""
    return 2.0 * math.pi * min(max(freq, 2.0), 0.499 * rate) / rate


def shelf_section(rate: float, freq: float, gain_db: float, high: bool) -> list[float]:
    """[b0, b1, b2, a0, a1, a2] of JUCE IIRCoefficients::makeLowShelf / makeHighShelf (not normalised)."""
    a = _amplitude(gain_db)
    w = _omega(rate, freq)
    cos, beta = math.cos(w), math.sin(w) * math.sqrt(a) / SHELF_Q
    am, ap = a - 1.0, a + 1.0
    if high:
        return [
            a * (ap + am * cos + beta),
            -2.0 * a * (am + ap * cos),
            a * (ap + am * cos - beta),
            ap - am * cos + beta,
            2.0 * (am - ap * cos),
            ap - am * cos - beta,
        ]
    return [
        a * (ap - am * cos + beta),
        2.0 * a * (am - ap * cos),
        a * (ap - am * cos - beta),
        ap + am * cos + beta,
        -2.0 * (am + ap * cos),
        ap + am * cos - beta,
    ]


def peak_section(rate: float, freq: float, q: float, gain_db: float) -> list[float]:
    """[b0, b1, b2, a0, a1, a2] of JUCE IIRCoefficients::makePeakFilter (not normalised)."""
    a = _amplitude(gain_db)
    w = _omega(rate, freq)
    alpha, c2 = 0.5 * math.sin(w) / q, -2.0 * math.cos(w)
    return [1.0 + alpha * a, c2, 1.0 - alpha * a, 1.0 + alpha / a, c2, 1.0 - alpha / a]


def juce_sos(snapshot: npt.NDArray[np.float32], rate: float) -> Signal:
    """Second-order sections (n, 6), a0 = 1, of the EQ bands whose gain is not 0 dB (the core skips those)."""
    v = {name: float(snapshot[params.INDEX[name]]) for name in params.EQ_PARAM_NAMES}
    bands = [
        (v["low_gain"], shelf_section(rate, v["low_freq"], v["low_gain"], high=False)),
        (v["mid1_gain"], peak_section(rate, v["mid1_freq"], v["mid1_q"], v["mid1_gain"])),
        (v["mid2_gain"], peak_section(rate, v["mid2_freq"], v["mid2_q"], v["mid2_gain"])),
        (v["mid3_gain"], peak_section(rate, v["mid3_freq"], v["mid3_q"], v["mid3_gain"])),
        (v["high_gain"], shelf_section(rate, v["high_freq"], v["high_gain"], high=True)),
    ]
    rows = [row for gain, row in bands if gain != 0.0]
    sos = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return sos / sos[:, 3:4]


@dataclass(frozen=True)
class ChainSettings:
    """Everything the chain needs, computed once from a snapshot at a rate."""

    input_gain: float
    output_gain: float
    mix: float
    drive_blend: float
    pre_gain: float
    bias: float
    offset: float
    inv_norm: float
    dc_pole: float
    sos: Signal

    @classmethod
    def from_snapshot(cls, snapshot: npt.NDArray[np.float32], rate: float) -> ChainSettings:
        """Settings for `snapshot` at `rate`, with the core's formulas (SaturationShape::make etc.)."""

        def value(name: str) -> float:
            return float(snapshot[params.INDEX[name]])

        drive_db = value("drive")
        pre_gain = 10.0 ** (drive_db / 20.0)
        bias = 0.6 * value("crunch")
        offset = math.tanh(bias)
        up = math.tanh(pre_gain + bias) - offset
        down = offset - math.tanh(bias - pre_gain)
        return cls(
            input_gain=10.0 ** (value("input_gain") / 20.0),
            output_gain=10.0 ** (value("output_gain") / 20.0),
            mix=value("mix"),
            drive_blend=min(1.0, drive_db / DRIVE_FADE_DB),
            pre_gain=pre_gain,
            bias=bias,
            offset=offset,
            inv_norm=1.0 / max(up, down),
            dc_pole=math.exp(-2.0 * math.pi * DC_BLOCKER_HZ / rate),
            sos=juce_sos(snapshot, rate),
        )


def safety_clamp(x: Signal) -> None:
    """The core limiter's last step, in place: clamp to ±idaw_core.LIMITER_CEILING (full scale)."""
    np.clip(x, -idaw_core.LIMITER_CEILING, idaw_core.LIMITER_CEILING, out=x)


class NumpyChain:
    """The chain with its filter state: call `process` on consecutive blocks, or once on a whole buffer."""

    def __init__(self, settings: ChainSettings, channels: int) -> None:
        """A chain at rest (zero filter state) for `channels` channels."""
        self.settings = settings
        self._dc_b = np.array([1.0, -1.0])
        self._dc_a = np.array([1.0, -settings.dc_pole])
        self._dc_zi: Signal = np.zeros((1, channels))
        self._sos_zi: Signal = np.zeros((settings.sos.shape[0], 2, channels))

    def process(self, block: Audio) -> None:
        """Processes float32 frames (frames, channels) in place, carrying filter state to the next call."""
        s = self.settings
        dry = block.astype(np.float64)
        dry *= s.input_gain
        x = dry
        if s.drive_blend != 0.0:
            shaped = dry * s.pre_gain
            shaped += s.bias
            np.tanh(shaped, out=shaped)
            shaped -= s.offset
            shaped *= s.inv_norm
            shaped -= dry  # the distortion residual: only it is DC-blocked
            x, self._dc_zi = signal.lfilter(self._dc_b, self._dc_a, shaped, axis=0, zi=self._dc_zi)
            x *= s.drive_blend
            x += dry
        if s.sos.shape[0]:
            x, self._sos_zi = signal.sosfilt(s.sos, x, axis=0, zi=self._sos_zi)
        if x is dry:  # drive and every band bypassed: the wet signal must not alias the dry one
            x = dry.copy()
        # Like the core, the dry term is always computed, even when mix is 1.
        x *= s.mix * s.output_gain
        dry *= (1.0 - s.mix) * s.output_gain
        x += dry
        safety_clamp(x)
        block[...] = x


def render_offline(audio: Audio, settings: ChainSettings) -> None:
    """The whole buffer (frames, channels) in place, in one vectorised pass from rest."""
    NumpyChain(settings, audio.shape[1]).process(audio)


def render_blocks(audio: Audio, settings: ChainSettings, block_size: int) -> None:
    """The whole buffer in place, one `block_size` slice at a time as a Python audio callback would."""
    chain = NumpyChain(settings, audio.shape[1])
    for begin in range(0, audio.shape[0], block_size):
        chain.process(audio[begin : begin + block_size])
