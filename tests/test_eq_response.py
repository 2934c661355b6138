"""The engine's EQ against an independent reference: scipy's sosfreqz of the JUCE/RBJ formulas."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

import idaw_core
from realtime import params

SHELF_Q = 0.71
IMPULSE_LENGTH = 1 << 18  # long enough for a 22 Hz shelf with Q 10 peaks to ring out at 96 kHz
FREQS = np.geomspace(20.0, 20000.0, 400)


def juce_sections(eq: dict[str, float], rate: float) -> npt.NDArray[np.float64]:
    """Second-order sections written from JUCE's IIRCoefficients source, independently of the C++."""

    def shelf(freq: float, gain_db: float, high: bool) -> list[float]:
        a = np.sqrt(10 ** (gain_db / 20))
        w = 2 * np.pi * max(freq, 2.0) / rate
        cos, beta = np.cos(w), np.sin(w) * np.sqrt(a) / SHELF_Q
        am, ap = a - 1, a + 1
        if high:
            b = [a * (ap + am * cos + beta), -2 * a * (am + ap * cos), a * (ap + am * cos - beta)]
            den = [ap - am * cos + beta, 2 * (am - ap * cos), ap - am * cos - beta]
        else:
            b = [a * (ap - am * cos + beta), 2 * a * (am - ap * cos), a * (ap - am * cos - beta)]
            den = [ap + am * cos + beta, -2 * (am + ap * cos), ap + am * cos - beta]
        return [*b, *den]

    def peak(freq: float, q: float, gain_db: float) -> list[float]:
        a = np.sqrt(10 ** (gain_db / 20))
        w = 2 * np.pi * max(freq, 2.0) / rate
        alpha, c2 = 0.5 * np.sin(w) / q, -2 * np.cos(w)
        return [1 + alpha * a, c2, 1 - alpha * a, 1 + alpha / a, c2, 1 - alpha / a]

    rows = [
        shelf(eq["low_freq"], eq["low_gain"], high=False),
        peak(eq["mid1_freq"], eq["mid1_q"], eq["mid1_gain"]),
        peak(eq["mid2_freq"], eq["mid2_q"], eq["mid2_gain"]),
        peak(eq["mid3_freq"], eq["mid3_q"], eq["mid3_gain"]),
        shelf(eq["high_freq"], eq["high_gain"], high=True),
    ]
    sos = np.array(rows, dtype=np.float64)
    return sos / sos[:, 3:4]


def reference_db(eq: dict[str, float], rate: float) -> npt.NDArray[np.float64]:
    _, h = signal.sosfreqz(juce_sections(eq, rate), worN=FREQS, fs=rate)
    return np.asarray(20 * np.log10(np.abs(h)))


def engine_db(eq: dict[str, float], rate: float) -> npt.NDArray[np.float64]:
    """Magnitude response measured from the engine's actual output for an impulse."""
    engine = idaw_core.Engine()
    engine.prepare(rate, 512, 1)
    engine.set_parameters_now(params.build(eq))
    amplitude = 1e-3  # far below the safety limiter's ceiling even with +60 dB of combined boost
    impulse = np.zeros((IMPULSE_LENGTH, 1), dtype=np.float32)
    impulse[0, 0] = amplitude
    engine.render(impulse, 512)
    assert engine.counters()["limited_samples"] == 0
    response = impulse[:, 0].astype(np.float64) / amplitude
    spectrum = np.fft.rfft(response)
    bins = np.fft.rfftfreq(IMPULSE_LENGTH, 1 / rate)
    magnitude = np.interp(FREQS, bins, np.abs(spectrum))
    return np.asarray(20 * np.log10(magnitude))


def safe_grid() -> list[dict[str, float]]:
    """Settings spanning SAFE-DB's ranges: extreme gains, Q 0.1..10, band frequencies low to high."""
    grid = []
    for gain, q, where in itertools.product((-12.0, 12.0), (0.1, 0.71, 10.0), ("low", "high")):
        lo = where == "low"
        grid.append(
            {
                "low_gain": gain,
                "low_freq": 22.0 if lo else 1000.0,
                "mid1_gain": -gain,
                "mid1_freq": 82.0 if lo else 3900.0,
                "mid1_q": q,
                "mid2_gain": gain,
                "mid2_freq": 180.0 if lo else 4700.0,
                "mid2_q": q,
                "mid3_gain": -gain,
                "mid3_freq": 220.0 if lo else 10000.0,
                "mid3_q": q,
                "high_gain": gain,
                "high_freq": 580.0 if lo else 20000.0,
            }
        )
    rng = np.random.default_rng(7)
    for _ in range(6):
        setting = {}
        for name in params.EQ_PARAM_NAMES:
            spec = params.SPECS[params.INDEX[name]]
            if spec.scale == "log":
                setting[name] = float(np.exp(rng.uniform(np.log(spec.minimum), np.log(spec.maximum))))
            else:
                setting[name] = float(rng.uniform(spec.minimum, spec.maximum))
        grid.append(setting)
    return grid


@pytest.mark.parametrize("rate", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("setting", safe_grid(), ids=lambda s: f"g{s['low_gain']:+.0f}q{s['mid1_q']:.2g}")
def test_processed_response_matches_reference(rate: float, setting: dict[str, float]) -> None:
    measured = engine_db(setting, rate)
    expected = reference_db(setting, rate)
    worst = np.max(np.abs(measured - expected))
    assert worst <= 0.05, f"max deviation {worst:.4f} dB at {FREQS[np.argmax(np.abs(measured - expected))]:.0f} Hz"


@pytest.mark.parametrize("rate", [44100.0, 48000.0, 96000.0])
def test_reported_response_matches_reference(rate: float) -> None:
    """eq_response_db (used for plots) must describe the same filter the engine runs."""
    for setting in safe_grid():
        reported = idaw_core.eq_response_db(params.build(setting), rate, FREQS)
        assert np.max(np.abs(reported - reference_db(setting, rate))) <= 0.05


def test_flat_eq_reports_flat_response() -> None:
    reported = idaw_core.eq_response_db(params.defaults(), 48000.0, FREQS)
    assert np.all(reported == 0.0)
