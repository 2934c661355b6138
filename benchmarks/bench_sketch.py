"""The song sketch stage by stage: the structure (idaw/sketch/structure.py) for 50 prompts and 2 seeds, then whole
3-minute songs through every stage (`idaw sketch`'s write_song: stems as MIDI, render, mix, master, report).

Reported: the sentence model's load (once per process), the structure's time per prompt (median, p99), how the
prompts were read (genres chosen, how many fell back to the default genre, major/minor), and for SONGS songs of 180 s
(--quick: one of 60 s) each stage's median wall time, the total's median and its real-time factor. The issue's budget
is 60 s for a 3-minute song, all stages together, on the 2-core machine. Run alone with
`python -m benchmarks.bench_sketch [--quick] [--out F]`.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from idaw.sketch.evaluate import PROMPTS
from idaw.sketch.song import write_song
from idaw.sketch.structure import make_structure
from idaw.text.embedding import sentence_model

SEEDS = (0, 1)


SONGS = ("upbeat indie rock song about summer", "sad piano ballad about losing someone", "deep house for a sunset")
"""The prompts of the whole songs timed (three genres, three forms)."""


def run(quick: bool = False) -> common.Json:
    """{model_load_s, structure: {...}, song: {...}}."""
    start = time.perf_counter()
    sentence_model()
    model_load_s = time.perf_counter() - start
    prompts = PROMPTS[:10] if quick else PROMPTS
    times_ns: list[int] = []
    genres: collections.Counter[str] = collections.Counter()
    defaults = minor = 0
    for prompt in prompts:
        for seed in SEEDS:
            begin = time.perf_counter_ns()
            structure = make_structure(prompt, 180.0, seed=seed)
            times_ns.append(time.perf_counter_ns() - begin)
            genres[structure.genre] += 1
            defaults += structure.genre_from == "default"
            minor += structure.key.endswith("minor")
    seconds = 60.0 if quick else 180.0
    stage_s: dict[str, list[float]] = collections.defaultdict(list)
    totals_ns: list[int] = []
    for prompt in SONGS[:1] if quick else SONGS:
        with tempfile.TemporaryDirectory(prefix="idaw-bench-sketch-") as folder:
            begin = time.perf_counter_ns()
            structure = make_structure(prompt, seconds, seed=0)
            stage_s["structure"].append((time.perf_counter_ns() - begin) / 1e9)
            song = write_song(structure, Path(folder), models=None, progress=False)
            totals_ns.append(time.perf_counter_ns() - begin)
            for stage, spent in song.seconds.items():
                stage_s[stage].append(spent)
    return {
        "model_load_s": round(model_load_s, 3),
        "structure": {
            "sketches": len(times_ns),
            "times": common.summarize_ns(times_ns),
            "genres": dict(genres.most_common()),
            "default_genre": defaults,
            "minor_keys": minor,
        },
        "song": {
            "songs": len(totals_ns),
            "audio_seconds": seconds,
            "stage_median_s": {stage: round(float(np.median(v)), 3) for stage, v in stage_s.items()},
            "total": common.summarize_ns(totals_ns),
            "x_realtime": common.realtime_factor(totals_ns, seconds),
            "budget_s": 60.0,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
