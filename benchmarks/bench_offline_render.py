"""Offline render speed, as a multiple of real time, of the core against two numpy/scipy alternatives.

48 kHz stereo noise through the full chain (common.FULL_CHAIN), each way in place on a fresh copy:
  core          idaw_core Engine.render(audio, 256): the engine, block by block, GIL released;
  numpy_offline the same chain vectorised over the whole buffer at once (numpy_chain.render_offline);
  numpy_blocks  the same chain 256 frames at a time with carried filter state (numpy_chain.render_blocks),
                which is what a Python audio callback would do;
  core_compressed  the core with its compressor on as well (COMPRESSOR; numpy_chain has no compressor, so this
                one is compared with the core only: what the compressor costs).
Repetitions of the four are interleaved. Run alone with `python -m benchmarks.bench_offline_render`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

import idaw_core
from benchmarks import common, numpy_chain
from realtime import params

BLOCK_SIZE = 256
"""Block size of the core render and of the per-block numpy chain."""

GOAL_X_REALTIME = 300.0
"""The project's goal: the core renders at least this many times faster than real time."""

Audio = npt.NDArray[np.float32]

COMPRESSOR: dict[str, float] = {
    "comp_threshold": -30.0,
    "comp_ratio": 4.0,
    "comp_knee": 6.0,
    "comp_attack": 5.0,
    "comp_release": 100.0,
    "comp_makeup": 3.0,
}
"""The compressor's settings of core_compressed: it compresses the benchmark noise all the time."""


def _prepared_engine(snapshot: npt.NDArray[np.float32]) -> idaw_core.Engine:
    """A core engine prepared for 48 kHz stereo, 256-frame blocks, with `snapshot` applied (no ramp)."""
    engine = idaw_core.Engine()
    engine.prepare(float(common.RATE), BLOCK_SIZE, common.CHANNELS)
    engine.set_parameters_now(snapshot)
    return engine


def _renderers(snapshot: npt.NDArray[np.float32]) -> dict[str, Callable[[Audio], object]]:
    """In-place render functions by alternative name. The core one keeps one engine across calls."""
    engine = _prepared_engine(snapshot)
    settings = numpy_chain.ChainSettings.from_snapshot(snapshot, common.RATE)
    return {
        "core": lambda audio: engine.render(audio, BLOCK_SIZE),
        "numpy_offline": lambda audio: numpy_chain.render_offline(audio, settings),
        "numpy_blocks": lambda audio: numpy_chain.render_blocks(audio, settings, BLOCK_SIZE),
    }


def _compressed_renderer(snapshot: npt.NDArray[np.float32]) -> Callable[[Audio], object]:
    """The core with `snapshot` and COMPRESSOR."""
    engine = _prepared_engine(params.build(COMPRESSOR, snapshot))
    return lambda audio: engine.render(audio, BLOCK_SIZE)


def agreement(source: Audio, snapshot: npt.NDArray[np.float32]) -> common.Json:
    """That the alternatives compute the same chain: largest |difference| from the core, from rest.

    Also returns how many frames the core's limiter touched (0 means the numpy clip, which has no gain
    rider, is the same stage for this audio).
    """
    outputs: dict[str, Audio] = {}
    for name, render in _renderers(snapshot).items():
        outputs[name] = source.copy()
        render(outputs[name])
    reference = outputs.pop("core")
    checker = _prepared_engine(snapshot)
    checker.render(source.copy(), BLOCK_SIZE)
    result: common.Json = {
        f"{name}_max_abs_diff": float(np.abs(out - reference).max()) for name, out in outputs.items()
    }
    result["core_limited_frames"] = int(checker.counters()["limited_samples"])
    result["output_peak"] = round(float(np.abs(reference).max()), 4)
    return result


def run(quick: bool = False) -> common.Json:
    """The benchmark's JSON: config, each alternative's times and x_realtime, core ratios, goal check."""
    seconds = 5.0 if quick else 20.0
    repetitions, warmup = (5, 1) if quick else (41, 2)
    snapshot = common.full_chain_snapshot()
    source = common.noise(round(seconds * common.RATE))
    renderers = {**_renderers(snapshot), "core_compressed": _compressed_renderer(snapshot)}
    buffers = {name: np.empty_like(source) for name in renderers}

    def alternative(name: str) -> common.Alternative:
        buffer = buffers[name]
        render = renderers[name]
        return common.Alternative(name, run=lambda: render(buffer), setup=lambda: np.copyto(buffer, source))

    times = common.interleaved_times_ns([alternative(name) for name in renderers], repetitions, warmup)
    results = {
        name: {"x_realtime": common.realtime_factor(t, seconds), "time": common.summarize_ns(t)}
        for name, t in times.items()
    }
    # core x_realtime / alternative x_realtime == alternative time / core time, round by round.
    ratios = {
        f"core_over_{name}": common.paired_ratio(times[name], times["core"]) for name in renderers if name != "core"
    }
    core_median = results["core"]["x_realtime"]["median"]
    return {
        "benchmark": "offline_render",
        "config": {
            "rate_hz": common.RATE,
            "channels": common.CHANNELS,
            "audio_seconds": seconds,
            "block_size": BLOCK_SIZE,
            "repetitions": repetitions,
            "warmup_rounds": warmup,
            "noise_rms": common.NOISE_LEVEL,
            "params": common.FULL_CHAIN,
            "core_compressed_params": COMPRESSOR,
        },
        "results": results,
        "ratios_note": (
            "x_realtime of the core divided by the alternative's (> 1: the core is faster); "
            "ratio_of_p99 compares the slow-tail (p99) speeds"
        ),
        "ratios": ratios,
        "goal": {
            "core_min_x_realtime": GOAL_X_REALTIME,
            "core_median": core_median,
            "met": core_median >= GOAL_X_REALTIME,
        },
        "agreement": agreement(source[: common.RATE * 2], snapshot),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
