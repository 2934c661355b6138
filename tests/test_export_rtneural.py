"""RTNeural JSON structure (the nesting RTNeural's parseJson reads, see export/FORMAT.md) and exporter errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

from export.layers import CausalConv1d, ExportError, Stack
from export.rtneural import save_rtneural, to_rtneural


def _np(t: Any) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = t.detach().numpy().astype(np.float32)
    return out


def _as_float32(obj: Any) -> Any:
    """A parsed JSON value with every float rounded to float32 (as RTNeural's get<float>() reads it)."""
    if isinstance(obj, float):
        return float(np.float32(obj))
    if isinstance(obj, list):
        return [_as_float32(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _as_float32(v) for k, v in obj.items()}
    return obj


def _w(layer: dict[str, Any], i: int) -> npt.NDArray[np.float32]:
    return np.array(layer["weights"][i], dtype=np.float32)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_document_and_dense() -> None:
    lin = nn.Linear(5, 3)
    doc = to_rtneural([lin, nn.Tanh()], 5)
    assert doc["in_shape"] == [None, None, 5]
    (layer,) = doc["layers"]  # the activation is folded into the dense layer
    assert list(layer) == ["type", "activation", "shape", "weights"]
    assert (layer["type"], layer["activation"], layer["shape"]) == ("dense", "tanh", [None, None, 3])
    assert np.array_equal(_w(layer, 0), _np(lin.weight).T)  # [in][out]
    assert np.array_equal(_w(layer, 1), _np(lin.bias))
    assert json.loads(json.dumps(doc)) == doc  # plain JSON-serialisable values


def test_lstm() -> None:
    lstm = nn.LSTM(4, 6, batch_first=True)
    (layer,) = to_rtneural([lstm])["layers"]
    assert (layer["type"], layer["activation"], layer["shape"]) == ("lstm", "", [None, None, 6])
    assert [_w(layer, i).shape for i in range(3)] == [(4, 24), (6, 24), (24,)]
    assert np.array_equal(_w(layer, 0), _np(lstm.weight_ih_l0).T)  # gate order i, f, c, o as in PyTorch
    assert np.array_equal(_w(layer, 1), _np(lstm.weight_hh_l0).T)
    assert np.array_equal(_w(layer, 2), _np(lstm.bias_ih_l0) + _np(lstm.bias_hh_l0))


def test_gru_gate_reorder_and_two_bias_rows() -> None:
    gru = nn.GRU(4, 3, batch_first=True)
    (layer,) = to_rtneural([gru])["layers"]
    assert [_w(layer, i).shape for i in range(3)] == [(4, 9), (3, 9), (2, 9)]
    h = 3
    r, z, n = slice(0, h), slice(h, 2 * h), slice(2 * h, 3 * h)  # PyTorch blocks
    for i, (src_w, src_b) in enumerate([(gru.weight_ih_l0, gru.bias_ih_l0), (gru.weight_hh_l0, gru.bias_hh_l0)]):
        w, b = _np(src_w), _np(src_b)
        expected = np.concatenate([w[z], w[r], w[n]]).T  # Keras/RTNeural blocks z, r, h
        assert np.array_equal(_w(layer, i), expected)
        assert np.array_equal(_w(layer, 2)[i], np.concatenate([b[z], b[r], b[n]]))


def test_conv1d() -> None:
    conv = CausalConv1d(3, 5, kernel_size=4, dilation=2)
    (layer,) = to_rtneural([conv, nn.ReLU()])["layers"]
    assert (layer["type"], layer["activation"], layer["kernel_size"], layer["dilation"]) == ("conv1d", "relu", [4], [2])
    assert _w(layer, 0).shape == (4, 3, 5)  # [kernel][in][out]
    assert np.array_equal(_w(layer, 0), _np(conv.weight).transpose(2, 1, 0))
    assert np.array_equal(_w(layer, 1), _np(conv.bias))


@pytest.mark.parametrize("n", [1, 7])
def test_prelu(n: int) -> None:
    prelu = nn.PReLU(n, init=0.3)
    layers = to_rtneural([nn.Linear(2, 7), prelu])["layers"]
    assert layers[1]["type"] == "prelu" and layers[1]["shape"] == [None, None, 7]
    assert np.array(layers[1]["weights"], dtype=np.float32).shape == (1, 1, n)  # RTNeural reads weights[0][0]


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm(affine: bool) -> None:
    bn = nn.BatchNorm1d(4, eps=1e-3, affine=affine).eval()
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats is on by default
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    (layer,) = to_rtneural([bn])["layers"]
    assert layer["type"] == "batchnorm" and layer["epsilon"] == pytest.approx(1e-3)
    stats = [_np(bn.running_mean), _np(bn.running_var)]
    expected = [_np(bn.weight), _np(bn.bias), *stats] if affine else stats
    assert len(layer["weights"]) == len(expected)
    for got, want in zip(layer["weights"], expected, strict=True):
        assert np.array_equal(np.array(got, dtype=np.float32), want)


def test_standalone_activations() -> None:
    doc = to_rtneural(
        Stack(nn.GRU(3, 4, batch_first=True), nn.Softmax(dim=-1), nn.Linear(4, 2), nn.ELU(), nn.Sigmoid())
    )
    kinds = [(lay["type"], lay["activation"], lay["shape"][-1]) for lay in doc["layers"]]
    assert kinds == [("gru", "", 4), ("activation", "softmax", 4), ("dense", "elu", 2), ("activation", "sigmoid", 2)]
    assert doc["layers"][1]["weights"] == []


def test_missing_bias_written_as_zeros() -> None:
    layers = to_rtneural([nn.Linear(3, 2, bias=False), nn.LSTM(2, 2, batch_first=True, bias=False)])["layers"]
    assert layers[0]["weights"][1] == [0.0, 0.0]
    assert layers[1]["weights"][2] == [0.0] * 8


def test_dropout_and_identity_are_dropped() -> None:
    assert len(to_rtneural(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Identity()))["layers"]) == 1


def test_save_writes_compact_exact_file(tmp_path: Path) -> None:
    model = Stack(nn.Linear(6, 8), nn.Tanh(), nn.LSTM(8, 4, batch_first=True))
    size = save_rtneural(model, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    assert size == len(text) and " " not in text and text.startswith('{"in_shape":[null,null,6],"layers":[')
    assert _as_float32(json.loads(text)) == to_rtneural(model)  # every float32 reads back exactly


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([nn.Conv2d(1, 1, 1)], "not supported"),
        ([nn.LayerNorm(3)], "not supported"),
        ([nn.Conv1d(3, 3, 2)], "CausalConv1d"),
        ([nn.LSTM(3, 3, batch_first=True, bidirectional=True)], "bidirectional"),
        ([nn.LSTM(3, 3, num_layers=2, batch_first=True)], "num_layers"),
        ([nn.GRU(3, 3)], "batch_first"),
        ([nn.LSTM(3, 3, batch_first=True, proj_size=2)], "proj_size"),
        ([nn.Linear(3, 3), nn.ELU(alpha=0.5)], "alpha"),
        ([nn.Linear(3, 3), nn.Softmax(dim=1)], "dim=-1"),
        ([nn.BatchNorm1d(3)], "training mode"),
        ([nn.BatchNorm1d(3, track_running_stats=False).eval()], "track_running_stats"),
        ([nn.Linear(3, 4), nn.Linear(5, 2)], "expects 5 inputs but receives 4"),
        ([nn.Linear(3, 4), nn.PReLU(3)], "slopes"),
        ([nn.Tanh()], "input size"),
    ],
)
def test_unsupported_raise_clear_errors(layers: list[nn.Module], message: str) -> None:
    with pytest.raises(ExportError, match=message):
        to_rtneural(layers)


def test_unwalkable_module_and_non_finite_weights() -> None:
    class Opaque(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(ExportError, match="rtneural_layers"):
        to_rtneural(Opaque(), 3)
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight[0, 1] = float("nan")
    with pytest.raises(ExportError, match="NaN"):
        to_rtneural([lin])
