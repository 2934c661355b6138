"""Shared benchmark helpers: interleaved timing loops, percentile summaries, JSON output, the snapshot."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy

from realtime import params

RATE = 48000
"""Sample rate of every benchmark (Hz)."""

CHANNELS = 2
"""Channel count of every benchmark (stereo)."""

FULL_CHAIN: dict[str, float] = {
    "input_gain": -2.0,
    "drive": 12.0,
    "crunch": 0.4,
    "low_gain": 3.0,
    "low_freq": 120.0,
    "mid1_gain": -2.5,
    "mid1_freq": 400.0,
    "mid1_q": 1.2,
    "mid2_gain": 2.0,
    "mid2_freq": 1500.0,
    "mid2_q": 0.9,
    "mid3_gain": -1.5,
    "mid3_freq": 4200.0,
    "mid3_q": 2.0,
    "high_gain": 2.5,
    "high_freq": 9000.0,
    "mix": 1.0,
    "output_gain": -1.0,
}
"""Settings under which no stage is bypassed: drive on (past its 6 dB fade-in) with crunch, all five
EQ bands away from 0 dB, mix fully wet, both gains away from 0 dB."""

Json = dict[str, Any]
"""A JSON object as built by the benchmarks."""


def full_chain_snapshot() -> npt.NDArray[np.float32]:
    """The validated float32 snapshot vector of FULL_CHAIN (every parameter the engine takes, in order)."""
    return params.build(FULL_CHAIN)


NOISE_LEVEL = 0.05
"""RMS of the benchmark noise: through FULL_CHAIN it leaves at about -18 dBFS RMS; the limiter stays idle."""


def noise(frames: int, channels: int = CHANNELS, level: float = NOISE_LEVEL, seed: int = 0) -> npt.NDArray[np.float32]:
    """Gaussian noise of RMS `level`, shape (frames, channels), float32, C-contiguous, clipped to +-0.9."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, level, (frames, channels)), -0.9, 0.9).astype(np.float32)


@dataclass(frozen=True)
class Alternative:
    """One contender of a comparison: `run` is timed; `setup`, when given, runs untimed just before it."""

    name: str
    run: Callable[[], object]
    setup: Callable[[], object] | None = None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Context in which the cyclic garbage collector cannot start a pass in the middle of a measurement."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def interleaved_times_ns(alternatives: Sequence[Alternative], repetitions: int, warmup: int) -> dict[str, list[int]]:
    """Durations (ns, perf_counter_ns) of `repetitions` timed runs of each alternative, keyed by name.

    Each round runs every alternative once, in an order rotated by one each round, so slow drifts of a
    shared machine hit all alternatives alike and no alternative always runs first. `warmup` untimed
    rounds come before. Element i of every list belongs to the same round (see `paired_ratio`).
    """
    times: dict[str, list[int]] = {a.name: [] for a in alternatives}
    count = len(alternatives)
    with gc_paused():
        for round_index in range(warmup + repetitions):
            for k in range(count):
                alternative = alternatives[(round_index + k) % count]
                if alternative.setup is not None:
                    alternative.setup()
                start = time.perf_counter_ns()
                alternative.run()
                elapsed = time.perf_counter_ns() - start
                if round_index >= warmup:
                    times[alternative.name].append(elapsed)
    return times


def timer_overhead_ns(samples: int = 20000) -> float:
    """Median cost (ns) of two back-to-back perf_counter_ns calls: the floor under any Python-side timing."""
    deltas = np.empty(samples, dtype=np.int64)
    counter = time.perf_counter_ns
    for i in range(samples):
        start = counter()
        deltas[i] = counter() - start
    return float(np.median(deltas))


def _round(value: float, digits: int = 3) -> float:
    """`value` rounded for printing."""
    return round(float(value), digits)


def summarize_us(samples_us: Sequence[float] | npt.NDArray[np.float64]) -> Json:
    """Percentiles of durations given in µs: {median_us, p99_us, min_us, max_us, mean_us, n}.

    p99 uses linear interpolation; with fewer than 100 samples it lies between the two slowest.
    """
    data = np.asarray(samples_us, dtype=np.float64)
    return {
        "median_us": _round(np.median(data)),
        "p99_us": _round(np.percentile(data, 99)),
        "min_us": _round(data.min()),
        "max_us": _round(data.max()),
        "mean_us": _round(data.mean()),
        "n": int(data.size),
    }


def summarize_ns(samples_ns: Sequence[int]) -> Json:
    """`summarize_us` of durations given in ns."""
    return summarize_us(np.asarray(samples_ns, dtype=np.float64) / 1000.0)


def realtime_factor(samples_ns: Sequence[int], audio_seconds: float) -> Json:
    """Speed as a multiple of real time: {median, p99, best}.

    `median` is the audio duration over the median time; `p99` is taken at the slow tail (the 99th
    percentile time), so 99% of runs were at least that fast; `best` is at the fastest run.
    """
    data = np.asarray(samples_ns, dtype=np.float64) / 1e9
    return {
        "median": _round(audio_seconds / np.median(data), 1),
        "p99": _round(audio_seconds / np.percentile(data, 99), 1),
        "best": _round(audio_seconds / data.min(), 1),
    }


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> Json:
    """How `numerator` compares with `denominator` (same-length samples taken in the same rounds).

    Returns {ratio_of_medians, ratio_of_p99, median_of_paired_ratios}; the last divides the samples of each
    round before taking the median, which cancels drift slower than one round.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out: Json = {
        "ratio_of_medians": _round(np.median(num) / np.median(den), 4),
        "ratio_of_p99": _round(np.percentile(num, 99) / np.percentile(den, 99), 4),
    }
    if num.size == den.size:
        out["median_of_paired_ratios"] = _round(np.median(num / den), 4)
    return out


def environment() -> Json:
    """Where the figures were taken: Python, numpy, scipy, CPU, core count, load average, timer floor."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "loadavg_1_5_15": [_round(x, 2) for x in load],
        "timer_overhead_ns": timer_overhead_ns(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def emit(document: Mapping[str, Any], out: Path | None = None) -> str:
    """Prints `document` as indented JSON (and writes it to `out` when given); returns the text."""
    text = json.dumps(document, indent=2)
    print(text, flush=True)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    return text


def parse_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The options every benchmark entry point takes: --quick and --out FILE."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run: fewer repetitions, shorter audio")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON document to this file")
    return parser.parse_args(argv)


def bench_main(description: str, run: Callable[[bool], Json], argv: Sequence[str] | None = None) -> int:
    """Entry point of one benchmark module: prints `run(quick)` as JSON with `environment()`; returns 0."""
    args = parse_args(description, argv)
    result = run(args.quick)
    emit({"environment": environment(), "quick": args.quick, **result}, args.out)
    return 0
