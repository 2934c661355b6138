"""PyTorch building blocks the exporters understand, and the rules for walking a model into layers.

Every model here is a chain of frame-wise layers over batch-first tensors ``[batch, time, features]``:
``nn.Linear``, ``nn.LSTM`` / ``nn.GRU`` (one layer, unidirectional, ``batch_first=True``), :class:`CausalConv1d`,
``nn.PReLU``, ``nn.BatchNorm1d`` (features on the last axis, inference statistics), and the activations
``nn.Tanh``, ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Softmax(dim=-1)``, ``nn.ELU(alpha=1.0)``. ``nn.Dropout`` and
``nn.Identity`` are identities at inference time and are dropped.

A model is walked by :func:`layer_list`: a list/tuple of modules, an ``nn.Sequential``, a :class:`Stack`, or any module
with a ``rtneural_layers()`` method returning its layers in order (the five iDAW nets do this).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "CausalConv1d",
    "ExportError",
    "LayerState",
    "Stack",
    "activation_name",
    "layer_list",
    "run_layers",
]

#: RTNeural activation name for each supported activation module type.
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Softmax: "softmax",
    nn.ELU: "elu",
}

#: The state a layer carries between calls: (h, c) for an LSTM, h for a GRU, the past inputs for a conv, else None.
LayerState = Any


class ExportError(ValueError):
    """A model, layer or setting that cannot be written exactly in the target format."""


class CausalConv1d(nn.Module):
    """Causal (left-padded), dilated 1-D convolution over time, on batch-first ``[batch, time, in_channels]``.

    Output frame t depends on input frames ``t - (kernel_size - 1 - k) * dilation`` for k = 0..kernel_size-1
    (zeros before the first frame), exactly like RTNeural's ``Conv1D``, which keeps a circular buffer of the last
    ``(kernel_size - 1) * dilation + 1`` inputs. ``weight`` has PyTorch's ``Conv1d`` shape
    ``[out_channels, in_channels, kernel_size]``; stride 1, no groups.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            raise ValueError("kernel_size and dilation must be >= 1")
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.weight = conv.weight
        self.bias: Tensor | None = conv.bias

    @property
    def history(self) -> int:
        """Number of past input frames the layer remembers: ``(kernel_size - 1) * dilation``."""
        return (self.kernel_size - 1) * self.dilation

    def initial_state(self, batch: int = 1) -> Tensor:
        """Zero history, shape ``[batch, in_channels, history]``."""
        return self.weight.new_zeros(batch, self.in_channels, self.history)

    def forward_with_state(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(y [batch, time, out_channels], new_state [batch, in_channels, history])`` for input x."""
        xt = x.transpose(1, 2)
        past = self.initial_state(x.shape[0]) if state is None else state
        full = torch.cat([past, xt], dim=2)
        y = F.conv1d(full, self.weight, self.bias, dilation=self.dilation)
        new_state = full[:, :, full.shape[2] - self.history :]
        return y.transpose(1, 2), new_state

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``y [batch, time, out_channels]`` starting from zero history."""
        return self.forward_with_state(x)[0]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"


def activation_name(module: nn.Module) -> str | None:
    """RTNeural's name for an activation module ("tanh", ...), None if it is not an activation.

    Raises ExportError for activation settings RTNeural cannot express (ELU alpha != 1, softmax not over features).
    """
    name = ACTIVATIONS.get(type(module))
    if name is None:
        return None
    if isinstance(module, nn.ELU) and float(module.alpha) != 1.0:
        raise ExportError(f"nn.ELU(alpha={module.alpha}): RTNeural's JSON loader has no alpha field (alpha is 1)")
    if isinstance(module, nn.Softmax) and module.dim != -1:
        raise ExportError(f"nn.Softmax(dim={module.dim}): use dim=-1 (over the features of one frame)")
    return name


def layer_list(model: nn.Module | Sequence[nn.Module]) -> list[nn.Module]:
    """The model's layers in order, with nn.Dropout / nn.Identity removed.

    Accepts a list/tuple of modules, an nn.Sequential or :class:`Stack`, a module with ``rtneural_layers()``, or a
    single supported layer. Raises ExportError for anything else.
    """
    if isinstance(model, nn.Module) and hasattr(model, "rtneural_layers"):
        layers = list(getattr(model, "rtneural_layers")())  # noqa: B009
    elif isinstance(model, nn.Sequential):
        layers = list(model.children())
    elif isinstance(model, Sequence):
        layers = list(model)
    elif isinstance(model, nn.Module) and (
        isinstance(model, nn.Linear | nn.LSTM | nn.GRU | CausalConv1d | nn.PReLU | nn.BatchNorm1d)
        or type(model) in ACTIVATIONS
    ):
        layers = [model]
    else:
        raise ExportError(
            f"don't know how to walk {type(model).__name__}: pass a list of layers, an nn.Sequential, "
            "an export.layers.Stack, or give the module a rtneural_layers() method"
        )
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Module):
            raise ExportError(f"layer {i} is a {type(layer).__name__}, not an nn.Module")
    return [layer for layer in layers if not isinstance(layer, nn.Dropout | nn.Identity)]


def _frames(layer: nn.Module, x: Tensor) -> Tensor:
    """Applies a per-feature layer (PReLU, BatchNorm1d) to every frame of ``[batch, time, features]``."""
    b, t, f = x.shape
    out: Tensor = layer(x.reshape(b * t, f))
    return out.reshape(b, t, -1)


def run_layers(
    layers: Sequence[nn.Module], x: Tensor, states: Sequence[LayerState] | None = None
) -> tuple[Tensor, list[LayerState]]:
    """Runs a layer chain over ``x [batch, time, features]``; returns ``(y, states)``.

    ``states`` (one entry per layer, None for stateless layers or to start from zero) is what a previous call
    returned, so consecutive calls continue the same stream. Recurrent states use PyTorch's layout
    (``[1, batch, hidden]``); a CausalConv1d state is ``[batch, in_channels, history]``.
    """
    new_states: list[LayerState] = []
    for i, layer in enumerate(layers):
        state = None if states is None else states[i]
        if isinstance(layer, nn.LSTM | nn.GRU):
            x, state = layer(x, state)
        elif isinstance(layer, CausalConv1d):
            x, state = layer.forward_with_state(x, state)
        elif isinstance(layer, nn.PReLU | nn.BatchNorm1d):
            x = _frames(layer, x)
        else:
            x = layer(x)
        new_states.append(state)
    return x, new_states


class Stack(nn.Module):
    """A sequential chain of the supported layers over ``[batch, time, features]`` that carries recurrent state.

    Unlike nn.Sequential it threads LSTM/GRU/conv state and applies PReLU / BatchNorm1d per frame.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def rtneural_layers(self) -> list[nn.Module]:
        """The layers in order."""
        return list(self.layers)

    def forward_with_state(
        self, x: Tensor, states: Sequence[LayerState] | None = None
    ) -> tuple[Tensor, list[LayerState]]:
        """Returns ``(y [batch, time, out], states)``; see :func:`run_layers`."""
        return run_layers(list(self.layers), x, states)

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``y [batch, time, out]`` from zero state."""
        return self.forward_with_state(x)[0]
