"""Runs every benchmark and prints one JSON document: `python -m benchmarks.run_all [--quick] [--out F]`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from benchmarks import (
    bench_block_cost,
    bench_listen,
    bench_listen_adapter,
    bench_listen_corpus,
    bench_listen_follow,
    bench_live_jack,
    bench_master,
    bench_midi,
    bench_nets,
    bench_offline_render,
    bench_sidecar_latency,
    bench_sketch,
    bench_theory_voice_leading,
    common,
)

BENCHMARKS: dict[str, Callable[[bool], common.Json]] = {
    "offline_render": bench_offline_render.run,
    "block_cost": bench_block_cost.run,
    "nets": bench_nets.run,
    "sidecar_latency": bench_sidecar_latency.run,
    "live_jack": bench_live_jack.run,
    "midi": bench_midi.run,
    "theory_voice_leading": bench_theory_voice_leading.run,
    "master": bench_master.run,
    "sketch": bench_sketch.run,
    "listen": bench_listen.run,
    "listen_adapter": bench_listen_adapter.run,
    "listen_corpus": bench_listen_corpus.run,
    "listen_follow": bench_listen_follow.run,
}
"""Every benchmark's run(quick) by name, in the order they run."""


def headline(results: common.Json) -> common.Json:
    """The key figures of a full document: core speed against the goal, per-block costs, core/alt ratios."""
    out: common.Json = {}
    offline = results.get("offline_render")
    if offline is not None:
        out["offline_x_realtime_median"] = {k: v["x_realtime"]["median"] for k, v in offline["results"].items()}
        out["offline_core_over_alternative"] = {k: v["median_of_paired_ratios"] for k, v in offline["ratios"].items()}
        out["offline_goal_met"] = offline["goal"]["met"]
    blocks = results.get("block_cost")
    if blocks is not None:
        out["block_p50_p99_us"] = {
            frames: {
                "core_self_timed": [r["core_self_timed"]["histogram"][k] for k in ("median_us", "p99_us")],
                "core_from_python": [r["core_from_python"][k] for k in ("median_us", "p99_us")],
                "numpy_blocks": [r["numpy_blocks"][k] for k in ("median_us", "p99_us")],
            }
            for frames, r in blocks["results"].items()
        }
    return out


def run(quick: bool = False) -> common.Json:
    """{headline, benchmarks: {name: result}, elapsed_s}: every benchmark run one after another."""
    started = time.perf_counter()
    results = {name: bench(quick) for name, bench in BENCHMARKS.items()}
    return {
        "headline": headline(results),
        "benchmarks": results,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
