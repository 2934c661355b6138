"""Parity over 100 frames with state carried: PyTorch vs numpy reference (JSON file) vs onnxruntime, max |diff| <= 1e-5.

One small seeded test model per layer type, and the five iDAW nets. The C++ core is added to the same comparison
by putting its runner into the mapping that ``export.parity.standard_runners`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from export.layers import CausalConv1d, Stack
from export.parity import compare, random_frames, reference_runner, standard_runners, torch_runner
from export.rtneural import to_rtneural
from realtime.nets.architectures import NETS

TOLERANCE = 1e-5
FRAMES = 100


def _batchnorm(n: int, affine: bool) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(n, eps=1e-3, affine=affine)
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats is on by default
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        if affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return bn.eval()


LAYER_MODELS: dict[str, Callable[[], Stack]] = {
    "dense-tanh": lambda: Stack(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5)),
    "dense-relu": lambda: Stack(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5)),
    "dense-sigmoid": lambda: Stack(nn.Linear(8, 16), nn.Sigmoid()),
    "dense-softmax": lambda: Stack(nn.Linear(8, 16), nn.Softmax(dim=-1)),
    "dense-elu": lambda: Stack(nn.Linear(8, 16), nn.ELU(), nn.Linear(16, 4)),
    "lstm": lambda: Stack(nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 4)),
    "gru": lambda: Stack(nn.GRU(8, 16, batch_first=True), nn.Linear(16, 4)),
    "gru-activation-layer": lambda: Stack(nn.GRU(8, 12, batch_first=True), nn.ReLU(), nn.Softmax(dim=-1)),
    "conv1d": lambda: Stack(CausalConv1d(8, 6, 3, dilation=2), nn.Tanh(), CausalConv1d(6, 4, 4), CausalConv1d(4, 3, 1)),
    "prelu": lambda: Stack(nn.Linear(8, 10), nn.PReLU(10, init=0.2), nn.Linear(10, 4), nn.PReLU(init=0.1)),
    "batchnorm": lambda: Stack(nn.Linear(8, 10), _batchnorm(10, True), nn.Tanh(), _batchnorm(10, False)),
    "mixed": lambda: Stack(
        CausalConv1d(8, 8, 2),
        nn.ReLU(),
        nn.GRU(8, 8, batch_first=True),
        nn.LSTM(8, 6, batch_first=True),
        _batchnorm(6, True),
        nn.PReLU(6),
        nn.Linear(6, 3),
        nn.Softmax(dim=-1),
    ),
}


def _randomise_prelu(model: nn.Module) -> None:
    """Make PReLU slopes differ per channel so a wrong layout would show."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.5)


@pytest.mark.parametrize("name", sorted(LAYER_MODELS))
def test_layer_model_parity(name: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = LAYER_MODELS[name]().eval()
    _randomise_prelu(model)
    runners = standard_runners(model, tmp_path)
    report = compare(runners, random_frames(8, FRAMES, seed=2, scale=1.5))
    assert report.worst() <= TOLERANCE, str(report)


@pytest.mark.parametrize("name", list(NETS))
def test_net_parity(name: str, tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = NETS[name][0]().eval()
    runners = standard_runners(net, tmp_path)
    report = compare(runners, random_frames(net.input_size, FRAMES, seed=4))
    assert report.worst() <= TOLERANCE, str(report)
    assert report.outputs["pytorch"].shape == (FRAMES, net.output_size)


def test_parity_detects_a_wrong_gru_gate_order() -> None:
    """The comparison is sensitive: the same GRU written with PyTorch's (r, z, n) block order fails it."""
    torch.manual_seed(5)
    model = Stack(nn.GRU(4, 6, batch_first=True)).eval()
    doc = to_rtneural(model)
    gru = doc["layers"][0]
    for i in (0, 1):  # undo the z/r swap in the kernels ...
        gru["weights"][i] = np.array(gru["weights"][i])[:, np.r_[6:12, 0:6, 12:18]].tolist()
    gru["weights"][2] = np.array(gru["weights"][2])[:, np.r_[6:12, 0:6, 12:18]].tolist()  # ... and the biases
    report = compare({"pytorch": torch_runner(model), "reference": reference_runner(doc)}, random_frames(4, FRAMES))
    assert report.worst() > 1e-3
