"""`idaw devices`: list audio devices, and `resolve_device`, which turns a user's device choice into an index.

sounddevice is imported only when a device is needed, so a machine without PortAudio can still run the
offline commands; there, device commands fail with one line (DeviceError).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from realtime.errors import DeviceError

Kind = Literal["input", "output"]
Device = Mapping[str, Any]
"""One device as sounddevice.query_devices() describes it (name, hostapi, max_*_channels, ...)."""


def _sounddevice() -> Any:
    """The sounddevice module; raises DeviceError when PortAudio cannot be loaded."""
    try:
        import sounddevice
    except OSError as error:  # the PortAudio shared library is missing or broken
        raise DeviceError(f"audio devices unavailable: {error}") from None
    return sounddevice


def query() -> tuple[list[Device], list[str], tuple[int, int]]:
    """(devices, host API names, (default input index, default output index)); -1 means no default."""
    sd = _sounddevice()
    try:
        devices: list[Device] = [dict(d) for d in sd.query_devices()]
        hostapis = [str(h["name"]) for h in sd.query_hostapis()]
        default_in, default_out = (int(i) if i is not None else -1 for i in sd.default.device)
    except sd.PortAudioError as error:
        raise DeviceError(f"cannot list audio devices: {error}") from None
    return devices, hostapis, (default_in, default_out)


def _channels(device: Device, kind: Kind) -> int:
    """How many channels `device` has in direction `kind`."""
    return int(device["max_input_channels" if kind == "input" else "max_output_channels"])


def resolve_device(
    spec: str | int | None,
    kind: Kind,
    devices: Sequence[Device] | None = None,
    default: int | None = None,
) -> int:
    """The index of the device `spec` names, for `kind` ("input" or "output").

    `spec` is None (the system default), an index (int or digits), or a case-insensitive substring of a
    device name; an exact name wins over substrings. `devices` and `default` override the system's lists
    (for tests). Raises DeviceError (an IdawError) for an unknown, ambiguous or wrong-direction device.
    """
    if devices is None:
        devices, _, defaults = query()
        if default is None:
            default = defaults[0 if kind == "input" else 1]
    usable = [i for i, d in enumerate(devices) if _channels(d, kind) > 0]

    def available() -> str:
        return ", ".join(f"{i}: {devices[i]['name']}" for i in usable) or f"no {kind} devices"

    if spec is None:
        if default is None or default < 0 or default not in usable:
            raise DeviceError(f"no default {kind} device; available: {available()}")
        return default
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        if not 0 <= index < len(devices):
            raise DeviceError(f"unknown device {index}; available: {available()}")
        if index not in usable:
            raise DeviceError(f"device {index} ({devices[index]['name']}) has no {kind} channels")
        return index
    wanted = text.casefold()
    exact = [i for i in usable if str(devices[i]["name"]).casefold() == wanted]
    matches = exact or [i for i in usable if wanted in str(devices[i]["name"]).casefold()]
    if not matches:
        elsewhere = [i for i, d in enumerate(devices) if wanted in str(d["name"]).casefold()]
        if elsewhere:
            raise DeviceError(f"device '{text}' ({devices[elsewhere[0]]['name']}) has no {kind} channels")
        raise DeviceError(f"unknown device '{text}'; available: {available()}")
    if len(matches) > 1:
        names = ", ".join(f"{i}: {devices[i]['name']}" for i in matches)
        raise DeviceError(f"device '{text}' is ambiguous; it matches {names}; give the index instead")
    return matches[0]


def format_table(
    devices: Sequence[Device], hostapis: Sequence[str], defaults: tuple[int, int], only: int | None = None
) -> str:
    """The device list (or just device `only`) as a text table, one device a line.

    '>' marks the default input and '<' the default output; with no devices, says so.
    """
    if not devices:
        return "no audio devices found"
    rows = [("", "#", "name", "host API", "in", "out", "rate")]
    for i, d in enumerate(devices):
        if only is not None and i != only:
            continue
        mark = (">" if i == defaults[0] else " ") + ("<" if i == defaults[1] else " ")
        api = hostapis[d["hostapi"]] if 0 <= d["hostapi"] < len(hostapis) else "?"
        rows.append(
            (
                mark,
                str(i),
                str(d["name"]),
                api,
                str(d["max_input_channels"]),
                str(d["max_output_channels"]),
                f"{float(d['default_samplerate']):g}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("> default input, < default output")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw devices`."""
    parser.add_argument(
        "device",
        nargs="?",
        default=None,
        help="show only this device (index or part of its name), as `idaw live` would resolve it",
    )
    parser.add_argument(
        "--kind",
        choices=("input", "output"),
        default="output",
        help="direction used to resolve DEVICE (default output)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `idaw devices`; returns 0 (also when there are no devices)."""
    devices, hostapis, defaults = query()
    if args.device is not None:
        index = resolve_device(args.device, args.kind, devices, defaults[0 if args.kind == "input" else 1])
        print(format_table(devices, hostapis, defaults, only=index))
        return 0
    print(format_table(devices, hostapis, defaults))
    return 0
