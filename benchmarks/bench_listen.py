"""Listening (issue 12): key, tempo, beats, downbeats and chords heard from audio by idaw and by librosa and
essentia (and tempocnn's tempo, where its environment is set up), side by side on the same held-out audio in one
run, scored with mir_eval (idaw.listen.evaluate says how), and the seconds each takes per file.

The audio is the test set's evaluation split (idaw.listen.testset: the Bach chorales with human Roman-numeral
analyses, rendered with fluidsynth with instruments, drums, noise and reverb never used in training), rendered
into out/listen_testset on the first run. `--quick` scores the first 6 items.

tempocnn needs TensorFlow, whose wheels want an older numpy than the project's, so it runs in its own environment
(`make tempocnn-env` makes .venv-tempocnn; IDAW_TEMPOCNN_PYTHON names another interpreter) through
benchmarks/tempocnn_tempo.py; without it the result says how to set it up.
Run alone with `python -m benchmarks.bench_listen [--quick] [--out F]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from idaw.listen.evaluate import Estimate, Tally, evaluate, score_item
from idaw.listen.testset import build_testset, load_labels

TESTSET = Path("out/listen_testset")
QUICK_ITEMS = 6
TEMPOCNN_PYTHON = Path(os.environ.get("IDAW_TEMPOCNN_PYTHON", ".venv-tempocnn/bin/python"))
TEMPOCNN_SCRIPT = Path(__file__).with_name("tempocnn_tempo.py")


def _times(values: Sequence[float]) -> common.Json:
    return {
        "median_s": round(float(np.median(values)), 3),
        "p99_s": round(float(np.percentile(values, 99)), 3),
        "files": len(values),
    }


def tempocnn_scores(items: Sequence[Path]) -> tuple[common.Json, list[float]]:
    """tempocnn's tempo scores over the items (the same tally as the others') and its seconds per file; a
    {"missing": how to set it up} result when its environment is not there."""
    if not TEMPOCNN_PYTHON.exists():
        return {"missing": f"{TEMPOCNN_PYTHON} not found: run `make tempocnn-env` (or set IDAW_TEMPOCNN_PYTHON)"}, []
    audio = [str(item.with_suffix(".flac")) for item in items]
    done = subprocess.run(
        [str(TEMPOCNN_PYTHON), str(TEMPOCNN_SCRIPT), *audio], capture_output=True, text=True, check=False
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or len(lines) != len(items):
        return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1]}, []
    tally = Tally()
    for item, line in zip(items, lines, strict=True):
        score_item(tally, Estimate(bpm=line["bpm"], kinds=frozenset(("tempo",))), load_labels(item))
    return tally.summary(), [float(line["seconds"]) for line in lines]


def run(quick: bool = False) -> common.Json:
    """{scores per analyser, seconds per file per analyser, idaw's time over each alternative's}."""
    items = build_testset(TESTSET, split="eval", count=QUICK_ITEMS if quick else None, progress=False)
    result = evaluate(items)
    times = result.pop("seconds_per_item")
    result["analysers"]["tempocnn"], tempocnn_seconds = tempocnn_scores(items)
    if tempocnn_seconds:
        times["tempocnn"] = tempocnn_seconds
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
