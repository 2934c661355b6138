"""Export the five iDAW nets: ``python -m realtime.nets.export_nets OUT_DIR [--checkpoints DIR] [--seed N]``.

Writes ``OUT_DIR/<name>.json`` (RTNeural) and ``OUT_DIR/<name>.onnx`` (one-frame step graph) for every net in
:data:`realtime.nets.architectures.NETS`, with the `export` package (which knows no particular net), from
``DIR/<name>.pt`` state dicts when given, else from a seeded random initialisation (useful as test fixtures for the
C++ loader). Checks PyTorch vs the numpy reference vs onnxruntime over 100 frames and prints sizes and the worst
difference.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from export.onnx_export import export_onnx
from export.parity import compare, onnx_runner, random_frames, reference_runner, torch_runner
from export.rtneural import save_rtneural
from realtime.nets.architectures import NETS, param_count

__all__ = ["ExportedNet", "export_nets", "main"]


@dataclass(frozen=True)
class ExportedNet:
    """What :func:`export_nets` wrote for one net."""

    name: str
    parameters: int
    json_path: Path
    json_bytes: int
    onnx_path: Path
    worst_diff: float


def export_nets(out_dir: Path, checkpoints: Path | None = None, seed: int = 0) -> list[ExportedNet]:
    """Exports and checks every net; returns one ExportedNet per net, in pipeline order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[ExportedNet] = []
    for name, (cls, _) in NETS.items():
        torch.manual_seed(seed)
        net = cls()
        if checkpoints is not None:
            net.load_state_dict(torch.load(checkpoints / f"{name}.pt", map_location="cpu", weights_only=True))
        net.eval()
        json_path, onnx_path = out_dir / f"{name}.json", out_dir / f"{name}.onnx"
        size = save_rtneural(net, json_path)
        export_onnx(net, onnx_path)
        runners = {
            "pytorch": torch_runner(net),
            "reference": reference_runner(json_path),
            "onnx": onnx_runner(onnx_path),
        }
        report = compare(runners, random_frames(net.input_size, 100, seed=seed))
        done.append(ExportedNet(name, param_count(net), json_path, size, onnx_path, report.worst()))
    return done


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (1 if any parity difference exceeds 1e-5)."""
    parser = argparse.ArgumentParser(prog="python -m realtime.nets.export_nets", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--checkpoints", type=Path, help="folder with <Name>.pt state dicts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    nets = export_nets(args.out_dir, args.checkpoints, args.seed)
    for n in nets:
        print(f"{n.name:18s} {n.parameters:9,d} params  {n.json_bytes:11,d} B json  worst diff {n.worst_diff:.2e}")
    total = sum(n.json_bytes for n in nets)
    print(f"{'total':18s} {sum(n.parameters for n in nets):9,d} params  {total:11,d} B json")
    return 0 if all(n.worst_diff <= 1e-5 for n in nets) else 1


if __name__ == "__main__":
    sys.exit(main())
