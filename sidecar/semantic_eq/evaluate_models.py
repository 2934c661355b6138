"""Held-out metrics of the two networks.

EQ VAE (SAFE-DB contributors of the 'test' split, never seen in training): reconstruction error as dB RMS of
the magnitude response over the log grid 20 Hz-20 kHz, and warm-vs-bright accuracy of a logistic regression
on latent means (fitted on training contributors), next to the same classifier on the raw responses.
Audio encoder (held-out clips x SAFE 'test' settings, filtered by the real engine): latent distance to the
frozen EQ encoder's mean and dB RMS of the decoded response against the applied one, per source kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from idaw.base import params as engine_params
from sidecar.semantic_eq import engine_render, eqmath, features, traversal
from sidecar.semantic_eq.audio_corpus import Clip
from sidecar.semantic_eq.bundle import Bundle
from sidecar.semantic_eq.labelled import Labelled
from sidecar.semantic_eq.train_vae import encode_mean, reconstruction_db

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
RENDER_PEAK = 0.2
"""Clips are scaled to this peak before the engine (below its limiter even after +12 dB), then scaled back."""


def summary(values: npt.ArrayLike) -> dict[str, float]:
    """Median, mean, 10th/90th percentile and count of `values`."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {
        "median": float(np.median(v)),
        "mean": float(v.mean()),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
        "n": int(v.size),
    }


def logistic_accuracy(
    x_train: F64,
    y_train: npt.NDArray[np.bool_],
    x_test: F64,
    y_test: npt.NDArray[np.bool_],
    l2: float = 1e-2,
    steps: int = 500,
) -> float:
    """Held-out accuracy of an L2-regularised logistic regression (standardised inputs, LBFGS in torch)."""
    if len(x_test) == 0 or len(set(y_train.tolist())) < 2:
        return float("nan")
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    xt = torch.as_tensor((x_train - mu) / sd)
    yt = torch.as_tensor(y_train, dtype=torch.float64)
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w @ w)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        pred = (torch.as_tensor((x_test - mu) / sd) @ w + b).numpy() > 0
    return float(np.mean(pred == y_test))


def vae_metrics(bundle: Bundle, lab: Labelled) -> dict[str, Any]:
    """Reconstruction and warm/bright separability on held-out (and validation) SAFE contributors."""
    freqs = bundle.freqs
    splits, words = np.array(lab.splits), np.array(lab.words)
    safe = np.array([s == "safe" for s in lab.sources])
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        rows = safe & (splits == split)
        out[f"reconstruction_db_rms_{split}"] = summary(reconstruction_db(bundle.vae, lab.params[rows], freqs))
    latents = encode_mean(bundle.vae, lab.params)
    responses = eqmath.response_db(lab.params, freqs)
    pair = safe & np.isin(words, ["warm", "bright"])
    train, test = pair & (splits == "train"), pair & (splits == "test")
    y_train, y_test = words[train] == "warm", words[test] == "warm"
    centroid_w, centroid_b = latents[train & (words == "warm")].mean(0), latents[train & (words == "bright")].mean(0)
    nearest = np.linalg.norm(latents[test] - centroid_w, axis=1) < np.linalg.norm(latents[test] - centroid_b, axis=1)
    out["warm_bright"] = {
        "latent_logistic_accuracy_test": logistic_accuracy(latents[train], y_train, latents[test], y_test),
        "latent_nearest_centroid_accuracy_test": float(np.mean(nearest == y_test)) if len(y_test) else float("nan"),
        "raw_response_logistic_accuracy_test": logistic_accuracy(responses[train], y_train, responses[test], y_test),
        "test_rows": {"warm": int(y_test.sum()), "bright": int((~y_test).sum())},
        "test_contributors": len({c for c, t in zip(lab.contributors, test, strict=True) if t}),
        "largest_test_contributor_rows": _largest_group(np.array(lab.contributors)[test]),
        "raw_response_logistic_accuracy_grouped_cv_all_safe": grouped_cv_accuracy(
            responses[pair], words[pair] == "warm", np.array(lab.contributors)[pair]
        ),
    }
    return out


def _largest_group(groups: npt.NDArray[np.str_]) -> int:
    """Rows of the most frequent value in `groups` (0 when empty)."""
    return int(np.unique(groups, return_counts=True)[1].max()) if len(groups) else 0


def grouped_cv_accuracy(
    x: F64, y: npt.NDArray[np.bool_], groups: npt.NDArray[np.str_], folds: int = 10
) -> dict[str, Any]:
    """Pooled and per-fold accuracy of `logistic_accuracy` over `folds` folds that never split a group.

    Groups (SAFE contributors) go to folds largest first, each to the fold with the fewest rows so far, so the
    folds are as even as whole contributors allow. This measures how well warm and bright separate across
    contributors in the data itself, with every contributor held out once (the fixed test split has 13).
    """
    names, counts = np.unique(groups, return_counts=True)
    fold_of: dict[str, int] = {}
    sizes = [0] * folds
    for i in np.argsort(-counts, kind="stable"):
        target = int(np.argmin(sizes))
        fold_of[str(names[i])] = target
        sizes[target] += int(counts[i])
    assignment = np.array([fold_of[str(g)] for g in groups])
    correct, per_fold = 0.0, []
    for k in range(folds):
        held = assignment == k
        if not held.any():
            continue
        accuracy = logistic_accuracy(x[~held], y[~held], x[held], y[held])
        correct += accuracy * int(held.sum())
        per_fold.append(round(accuracy, 4))
    return {"pooled": correct / max(1, len(y)), "per_fold": per_fold, "rows": len(y), "groups": len(names)}


def render_through_engine(audio: F32, params13: F64) -> F32:
    """`audio` (mono, 44.1 kHz) filtered by the engine with the 13 EQ values (other parameters at defaults)."""
    snapshot = engine_params.defaults()
    snapshot[engine_params.EQ_SLICE] = params13.astype(np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = min(1.0, RENDER_PEAK / peak) if peak > 0 else 1.0
    rendered = engine_render.render_mono((audio * gain).astype(np.float32), 44100, snapshot)
    out: F32 = (rendered / gain).astype(np.float32) if gain != 1.0 else rendered
    return out


def audio_metrics(bundle: Bundle, clips: list[Clip], test_params: F64, per_clip: int, seed: int) -> dict[str, Any]:
    """Latent distance and decoded-response error on held-out clips x held-out settings, per source kind."""
    rng = np.random.default_rng(seed)
    freqs = bundle.freqs
    test_latents = encode_mean(bundle.vae, test_params)
    rows: dict[str, dict[str, list[float]]] = {}
    for clip in (c for c in clips if c.split == "test"):
        source_power = features.power_spectrogram(features.to_analysis(clip.audio, 44100))
        scale = 1.0 / max(float(source_power.mean()), 1e-20)
        for k in rng.choice(len(test_params), size=min(per_clip, len(test_params)), replace=False):
            rendered = render_through_engine(clip.audio, test_params[k])
            z = traversal.audio_latent(bundle, rendered, 44100, power_scale=scale)
            if z is None:
                continue
            applied = eqmath.response_db(test_params[k], freqs)
            decoded = traversal.latent_curve(bundle, z)
            kind = "pink_noise" if clip.kind == "pink" else "real_instruments"
            for name in (kind, f"kind:{clip.kind}"):
                bucket = rows.setdefault(name, {"latent": [], "db": [], "db_shape": []})
                bucket["latent"].append(float(np.linalg.norm(z - test_latents[k])))
                bucket["db"].append(float(eqmath.db_rms(decoded, applied)))
                bucket["db_shape"].append(float(eqmath.db_rms(decoded, applied, remove_offset=True)))
    spread = np.linalg.norm(test_latents[:, None] - test_latents[None], axis=-1)
    mean_guess = np.linalg.norm(test_latents - test_latents.mean(0), axis=1)
    return {
        "by_kind": {
            name: {
                "latent_distance": summary(b["latent"]),
                "decoded_vs_applied_db_rms": summary(b["db"]),
                "decoded_vs_applied_db_rms_offset_removed": summary(b["db_shape"]),
            }
            for name, b in sorted(rows.items())
        },
        "latent_scale_reference": {
            "median_distance_between_two_test_settings": float(np.median(spread[np.triu_indices(len(spread), 1)])),
            "median_distance_of_always_guessing_the_mean_latent": float(np.median(mean_guess)),
        },
    }
