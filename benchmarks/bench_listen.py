"""Listening (issue 12): key, tempo, beats, downbeats and chords heard from audio by idaw and by librosa and
essentia, side by side on the same held-out audio in one run, scored with mir_eval (idaw.listen.evaluate says
how), and the seconds each takes per file.

The audio is the test set's evaluation split (idaw.listen.testset: the Bach chorales with human Roman-numeral
analyses, rendered with fluidsynth with instruments, drums, noise and reverb never used in training), rendered
into out/listen_testset on the first run. `--quick` scores the first 6 items.
Run alone with `python -m benchmarks.bench_listen [--quick] [--out F]`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from idaw.listen.evaluate import evaluate
from idaw.listen.testset import build_testset

TESTSET = Path("out/listen_testset")
QUICK_ITEMS = 6


def _times(values: Sequence[float]) -> common.Json:
    return {
        "median_s": round(float(np.median(values)), 3),
        "p99_s": round(float(np.percentile(values, 99)), 3),
        "files": len(values),
    }


def run(quick: bool = False) -> common.Json:
    """{scores per analyser, seconds per file per analyser, idaw's time over each alternative's}."""
    items = build_testset(TESTSET, split="eval", count=QUICK_ITEMS if quick else None, progress=False)
    result = evaluate(items)
    times = result.pop("seconds_per_item")
    seconds = {name: _times(values) for name, values in times.items()}
    ratios = {
        f"idaw_over_{name}_median_time": round(seconds["idaw"]["median_s"] / seconds[name]["median_s"], 3)
        for name in seconds
        if name != "idaw" and seconds[name]["median_s"] > 0
    }
    return {"scores": result["analysers"], "seconds_per_file": seconds, "time_ratios": ratios, "items": result["items"]}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
