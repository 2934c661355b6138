"""The five iDAW nets, batch 1, one frame each per round: the C++ core vs onnxruntime, PyTorch eager and numpy (µs).

Each round runs all five nets (EmotionRecognizer, MelodyTransformer, HarmonyPredictor, DynamicsEngine,
GroovePredictor; 1,151,280 parameters, 4.6 MB of float32 weights) on one frame each, carrying every recurrent
state across rounds. Contenders:
  core              idaw_core's C++ runtime, timed in C++ around the five Model::forward calls (what an audio
                    thread pays), best kernel set of this CPU (AVX2+FMA when present; no -march flag);
  core_from_python  the same call timed from Python (adds one nanobind call);
  core_sse2         the SSE2 baseline kernels, timed in C++ (what a CPU without AVX2 gets);
  onnxruntime       the one-frame step graphs (export.onnx_export), 1 intra-op thread, 5 session.run calls;
  pytorch_eager     RTNet.forward_with_state on [1, input] under torch.inference_mode(), 1 thread;
  numpy_reference   export.reference.ReferenceModel.forward (numpy interpreter of the same JSON files).
Three regimes, because the cost is dominated by streaming the weights through the caches:
  back_to_back      each contender runs all its rounds in a row (its weights stay in cache: steady streaming);
  interleaved       rounds alternate between contenders (common.interleaved_times_ns), so each one's weights
                    are partly evicted by the others' between its rounds;
  core_cold_cache   the core after a 64 MB memory sweep before every round (weights come from DRAM).
Ratios are contender / core, paired by round (> 1: the core is faster). The goal (median <= 100 µs) is checked on
back_to_back. Weights are random (torch.manual_seed(0)) unless trained files are given with --models DIR
(NAME.json and NAME.onnx per net). Also reported: JSON sizes, load times, per-net core cost, parity (100 frames).
Run alone with `python -m benchmarks.bench_nets [--quick] [--out F] [--models DIR]`.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import idaw_core
from benchmarks import common
from export.onnx_export import OnnxStreamer, export_onnx
from export.reference import ReferenceModel
from export.rtneural import save_rtneural
from realtime.nets.architectures import NETS

GOAL_US = 100.0
"""Target: median core cost of one frame of all five nets (µs)."""

POOL_FRAMES = 64
"""Distinct input frames per net, cycled through round after round."""

PARITY_FRAMES = 100
"""Frames of the parity check (state carried), PyTorch vs the core."""


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of `repeats` calls of fn."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def build_models(workdir: Path, models_dir: Path | None) -> dict[str, Any]:
    """Per net: the PyTorch module, JSON and ONNX paths (written to `workdir` unless `models_dir` has them)."""
    torch.manual_seed(0)
    nets: dict[str, Any] = {}
    for name, (cls, _params) in NETS.items():
        net = cls().eval()
        json_path, onnx_path = workdir / f"{name}.json", workdir / f"{name}.onnx"
        if models_dir is not None and (models_dir / f"{name}.json").exists():
            json_path, onnx_path = models_dir / f"{name}.json", models_dir / f"{name}.onnx"
        else:
            save_rtneural(net, json_path)
            export_onnx(net, onnx_path)
        nets[name] = {"net": net, "json": json_path, "onnx": onnx_path}
    return nets


def _torch_stepper(net: Any) -> Callable[[torch.Tensor], None]:
    """One frame of `net` with its state carried between calls."""
    state: list[Any] = [None]

    def step(x: torch.Tensor) -> None:
        _y, state[0] = net.forward_with_state(x, state[0])

    return step


def parity(nets: dict[str, Any], core_models: dict[str, idaw_core.Model]) -> dict[str, float]:
    """Max |core - PyTorch| per net over PARITY_FRAMES frames from zero state."""
    out: dict[str, float] = {}
    for name, entry in nets.items():
        net, model = entry["net"], core_models[name]
        frames = np.random.default_rng(1).standard_normal((PARITY_FRAMES, net.input_size)).astype(np.float32)
        model.reset()
        got = model.forward_sequence(frames)
        model.reset()
        with torch.inference_mode():
            want = net(torch.from_numpy(frames)[None])[0].numpy()
        out[name] = float(np.abs(got.astype(np.float64) - want).max())
    return out


def run(quick: bool = False, models_dir: Path | None = None) -> common.Json:
    """The benchmark's JSON document."""
    rounds, warmup = (300, 30) if quick else (4000, 300)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="idaw_bench_nets_") as tmp:
        nets = build_models(Path(tmp), models_dir)
        names = list(nets)

        # Loading: sizes and times (median of a few loads each).
        load_repeats = 2 if quick else 5
        json_bytes = {n: os.path.getsize(nets[n]["json"]) for n in names}
        core_load_s = {
            n: _median_s(functools.partial(idaw_core.load_model, str(nets[n]["json"])), load_repeats) for n in names
        }
        reference_load_s = {n: _median_s(functools.partial(ReferenceModel.load, nets[n]["json"]), 1) for n in names}

        core = {n: idaw_core.load_model(str(nets[n]["json"])) for n in names}
        core_sse2 = {n: idaw_core.load_model(str(nets[n]["json"]), isa="sse2") for n in names}
        parity_max_abs = parity(nets, core)
        for m in core.values():
            m.reset()
        reference = {n: ReferenceModel.load(nets[n]["json"]) for n in names}
        onnx = {n: OnnxStreamer(nets[n]["onnx"], threads=1) for n in names}
        torch_steps = {n: _torch_stepper(nets[n]["net"]) for n in names}

        rng = np.random.default_rng(0)
        pools = {n: rng.standard_normal((POOL_FRAMES, core[n].input_size)).astype(np.float32) for n in names}
        torch_pools = {n: torch.from_numpy(pools[n].copy()) for n in names}
        core_list, sse2_list = [core[n] for n in names], [core_sse2[n] for n in names]
        self_timed: list[int] = []
        sse2_timed: list[int] = []

        def cycling() -> tuple[Callable[[], None], list[int]]:
            """A setup that advances one alternative to its next pool frame (every alternative sees frame r in
            round r, whatever order the round runs them in), and the index it sets."""
            counter, index = itertools.count(), [0]

            def setup() -> None:
                index[0] = next(counter) % POOL_FRAMES

            return setup, index

        def alternative(name: str, body: Callable[[int], None]) -> common.Alternative:
            setup, index = cycling()
            return common.Alternative(name, run=lambda: body(index[0]), setup=setup)

        def run_core(i: int) -> None:
            self_timed.append(int(idaw_core.nn_time_frames(core_list, [pools[n][i] for n in names], 1)[0]))

        def run_sse2(i: int) -> None:
            sse2_timed.append(int(idaw_core.nn_time_frames(sse2_list, [pools[n][i] for n in names], 1)[0]))

        def run_onnx(i: int) -> None:
            for n in names:
                onnx[n].forward(pools[n][i])

        def run_torch(i: int) -> None:
            with torch.inference_mode():
                for n in names:
                    torch_steps[n](torch_pools[n][i : i + 1])

        def run_numpy(i: int) -> None:
            for n in names:
                reference[n].forward(pools[n][i])

        alternatives = [
            alternative("core", run_core),
            alternative("core_sse2", run_sse2),
            alternative("onnxruntime", run_onnx),
            alternative("pytorch_eager", run_torch),
            alternative("numpy_reference", run_numpy),
        ]
        contenders = ("onnxruntime", "pytorch_eager", "numpy_reference")

        def summarize(times: dict[str, list[int]]) -> tuple[common.Json, common.Json]:
            """Summaries and ratios of one regime; consumes the self-timed lists filled while it ran."""
            summaries = {
                "core": common.summarize_ns(self_timed),
                "core_from_python": common.summarize_ns(times["core"]),
                "core_sse2": common.summarize_ns(sse2_timed),
                **{alt: common.summarize_ns(times[alt]) for alt in contenders},
            }
            ratios = {alt: common.paired_ratio(times[alt], self_timed) for alt in contenders}
            ratios["core_sse2"] = common.paired_ratio(sse2_timed, self_timed)
            ratios["core_from_python"] = common.paired_ratio(times["core"], self_timed)
            self_timed.clear()
            sse2_timed.clear()
            return summaries, ratios

        # Back to back: one contender at a time.
        times = {}
        for alt in alternatives:
            common.interleaved_times_ns([alt], repetitions=0, warmup=warmup)
            if alt.name == "core":
                self_timed.clear()
            if alt.name == "core_sse2":
                sse2_timed.clear()
            times.update(common.interleaved_times_ns([alt], repetitions=rounds, warmup=0))
        back_to_back, back_to_back_ratios = summarize(times)

        # Interleaved.
        common.interleaved_times_ns(alternatives, repetitions=0, warmup=warmup)
        self_timed.clear()
        sse2_timed.clear()
        times = common.interleaved_times_ns(alternatives, repetitions=rounds, warmup=0)
        interleaved, interleaved_ratios = summarize(times)

        # Cold cache: a sweep over 64 MB (every cache line written) before each round of the core.
        sweep = np.zeros(64 << 20, dtype=np.uint8)
        cold: list[int] = []
        for r in range(rounds // 10):
            sweep[::64] += 1
            cold.append(int(idaw_core.nn_time_frames(core_list, [pools[n][r % POOL_FRAMES] for n in names], 1)[0]))
        del sweep

        # Per-net core cost, each net alone in a row (warm).
        per_net = {
            n: common.summarize_ns([int(t) for t in idaw_core.nn_time_frames([core[n]], [pools[n][0]], rounds)])
            for n in names
        }
        core_median = back_to_back["core"]["median_us"]
        return {
            "benchmark": "nets",
            "config": {
                "nets": {
                    n: {
                        "input": core[n].input_size,
                        "output": core[n].output_size,
                        "json_parameters": core[n].num_parameters,
                        "torch_parameters": NETS[n][1],
                    }
                    for n in names
                },
                "total_torch_parameters": sum(p for _cls, p in NETS.values()),
                "rounds": rounds,
                "warmup_rounds": warmup,
                "weights": str(models_dir) if models_dir else "random, torch.manual_seed(0)",
                "core_kernel": core_list[0].kernel,
                "torch_threads": torch.get_num_threads(),
                "onnxruntime_threads": 1,
            },
            "notes": {
                "round": "one frame through each of the five nets (batch 1), states carried across rounds",
                "ratios": "contender / core (> 1: the core is faster), paired by round",
                "core": "timed in C++ around the five forward() calls (idaw_core.nn_time_frames)",
                "regimes": "back_to_back: warm caches; interleaved: contenders evict each other's weights; "
                "core_cold_cache: weights from DRAM",
            },
            "goal": {
                "median_us": GOAL_US,
                "core_median_us": core_median,
                "met": bool(core_median <= GOAL_US),
                "regime": "back_to_back",
            },
            "results": {
                "back_to_back": back_to_back,
                "interleaved": interleaved,
                "core_cold_cache": common.summarize_ns(cold),
            },
            "ratios": {"back_to_back": back_to_back_ratios, "interleaved": interleaved_ratios},
            "core_per_net": per_net,
            "loading": {
                "json_bytes": json_bytes,
                "json_total_bytes": sum(json_bytes.values()),
                "core_load_s": {n: round(t, 4) for n, t in core_load_s.items()},
                "core_load_total_s": round(sum(core_load_s.values()), 4),
                "numpy_reference_load_total_s": round(sum(reference_load_s.values()), 4),
            },
            "parity_max_abs_vs_pytorch": parity_max_abs,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="short run: fewer rounds")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON document to this file")
    parser.add_argument("--models", type=Path, default=None, help="directory with trained NAME.json / NAME.onnx")
    args = parser.parse_args(argv)
    result = run(args.quick, args.models)
    common.emit({"environment": common.environment(), "quick": args.quick, **result}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
