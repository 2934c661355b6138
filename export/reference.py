"""A numpy interpreter of RTNeural JSON models, frame by frame in float32, used to verify exports.

It computes what RTNeural's dynamic ``Model<float>`` computes for a file loaded with ``parseJson`` (same weight
orientation, gate order, conv kernel order and streaming state), but it is strict where RTNeural is lenient: unknown
layer types or activations, missing fields and weights of the wrong shape raise :class:`ModelFormatError` instead of
being skipped, crashing or zero-filled. One deliberate difference: softmax subtracts the maximum first (RTNeural's
does not and overflows for logits above ~88); mathematically identical otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ModelFormatError", "ReferenceModel", "activation_fn"]

F32 = npt.NDArray[np.float32]


class ModelFormatError(ValueError):
    """The JSON is not a model this interpreter (or a strict loader) accepts."""


def _sigmoid(x: F32) -> F32:
    with np.errstate(over="ignore"):
        out: F32 = np.float32(1) / (np.float32(1) + np.exp(-x))
    return out


def _softmax(x: F32) -> F32:
    e = np.exp(x - x.max())
    out: F32 = e / e.sum()
    return out


def _elu(x: F32) -> F32:
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(np.float32)


_ACTIVATIONS: dict[str, Callable[[F32], F32]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "elu": _elu,
}


def activation_fn(name: str) -> Callable[[F32], F32]:
    """The float32 function for an RTNeural activation name; ModelFormatError for unknown names."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ModelFormatError(f"unknown activation {name!r} (RTNeural would crash loading it)") from None


def _arr(value: Any, shape: tuple[int, ...], what: str) -> F32:
    try:
        a = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise ModelFormatError(f"{what}: not a regular numeric array ({e})") from None
    if a.shape != shape:
        raise ModelFormatError(f"{what}: shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise ModelFormatError(f"{what}: non-finite values")
    return a


class _Layer:
    out_size: int

    def reset(self) -> None:
        """Clears the layer's state (no-op for stateless layers)."""

    def step(self, x: F32) -> F32:
        raise NotImplementedError


class _Dense(_Layer):
    def __init__(self, w: Sequence[Any], n_in: int, n_out: int, where: str):
        self.out_size = n_out
        self.w = _arr(w[0], (n_in, n_out), f"{where} kernel")
        self.b = _arr(w[1], (n_out,), f"{where} bias")

    def step(self, x: F32) -> F32:
        return x @ self.w + self.b


class _LSTM(_Layer):
    def __init__(self, w: Sequence[Any], n_in: int, n: int, where: str):
        self.out_size = n
        self.w = _arr(w[0], (n_in, 4 * n), f"{where} kernel")
        self.u = _arr(w[1], (n, 4 * n), f"{where} recurrent kernel")
        self.b = _arr(w[2], (4 * n,), f"{where} bias")
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.out_size, np.float32)
        self.c = np.zeros(self.out_size, np.float32)

    def step(self, x: F32) -> F32:
        n = self.out_size
        g = x @ self.w + self.h @ self.u + self.b  # gate blocks i, f, c, o
        i, f, o = _sigmoid(g[:n]), _sigmoid(g[n : 2 * n]), _sigmoid(g[3 * n :])
        self.c = f * self.c + i * np.tanh(g[2 * n : 3 * n])
        self.h = o * np.tanh(self.c)
        return self.h


class _GRU(_Layer):
    def __init__(self, w: Sequence[Any], n_in: int, n: int, where: str):
        self.out_size = n
        self.w = _arr(w[0], (n_in, 3 * n), f"{where} kernel")
        self.u = _arr(w[1], (n, 3 * n), f"{where} recurrent kernel")
        self.b = _arr(w[2], (2, 3 * n), f"{where} bias")  # rows: input bias, recurrent bias (Keras reset_after)
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.out_size, np.float32)

    def step(self, x: F32) -> F32:
        n = self.out_size
        gx = x @ self.w + self.b[0]  # gate blocks z, r, h
        gh = self.h @ self.u + self.b[1]
        z = _sigmoid(gx[:n] + gh[:n])
        r = _sigmoid(gx[n : 2 * n] + gh[n : 2 * n])
        c = np.tanh(gx[2 * n :] + r * gh[2 * n :])
        self.h = (np.float32(1) - z) * c + z * self.h
        return self.h


class _Conv1D(_Layer):
    def __init__(self, w: Sequence[Any], n_in: int, n_out: int, kernel: int, dilation: int, where: str):
        if kernel < 1 or dilation < 1:
            raise ModelFormatError(f"{where}: kernel_size and dilation must be >= 1")
        self.out_size, self.kernel, self.dilation = n_out, kernel, dilation
        self.w = _arr(w[0], (kernel, n_in, n_out), f"{where} kernel")  # w[k] meets input t-(kernel-1-k)*dilation
        self.b = _arr(w[1], (n_out,), f"{where} bias")
        self.n_in = n_in
        self.reset()

    def reset(self) -> None:
        self.past = np.zeros(((self.kernel - 1) * self.dilation + 1, self.n_in), np.float32)

    def step(self, x: F32) -> F32:
        self.past = np.roll(self.past, -1, axis=0)
        self.past[-1] = x
        taps = self.past[:: self.dilation]  # oldest first, aligned with w[0] .. w[kernel-1]
        out: F32 = np.einsum("ki,kio->o", taps, self.w).astype(np.float32) + self.b
        return out


class _PReLU(_Layer):
    def __init__(self, w: Sequence[Any], n: int, where: str):
        self.out_size = n
        try:
            alpha = np.asarray(w[0][0], dtype=np.float32)
        except (IndexError, TypeError, KeyError, ValueError):
            raise ModelFormatError(f"{where}: weights must be [[alpha, ...]]") from None
        if alpha.ndim != 1 or alpha.shape[0] not in (1, n):
            raise ModelFormatError(f"{where}: {alpha.shape} slopes for {n} features (need 1 or {n})")
        self.alpha = np.broadcast_to(alpha, (n,)).copy()

    def step(self, x: F32) -> F32:
        return np.where(x >= 0, x, x * self.alpha)


class _BatchNorm(_Layer):
    def __init__(self, w: Sequence[Any], n: int, eps: float, where: str):
        self.out_size = n
        if len(w) not in (2, 4):
            raise ModelFormatError(f"{where}: weights need [gamma, beta, mean, var] or [mean, var], got {len(w)}")
        vecs = [_arr(v, (n,), f"{where} weights[{i}]") for i, v in enumerate(w)]
        gamma, beta = (vecs[0], vecs[1]) if len(w) == 4 else (np.ones(n, np.float32), np.zeros(n, np.float32))
        self.mean, var = vecs[-2], vecs[-1]
        self.mult = gamma / np.sqrt(var + np.float32(eps))  # RTNeural's updateMultiplier()
        self.beta = beta

    def step(self, x: F32) -> F32:
        out: F32 = self.mult * (x - self.mean) + self.beta
        return out


class _Activation(_Layer):
    def __init__(self, name: str, n: int):
        self.out_size = n
        self.fn = activation_fn(name)

    def step(self, x: F32) -> F32:
        return self.fn(x)


def _last_int(value: Any, what: str) -> int:
    if not isinstance(value, list) or not value or not isinstance(value[-1], int) or isinstance(value[-1], bool):
        raise ModelFormatError(f"{what} must be a list ending in an integer, got {value!r}")
    return int(value[-1])


class ReferenceModel:
    """An RTNeural JSON model run in numpy: ``reset()``, ``forward(frame)``, ``process(frames)``."""

    def __init__(self, model: Mapping[str, Any]):
        if not isinstance(model.get("in_shape"), list) or not isinstance(model.get("layers"), list):
            raise ModelFormatError('the document needs "in_shape" and "layers" arrays')
        self.input_size = _last_int(model["in_shape"], "in_shape")
        self.layers: list[_Layer] = []
        size = self.input_size
        for i, spec in enumerate(model["layers"]):
            for layer in self._build(spec, size, f"layer {i}"):
                self.layers.append(layer)
                size = layer.out_size
        self.output_size = size

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceModel:
        """Reads a JSON file; returns the model."""
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    @staticmethod
    def _build(spec: Any, size: int, where: str) -> list[_Layer]:
        if not isinstance(spec, Mapping):
            raise ModelFormatError(f"{where}: not an object")
        missing = [k for k in ("type", "shape", "weights") if k not in spec]
        if missing:
            raise ModelFormatError(f"{where}: missing {missing}")
        kind, w, act = spec["type"], spec["weights"], spec.get("activation", "")
        n = _last_int(spec["shape"], f"{where} shape")
        where = f"{where} ({kind})"
        if not isinstance(w, list) or not isinstance(act, str):
            raise ModelFormatError(f"{where}: weights must be a list and activation a string")
        need = {"dense": 2, "time-distributed-dense": 2, "conv1d": 2, "lstm": 3, "gru": 3, "prelu": 1}.get(kind, 0)
        if len(w) < need:
            raise ModelFormatError(f"{where}: {len(w)} weight entries, expected {need}")
        layer: _Layer
        if kind in ("dense", "time-distributed-dense"):
            layer = _Dense(w, size, n, where)
        elif kind == "conv1d":
            kernel = _last_int(spec.get("kernel_size"), f"{where} kernel_size")
            layer = _Conv1D(w, size, n, kernel, _last_int(spec.get("dilation"), f"{where} dilation"), where)
        elif kind in ("lstm", "gru"):
            if act not in ("", "tanh"):
                raise ModelFormatError(f"{where}: RTNeural ignores activation {act!r} on recurrent layers")
            return [_LSTM(w, size, n, where) if kind == "lstm" else _GRU(w, size, n, where)]
        elif kind in ("prelu", "batchnorm"):
            if n != size or act:
                raise ModelFormatError(f"{where}: shape must keep {size} features and activation must be empty")
            if kind == "prelu":
                return [_PReLU(w, size, where)]
            eps = spec.get("epsilon")
            if not isinstance(eps, int | float) or isinstance(eps, bool):
                raise ModelFormatError(f"{where}: needs a numeric epsilon")
            return [_BatchNorm(w, size, float(eps), where)]
        elif kind == "activation":
            if n != size or not act or w:
                raise ModelFormatError(f"{where}: needs shape {size}, a non-empty activation and weights []")
            return [_Activation(act, size)]
        else:
            raise ModelFormatError(f"{where}: unknown layer type (RTNeural would skip it silently)")
        return [layer, _Activation(act, n)] if act else [layer]

    def reset(self) -> None:
        """Clears every layer's state (recurrent h/c, conv history), like RTNeural's Model::reset()."""
        for layer in self.layers:
            layer.reset()

    def forward(self, frame: npt.ArrayLike) -> F32:
        """Runs one frame ``[input_size]``; returns ``[output_size]`` (float32). State carries to the next call."""
        x = np.asarray(frame, dtype=np.float32).reshape(self.input_size)
        for layer in self.layers:
            x = layer.step(x).astype(np.float32, copy=False)
        return x

    def process(self, frames: npt.ArrayLike) -> F32:
        """Runs ``[time, input_size]`` frame by frame from the current state; returns ``[time, output_size]``."""
        xs = np.asarray(frames, dtype=np.float32)
        if xs.ndim != 2 or xs.shape[1] != self.input_size:
            raise ValueError(f"expected [time, {self.input_size}] frames, got {xs.shape}")
        out = np.empty((xs.shape[0], self.output_size), np.float32)
        for t in range(xs.shape[0]):
            out[t] = self.forward(xs[t])
        return out
