"""Least-squares fit of the engine's 13-parameter EQ to a target dB response.

The fit works in the normalised space of `eqmath.to_unit` (gains / 12, log frequency, log Q), bounded to
[-1, 1] per value, so every result is inside the engine's ranges. `fit_curve` (scipy, trust-region reflective,
several starts) fits one curve, fast enough for the sidecar; `fit_curves` fits thousands at once for training:
a multi-start batched Adam pass in torch picks a start per curve, which scipy then refines.

A least-squares fit can meet a narrow feature of the target with two peaks of opposite sign at nearly one frequency
(-8 dB at 1486 Hz beside +5.6 dB at 1502 Hz): small error, but a setting no engineer would make, whose two bands
fight as soon as the intensity knob or a later fit moves one. `without_opposing_peaks` merges such a pair into one
band and refits with the other band off; the sidecar never sends a setting with such a pair (OPPOSING_OCTAVES,
OPPOSING_MIN_DB).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from sidecar.semantic_eq import eqmath

F64 = npt.NDArray[np.float64]
_STEP = 1e-6
OPPOSING_OCTAVES = 1.0 / 3.0
"""Two peaks closer than this (a third of an octave) with gains of opposite sign are one feature fitted twice."""
OPPOSING_MIN_DB = 1.0
"""...when both gains reach this (smaller pairs are inaudible either way)."""


def _residual_and_jacobian(
    freqs: F64, target: F64, rate: float, free: F64 | None = None, held: F64 | None = None
) -> tuple[Callable[[F64], F64], Callable[[F64], F64]]:
    """Residual and Jacobian over the values `free` (a boolean mask of the 13; default all), the others fixed at
    `held` (unit space)."""
    mask = np.ones(eqmath.NUM_EQ, dtype=bool) if free is None else free
    base = np.zeros(eqmath.NUM_EQ) if held is None else held

    def full(u: F64) -> F64:
        out = np.repeat(base[None, :], u.reshape(-1, int(mask.sum())).shape[0], axis=0)
        out[:, mask] = u.reshape(out.shape[0], -1)
        return out if u.ndim > 1 else out[0]

    def residual(u: F64) -> F64:
        out: F64 = eqmath.response_db(eqmath.from_unit(full(u)), freqs, rate) - target
        return out

    def jacobian(u: F64) -> F64:
        step = np.where(u + _STEP <= 1.0, _STEP, -_STEP)
        probes = np.vstack([u, u + np.diag(step)])
        resp = eqmath.response_db(eqmath.from_unit(full(probes)), freqs, rate)
        out: F64 = ((resp[1:] - resp[0]) / step[:, None]).T
        return out

    return residual, jacobian


def heuristic_starts(target: F64, freqs: F64, count: int, seed: int = 0) -> F64:
    """Start points (count, 13) in unit space: flat, peaks placed on the target's extrema, then seeded random."""
    rng = np.random.default_rng(seed)
    starts = [eqmath.to_unit(eqmath.DEFAULTS)]
    order = np.argsort(-np.abs(target - np.median(target)))
    guess = eqmath.DEFAULTS.copy()
    guess[0], guess[11] = target[0] * 0.5, target[-1] * 0.5
    for band, k in zip((1, 2, 3), order[:: max(1, len(order) // 7)][:3], strict=False):
        g_i, f_i, q_i = eqmath.GAIN_INDEX[band], eqmath.FREQ_INDEX[band], eqmath.Q_INDEX[band - 1]
        guess[g_i] = float(np.clip(target[k], -11.0, 11.0))
        guess[f_i] = float(np.clip(freqs[k], eqmath.LOWER[f_i], eqmath.UPPER[f_i]))
        guess[q_i] = 1.0
    starts.append(eqmath.to_unit(guess))
    while len(starts) < count:
        u = rng.uniform(-0.9, 0.9, eqmath.NUM_EQ)
        u[list(eqmath.GAIN_INDEX)] *= 0.3
        starts.append(u)
    return np.array(starts[:count])


def refine(
    target: F64,
    freqs: F64,
    start_unit: F64,
    rate: float = eqmath.REFERENCE_RATE,
    max_nfev: int = 200,
    tol: float = 1e-10,
    free: npt.ArrayLike | None = None,
) -> tuple[F64, float]:
    """(settings in natural units, dB RMS error) of a bounded least-squares fit from one start (unit space);
    `tol` is least_squares' xtol and ftol; the values not in `free` (a boolean mask of the 13; default all) stay as
    they start."""
    held = np.clip(start_unit, -0.999, 0.999)
    mask = np.ones(eqmath.NUM_EQ, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    residual, jacobian = _residual_and_jacobian(freqs, target, rate, mask, held)
    start = held[mask]
    result = least_squares(
        residual,
        start,
        jac=jacobian,
        bounds=(-1.0, 1.0),
        method="trf",
        max_nfev=max_nfev,
        x_scale=1.0,
        xtol=tol,
        ftol=tol,
    )
    unit = held.copy()
    unit[mask] = result.x
    params = eqmath.from_unit(unit)
    error = float(np.sqrt(np.mean(residual(result.x) ** 2)))
    return params, error


def opposing_peaks(setting: F64) -> tuple[int, int] | None:
    """The first pair of peak bands (indices into eqmath.BANDS) whose gains have opposite signs, both at least
    OPPOSING_MIN_DB, at centre frequencies less than OPPOSING_OCTAVES apart; None when there is none."""
    peaks = [b for b, (_, _, q, _) in enumerate(eqmath.BANDS) if q is not None]
    for i, a in enumerate(peaks):
        for b in peaks[i + 1 :]:
            (ga, fa, _, _), (gb, fb, _, _) = eqmath.BANDS[a], eqmath.BANDS[b]
            opposite = setting[ga] * setting[gb] < 0.0
            audible = min(abs(setting[ga]), abs(setting[gb])) >= OPPOSING_MIN_DB
            if opposite and audible and abs(math.log2(setting[fa] / setting[fb])) < OPPOSING_OCTAVES:
                return a, b
    return None


def without_opposing_peaks(
    setting: F64, target: F64, freqs: F64, rate: float = eqmath.REFERENCE_RATE, max_nfev: int = 200
) -> tuple[F64, float]:
    """(`setting` with no opposing pair of peaks (`opposing_peaks`), its dB RMS error against `target`). Each pair is
    merged into the band with the larger gain (gains summed: peaks at one frequency add in dB), the other band is
    switched off (0 dB, bypassed) and held off while the rest is refitted; at most as many rounds as there are
    peaks. A setting without such a pair comes back as it is."""
    out = np.array(setting, dtype=np.float64, copy=True)
    free = np.ones(eqmath.NUM_EQ, dtype=bool)
    residual, _ = _residual_and_jacobian(freqs, target, rate)
    error = float(np.sqrt(np.mean(residual(eqmath.to_unit(out)) ** 2)))
    for _ in range(len(eqmath.BANDS)):
        pair = opposing_peaks(out)
        if pair is None:
            break
        keep, drop = sorted(pair, key=lambda band: -abs(out[eqmath.BANDS[band][0]]))
        gain_keep, gain_drop = eqmath.BANDS[keep][0], eqmath.BANDS[drop][0]
        out[gain_keep] = float(np.clip(out[gain_keep] + out[gain_drop], -eqmath.MAX_GAIN_DB, eqmath.MAX_GAIN_DB))
        out[gain_drop] = 0.0
        free[gain_drop] = False
        out, error = refine(target, freqs, eqmath.to_unit(out), rate, max_nfev=max_nfev, free=free)
        out[gain_drop] = 0.0  # exactly: the engine bypasses a band at 0 dB
    return out, error


def fit_curve(
    target: npt.ArrayLike,
    freqs: npt.ArrayLike,
    starts: int = 6,
    rate: float = eqmath.REFERENCE_RATE,
    seed: int = 0,
    good_enough_db: float = 0.05,
) -> tuple[F64, float]:
    """Best fit (settings (13,) in natural units, dB RMS error) of the 13-parameter EQ to `target` dB at `freqs`."""
    t = np.asarray(target, dtype=np.float64)
    f = np.asarray(freqs, dtype=np.float64)
    best: tuple[F64, float] | None = None
    for start in heuristic_starts(t, f, starts, seed):
        params, error = refine(t, f, start, rate)
        if best is None or error < best[1]:
            best = (params, error)
        if best[1] <= good_enough_db:
            break
    assert best is not None
    return best


def fit_curves(
    targets: npt.ArrayLike,
    freqs: npt.ArrayLike,
    starts: int = 8,
    steps: int = 300,
    seed: int = 0,
    rate: float = eqmath.REFERENCE_RATE,
    refine_top: int = 2,
) -> tuple[F64, F64]:
    """Fit many curves: (settings (N, 13) in natural units, dB RMS error (N,)).

    A batched multi-start Adam pass in torch (all curves x `starts` starts at once) ranks the starts; the best
    `refine_top` of each curve are refined with scipy and the better result kept.
    """
    import torch

    t = torch.as_tensor(np.asarray(targets, dtype=np.float64))
    f = torch.as_tensor(np.asarray(freqs, dtype=np.float64))
    n = t.shape[0]
    init = np.stack([heuristic_starts(row, f.numpy(), starts, seed + i) for i, row in enumerate(t.numpy())])
    theta = torch.atanh(torch.as_tensor(np.clip(init, -0.95, 0.95))).reshape(n * starts, -1).requires_grad_(True)
    optimiser = torch.optim.Adam([theta], lr=0.05)
    target_rep = t.repeat_interleave(starts, dim=0)
    for _ in range(steps):
        optimiser.zero_grad()
        resp = eqmath.response_db_torch(eqmath.from_unit_torch(torch.tanh(theta)), f, rate)
        loss_each = ((resp - target_rep) ** 2).mean(dim=1)
        loss_each.sum().backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    with torch.no_grad():
        resp = eqmath.response_db_torch(eqmath.from_unit_torch(torch.tanh(theta)), f, rate)
        errors = ((resp - target_rep) ** 2).mean(dim=1).reshape(n, starts).numpy()
        unit = torch.tanh(theta).reshape(n, starts, -1).numpy()
    out = np.zeros((n, eqmath.NUM_EQ))
    err = np.zeros(n)
    fnp = f.numpy()
    for i in range(n):
        best: tuple[F64, float] | None = None
        for k in np.argsort(errors[i])[:refine_top]:
            params, e = refine(t[i].numpy(), fnp, unit[i, k], rate, max_nfev=100)
            if best is None or e < best[1]:
                best = (params, e)
        assert best is not None
        out[i], err[i] = best
    return out, err
