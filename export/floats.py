"""Compact JSON text in which every float32 reads back bit-exactly.

Each non-integer number is written as the shortest decimal that reads back as the same float32, whether it is read
the way RTNeural does it (nlohmann::json parses to double with ``strtod``, then ``get<float>()`` casts to float) or
with a direct ``strtof``. Of the equally exact spellings the shortest valid JSON one is chosen: ``0.25``, ``-3``,
``15e-6`` (never ``1.5e-05``), ``0`` for +0.0 and ``-0.0`` for -0.0 (``-0`` would read back as the integer 0). Every
written value is parsed back here through the double path and compared bit for bit; a value that would not survive
(none are known) is written with 17 significant digits instead. JSON has no NaN or infinity: such values are refused.
No whitespace is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["NonFiniteError", "dumps", "format_float32", "shortest_json_number"]


class NonFiniteError(ValueError):
    """A NaN or infinite value, which JSON (and so RTNeural's format) cannot hold."""


def shortest_json_number(text: str) -> str:
    """The shortest JSON spelling of the decimal in ``text`` (as numpy prints a float: '0.001', '1.5e-05', '-0.0')."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    mantissa, _, exponent = body.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    point = len(int_part) + (int(exponent) if exponent else 0)  # value = 0.DIGITS * 10**point
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return "-0.0" if neg else "0"
    power = point - len(digits)  # value = int(DIGITS) * 10**power
    if power >= 0:
        positional = digits + "0" * power
    elif point > 0:
        positional = digits[:point] + "." + digits[point:]
    else:
        positional = "0." + "0" * -point + digits
    best = positional
    if power != 0:
        scientific = f"{digits}e{power}"
        if len(scientific) < len(best):
            best = scientific
    return ("-" if neg else "") + best


def format_float32(values: npt.ArrayLike) -> list[str]:
    """Returns one JSON number per value (flattened, C order), each reading back as the identical float32.

    Values are first rounded to float32. Raises NonFiniteError for NaN or infinity.
    """
    src = np.asarray(values)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = np.ascontiguousarray(src, dtype=np.float32).ravel()
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise NonFiniteError(
            f"value {src.ravel()[bad]!r} at flat index {bad} is NaN or infinite in float32; JSON cannot represent it"
        )
    out = [shortest_json_number(s) for s in arr.astype(str).tolist()]
    back = np.array(out, dtype=np.float64).astype(np.float32)
    for i in np.flatnonzero(back.view(np.uint32) != arr.view(np.uint32)).tolist():
        out[i] = shortest_json_number(f"{float(arr[i]):.17g}")  # exact double of a float32: always safe
    return out


def _write(obj: object, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif isinstance(obj, bool | np.bool_):
        out.append("true" if obj else "false")
    elif isinstance(obj, str):
        out.append(json.dumps(obj))
    elif isinstance(obj, int | np.integer):
        out.append(str(int(obj)))
    elif isinstance(obj, float | np.floating):
        out.append(format_float32(np.array([obj], dtype=np.float64))[0])
    elif isinstance(obj, np.ndarray):
        _write(obj.tolist(), out)
    elif isinstance(obj, Mapping):
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {type(key).__name__}")
            out.append(("," if i else "") + json.dumps(key) + ":")
            _write(value, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        items: list[Any] = list(obj)
        if items and all(isinstance(v, float | np.floating) for v in items):
            out.append("[" + ",".join(format_float32(np.array(items, dtype=np.float64))) + "]")
            return
        out.append("[")
        for i, value in enumerate(items):
            if i:
                out.append(",")
            _write(value, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps(obj: object) -> str:
    """Compact JSON text for ``obj`` (dicts, lists, tuples, str, int, float, None, bool, numpy arrays/scalars).

    Floats are written as float32 (see the module docstring); ints stay ints. Returns the text.
    """
    out: list[str] = []
    _write(obj, out)
    return "".join(out)
