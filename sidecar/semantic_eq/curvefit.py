"""Least-squares fit of the engine's 13-parameter EQ to a target dB response.

The fit works in the normalised space of `eqmath.to_unit` (gains / 12, log frequency, log Q), bounded to
[-1, 1] per value, so every result is inside the engine's ranges. `fit_curve` (scipy, trust-region reflective,
several starts) fits one curve, fast enough for the sidecar; `fit_curves` fits thousands at once for training:
a multi-start batched Adam pass in torch picks a start per curve, which scipy then refines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from sidecar.semantic_eq import eqmath

F64 = npt.NDArray[np.float64]
_STEP = 1e-6


def _residual_and_jacobian(freqs: F64, target: F64, rate: float) -> tuple[Callable[[F64], F64], Callable[[F64], F64]]:
    def residual(u: F64) -> F64:
        out: F64 = eqmath.response_db(eqmath.from_unit(u), freqs, rate) - target
        return out

    def jacobian(u: F64) -> F64:
        step = np.where(u + _STEP <= 1.0, _STEP, -_STEP)
        probes = np.vstack([u, u + np.diag(step)])
        resp = eqmath.response_db(eqmath.from_unit(probes), freqs, rate)
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
) -> tuple[F64, float]:
    """(settings in natural units, dB RMS error) of a bounded least-squares fit from one start (unit space);
    `tol` is least_squares' xtol and ftol."""
    residual, jacobian = _residual_and_jacobian(freqs, target, rate)
    start = np.clip(start_unit, -0.999, 0.999)
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
    params = eqmath.from_unit(result.x)
    error = float(np.sqrt(np.mean(residual(result.x) ** 2)))
    return params, error


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
