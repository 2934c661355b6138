"""Per-block cost (µs, p50/p99) of the full chain at 64..512 frames, 48 kHz stereo, and its budget share.

For each block size, rounds alternate (order flipped every round) between:
  core_self_timed   the engine's own timing of engine.process(block) (Engine.timing_window(), a histogram
                    with bins about 4.4% wide, plus the exact per-block cpu_ns from its telemetry): the CPU
                    time the audio thread pays;
  core_from_python  the same calls timed from Python with perf_counter_ns (adds the nanobind call);
  numpy_blocks      numpy_chain.NumpyChain.process(block) timed from Python, i.e. a Python audio callback.
Each call is timed by common.interleaved_times_ns; the block is copied in, untimed, before each call.
The budget is the block's duration (frames / 48 kHz). Run alone with `python -m benchmarks.bench_block_cost`.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import idaw_core
from benchmarks import common, numpy_chain

BLOCK_SIZES: tuple[int, ...] = (64, 128, 256, 512)
"""Block sizes measured (frames)."""

POOL_BLOCKS = 256
"""Distinct input blocks cycled through (consecutive slices of one noise stream)."""

TELEMETRY_DRAIN_EVERY = 1000
"""Rounds between telemetry drains (the core's ring holds 4096 records)."""


def _percent(value_us: float, budget_us: float) -> float:
    """`value_us` as a percentage of `budget_us`, rounded for printing."""
    return round(100.0 * value_us / budget_us, 3)


def _budget_share(summary: common.Json, budget_us: float) -> common.Json:
    """{median, p99}: the summary's median_us and p99_us as percentages of the block's duration."""
    return {
        "median": _percent(summary["median_us"], budget_us),
        "p99": _percent(summary["p99_us"], budget_us),
    }


@dataclass(frozen=True)
class BlockTimes:
    """Raw figures of one block size: the core's histogram window and per-round durations (ns)."""

    histogram: idaw_core.TimingSummary
    self_timed: list[int]
    python_core: list[int]
    python_numpy: list[int]


def time_blocks(frames: int, rounds: int, warmup: int) -> BlockTimes:
    """Runs `warmup` then `rounds` interleaved rounds of core and numpy blocks; returns their timings."""
    snapshot = common.full_chain_snapshot()
    engine = idaw_core.Engine()
    engine.prepare(float(common.RATE), frames, common.CHANNELS)
    engine.set_telemetry_enabled(True)  # the exact per-block CPU times come from the telemetry ring
    engine.set_parameters_now(snapshot)
    chain = numpy_chain.NumpyChain(numpy_chain.ChainSettings.from_snapshot(snapshot, common.RATE), common.CHANNELS)
    pool = common.noise(frames * POOL_BLOCKS).reshape(POOL_BLOCKS, frames, common.CHANNELS)
    core_buffer = np.empty((frames, common.CHANNELS), dtype=np.float32)
    numpy_buffer = np.empty_like(core_buffer)
    core_sources, numpy_sources = itertools.cycle(pool), itertools.cycle(pool)  # same block in each round
    self_timed: list[int] = []
    calls = itertools.count(1)

    def core_setup() -> None:
        np.copyto(core_buffer, next(core_sources))
        if next(calls) % TELEMETRY_DRAIN_EVERY == 0:
            self_timed.extend(record[3] for record in engine.drain_telemetry())

    alternatives = [
        common.Alternative("core", run=functools.partial(engine.process, core_buffer), setup=core_setup),
        common.Alternative(
            "numpy_blocks",
            run=functools.partial(chain.process, numpy_buffer),
            setup=lambda: np.copyto(numpy_buffer, next(numpy_sources)),
        ),
    ]
    common.interleaved_times_ns(alternatives, repetitions=0, warmup=warmup)
    engine.drain_telemetry()
    engine.timing_window()  # opens the measured window
    self_timed.clear()
    times = common.interleaved_times_ns(alternatives, repetitions=rounds, warmup=0)
    histogram = engine.timing_window()
    self_timed.extend(record[3] for record in engine.drain_telemetry())
    return BlockTimes(histogram, self_timed, times["core"], times["numpy_blocks"])


def measure(frames: int, rounds: int, warmup: int) -> common.Json:
    """Costs of one block size: each alternative's summary and budget share, ratios, Python call overhead."""
    t = time_blocks(frames, rounds, warmup)
    histogram, self_timed, python_core, python_numpy = t.histogram, t.self_timed, t.python_core, t.python_numpy
    budget_us = 1e6 * frames / common.RATE
    hist_summary: common.Json = {
        "median_us": round(histogram["p50_us"], 3),
        "p99_us": round(histogram["p99_us"], 3),
        "max_us": round(histogram["max_us"], 3),
        "blocks": histogram["blocks"],
        "over_budget": histogram["over_budget"],
    }
    exact = common.summarize_ns(self_timed)
    from_python = common.summarize_ns(python_core)
    numpy_summary = common.summarize_ns(python_numpy)
    paired = len(self_timed) == rounds  # telemetry lost nothing, so record i is round i
    return {
        "block_frames": frames,
        "budget_us": round(budget_us, 3),
        "core_self_timed": {
            "histogram": hist_summary,
            "telemetry_exact": exact,
            "budget_pct": _budget_share(hist_summary, budget_us),
        },
        "core_from_python": {**from_python, "budget_pct": _budget_share(from_python, budget_us)},
        "numpy_blocks": {**numpy_summary, "budget_pct": _budget_share(numpy_summary, budget_us)},
        "ratios": {
            "core_self_timed_over_numpy_blocks": {
                "histogram_ratio_of_medians": round(hist_summary["median_us"] / numpy_summary["median_us"], 4),
                "histogram_ratio_of_p99": round(hist_summary["p99_us"] / numpy_summary["p99_us"], 4),
                **(common.paired_ratio(self_timed, python_numpy) if paired else {}),
            },
            "core_from_python_over_numpy_blocks": common.paired_ratio(python_core, python_numpy),
            "core_self_timed_over_core_from_python": (common.paired_ratio(self_timed, python_core) if paired else {}),
        },
        "python_call_overhead_us": (
            round(float(np.median(np.subtract(python_core, self_timed))) / 1000.0, 3) if paired else None
        ),
    }


def run(quick: bool = False) -> common.Json:
    """The benchmark's JSON: config, then one `measure` result per block size."""
    rounds, warmup = (2000, 200) if quick else (40000, 2000)
    return {
        "benchmark": "block_cost",
        "config": {
            "rate_hz": common.RATE,
            "channels": common.CHANNELS,
            "block_sizes": list(BLOCK_SIZES),
            "rounds_per_size": rounds,
            "warmup_rounds": warmup,
            "noise_rms": common.NOISE_LEVEL,
            "params": common.FULL_CHAIN,
        },
        "notes": {
            "budget_pct": "median and p99 cost as a percentage of the block's duration (real-time budget)",
            "ratios": "core cost divided by the alternative's (< 1: the core is cheaper)",
            "histogram": "the core's own histogram: percentiles are bin centres, bins about 4.4% wide",
            "python_call_overhead_us": "median of (Python-timed core call - core self-timed), same blocks",
        },
        "results": {str(frames): measure(frames, rounds, warmup) for frames in BLOCK_SIZES},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
