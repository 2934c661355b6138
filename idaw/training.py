"""`idaw train TARGET`: reproduce a shipped set of weights from data and a seed.

Each target module keeps heavy imports (torch, datasets) inside its run(), so `idaw --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from idaw.base.errors import IdawError

_TARGETS: dict[str, tuple[str, str]] = {
    "nets": ("realtime.nets.train_cli", "the five emotion-to-MIDI nets (music21 corpus + fluidsynth audio)"),
    "semantic-eq": ("sidecar.semantic_eq.train_cli", "the semantic EQ VAE and audio encoder (SAFE-DB et al.)"),
    "chords": ("idaw.listen.train_chords", "the acoustic chord model of the listening analysis (rendered chorales)"),
    "adapter": ("idaw.listen.train_adapter", "the listening adapter: emotion, BPM, key and style heads"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register one sub-command per training target."""
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, (module_name, summary) in _TARGETS.items():
        command = sub.add_parser(name, help=summary, description=summary)
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError as error:
            command.set_defaults(_train_error=f"training target '{name}' is unavailable ({error})")
            continue
        module.add_arguments(command)
        command.set_defaults(_train_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen target's training; returns its exit code."""
    error = getattr(args, "_train_error", None)
    if error:
        raise IdawError(error)
    return int(args._train_module.run(args))
