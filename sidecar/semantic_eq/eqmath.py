"""The engine's 13-parameter EQ as vectorised maths (numpy float64 and torch), and its log-scale parametrisation.

The formulas are those of plugin_cpp/core/src/biquad.cpp (JUCE makeLowShelf / makePeakFilter / makeHighShelf,
shelf Q fixed at 0.71, a band whose gain is exactly 0 dB is bypassed), so `response_db` matches
`idaw_core.eq_response_db` to floating-point precision (tests/test_semantic_eq_fit.py checks it).

The normalised form `u` of a setting lies in [-1, 1]^13: gains are dB / 12, frequencies and Qs are
log-scaled across their engine range ("frequencies normalised on a log scale").

The ranges, defaults, scales and the band table come from idaw/base/params.py (protocol.json), which
tests/test_param_table.py holds to the C++ core's table: nothing here repeats them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from idaw.base import params

if TYPE_CHECKING:
    import torch

F64 = npt.NDArray[np.float64]

_EQ_SPECS = tuple(params.SPECS[params.INDEX[name]] for name in params.EQ_PARAM_NAMES)
NUM_EQ = len(params.EQ_PARAM_NAMES)
"""The EQ's parameter count (13), in SAFE-DB order."""
_POSITION = {name: i for i, name in enumerate(params.EQ_PARAM_NAMES)}
GAIN_INDEX: tuple[int, ...] = tuple(_POSITION[band.gain] for band in params.EQ_BANDS)
"""Index of each band's gain among the 13 values (low shelf, peak 1-3, high shelf)."""
FREQ_INDEX: tuple[int, ...] = tuple(_POSITION[band.freq] for band in params.EQ_BANDS)
Q_INDEX: tuple[int, ...] = tuple(_POSITION[band.q] for band in params.EQ_BANDS if band.q is not None)
BANDS: tuple[tuple[int, int, int | None, str], ...] = tuple(
    (_POSITION[b.gain], _POSITION[b.freq], None if b.q is None else _POSITION[b.q], b.kind) for b in params.EQ_BANDS
)
"""Per band: the index of its gain, frequency and Q (None: a shelf, SHELF_Q) among the 13 values, and its kind."""
SHELF_Q = params.SHELF_Q
MAX_GAIN_DB = max(max(-s.minimum, s.maximum) for s in _EQ_SPECS if s.unit == "dB")
"""The gains' range is ±MAX_GAIN_DB (12 dB): a gain's normalised form is dB / MAX_GAIN_DB."""
REFERENCE_RATE = 44100.0
"""Rate at which responses are compared (SAFE-DB was recorded in hosts at 44.1 kHz or above)."""

LOWER = np.array([s.minimum for s in _EQ_SPECS], dtype=np.float64)
UPPER = np.array([s.maximum for s in _EQ_SPECS], dtype=np.float64)
DEFAULTS = np.array([s.default for s in _EQ_SPECS], dtype=np.float64)
IS_LOG = np.array([s.scale == "log" for s in _EQ_SPECS])


def log_grid(points: int = 96, low: float = 20.0, high: float = 20000.0) -> F64:
    """`points` log-spaced frequencies from `low` to `high` Hz (the grid every dB-RMS figure uses)."""
    return np.geomspace(low, high, points)


def to_unit(params: npt.ArrayLike) -> F64:
    """Normalised form in [-1, 1] of settings in natural units (..., 13): gains / 12, log-scaled freq and Q."""
    p = np.asarray(params, dtype=np.float64)
    lo, hi = LOWER, UPPER
    logp = np.log(np.clip(p, np.where(IS_LOG, lo, 1e-9), None))
    u_log = 2.0 * (logp - np.log(np.where(IS_LOG, lo, 1.0))) / np.log(np.where(IS_LOG, hi / lo, math.e)) - 1.0
    u_lin = p / MAX_GAIN_DB
    return np.clip(np.where(IS_LOG, u_log, u_lin), -1.0, 1.0)


def from_unit(unit: npt.ArrayLike) -> F64:
    """Settings in natural units (dB, Hz, Q) from their normalised form (..., 13); inverse of `to_unit`."""
    u = np.clip(np.asarray(unit, dtype=np.float64), -1.0, 1.0)
    lo, hi = np.where(IS_LOG, LOWER, 1.0), np.where(IS_LOG, UPPER, math.e)
    log_value = lo * np.exp((u + 1.0) * 0.5 * np.log(hi / lo))
    out: F64 = np.where(IS_LOG, np.clip(log_value, LOWER, UPPER), u * MAX_GAIN_DB)
    return out


def _coefficients_np(params: F64, rate: float) -> list[tuple[F64, F64, F64, F64, F64]]:
    """Normalised biquad coefficients (b0, b1, b2, a1, a2), each shaped (...,), for the five bands."""
    out = []
    for g_i, f_i, q_i, kind in BANDS:
        gain, freq = params[..., g_i], params[..., f_i]
        q = params[..., q_i] if q_i is not None else np.full_like(gain, SHELF_Q)
        amp = np.sqrt(10.0 ** (gain / 20.0))
        omega = 2.0 * math.pi * np.clip(freq, 2.0, 0.499 * rate) / rate
        cos_o, sin_o = np.cos(omega), np.sin(omega)
        if kind == "peak":
            alpha = 0.5 * sin_o / q
            c2 = -2.0 * cos_o
            b = (1.0 + alpha * amp, c2, 1.0 - alpha * amp)
            a = (1.0 + alpha / amp, c2, 1.0 - alpha / amp)
        else:
            am1, ap1 = amp - 1.0, amp + 1.0
            beta = sin_o * np.sqrt(amp) / q
            sign = 1.0 if kind == "low_shelf" else -1.0
            amc = sign * am1 * cos_o
            b = (amp * (ap1 - amc + beta), sign * amp * 2.0 * (am1 - sign * ap1 * cos_o), amp * (ap1 - amc - beta))
            a = (ap1 + amc + beta, -sign * 2.0 * (am1 + sign * ap1 * cos_o), ap1 + amc - beta)
        out.append((b[0] / a[0], b[1] / a[0], b[2] / a[0], a[1] / a[0], a[2] / a[0]))
    return out


def response_db(params: npt.ArrayLike, freqs: npt.ArrayLike, rate: float = REFERENCE_RATE) -> F64:
    """Magnitude response in dB, shape (..., len(freqs)), of settings (..., 13) in natural units."""
    p = np.asarray(params, dtype=np.float64)
    w = 2.0 * math.pi * np.asarray(freqs, dtype=np.float64) / rate
    cos1, cos2 = np.cos(w), np.cos(2.0 * w)
    total = np.zeros((*p.shape[:-1], w.shape[0]))
    for gain_index, (b0, b1, b2, a1, a2) in zip(GAIN_INDEX, _coefficients_np(p, rate), strict=True):
        e = (b0, b1, b2, a1, a2)
        b0, b1, b2, a1, a2 = (x[..., None] for x in e)
        num = b0 * b0 + b1 * b1 + b2 * b2 + 2.0 * (b0 * b1 + b1 * b2) * cos1 + 2.0 * b0 * b2 * cos2
        den = 1.0 + a1 * a1 + a2 * a2 + 2.0 * (a1 + a1 * a2) * cos1 + 2.0 * a2 * cos2
        band = 10.0 * np.log10(num / den)
        total += np.where(p[..., gain_index, None] == 0.0, 0.0, band)
    return total


def response_db_torch(params: torch.Tensor, freqs: torch.Tensor, rate: float = REFERENCE_RATE) -> torch.Tensor:
    """Differentiable torch version of `response_db`: settings (B, 13) in natural units -> dB (B, F)."""
    import torch

    w = 2.0 * math.pi * freqs / rate
    cos1, cos2 = torch.cos(w), torch.cos(2.0 * w)
    total = torch.zeros(params.shape[0], freqs.shape[0], dtype=params.dtype, device=params.device)
    for g_i, f_i, q_i, kind in BANDS:
        gain, freq = params[:, g_i : g_i + 1], params[:, f_i : f_i + 1]
        q = params[:, q_i : q_i + 1] if q_i is not None else torch.full_like(gain, SHELF_Q)
        amp = torch.pow(10.0, gain / 40.0)
        omega = 2.0 * math.pi * torch.clamp(freq, 2.0, 0.499 * rate) / rate
        cos_o, sin_o = torch.cos(omega), torch.sin(omega)
        if kind == "peak":
            alpha = 0.5 * sin_o / q
            c2 = -2.0 * cos_o
            b0, b1, b2 = 1.0 + alpha * amp, c2, 1.0 - alpha * amp
            a0, a1, a2 = 1.0 + alpha / amp, c2, 1.0 - alpha / amp
        else:
            am1, ap1 = amp - 1.0, amp + 1.0
            beta = sin_o * torch.sqrt(amp) / q
            s = 1.0 if kind == "low_shelf" else -1.0
            amc = s * am1 * cos_o
            b0, b1, b2 = amp * (ap1 - amc + beta), s * amp * 2.0 * (am1 - s * ap1 * cos_o), amp * (ap1 - amc - beta)
            a0, a1, a2 = ap1 + amc + beta, -s * 2.0 * (am1 + s * ap1 * cos_o), ap1 + amc - beta
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        num = b0 * b0 + b1 * b1 + b2 * b2 + 2.0 * (b0 * b1 + b1 * b2) * cos1 + 2.0 * b0 * b2 * cos2
        den = 1.0 + a1 * a1 + a2 * a2 + 2.0 * (a1 + a1 * a2) * cos1 + 2.0 * a2 * cos2
        total = total + 10.0 * torch.log10(torch.clamp(num, min=1e-30) / torch.clamp(den, min=1e-30))
    return total


def from_unit_torch(unit: torch.Tensor) -> torch.Tensor:
    """Torch version of `from_unit` for (B, 13) tensors (differentiable, no clipping beyond [-1, 1])."""
    import torch

    lo = torch.as_tensor(np.where(IS_LOG, LOWER, 1.0), dtype=unit.dtype)
    span = torch.as_tensor(np.log(np.where(IS_LOG, UPPER / LOWER, math.e)), dtype=unit.dtype)
    is_log = torch.as_tensor(IS_LOG)
    u = torch.clamp(unit, -1.0, 1.0)
    return torch.where(is_log, lo * torch.exp((u + 1.0) * 0.5 * span), u * MAX_GAIN_DB)


def db_rms(a: npt.ArrayLike, b: npt.ArrayLike, remove_offset: bool = False) -> F64:
    """RMS over the last axis of a - b in dB; with `remove_offset`, after removing their mean difference."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if remove_offset:
        d = d - d.mean(axis=-1, keepdims=True)
    out: F64 = np.sqrt(np.mean(d * d, axis=-1))
    return out


def bypass_small_gains(params: npt.ArrayLike, threshold_db: float = 0.0) -> F64:
    """A copy of settings (..., 13) whose gains with |gain| <= threshold_db are exactly 0 (engine bypass)."""
    p = np.array(params, dtype=np.float64, copy=True)
    for g in GAIN_INDEX:
        p[..., g] = np.where(np.abs(p[..., g]) <= threshold_db, 0.0, p[..., g])
    return p
