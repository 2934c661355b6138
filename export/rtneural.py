"""PyTorch → RTNeural JSON (the format ``RTNeural::json_parser::parseJson`` loads). See export/FORMAT.md.

The written file is ``{"in_shape":[null,null,N],"layers":[...]}``; each layer has ``type``, ``activation``,
``shape`` (``[null,null,out_size]``) and ``weights`` in Keras orientation, plus ``kernel_size``/``dilation`` for
conv1d and ``epsilon`` for batchnorm. An activation module that follows a Linear or CausalConv1d is folded into that
layer's ``activation`` field (RTNeural appends it as its own layer on load); any other activation becomes a
``{"type":"activation",...,"weights":[]}`` layer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import Tensor, nn

from export.floats import dumps
from export.layers import CausalConv1d, ExportError, activation_name, layer_list

__all__ = ["ExportError", "infer_input_size", "save_rtneural", "to_rtneural", "to_rtneural_text"]

F32 = npt.NDArray[np.float32]
_SUPPORTED = (nn.Linear, nn.LSTM, nn.GRU, CausalConv1d, nn.PReLU, nn.BatchNorm1d)


def _array(t: Tensor | None, what: str, size: int | None = None) -> F32:
    """float32 copy of a parameter (zeros of ``size`` when it is None); ExportError if it holds NaN/inf."""
    if t is None:
        assert size is not None
        return np.zeros(size, dtype=np.float32)
    a: F32 = t.detach().cpu().numpy().astype(np.float32, copy=True)
    if not np.isfinite(a).all():
        raise ExportError(f"{what} holds NaN or infinite values, which JSON cannot represent")
    return a


def infer_input_size(layers: Sequence[nn.Module]) -> int:
    """The feature size the first sized layer expects; ExportError if no layer tells."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            return int(layer.in_features)
        if isinstance(layer, nn.LSTM | nn.GRU):
            return int(layer.input_size)
        if isinstance(layer, CausalConv1d):
            return layer.in_channels
        if isinstance(layer, nn.BatchNorm1d):
            return int(layer.num_features)
        if isinstance(layer, nn.PReLU) and layer.num_parameters > 1:
            return int(layer.num_parameters)
    raise ExportError("cannot infer the input size from the layers; pass input_size")


def _check_recurrent(layer: nn.LSTM | nn.GRU, where: str, size: int) -> None:
    kind = type(layer).__name__
    if layer.num_layers != 1:
        raise ExportError(
            f"{where}: {kind}(num_layers={layer.num_layers}); RTNeural layers are single-layer, "
            "stack separate 1-layer modules instead"
        )
    if layer.bidirectional:
        raise ExportError(f"{where}: bidirectional {kind} cannot run causally, frame by frame")
    if not layer.batch_first:
        raise ExportError(f"{where}: {kind} must be batch_first=True (models run on [batch, time, features])")
    if getattr(layer, "proj_size", 0):
        raise ExportError(f"{where}: LSTM proj_size is not supported by RTNeural")
    if layer.input_size != size:
        raise ExportError(f"{where}: {kind} expects {layer.input_size} inputs but receives {size}")


def _layer(layer: nn.Module, where: str, size: int) -> dict[str, Any]:
    """The RTNeural dict for one non-activation layer fed ``size`` features."""
    if isinstance(layer, nn.Linear):
        if layer.in_features != size:
            raise ExportError(f"{where}: Linear expects {layer.in_features} inputs but receives {size}")
        out = int(layer.out_features)
        w = _array(layer.weight, f"{where}.weight")
        b = _array(layer.bias, f"{where}.bias", out)
        return {"type": "dense", "activation": "", "shape": [None, None, out], "weights": [w.T.tolist(), b.tolist()]}
    if isinstance(layer, nn.LSTM):
        _check_recurrent(layer, where, size)
        h = int(layer.hidden_size)
        w_ih = _array(getattr(layer, "weight_ih_l0"), f"{where}.weight_ih_l0")  # noqa: B009
        w_hh = _array(getattr(layer, "weight_hh_l0"), f"{where}.weight_hh_l0")  # noqa: B009
        b = _array(getattr(layer, "bias_ih_l0", None), f"{where}.bias_ih_l0", 4 * h) + _array(
            getattr(layer, "bias_hh_l0", None), f"{where}.bias_hh_l0", 4 * h
        )
        if not np.isfinite(b).all():
            raise ExportError(f"{where}: bias_ih_l0 + bias_hh_l0 overflows float32")
        # PyTorch and Keras/RTNeural share the gate order (i, f, g/c, o): only transpose.
        return {
            "type": "lstm",
            "activation": "",
            "shape": [None, None, h],
            "weights": [w_ih.T.tolist(), w_hh.T.tolist(), b.tolist()],
        }
    if isinstance(layer, nn.GRU):
        _check_recurrent(layer, where, size)
        h = int(layer.hidden_size)
        order = np.r_[h : 2 * h, 0:h, 2 * h : 3 * h]  # PyTorch (r, z, n) -> Keras/RTNeural (z, r, h)
        w_ih = _array(getattr(layer, "weight_ih_l0"), f"{where}.weight_ih_l0")[order]  # noqa: B009
        w_hh = _array(getattr(layer, "weight_hh_l0"), f"{where}.weight_hh_l0")[order]  # noqa: B009
        b_ih = _array(getattr(layer, "bias_ih_l0", None), f"{where}.bias_ih_l0", 3 * h)[order]
        b_hh = _array(getattr(layer, "bias_hh_l0", None), f"{where}.bias_hh_l0", 3 * h)[order]
        return {
            "type": "gru",
            "activation": "",
            "shape": [None, None, h],
            "weights": [w_ih.T.tolist(), w_hh.T.tolist(), [b_ih.tolist(), b_hh.tolist()]],
        }
    if isinstance(layer, CausalConv1d):
        if layer.in_channels != size:
            raise ExportError(f"{where}: CausalConv1d expects {layer.in_channels} channels but receives {size}")
        w = _array(layer.weight, f"{where}.weight").transpose(2, 1, 0)  # [out, in, k] -> [k, in, out]
        b = _array(layer.bias, f"{where}.bias", layer.out_channels)
        return {
            "type": "conv1d",
            "activation": "",
            "shape": [None, None, layer.out_channels],
            "kernel_size": [layer.kernel_size],
            "dilation": [layer.dilation],
            "weights": [w.tolist(), b.tolist()],
        }
    if isinstance(layer, nn.PReLU):
        if layer.num_parameters not in (1, size):
            raise ExportError(f"{where}: PReLU has {layer.num_parameters} slopes for {size} features")
        alpha = _array(layer.weight, f"{where}.weight")
        return {"type": "prelu", "activation": "", "shape": [None, None, size], "weights": [[alpha.tolist()]]}
    if isinstance(layer, nn.BatchNorm1d):
        return _batchnorm(layer, where, size)
    if isinstance(layer, nn.Conv1d):
        raise ExportError(f"{where}: nn.Conv1d is not causal/streaming; use export.layers.CausalConv1d")
    raise ExportError(f"{where}: {type(layer).__name__} is not supported by the RTNeural exporter")


def _batchnorm(layer: nn.BatchNorm1d, where: str, size: int) -> dict[str, Any]:
    if layer.num_features != size:
        raise ExportError(f"{where}: BatchNorm1d has {layer.num_features} features but receives {size}")
    if layer.training:
        raise ExportError(f"{where}: BatchNorm1d is in training mode; call model.eval() before exporting")
    if layer.running_mean is None or layer.running_var is None:
        raise ExportError(f"{where}: BatchNorm1d(track_running_stats=False) has no inference statistics")
    mean = _array(layer.running_mean, f"{where}.running_mean")
    var = _array(layer.running_var, f"{where}.running_var")
    weights: list[Any] = [mean.tolist(), var.tolist()]
    if layer.affine:
        gamma, beta = _array(layer.weight, f"{where}.weight"), _array(layer.bias, f"{where}.bias")
        weights = [gamma.tolist(), beta.tolist(), *weights]
    return {
        "type": "batchnorm",
        "activation": "",
        "shape": [None, None, size],
        "epsilon": float(layer.eps),
        "weights": weights,
    }


def to_rtneural(model: nn.Module | Sequence[nn.Module], input_size: int | None = None) -> dict[str, Any]:
    """The RTNeural JSON document for a model, as a dict of plain lists/floats/ints/None (json-serialisable).

    ``model`` is walked with :func:`export.layers.layer_list`; ``input_size`` defaults to what the first layer
    expects. Float values are the float32 parameters exactly. Raises ExportError for unsupported layers or settings,
    mismatched sizes, and NaN/infinite parameters. A missing bias (``bias=False``) is written as zeros, which is
    exactly equivalent.
    """
    layers = layer_list(model)
    if not layers:
        raise ExportError("the model has no layers")
    for i, layer in enumerate(layers):  # unsupported layers are reported before any size question
        if activation_name(layer) is None and not isinstance(layer, _SUPPORTED):
            _layer(layer, f"layer {i} ({type(layer).__name__})", 0)
    size = infer_input_size(layers) if input_size is None else int(input_size)
    in_size = size
    out: list[dict[str, Any]] = []
    for i, layer in enumerate(layers):
        where = f"layer {i} ({type(layer).__name__})"
        act = activation_name(layer)
        if act is not None:
            prev = out[-1] if out else None
            if (
                prev is not None
                and prev["type"] in ("dense", "conv1d")
                and not prev["activation"]
                and prev.get("_last_index") == i - 1
            ):
                prev["activation"] = act
            else:
                out.append({"type": "activation", "activation": act, "shape": [None, None, size], "weights": []})
            continue
        entry = _layer(layer, where, size)
        entry["_last_index"] = i
        out.append(entry)
        size = int(entry["shape"][-1])
    for entry in out:
        entry.pop("_last_index", None)
    return {"in_shape": [None, None, in_size], "layers": out}


def to_rtneural_text(model: nn.Module | Sequence[nn.Module], input_size: int | None = None) -> str:
    """The compact JSON text of :func:`to_rtneural` (floats as shortest exact float32 decimals, no spaces)."""
    return dumps(to_rtneural(model, input_size))


def save_rtneural(
    model: nn.Module | Sequence[nn.Module], path: str | os.PathLike[str], input_size: int | None = None
) -> int:
    """Writes the RTNeural JSON file for ``model`` at ``path``; returns the file size in bytes."""
    data = (to_rtneural_text(model, input_size) + "\n").encode("ascii")
    with open(path, "wb") as f:
        f.write(data)
    return len(data)
