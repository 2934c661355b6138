"""PyTorch → ONNX for one-frame-per-call streaming, with every layer's state as explicit inputs and outputs.

The graph takes ``x [1, input_size]`` plus one input per state tensor and returns ``y [1, output_size]`` plus the
updated states, in the same order, named ``<state>_out``. States in layer order, numbered per kind from 0:
``lstm{k}_h``/``lstm{k}_c`` ``[1, hidden]``, ``gru{k}_h`` ``[1, hidden]``, ``conv{k}_past`` ``[1, in_channels,
(kernel_size - 1) * dilation]`` (the previous inputs, oldest first; none for kernel_size 1). Zeros are the initial
state. Example, EmotionRecognizer: inputs ``x [1,128], lstm0_h [1,128], lstm0_c [1,128]``, outputs ``y [1,64],
lstm0_h_out, lstm0_c_out``.
:class:`OnnxStreamer` runs such a file in onnxruntime, carrying the states between calls.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from export.layers import CausalConv1d, ExportError, layer_list
from export.rtneural import infer_input_size, to_rtneural

__all__ = ["OnnxStreamer", "StateSpec", "StepModule", "export_onnx"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of the step graph: its input name (the output is ``name + "_out"``) and shape."""

    name: str
    shape: tuple[int, ...]


class StepModule(nn.Module):
    """Runs a layer chain on one frame: ``forward(x [1, F], *states) -> (y, *new_states)``."""

    def __init__(self, model: nn.Module | Sequence[nn.Module], input_size: int | None = None):
        super().__init__()
        layers = layer_list(model)
        to_rtneural(layers, input_size)  # validates every layer and size, exactly as the JSON export does
        self.layers = nn.ModuleList(layers)
        self.input_size = infer_input_size(layers) if input_size is None else int(input_size)
        self.states: list[StateSpec] = []
        self._state_slots: list[tuple[int, int]] = []  # (first state index, count) per layer
        counters = {"lstm": 0, "gru": 0, "conv": 0}

        def name(kind: str) -> str:
            counters[kind] += 1
            return f"{kind}{counters[kind] - 1}"

        for layer in layers:
            first = len(self.states)
            if isinstance(layer, nn.LSTM):
                n = name("lstm")
                self.states += [
                    StateSpec(f"{n}_h", (1, layer.hidden_size)),
                    StateSpec(f"{n}_c", (1, layer.hidden_size)),
                ]
            elif isinstance(layer, nn.GRU):
                self.states.append(StateSpec(f"{name('gru')}_h", (1, layer.hidden_size)))
            elif isinstance(layer, CausalConv1d) and layer.history > 0:
                self.states.append(StateSpec(f"{name('conv')}_past", (1, layer.in_channels, layer.history)))
            self._state_slots.append((first, len(self.states) - first))

    def initial_states(self) -> list[Tensor]:
        """Zero tensors for every state, in input order."""
        return [torch.zeros(s.shape) for s in self.states]

    def forward(self, x: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        """Returns ``(y [1, output_size], *new_states)``."""
        new: list[Tensor] = []
        for layer, (first, count) in zip(self.layers, self._state_slots, strict=True):
            st = states[first : first + count]
            if isinstance(layer, nn.LSTM):
                out, (h, c) = layer(x[:, None, :], (st[0][None], st[1][None]))
                x = out[:, 0]
                new += [h[0], c[0]]
            elif isinstance(layer, nn.GRU):
                out, h = layer(x[:, None, :], st[0][None])
                x = out[:, 0]
                new.append(h[0])
            elif isinstance(layer, CausalConv1d):
                window = torch.cat([st[0], x[:, :, None]], dim=2) if count else x[:, :, None]
                x = F.conv1d(window, layer.weight, layer.bias, dilation=layer.dilation)[:, :, 0]
                if count:
                    new.append(window[:, :, 1:])
            else:
                x = layer(x)
        return (x, *new)


def export_onnx(
    model: nn.Module | Sequence[nn.Module],
    path: str | os.PathLike[str],
    input_size: int | None = None,
    opset: int = 17,
) -> list[StateSpec]:
    """Writes the one-frame step graph of ``model`` to ``path`` (opset >= 17); returns the state specs in order.

    The model must be in eval mode for BatchNorm; ExportError for anything the RTNeural exporter also refuses.
    """
    if opset < 17:
        raise ValueError("opset must be >= 17")
    step = StepModule(model, input_size).eval()
    args = (torch.zeros(1, step.input_size), *step.initial_states())
    names = [s.name for s in step.states]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and RNN batch-size notices
        torch.onnx.export(
            step,
            args,
            os.fspath(path),
            dynamo=False,
            opset_version=opset,
            input_names=["x", *names],
            output_names=["y", *(n + "_out" for n in names)],
            do_constant_folding=True,
        )
    return list(step.states)


class OnnxStreamer:
    """Runs a step graph written by :func:`export_onnx` in onnxruntime, one frame per call, carrying state."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
        self.session: Any = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if not inputs or inputs[0].name != "x":
            raise ExportError(f"{path}: not a step graph (first input must be 'x')")
        self.input_size = int(inputs[0].shape[1])
        self.state_specs = [StateSpec(i.name, tuple(int(d) for d in i.shape)) for i in inputs[1:]]
        self.reset()

    def reset(self) -> None:
        """Zeroes every state."""
        self.states = [np.zeros(s.shape, np.float32) for s in self.state_specs]

    def forward(self, frame: npt.ArrayLike) -> F32:
        """Runs one frame ``[input_size]``; returns ``[output_size]``."""
        feed: dict[str, npt.NDArray[np.float32]] = {
            "x": np.asarray(frame, dtype=np.float32).reshape(1, self.input_size)
        }
        feed.update({s.name: v for s, v in zip(self.state_specs, self.states, strict=True)})
        y, *self.states = self.session.run(None, feed)
        out: F32 = np.asarray(y, dtype=np.float32)[0]
        return out

    def process(self, frames: npt.ArrayLike) -> F32:
        """Runs ``[time, input_size]`` frame by frame from the current state; returns ``[time, output_size]``."""
        xs = np.asarray(frames, dtype=np.float32)
        return np.stack([self.forward(x) for x in xs]) if len(xs) else np.zeros((0, 0), np.float32)
