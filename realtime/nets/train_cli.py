"""`idaw train nets`: train the five nets on the music21 corpus and export them (RTNeural JSON, ONNX, .pt).

Heavy imports (torch, music21) happen inside run(), so `idaw --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from idaw.base.errors import IdawError

DEFAULT_OUT = Path("nets-out")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw train nets`."""
    parser.add_argument(
        "--epochs",
        type=int,
        default=60,
        help="maximum epochs per net (early stopping: patience 10, min delta 0.001 on the validation loss) [60]",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device [cpu]")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="rows per batch for the per-bar/per-beat nets; the sequence nets use a quarter of it in crops [64]",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder for weights, histories, metrics and exports [{DEFAULT_OUT}]",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache for parsed scores and rendered mel frames [$XDG_CACHE_HOME/idaw or ~/.cache/idaw]",
    )
    parser.add_argument(
        "--max-pieces",
        type=int,
        default=None,
        help="use only the first N pieces of the fixed "
        "corpus order (all three sources kept in proportion) [all: 350 chorales, 220 Essen songs, "
        "220 fiddle tunes]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and batches [0]")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs [10]")
    parser.add_argument(
        "--min-delta",
        type=float,
        default=0.001,
        help="smallest validation-loss gain that counts as an improvement [0.001]",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate [0.001]")
    parser.add_argument(
        "--weight-digits",
        type=int,
        default=4,
        help="round weights to this many significant "
        "digits before saving, which shrinks the JSON (0 = full float32) [4]",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads [1]")
    parser.add_argument("--no-export", action="store_true", help="skip the RTNeural JSON / ONNX export")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def _export(out: Path, log: _Log) -> list[str]:
    from realtime.nets.export_nets import export_nets

    lines = []
    for net in export_nets(out, checkpoints=out):
        lines.append(
            f"{net.name}: {net.parameters} params, {net.json_bytes} B JSON, "
            f"{net.onnx_path.stat().st_size} B ONNX, parity {net.worst_diff:.1e}"
        )
        log(lines[-1])
        if net.worst_diff > 1e-5:
            raise IdawError(f"{net.name}: exported model differs from PyTorch by {net.worst_diff:.2e}")
    return lines


class _Log:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the training; returns 0 on success (errors raise IdawError)."""
    import torch

    from realtime.nets.audio_features import SOUNDFONT, RenderError
    from realtime.nets.pipeline import Config, default_cache
    from realtime.nets.pipeline import run as run_pipeline

    if args.device == "cuda" and not torch.cuda.is_available():
        raise IdawError("--device cuda: no CUDA device is available to torch")
    if args.epochs < 1 or args.batch_size < 4:
        raise IdawError("--epochs must be >= 1 and --batch-size >= 4")
    if args.max_pieces is not None and args.max_pieces < 3:
        raise IdawError("--max-pieces must be at least 3 (one piece each for train, validation and test)")
    cfg = Config(
        out=args.out,
        cache=args.cache or default_cache(),
        epochs=args.epochs,
        device=args.device,
        batch_size=args.batch_size,
        max_pieces=args.max_pieces,
        seed=args.seed,
        patience=args.patience,
        min_delta=args.min_delta,
        lr=args.lr,
        weight_digits=args.weight_digits,
        threads=args.threads,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    log = _Log(args.quiet)
    try:
        metrics = run_pipeline(cfg, log)
    except RenderError as error:
        raise IdawError(f"{error} (soundfont expected at {SOUNDFONT})") from error
    if not args.no_export:
        _export(cfg.out, log)
    harmony = metrics["HarmonyPredictor"]["audio"]
    log(
        f"done in {metrics['data']['total_seconds']:.0f} s: harmony top-1 {harmony['top1']:.3f} "
        f"top-3 {harmony['top3']:.3f}; metrics in {cfg.out / 'metrics.json'}"
    )
    return 0
