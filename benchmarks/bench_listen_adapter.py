"""The listening adapter (issue 12, part 2) on held-out audio: emotion and style accuracy with confusion matrices
against the majority-class baseline, BPM Accuracy1 (raw, and the beat tracker's tempo moved to the adapter's
octave), key accuracy of the key head, and the cost of one 2 s frame's features (what the live sidecar pays every
0.5 s) and of the four heads on it.

The audio is the test set's evaluation split (idaw.listen.testset: the 19 analysed Bach chorales, rendered with
instruments and drum kits the training never used), rendered into out/listen_testset on the first run; the labels
are the adapter's weak labels of each item (idaw.listen.adapter.weak_labels), the majority class the training
data's (from adapter.meta.json). `--quick` scores the first 6 items.
Run alone with `python -m benchmarks.bench_listen_adapter [--quick] [--out F]`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from idaw.listen import adapter, frames
from idaw.listen.audio import SAMPLE_RATE, read_recording
from idaw.listen.testset import build_testset
from idaw.listen.train_adapter import held_out_figures

TESTSET = Path("out/listen_testset")
QUICK_ITEMS = 6
WINDOWS_PER_ITEM = 10
"""2 s windows timed per item (every 0.5 s from the middle of the piece)."""
INFERENCE_RUNS = 500


def _training_majority() -> dict[str, int]:
    """The training data's majority emotion and style (indices), from the shipped metadata."""
    meta = json.loads(adapter.META_PATH.read_text(encoding="utf-8"))
    counts = meta["data"]["train_label_counts"]
    emotion = max(counts["emotion"].items(), key=lambda item: item[1])[0]
    style = max(counts["style"].items(), key=lambda item: item[1])[0]
    return {"emotion": adapter.EMOTIONS.index(emotion), "style": [s for s, _ in adapter.STYLE_PROMPTS].index(style)}


def frame_cost(items: Sequence[Path]) -> common.Json:
    """Milliseconds of `frames.window_features` per 2 s window: median and p99 over WINDOWS_PER_ITEM a piece."""
    times = []
    for item in items:
        samples = read_recording(item.with_suffix(".flac")).samples
        middle = len(samples) // 2
        frames.window_features(samples[middle - frames.FRAME_SAMPLES : middle])  # warm (numba compiles once)
        for k in range(WINDOWS_PER_ITEM):
            end = middle + k * SAMPLE_RATE // 2
            started = time.perf_counter()
            frames.window_features(samples[end - frames.FRAME_SAMPLES : end])
            times.append(1000.0 * (time.perf_counter() - started))
    return {
        "median_ms": round(float(np.median(times)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "windows": len(times),
    }


def inference_cost(model: adapter.Adapter, items: Sequence[Path]) -> common.Json:
    """Milliseconds of the four heads on one frame's features (`Adapter.predict` of one row): median and p99."""
    values = frames.recording_features(read_recording(items[0].with_suffix(".flac")).samples).values
    times = []
    for row in range(INFERENCE_RUNS):
        started = time.perf_counter()
        model.predict(values[row % len(values)])
        times.append(1000.0 * (time.perf_counter() - started))
    return {"median_ms": round(float(np.median(times)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}


def run(quick: bool = False) -> common.Json:
    """{held-out figures of the shipped adapter, per-frame feature cost}."""
    model = adapter.shipped()
    if model is None:
        return {"skipped": f"no {adapter.WEIGHTS_PATH}: run `idaw train adapter`"}
    items = build_testset(TESTSET, split="eval", count=QUICK_ITEMS if quick else None, progress=False)
    return {
        "figures": held_out_figures(model, items, _training_majority()),
        "frame_features": frame_cost(items),
        "heads": inference_cost(model, items),
        "feature_count": frames.FEATURE_COUNT,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
