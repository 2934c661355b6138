"""The engine's parameters and parsing of user-given values.

The table (names, units, ranges, defaults, the EQ bands) is idaw/base/params.py, read from protocol.json;
tests/test_param_table.py holds it to the C++ core's (plugin_cpp/core/include/idaw/parameters.h).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError
from idaw.base.params import EQ_PARAM_NAMES, INDEX, SPECS, ParamSpec, defaults

__all__ = ["EQ_PARAM_NAMES", "INDEX", "SPECS", "ParamSpec", "build", "defaults", "parse_assignments", "validate"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate(name: str, value: float) -> float:
    """Return `value` if `name` exists and the value is in range, else raise IdawError naming the range."""
    if name not in INDEX:
        raise IdawError(f"unknown parameter '{name}'; known parameters: {', '.join(INDEX)}")
    spec = SPECS[INDEX[name]]
    # Compared as float32, the engine's type, so 0.1 is inside 0.1..10 although float32(0.1) > 0.1; a value that
    # has no float32 (NaN, infinite, beyond 3.4e38) is refused before numpy would warn about the cast.
    if not (abs(value) <= _FLOAT32_MAX and spec.minimum <= np.float32(value) <= spec.maximum):  # NaN fails too
        raise IdawError(f"{name} = {value:g} is out of range; allowed: {spec.describe_range()}")
    return value


def build(values: Mapping[str, float], base: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
    """A validated snapshot vector: `base` (or the defaults) with `values` applied by name."""
    vector = defaults() if base is None else base.astype(np.float32, copy=True)
    for name, value in values.items():
        vector[INDEX[name]] = validate(name, float(value))
    return vector


def parse_assignments(items: Iterable[str]) -> dict[str, float]:
    """Parse 'name=value' items (each may hold several, comma-separated) into a dict.

    An item of exactly 13 comma-separated numbers is read as a SAFE-DB EQ row in column order.
    """
    values: dict[str, float] = {}
    for item in items:
        parts = [p.strip() for p in item.split(",") if p.strip()]
        if len(parts) == len(EQ_PARAM_NAMES) and all("=" not in p for p in parts):
            for name, text in zip(EQ_PARAM_NAMES, parts, strict=True):
                values[name] = _number(name, text)
            continue
        for part in parts:
            name, sep, text = part.partition("=")
            if not sep:
                raise IdawError(
                    f"cannot read '{part}': use name=value (e.g. low_gain=3) or 13 comma-separated SAFE values"
                )
            values[name.strip()] = _number(name.strip(), text)
    for name, value in values.items():
        validate(name, value)
    return values


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise IdawError(f"{name}: '{text}' is not a number") from None
