"""The numpy RTNeural interpreter: state carried and reset, strict refusal of what RTNeural would mis-load, ONNX I/O."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from export.floats import dumps
from export.layers import CausalConv1d, Stack
from export.onnx_export import OnnxStreamer, export_onnx
from export.parity import random_frames
from export.reference import ModelFormatError, ReferenceModel
from export.rtneural import to_rtneural


@pytest.fixture
def doc() -> dict[str, Any]:
    torch.manual_seed(0)
    model = Stack(CausalConv1d(4, 5, 3, dilation=2), nn.Tanh(), nn.LSTM(5, 6, batch_first=True), nn.Linear(6, 3))
    return to_rtneural(model)


def test_state_carries_across_calls_and_reset_clears_it(doc: dict[str, Any]) -> None:
    ref = ReferenceModel(doc)
    x = random_frames(4, 60, seed=1)
    whole = ref.process(x)
    ref.reset()
    halves = np.concatenate([ref.process(x[:25]), ref.process(x[25:])])
    np.testing.assert_array_equal(halves, whole)
    ref.reset()
    assert np.array_equal(ref.forward(x[0]), whole[0])
    assert not np.array_equal(ref.forward(x[0]), whole[0])  # the second call sees state from the first


def test_sizes(doc: dict[str, Any]) -> None:
    ref = ReferenceModel(doc)
    assert (ref.input_size, ref.output_size) == (4, 3)
    with pytest.raises(ValueError, match="frames"):
        ref.process(np.zeros((3, 5), np.float32))


def _broken(doc: dict[str, Any], layer: int, **changes: Any) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    bad["layers"][layer].update(changes)
    return bad


@pytest.mark.parametrize(
    ("layer", "changes", "message"),
    [
        (0, {"type": "conv2d_typo"}, "unknown layer type"),  # RTNeural: silently skipped
        (0, {"activation": "swish"}, "unknown activation"),  # RTNeural: null layer, crash
        (1, {"activation": "relu"}, "ignores activation"),  # RTNeural: ignored on recurrent layers
        (0, {"kernel_size": 3}, "kernel_size"),
        (2, {"shape": [None, None, 4]}, "shape"),  # RTNeural: zero-fills / throws on the misfit
    ],
)
def test_strict_where_rtneural_is_lenient(
    doc: dict[str, Any], layer: int, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ModelFormatError, match=message):
        ReferenceModel(_broken(doc, layer, **changes))


def test_missing_kernel_rows_refused(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    bad["layers"][2]["weights"][0] = bad["layers"][2]["weights"][0][:-1]  # RTNeural would zero-fill the last row
    with pytest.raises(ModelFormatError, match="shape"):
        ReferenceModel(bad)
    bad = copy.deepcopy(doc)
    del bad["layers"][1]["weights"]
    with pytest.raises(ModelFormatError, match="missing"):
        ReferenceModel(bad)


def test_onnx_step_graph_interface(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Stack(CausalConv1d(3, 4, 2, dilation=3), nn.GRU(4, 5, batch_first=True), nn.LSTM(5, 2, batch_first=True))
    states = export_onnx(model.eval(), tmp_path / "m.onnx")
    assert [(s.name, s.shape) for s in states] == [
        ("conv0_past", (1, 3, 3)),
        ("gru0_h", (1, 5)),
        ("lstm0_h", (1, 2)),
        ("lstm0_c", (1, 2)),
    ]
    streamer = OnnxStreamer(tmp_path / "m.onnx")
    outputs = [o.name for o in streamer.session.get_outputs()]
    assert outputs == ["y", "conv0_past_out", "gru0_h_out", "lstm0_h_out", "lstm0_c_out"]
    assert streamer.forward(np.ones(3, np.float32)).shape == (2,)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "old.onnx", opset=13)


def test_model_with_all_activations_loads_from_file(tmp_path: Path) -> None:
    acts: list[nn.Module] = [nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.ELU(), nn.Softmax(dim=-1)]
    model = Stack(*[m for a in acts for m in (nn.Linear(3, 3), a)])
    path = tmp_path / "m.json"
    path.write_text(dumps(to_rtneural(model)))
    ref = ReferenceModel.load(path)
    y = ref.forward(np.array([0.5, -1.0, 2.0], np.float32))
    assert y.shape == (3,) and abs(float(y.sum()) - 1) < 1e-6
