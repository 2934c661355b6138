"""The labelled EQ settings the VAE learns from: SAFE-DB rows (split by contributor) plus fitted curves.

Each SocialFX contribution and each Audealize word curve is turned into a 13-parameter setting by least squares
on its dB response (`curvefit.fit_curves`); the fits are cached under ~/.cache/idaw (never in the repository),
keyed by the data files' hashes, the grid and the fitter version.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.semantic_eq import curvefit, data, eqmath

F64 = npt.NDArray[np.float64]
FIT_VERSION = "fit-v1"
FIT_EFFORT: dict[str, tuple[int, int]] = {"full": (8, 300), "quick": (3, 40)}
"""(starts, Adam steps) of the batched curve fit; 'quick' is for smoke runs."""


def cache_dir() -> Path:
    """~/.cache/idaw/semantic_eq (or $IDAW_CACHE/semantic_eq), created on demand."""
    root = Path(os.environ.get("IDAW_CACHE", Path.home() / ".cache" / "idaw"))
    path = root / "semantic_eq"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Labelled:
    """All labelled settings as arrays; row i has `words[i]`, `sources[i]`, `splits[i]`, `params[i]`."""

    words: list[str]
    sources: list[str]
    """'safe', 'socialfx' or 'audealize'."""
    splits: list[str]
    """'train' | 'val' | 'test' for SAFE rows (by contributor); 'train' for fitted curves."""
    params: F64
    """(N, 13) settings in natural units."""
    contributors: list[str]
    """SAFE pseudonym for SAFE rows ('' for curves); used only to check the split."""
    targets: F64
    """(N, F) the dB curve each row stands for: its own response (SAFE) or the curve it was fitted to."""
    fit_error_db: F64
    """(N,) dB RMS of the fit (0 for SAFE rows)."""


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()[:16]


def fitted_curves(
    curves: list[data.Curve],
    data_dir: Path,
    freqs: F64,
    seed: int,
    limit: int | None,
    log: bool = True,
    effort: str = "full",
) -> tuple[F64, F64, F64]:
    """(settings (N, 13), fit error (N,), target dB (N, F)) for `curves`, from the cache when possible."""
    targets = np.array([data.curve_to_db(c.weights, freqs) for c in curves]).reshape(len(curves), len(freqs))
    key = hashlib.sha256(
        "|".join(
            [
                FIT_VERSION,
                _hash_files([data_dir / data.SOCIALFX_FILE, data_dir / data.AUDEALIZE_FILE]),
                str(len(freqs)),
                str(seed),
                str(limit),
            ]
            + ([] if effort == "full" else [effort])
        ).encode()
    ).hexdigest()[:20]
    path = cache_dir() / f"curvefits-{key}.npz"
    if path.exists():
        with np.load(path) as cached:
            if cached["params"].shape[0] == len(curves):
                return cached["params"], cached["errors"], targets
    if log:
        print(f"semantic-eq: fitting the 13-parameter EQ to {len(curves)} descriptor curves ...", flush=True)
    starts, steps = FIT_EFFORT[effort]
    params, errors = (
        curvefit.fit_curves(targets, freqs, starts=starts, steps=steps, seed=seed)
        if curves
        else (np.zeros((0, eqmath.NUM_EQ)), np.zeros(0))
    )
    np.savez(path, params=params, errors=errors)
    return params, errors, targets


def load_labelled(
    data_dir: Path, seed: int, freqs: F64, curve_limit: int | None = None, log: bool = True, effort: str = "full"
) -> Labelled:
    """SAFE rows with their contributor split, plus the fitted SocialFX and Audealize curves.

    `curve_limit` keeps only that many curves (spread over the file) for quick runs; None keeps all.
    """
    safe_rows = data.read_safe(data_dir)
    split_of = data.split_contributors(safe_rows, seed)
    curves = data.read_socialfx(data_dir) + data.read_audealize(data_dir)
    if curve_limit is not None and curve_limit < len(curves):
        keep = np.linspace(0, len(curves) - 1, curve_limit).round().astype(int)
        curves = [curves[i] for i in keep]
    fit_params, fit_errors, fit_targets = fitted_curves(curves, data_dir, freqs, seed, curve_limit, log, effort)
    words, safe_params = data.safe_arrays(safe_rows)
    return Labelled(
        words=words + [c.word for c in curves],
        sources=["safe"] * len(safe_rows) + [c.source for c in curves],
        splits=[split_of[r.contributor] for r in safe_rows] + ["train"] * len(curves),
        params=np.vstack([safe_params, fit_params]),
        contributors=[r.contributor for r in safe_rows] + [""] * len(curves),
        targets=np.vstack([eqmath.response_db(safe_params, freqs), fit_targets]),
        fit_error_db=np.concatenate([np.zeros(len(safe_rows)), fit_errors]),
    )
