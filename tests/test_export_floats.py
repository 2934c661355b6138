"""Compact float32 JSON text: every value reads back bit-exactly, via double (nlohmann, json.loads) and via strtof."""

from __future__ import annotations

import ctypes
import json

import numpy as np
import numpy.typing as npt
import pytest

from export.floats import NonFiniteError, dumps, format_float32, shortest_json_number

_libc = ctypes.CDLL(None)
_libc.strtof.restype = ctypes.c_float
_libc.strtof.argtypes = [ctypes.c_char_p, ctypes.c_void_p]


def _bits(a: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def _special_values() -> npt.NDArray[np.float32]:
    f = np.float32
    tiny = np.finfo(np.float32).tiny  # smallest normal, 2**-126
    values = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        -0.1,
        1 / 3,
        2 / 3,
        100.0,
        1e-3,
        1.5e-5,
        123456.7,
        16777216.0,
        16777218.0,
        3.4028235e38,
        -3.4028235e38,
        1e38,
        1e-38,
        tiny,
        -tiny,
        2.0**-149,
        -(2.0**-149),
        np.nextafter(f(tiny), f(0)),
        np.nextafter(f(0), f(1)) * 3,
        1 + 2.0**-23,
        1 - 2.0**-24,
        33554430.0,
        1e20,
    ]
    powers = [2.0**e for e in range(-149, 128)]
    return np.array(values + powers + [-p for p in powers], dtype=np.float32)


def _random_finite(n: int, seed: int) -> npt.NDArray[np.float32]:
    bits = np.random.default_rng(seed).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    vals = bits.view(np.float32)
    return vals[np.isfinite(vals)]


@pytest.mark.parametrize(
    "values",
    [
        _special_values(),
        _random_finite(200_000, 1),  # uniform over bit patterns: every exponent, subnormals included
        np.random.default_rng(2).normal(0, 0.05, 100_000).astype(np.float32),  # weight-like
    ],
    ids=["special", "random-bits", "weight-like"],
)
def test_round_trip_is_bit_exact(values: npt.NDArray[np.float32]) -> None:
    text = dumps(values.tolist())
    assert " " not in text
    parsed = json.loads(text)  # double, then float32: what nlohmann's get<float>() does
    assert np.array_equal(_bits(np.array(parsed, dtype=np.float64).astype(np.float32)), _bits(values))
    direct = [_libc.strtof(s.encode(), None) for s in format_float32(values[:20_000])]  # strtof, as a C++ loader may
    assert np.array_equal(_bits(direct), _bits(values[:20_000]))


def test_written_numbers_are_no_longer_than_numpys_shortest() -> None:
    values = np.concatenate([_special_values(), _random_finite(20_000, 3)])
    for v, s in zip(values, format_float32(values), strict=True):
        assert len(s) <= len(str(v)), (v, s)


@pytest.mark.parametrize(
    ("numpy_text", "expected"),
    [
        ("1.0", "1"),
        ("-1.0", "-1"),
        ("0.0", "0"),
        ("-0.0", "-0.0"),
        ("100.0", "100"),
        ("0.25", "0.25"),
        ("1.5e-05", "15e-6"),
        ("0.001", "1e-3"),
        ("0.012", "0.012"),
        ("123456.7", "123456.7"),
        ("3.4028235e+38", "34028235e31"),
        ("1e-45", "1e-45"),
        ("1e+20", "1e20"),
        ("-0.0066052433", "-0.0066052433"),
        ("0.00066052433", "66052433e-11"),
    ],
)
def test_shortest_spelling(numpy_text: str, expected: str) -> None:
    assert shortest_json_number(numpy_text) == expected
    assert float(expected) == float(numpy_text)


def test_signed_zero_and_ints() -> None:
    assert dumps([0.0, -0.0, 5, -2.5]) == "[0,-0.0,5,-2.5]"
    assert np.signbit(np.float32(json.loads(dumps([-0.0]))[0]))
    assert dumps({"a": [None, 1], "b": "x"}) == '{"a":[null,1],"b":"x"}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e39])
def test_non_finite_refused(bad: float) -> None:
    with pytest.raises(NonFiniteError):
        dumps([[0.5, bad]])
