"""Shared parts of the plugin tests: where the build is, running the C++ test host, the plugin's saved state.

The plugin and its test host are built by `plugin_cpp/plugin/build_and_test.sh` (CMake with -DIDAW_BUILD_PLUGIN=ON)
into build/plugin, or the folder named by IDAW_PLUGIN_BUILD_DIR.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from realtime import params
from tests.support.needs import need, need_program
from tests.support.repo import REPO

BUILD_HINT = "build it with plugin_cpp/plugin/build_and_test.sh --build-only"

# A chain with every stage active, away from every default; frequencies stay below 44.1 kHz's Nyquist.
CHAIN: dict[str, float] = {
    "input_gain": 2.0,
    "drive": 9.0,
    "crunch": 0.3,
    "low_gain": 3.0,
    "low_freq": 120.0,
    "mid1_gain": -4.0,
    "mid1_freq": 400.0,
    "mid1_q": 1.2,
    "mid2_gain": 2.5,
    "mid2_freq": 1500.0,
    "mid2_q": 0.9,
    "mid3_gain": -3.0,
    "mid3_freq": 4000.0,
    "mid3_q": 2.0,
    "high_gain": 4.0,
    "high_freq": 9000.0,
    "mix": 0.8,
    "output_gain": -1.0,
    "comp_threshold": -18.0,
    "comp_ratio": 3.0,
    "comp_knee": 8.0,
    "comp_attack": 5.0,
    "comp_release": 120.0,
    "comp_makeup": 2.0,
}
"""In the table's order (the plugin lists the core's first ones, its own, then the compressor's: CORE_BEFORE_OWN)."""
CORE_BEFORE_OWN = params.INDEX["comp_threshold"]
"""How many of the core's parameters the plugin lists before its own (kCoreParamsBeforeOwn: up to the compressor)."""

NETS_FOLDER = REPO / "realtime" / "nets" / "weights"
"""The trained nets the MIDI generator runs (<Name>.json, RTNeural)."""


def dense_model(inputs: int, outputs: int, seed: int = 0) -> dict[str, Any]:
    """A small valid RTNeural model: one dense layer with tanh, `inputs` -> `outputs`."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 0.1, (inputs, outputs)).round(4).tolist()
    return {
        "in_shape": [None, None, inputs],
        "layers": [
            {
                "type": "dense",
                "activation": "tanh",
                "shape": [None, None, outputs],
                "weights": [weights, [0.0] * outputs],
            }
        ],
    }


@dataclass(frozen=True)
class PluginBuild:
    """The built artefacts."""

    vst3: Path
    host: Path
    rtcheck: Path
    standalone: Path


def build_dir() -> Path:
    """The CMake build folder holding the plugin."""
    return Path(os.environ.get("IDAW_PLUGIN_BUILD_DIR", REPO / "build" / "plugin"))


def _find(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(pattern)) if root.is_dir() else []
    return found[0] if found else None


def plugin_build() -> PluginBuild:
    """The artefacts, or skip (fail in CI) naming what is missing."""
    root = build_dir()
    art = root / "plugin_cpp" / "plugin"
    vst3 = _find(art, "idaw_plugin_artefacts/*/VST3/idaw.vst3")
    host = _find(art, "idaw_plugin_host_artefacts/*/idaw_plugin_host")
    standalone = _find(art, "idaw_plugin_artefacts/*/Standalone/idaw")
    rtcheck = _find(root / "plugin_cpp" / "tests", "libidaw_rtcheck.so")
    for what, path in (("VST3", vst3), ("test host", host), ("Standalone", standalone), ("rtcheck", rtcheck)):
        need(path is not None, f"the plugin's {what} is not built under {root}; {BUILD_HINT}")
    assert vst3 and host and rtcheck and standalone
    return PluginBuild(vst3, host, rtcheck, standalone)


NO_SIDECAR = {"IDAW_SIDECAR_ENDPOINT": f"ipc:///tmp/idaw-plugin-tests-{os.getpid()}-no-sidecar"}
"""Environment that points the plugin's sidecar link at an address nobody binds (a sidecar running on the machine's
default address must not change what the tests render)."""


def run_host(
    build: PluginBuild,
    command: str,
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> tuple[dict[str, Any], str]:
    """Run `idaw_plugin_host COMMAND VST3 ARGS`; returns (its JSON output, its stderr). Fails on a non-zero exit."""
    full_env = {**os.environ, **NO_SIDECAR, **(env or {})}
    proc = subprocess.run(
        [str(build.host), command, str(build.vst3), *map(str, args)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"idaw_plugin_host {command} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout), proc.stderr


def open_editor(build: PluginBuild, xvfb: str, png: Path, *args: str, env: dict[str, str]) -> dict[str, Any]:
    """`idaw_plugin_host editor`; its report (the editor's texts, the values held, the saved state)."""
    report, _ = run_host(build, "editor", "--png", png, "--seconds", "30", *args, env={"DISPLAY": xvfb, **env})
    return report


def set_args(values: Mapping[str, float]) -> list[str]:
    """`--set name=value` arguments for the test host."""
    out: list[str] = []
    for name, value in values.items():
        out += ["--set", f"{name}={value!r}"]
    return out


def vector(values: Mapping[str, float]) -> npt.NDArray[np.float32]:
    """The engine's snapshot vector for `values` (defaults elsewhere)."""
    return params.build(dict(values))


def chain_input(rate: int, seconds: float, channels: int = 2, seed: int = 1) -> npt.NDArray[np.float32]:
    """Noise, a rising sine and a loud burst (drives the saturation and the limiter), shape (frames, channels)."""
    rng = np.random.default_rng(seed)
    frames = round(rate * seconds)
    t = np.arange(frames) / rate
    sweep = 0.3 * np.sin(2 * np.pi * (60.0 * t + 0.5 * (min(12000.0, rate / 4) - 60.0) / seconds * t * t))
    x = sweep[:, None] + rng.normal(0.0, 0.05, (frames, channels))
    burst = slice(frames // 2, frames // 2 + frames // 8)
    x[burst] *= 3.0
    x[:, 1:] *= 0.7  # the channels differ
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _unwrap_juce_binary(data: bytes) -> bytes:
    """The XML inside JUCE's AudioProcessor::copyXmlToBinary wrapper (magic 'VC2!', size, text, NUL)."""
    magic, size = struct.unpack_from("<II", data, 0)
    assert magic == 0x21324356, f"not JUCE's state wrapper (magic {magic:#x})"
    return data[8 : 8 + size].rstrip(b"\0")


_JUCE_BASE64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_base64_decode(text: str) -> bytes:
    """Bytes of juce::MemoryBlock::toBase64Encoding's text ("SIZE." then 6-bit groups, least significant first).

    Not RFC 4648 base64: JUCE's own alphabet and bit order, which its VST3 host uses for the component state.
    """
    size_text, _, chars = text.strip().partition(".")
    value = 0
    for i, c in enumerate(chars):
        value |= _JUCE_BASE64.index(c) << (6 * i)
    size = int(size_text)
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def plugin_state(host_state: bytes) -> ET.Element:
    """The plugin's own state (<IDAW model_folder=...><PARAM id= value=/>...) from a JUCE VST3 host's state."""
    head = ET.fromstring(_unwrap_juce_binary(host_state))
    component = head.find("IComponent")
    assert component is not None and component.text, "no IComponent in the host state"
    return ET.fromstring(_unwrap_juce_binary(juce_base64_decode(component.text)))


def state_values(state: ET.Element) -> dict[str, float]:
    """Plain parameter values held in the plugin's state."""
    return {p.attrib["id"]: float(p.attrib["value"]) for p in state.iter("PARAM")}


def max_abs_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Largest absolute difference of two equally shaped arrays."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape, f"shapes differ: {x.shape} vs {y.shape}"
    return float(np.max(np.abs(x - y))) if x.size else 0.0


WINDOW_MANAGER_ATOMS = (
    "WM_PROTOCOLS",
    "WM_TAKE_FOCUS",
    "WM_DELETE_WINDOW",
    "_NET_WM_PING",
    "WM_CHANGE_STATE",
    "WM_STATE",
    "_NET_WM_WINDOW_TYPE",
    "_NET_WM_WINDOW_TYPE_NORMAL",
    "_NET_WM_STATE",
    "_NET_WM_STATE_HIDDEN",
)


@contextmanager
def xvfb_display() -> Iterator[str]:
    """A private Xvfb server (skip, or fail in CI, without xvfb); yields its DISPLAY."""
    program = need_program("Xvfb", "xvfb")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [program, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    x11 = None
    display = None
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display"
        # A bare X server lacks the window manager's atoms, which JUCE looks up only if they exist and then uses
        # anyway (BadAtom): create them, and keep this connection open so the server never resets and forgets them.
        x11 = ctypes.CDLL("libX11.so.6")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(f":{number}".encode())
        assert display, f"cannot connect to Xvfb :{number}"
        for atom in WINDOW_MANAGER_ATOMS:
            x11.XInternAtom(display, atom.encode(), 0)
        yield f":{number}"
    finally:
        if x11 is not None and display:
            x11.XCloseDisplay(display)
        proc.terminate()
        proc.wait(timeout=10)
