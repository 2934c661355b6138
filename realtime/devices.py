"""`idaw devices`: list audio devices, and `resolve_device`, which turns a user's device choice into an index.

sounddevice is imported only when a device is needed, so a machine without PortAudio can still run the
offline commands; there, device commands fail with one line (DeviceError).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from idaw.base.errors import DeviceError

Kind = Literal["input", "output"]
Device = Mapping[str, Any]
"""One device as sounddevice.query_devices() describes it (name, hostapi, max_*_channels, ...)."""
HostApi = Mapping[str, Any]
"""One host API as sounddevice.query_hostapis() describes it (name, devices, default_input_device, ...)."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread while PortAudio talks to a sound server such as JACK; a signal
    that came meanwhile is handled as the block ends (Ctrl-C then raises KeyboardInterrupt there). Yields nothing.

    Python's handlers do not restart interrupted system calls, and libjack does not retry them: a Ctrl-C landing
    inside, say, jack_port_register makes the request fail half done, and PortAudio later aborts the whole process
    in Pa_Terminate (an assertion, exit by SIGABRT). Threads started meanwhile (JACK's own) inherit the blocked mask,
    so the signals keep going to the main thread afterwards. Do not start subprocesses inside: they would inherit it.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _sounddevice() -> Any:
    """The sounddevice module (its import initialises PortAudio, signals deferred); raises DeviceError when PortAudio
    cannot be loaded."""
    try:
        with signals_deferred():
            import sounddevice
    except OSError as error:  # the PortAudio shared library is missing or broken
        raise DeviceError(f"audio devices unavailable: {error}") from None
    return sounddevice


def release_portaudio() -> None:
    """Terminate PortAudio now if it was initialised (closing e.g. its JACK client), signals deferred, rather than
    in sounddevice's exit handler, where a Ctrl-C could still land inside libjack."""
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    with signals_deferred():
        while sd._initialized > 0:
            sd._terminate()


def query() -> tuple[list[Device], list[HostApi], tuple[int, int]]:
    """(devices, host APIs, (default input index, default output index)); -1 means no default."""
    sd = _sounddevice()
    try:
        devices: list[Device] = [dict(d) for d in sd.query_devices()]
        hostapis: list[HostApi] = [dict(h) for h in sd.query_hostapis()]
        default_in, default_out = (int(i) if i is not None else -1 for i in sd.default.device)
    except sd.PortAudioError as error:
        raise DeviceError(f"cannot list audio devices: {error}") from None
    return devices, hostapis, (default_in, default_out)


def host_api_alias(api: HostApi) -> str:
    """The short name that picks a host API for --device: the first word of its name, lower case ('jack' for
    'JACK Audio Connection Kit', 'alsa', 'oss')."""
    words = str(api["name"]).split()
    return words[0].casefold() if words else ""


def _host_api_matches(text: str, hostapis: Sequence[HostApi]) -> list[int]:
    """Indices of the host APIs `text` names (case-insensitive): its full name or its alias (host_api_alias)."""
    wanted = text.casefold()
    return [i for i, api in enumerate(hostapis) if wanted in (str(api["name"]).casefold(), host_api_alias(api))]


def _channels(device: Device, kind: Kind) -> int:
    """How many channels `device` has in direction `kind`."""
    return int(device["max_input_channels" if kind == "input" else "max_output_channels"])


def resolve_device(
    spec: str | int | None,
    kind: Kind,
    devices: Sequence[Device] | None = None,
    default: int | None = None,
    hostapis: Sequence[HostApi] | None = None,
) -> int:
    """The index of the device `spec` names, for `kind` ("input" or "output").

    `spec` is None (the system default), an index (int or digits), a host API (its name or first word, e.g.
    'jack' or 'alsa': that host API's default device for `kind`), or a case-insensitive part of a device name,
    where an exact name wins over parts. A host API wins over device names: a device named like one is chosen by
    its index. `devices`, `default` and `hostapis` override the system's lists (for tests; without `hostapis`,
    only `devices` is searched). Raises DeviceError (an IdawError) for an unknown, ambiguous or wrong-direction
    device.
    """
    if devices is None:
        devices, hostapis, defaults = query()
        if default is None:
            default = defaults[0 if kind == "input" else 1]
    apis = list(hostapis or [])
    usable = [i for i, d in enumerate(devices) if _channels(d, kind) > 0]

    def available() -> str:
        listed = ", ".join(f"{i}: {devices[i]['name']}" for i in usable) or f"no {kind} devices"
        named = [f"{host_api_alias(a)} ({a['name']})" for a in apis if a.get("devices")]
        return listed + (f"; host APIs: {', '.join(named)}" if named else "")

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
    api_matches = _host_api_matches(text, apis)
    if len(api_matches) > 1:
        names = ", ".join(str(apis[i]["name"]) for i in api_matches)
        raise DeviceError(f"'{text}' names several host APIs ({names}); give a device index instead")
    if api_matches:
        return _host_api_device(apis[api_matches[0]], kind, devices, usable)
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


def _host_api_device(api: HostApi, kind: Kind, devices: Sequence[Device], usable: Sequence[int]) -> int:
    """The default `kind` device of host API `api`, else its first device with `kind` channels; DeviceError when
    it has none."""
    default = int(api.get(f"default_{kind}_device", -1))
    if default in usable:
        return default
    own = [i for i in api.get("devices", []) if i in usable]
    if own:
        return int(own[0])
    have = ", ".join(f"{i}: {devices[i]['name']}" for i in api.get("devices", [])) or "no devices"
    raise DeviceError(f"host API {api['name']} has no {kind} device ({have})")


def format_table(
    devices: Sequence[Device], hostapis: Sequence[HostApi], defaults: tuple[int, int], only: int | None = None
) -> str:
    """The device list (or just device `only`) as a text table, one device a line, then one line per host API
    saying how --device picks it.

    '>' marks the default input and '<' the default output; with no devices, says so.
    """
    if not devices:
        return "no audio devices found"
    rows = [("", "#", "name", "host API", "in", "out", "rate")]
    for i, d in enumerate(devices):
        if only is not None and i != only:
            continue
        mark = (">" if i == defaults[0] else " ") + ("<" if i == defaults[1] else " ")
        api_name = str(hostapis[d["hostapi"]]["name"]) if 0 <= d["hostapi"] < len(hostapis) else "?"
        rows.append(
            (
                mark,
                str(i),
                str(d["name"]),
                api_name,
                str(d["max_input_channels"]),
                str(d["max_output_channels"]),
                f"{float(d['default_samplerate']):g}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("> default input, < default output")
    if only is None:
        for api in hostapis:
            if api.get("devices"):
                lines.append(
                    f"host API {api['name']}: --device {host_api_alias(api)} (default input "
                    f"{_default_text(api, 'input')}, output {_default_text(api, 'output')})"
                )
    return "\n".join(lines)


def _default_text(api: HostApi, kind: Kind) -> str:
    """A host API's default `kind` device index as text ('none' without one)."""
    index = int(api.get(f"default_{kind}_device", -1))
    return str(index) if index >= 0 else "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw devices`."""
    parser.add_argument(
        "device",
        nargs="?",
        default=None,
        help="show only this device (index, host API such as 'jack', or part of its name), as `idaw live --device` "
        "would resolve it",
    )
    parser.add_argument(
        "--kind",
        choices=("input", "output"),
        default="output",
        help="direction used to resolve DEVICE (default output)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `idaw devices`; returns 0 (also when there are no devices)."""
    try:
        devices, hostapis, defaults = query()
    finally:
        release_portaudio()  # the lists are copied: PortAudio (and its JACK client) can go
    if args.device is not None:
        default = defaults[0 if args.kind == "input" else 1]
        index = resolve_device(args.device, args.kind, devices, default, hostapis)
        print(format_table(devices, hostapis, defaults, only=index))
        return 0
    print(format_table(devices, hostapis, defaults))
    return 0
