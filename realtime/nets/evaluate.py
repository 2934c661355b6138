"""Held-out metrics for the five nets, each next to a trivial baseline so the numbers can be judged.

Every function returns a JSON-ready dict of floats. Downstream nets are scored in both input modes ("audio":
frozen EmotionRecognizer embedding of the rendered audio; "direct": weak labels, latent dims zero).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from realtime.nets.architectures import EmotionRecognizer, MelodyTransformer, RTNet
from realtime.nets.chain import audio_emotion, direct_emotion, er_embeddings
from realtime.nets.dataset import PieceTables
from realtime.nets.tasks import Rows

F32 = npt.NDArray[np.float32]


def _r(x: float | np.floating[Any]) -> float:
    return round(float(x), 4)


def _corr(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    if len(a) < 2 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _run(net: RTNet, x: F32) -> F32:
    device = next(net.parameters()).device
    with torch.no_grad():
        out: F32 = net(torch.from_numpy(np.ascontiguousarray(x)).to(device)).cpu().numpy()
    return out


def emotion_metrics(net: EmotionRecognizer, test: list[PieceTables]) -> dict[str, Any]:
    """Agreement of the predicted valence/arousal (dims 0-1) with the weak labels on held-out audio.

    Per frame: MAE, Pearson r, sign agreement; per piece (mean over frames): r, and valence-arousal quadrant
    agreement; baseline = predicting the weak labels' mean (MAE) / chance quadrant (0.25).
    """
    preds = er_embeddings(net, [t.mel for t in test])
    p = np.concatenate([e[:, :2] for e in preds]) if preds else np.zeros((0, 2), np.float32)
    y = np.concatenate([t.frame_emotion[:, :2] for t in test]) if test else np.zeros((0, 2), np.float32)
    out: dict[str, Any] = {"frames": len(p), "pieces": len(test)}
    for d, name in enumerate(("valence", "arousal")):
        out[f"{name}_mae"] = _r(np.mean(np.abs(p[:, d] - y[:, d]))) if len(p) else 0.0
        out[f"{name}_mae_baseline_mean"] = _r(np.mean(np.abs(y[:, d] - y[:, d].mean()))) if len(y) else 0.0
        out[f"{name}_r_frames"] = _r(_corr(p[:, d], y[:, d]))
        out[f"{name}_sign_agreement"] = _r(np.mean(np.sign(p[:, d]) == np.sign(y[:, d]))) if len(p) else 0.0
    pm = np.asarray([e[:, :2].mean(0) for e in preds]) if preds else np.zeros((0, 2))
    ym = np.asarray([t.frame_emotion[:, :2].mean(0) for t in test]) if test else np.zeros((0, 2))
    out["valence_r_pieces"] = _r(_corr(pm[:, 0], ym[:, 0])) if len(pm) else 0.0
    out["arousal_r_pieces"] = _r(_corr(pm[:, 1], ym[:, 1])) if len(pm) else 0.0
    out["quadrant_agreement_pieces"] = _r(np.mean(np.all(np.sign(pm) == np.sign(ym), axis=1))) if len(pm) else 0.0
    return out


def _f1(prob: npt.NDArray[Any], truth: npt.NDArray[Any], threshold: float) -> tuple[float, float, float]:
    pred = prob >= threshold
    tp = float(np.sum(pred & (truth > 0.5)))
    precision = tp / max(float(pred.sum()), 1.0)
    recall = tp / max(float((truth > 0.5).sum()), 1.0)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-9)


def melody_outputs(net: MelodyTransformer, tables: list[PieceTables], emb: dict[str, F32], mode: str) -> list[F32]:
    """Note probabilities per sixteenth of every piece, run from a zero state over the whole piece."""
    out = []
    for t in tables:
        x = audio_emotion(emb[t.pid], t.step_times) if mode == "audio" else direct_emotion(t.step_emotion)
        out.append(_run(net, x[None])[0])
    return out


def best_threshold(probs: list[F32], truths: list[F32]) -> float:
    """The threshold (0.05 .. 0.6) with the best note-set F1 over the given pieces (use validation pieces)."""
    p, y = np.concatenate(probs), np.concatenate(truths)
    grid = np.arange(0.05, 0.61, 0.05)
    return float(grid[int(np.argmax([_f1(p, y, th)[2] for th in grid]))])


def melody_metrics(
    net: MelodyTransformer, test: list[PieceTables], emb: dict[str, F32], thresholds: dict[str, float], prior: F32
) -> dict[str, Any]:
    """Note-set precision/recall/F1 per sixteenth (threshold chosen on validation pieces) in both modes, the
    top-1 pitch accuracy on steps where the melody sounds, and the baseline of the training-set pitch prior."""
    out: dict[str, Any] = {"steps": int(sum(len(t.melody) for t in test))}
    truths = [t.melody.astype(np.float32) for t in test]
    y = np.concatenate(truths) if truths else np.zeros((0, 128), np.float32)
    sounding = y.sum(1) > 0
    for mode in ("audio", "direct"):
        p = np.concatenate(melody_outputs(net, test, emb, mode)) if test else np.zeros((0, 128), np.float32)
        prec, rec, f1 = _f1(p, y, thresholds[mode])
        out[mode] = {
            "threshold": thresholds[mode],
            "precision": _r(prec),
            "recall": _r(rec),
            "f1": _r(f1),
            "top1_pitch_accuracy": _r(np.mean(y[sounding, np.argmax(p[sounding], 1)] > 0.5)) if sounding.any() else 0.0,
        }
    base = np.broadcast_to(prior, y.shape)
    grid = np.arange(0.05, 0.61, 0.05)
    scores = [_f1(base, y, th) for th in grid]
    best = int(np.argmax([s[2] for s in scores]))
    out["baseline_prior"] = {
        "f1_best_threshold": _r(scores[best][2]),
        "top1_pitch_accuracy": _r(np.mean(y[sounding, int(np.argmax(prior))] > 0.5)) if sounding.any() else 0.0,
    }
    return out


def harmony_metrics(net: RTNet, test: Rows, train: Rows) -> dict[str, Any]:
    """Chord-class top-1 / top-3 accuracy per bar in both modes; baselines: the most frequent training class, and
    repeating the previous bar's chord (read from the context's prev-chord one-hots)."""
    y = np.asarray(test.target, dtype=np.int64)
    out: dict[str, Any] = {"bars": len(y)}
    for mode, x in (("audio", test.audio), ("direct", test.direct)):
        p = _run(net, x) if len(x) else np.zeros((0, 64), np.float32)
        top3 = np.argsort(-p, axis=1)[:, :3] if len(p) else np.zeros((0, 3), np.int64)
        out[mode] = {
            "top1": _r(np.mean(top3[:, 0] == y)) if len(y) else 0.0,
            "top3": _r(np.mean(np.any(top3 == y[:, None], axis=1))) if len(y) else 0.0,
        }
    counts = np.bincount(np.asarray(train.target, dtype=np.int64), minlength=64)
    out["baseline_majority_top1"] = _r(np.mean(y == int(np.argmax(counts)))) if len(y) else 0.0
    out["baseline_majority_top3"] = _r(np.mean(np.isin(y, np.argsort(-counts)[:3]))) if len(y) else 0.0
    ctx = test.direct[:, 64:]
    root, quality, none = ctx[:, 38:50], ctx[:, 50:55], ctx[:, 55]
    prev = np.where(none > 0.5, 60, np.argmax(quality, 1) * 12 + np.argmax(root, 1)) if len(ctx) else np.zeros(0)
    out["baseline_repeat_previous_top1"] = _r(np.mean(prev == y)) if len(y) else 0.0
    return out


def dynamics_metrics(net: RTNet, test: Rows, train: Rows, names: tuple[str, ...]) -> dict[str, Any]:
    """Mean absolute error of the expression parameters over the targets that exist (masked ones are NaN), in both
    modes; baseline = the training mean. Parameters never trained report None."""
    y = np.asarray(test.target, dtype=np.float32)
    known = ~np.isnan(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (never trained) columns
        base = np.nanmean(np.asarray(train.target, dtype=np.float32), axis=0) if len(train.target) else np.zeros(16)

    def per_param(err: F32) -> dict[str, float | None]:
        return {n: (_r(np.mean(err[known[:, k], k])) if known[:, k].any() else None) for k, n in enumerate(names)}

    base_err = np.abs(y - base)
    out: dict[str, Any] = {
        "beats": len(y),
        "baseline_mae": _r(np.mean(base_err[known])) if known.any() else 0.0,
        "baseline_per_param_mae": per_param(base_err),
    }
    for mode, x in (("audio", test.audio), ("direct", test.direct)):
        p = _run(net, x) if len(x) else np.zeros((0, 16), np.float32)
        err = np.abs(p - y)
        out[mode] = {"mae": _r(np.mean(err[known])) if known.any() else 0.0, "per_param_mae": per_param(err)}
    return out


def groove_metrics(net: RTNet, test: Rows, train: Rows) -> dict[str, Any]:
    """Onset accuracy / F1 per sixteenth ((y + 1) / 2 >= 0.5) and micro-timing MAE / RMSE (sixteenths) where onsets
    are, in both modes; baseline = each sixteenth's training onset frequency, and zero timing."""
    y = np.asarray(test.target, dtype=np.float32)
    onset, timing = y[:, :16], y[:, 16:]
    freq = np.asarray(train.target, dtype=np.float32)[:, :16].mean(0) if len(train.target) else np.zeros(16)
    mask = onset > 0.5
    out: dict[str, Any] = {"bars": len(y)}
    for mode, x in (("audio", test.audio), ("direct", test.direct)):
        p = _run(net, x) if len(x) else np.zeros((0, 32), np.float32)
        prob = (p[:, :16] + 1) / 2
        out[mode] = {
            "onset_accuracy": _r(np.mean((prob >= 0.5) == mask)) if len(y) else 0.0,
            "onset_f1": _r(_f1(prob, onset, 0.5)[2]),
            "timing_mae_sixteenths": _r(np.mean(np.abs(p[:, 16:][mask] / 2 - timing[mask]))) if mask.any() else 0.0,
            "timing_rmse_sixteenths": _r(np.sqrt(np.mean((p[:, 16:][mask] / 2 - timing[mask]) ** 2)))
            if mask.any()
            else 0.0,
        }
    base = np.broadcast_to(freq, onset.shape)
    out["baseline_position_frequency"] = {
        "onset_accuracy": _r(np.mean((base >= 0.5) == mask)) if len(y) else 0.0,
        "onset_f1": _r(_f1(base, onset, 0.5)[2]),
        "timing_mae_sixteenths_zero": _r(np.mean(np.abs(timing[mask]))) if mask.any() else 0.0,
        "timing_rmse_sixteenths_zero": _r(np.sqrt(np.mean(timing[mask] ** 2))) if mask.any() else 0.0,
    }
    return out
