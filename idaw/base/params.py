"""The engine's parameter table and EQ band layout, read from the protocol's definition (protocol.json).

The C++ core (plugin_cpp/core/include/idaw/parameters.h) defines the same table for the engine;
tests/test_param_table.py holds the two together (names, units, ranges, defaults, scales, and which parameters
make up each EQ band). Reading it from the JSON file rather than from idaw_core lets a sidecar run without the
native module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from idaw.base.defaults import protocol_document

BAND_KINDS = ("low_shelf", "peak", "high_shelf")
"""The kinds of EQ band the engine has."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, unit, inclusive range, default and scale ('linear' or 'log')."""

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    scale: str

    def describe_range(self) -> str:
        """The allowed range as text, e.g. '-12..12 dB'."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.minimum:g}..{self.maximum:g}{unit}"


@dataclass(frozen=True)
class EqBand:
    """One EQ band: its kind (one of BAND_KINDS) and the names of its gain, frequency and Q parameters.

    A shelf has no Q parameter (`q` is None): it uses SHELF_Q.
    """

    kind: str
    gain: str
    freq: str
    q: str | None


def _specs() -> tuple[ParamSpec, ...]:
    return tuple(
        ParamSpec(str(p["name"]), str(p["unit"]), float(p["min"]), float(p["max"]), float(p["default"]), p["scale"])
        for p in protocol_document()["parameters"]
    )


def _bands() -> tuple[EqBand, ...]:
    return tuple(
        EqBand(str(b["kind"]), str(b["gain"]), str(b["freq"]), None if b.get("q") is None else str(b["q"]))
        for b in protocol_document()["eq"]["bands"]
    )


SPECS: tuple[ParamSpec, ...] = _specs()
"""Every parameter in snapshot order."""

INDEX: dict[str, int] = {spec.name: i for i, spec in enumerate(SPECS)}
"""Position of each parameter in the engine's snapshot vector."""

EQ_BANDS: tuple[EqBand, ...] = _bands()
"""The five EQ bands in SAFE-DB order: low shelf, three peaks, high shelf."""

SHELF_Q: float = float(protocol_document()["eq"]["shelf_q"])
"""The Q of both shelves (fixed, as in the SAFE plug-in)."""

EQ_PARAM_NAMES: tuple[str, ...] = tuple(n for b in EQ_BANDS for n in (b.gain, b.freq, b.q) if n is not None)
"""The 13 EQ parameters in SAFE-DB column order (each band's gain, frequency and Q)."""


def _check() -> None:
    """Raise ValueError when protocol.json's table and band layout do not fit together."""
    if len(INDEX) != len(SPECS):
        raise ValueError("protocol.json: a parameter name appears twice")
    if any(s.scale not in ("linear", "log") or not s.minimum <= s.default <= s.maximum for s in SPECS):
        raise ValueError("protocol.json: a parameter has an unknown scale or a default outside its range")
    if any(b.kind not in BAND_KINDS or (b.q is None) != (b.kind != "peak") for b in EQ_BANDS):
        raise ValueError("protocol.json: an EQ band has an unknown kind, or a Q parameter that does not fit it")
    first = INDEX.get(EQ_PARAM_NAMES[0], -1)
    if first < 0 or tuple(s.name for s in SPECS[first : first + len(EQ_PARAM_NAMES)]) != EQ_PARAM_NAMES:
        raise ValueError("protocol.json: the EQ bands' parameters are not one run of the parameter table")


_check()

EQ_SLICE = slice(INDEX[EQ_PARAM_NAMES[0]], INDEX[EQ_PARAM_NAMES[-1]] + 1)
"""Where the 13 EQ parameters lie in a snapshot vector."""


def defaults() -> npt.NDArray[np.float32]:
    """A snapshot vector holding every default."""
    return np.array([s.default for s in SPECS], dtype=np.float32)
