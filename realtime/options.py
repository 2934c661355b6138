"""Command-line options shared by the commands that run the DSP chain."""

from __future__ import annotations

import argparse

import numpy as np
import numpy.typing as npt

from realtime import params

_CHAIN_FLAGS: tuple[tuple[str, str], ...] = (
    ("input_gain", "input gain"),
    ("drive", "drive into the saturator (0 = off)"),
    ("crunch", "asymmetry of the saturation"),
    ("mix", "dry/wet mix (1 = all processed)"),
    ("output_gain", "output gain"),
    ("comp_threshold", "compressor threshold"),
    ("comp_ratio", "compressor ratio (1 = off)"),
    ("comp_knee", "compressor knee width"),
    ("comp_attack", "compressor attack time constant"),
    ("comp_release", "compressor release time constant"),
    ("comp_makeup", "compressor makeup gain"),
)


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --eq, --drive, --crunch, --input-gain, --output-gain, --mix and the compressor's --comp-* to a command."""
    group = parser.add_argument_group("DSP chain")
    group.add_argument(
        "--eq",
        action="append",
        default=[],
        metavar="NAME=VALUE[,...]",
        help="EQ settings by name, e.g. low_gain=3,mid1_freq=400 (repeatable), or 13 comma-separated "
        "values in SAFE-DB order: " + ",".join(params.EQ_PARAM_NAMES),
    )
    for name, what in _CHAIN_FLAGS:
        spec = params.SPECS[params.INDEX[name]]
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=None,
            metavar=spec.unit or "X",
            help=f"{what}: {spec.describe_range()} (default {spec.default:g})",
        )


def chain_from_args(args: argparse.Namespace) -> npt.NDArray[np.float32]:
    """The validated parameter snapshot the options describe (raises IdawError on a bad value)."""
    values = params.parse_assignments(args.eq)
    for name, _ in _CHAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    return params.build(values)
