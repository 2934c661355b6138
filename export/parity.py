"""Parity checks: run the same frames through several implementations of one model and compare outputs.

A *runner* maps ``frames [time, input_size]`` (float32) to ``outputs [time, output_size]``, starting from a zero
state and carrying the state from frame to frame. To add the C++ core, write a runner that loads the JSON file and
calls it frame by frame, and put it in the mapping::

    runners = standard_runners(model, tmp_dir)          # pytorch, reference (numpy on the JSON), onnxruntime
    runners["cpp"] = my_cpp_runner(tmp_dir / "model.json")  # e.g. via idaw_core
    report = compare(runners, random_frames(model.input_size))
    assert report.worst() <= 1e-5, report
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from export.layers import layer_list, run_layers
from export.onnx_export import OnnxStreamer, export_onnx
from export.reference import ReferenceModel
from export.rtneural import infer_input_size, save_rtneural

__all__ = [
    "ParityReport",
    "Runner",
    "compare",
    "onnx_runner",
    "random_frames",
    "reference_runner",
    "standard_runners",
    "torch_runner",
]

F32 = npt.NDArray[np.float32]
Runner = Callable[[F32], F32]


def random_frames(input_size: int, frames: int = 100, seed: int = 0, scale: float = 1.0) -> F32:
    """Seeded Gaussian test input ``[frames, input_size]`` (float32)."""
    return (np.random.default_rng(seed).standard_normal((frames, input_size)) * scale).astype(np.float32)


def torch_runner(model: nn.Module | Sequence[nn.Module]) -> Runner:
    """PyTorch over the whole sequence in one call (batch 1); the model's own forward when it has one.

    Modules with ``rtneural_layers()`` (the iDAW nets, :class:`export.layers.Stack`) are called as
    ``model(x[None])``; lists, nn.Sequential and bare layers go through :func:`export.layers.run_layers`.
    """
    own = isinstance(model, nn.Module) and hasattr(model, "rtneural_layers")
    layers = layer_list(model)

    def run(frames: F32) -> F32:
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[None]
        with torch.no_grad():
            y = model(x) if own and isinstance(model, nn.Module) else run_layers(layers, x)[0]
        out: F32 = y[0].numpy().astype(np.float32)
        return out

    return run


def reference_runner(model_json: Mapping[str, Any] | str | os.PathLike[str]) -> Runner:
    """The numpy RTNeural interpreter on a JSON document or file, reset before each run."""
    ref = ReferenceModel(model_json) if isinstance(model_json, Mapping) else ReferenceModel.load(model_json)

    def run(frames: F32) -> F32:
        ref.reset()
        return ref.process(frames)

    return run


def onnx_runner(path: str | os.PathLike[str], threads: int = 1) -> Runner:
    """onnxruntime on a step graph from :func:`export.onnx_export.export_onnx`, reset before each run."""
    streamer = OnnxStreamer(path, threads)

    def run(frames: F32) -> F32:
        streamer.reset()
        return streamer.process(frames)

    return run


def standard_runners(
    model: nn.Module | Sequence[nn.Module], workdir: str | os.PathLike[str], input_size: int | None = None
) -> dict[str, Runner]:
    """Exports ``model`` to ``workdir/model.json`` and ``workdir/model.onnx``; returns the
    ``{"pytorch", "reference", "onnxruntime"}`` runners (the files stay for other runners, e.g. the C++ core)."""
    size = infer_input_size(layer_list(model)) if input_size is None else input_size
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    save_rtneural(model, work / "model.json", size)
    export_onnx(model, work / "model.onnx", size)
    return {
        "pytorch": torch_runner(model),
        "reference": reference_runner(work / "model.json"),
        "onnxruntime": onnx_runner(work / "model.onnx"),
    }


@dataclass
class ParityReport:
    """Outputs of every runner and their max absolute differences."""

    baseline: str
    outputs: dict[str, F32]
    max_abs: dict[str, float] = field(default_factory=dict)  # each runner vs the baseline
    pairwise: dict[tuple[str, str], float] = field(default_factory=dict)  # every pair of runners

    def worst(self) -> float:
        """The largest max-abs difference over all pairs."""
        return max(self.pairwise.values(), default=0.0)

    def __str__(self) -> str:
        pairs = ", ".join(f"{a}~{b}: {d:.3g}" for (a, b), d in self.pairwise.items())
        return f"parity vs {self.baseline}: worst {self.worst():.3g} ({pairs})"


def compare(runners: Mapping[str, Runner], frames: F32, baseline: str | None = None) -> ParityReport:
    """Runs every runner on ``frames``; returns a report of max |difference| (NaN anywhere counts as infinite).

    ``baseline`` defaults to the first runner. Raises ValueError if the runners' output shapes disagree.
    """
    if not runners:
        raise ValueError("no runners")
    outputs = {name: np.asarray(run(frames), dtype=np.float32) for name, run in runners.items()}
    base = baseline or next(iter(runners))
    shapes = {name: out.shape for name, out in outputs.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"output shapes differ: {shapes}")

    def diff(a: F32, b: F32) -> float:
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return float("inf") if np.isnan(d).any() else float(d.max(initial=0.0))

    report = ParityReport(base, outputs)
    report.max_abs = {name: diff(out, outputs[base]) for name, out in outputs.items() if name != base}
    report.pairwise = {(a, b): diff(outputs[a], outputs[b]) for a, b in combinations(outputs, 2)}
    return report
