"""The five iDAW nets: exact parameter counts, shapes and ranges, state handling, the documented layouts, file sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from export.rtneural import to_rtneural_text
from realtime.nets.architectures import (
    CHORD_QUALITIES,
    DYNAMICS_CONTEXT,
    EMOTION,
    EXPRESSION_PARAMS,
    GROOVE,
    HARMONY_CONTEXT,
    MEL,
    NETS,
    RTNet,
    chord_class,
    chord_name,
    param_count,
)

EXPECTED = {
    "EmotionRecognizer": (403_264, 128, 64),
    "MelodyTransformer": (641_664, 64, 128),
    "HarmonyPredictor": (74_176, 128, 64),
    "DynamicsEngine": (13_520, 32, 16),
    "GroovePredictor": (18_656, 64, 32),
}


def _net(name: str, seed: int = 0) -> RTNet:
    torch.manual_seed(seed)
    return NETS[name][0]().eval()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameter_counts_and_sizes(name: str) -> None:
    net = _net(name)
    params, n_in, n_out = EXPECTED[name]
    assert param_count(net) == params == NETS[name][1]
    assert (net.input_size, net.output_size) == (n_in, n_out)
    assert net(torch.zeros(3, 7, n_in)).shape == (3, 7, n_out)
    assert net(torch.zeros(3, n_in)).shape == (3, n_out)


def test_total_parameters() -> None:
    assert sum(param_count(_net(n)) for n in NETS) == 1_151_280


def test_output_ranges_and_logits() -> None:
    x = {n: torch.randn(2, 5, EXPECTED[n][1]) * 3 for n in NETS}
    with torch.no_grad():
        harmony = _net("HarmonyPredictor")(x["HarmonyPredictor"])
        torch.testing.assert_close(harmony.sum(-1), torch.ones(2, 5))
        melody = _net("MelodyTransformer")
        probs, logits = melody(x["MelodyTransformer"]), melody(x["MelodyTransformer"], logits=True)
        torch.testing.assert_close(torch.sigmoid(logits), probs)
        for name in ("EmotionRecognizer", "GroovePredictor"):
            assert _net(name)(x[name]).abs().max() <= 1
        dyn = _net("DynamicsEngine")(x["DynamicsEngine"])
        assert dyn.min() >= 0 and dyn.max() <= 1


@pytest.mark.parametrize("name", ["EmotionRecognizer", "MelodyTransformer"])
def test_recurrent_state_continues(name: str) -> None:
    net = _net(name)
    x = torch.randn(2, 10, net.input_size)
    with torch.no_grad():
        whole = net(x)
        first, state = net.forward_with_state(x[:, :4])
        second, _ = net.forward_with_state(x[:, 4:], state)
        steps = []
        state = net.initial_state(2)
        for t in range(10):
            y, state = net.forward_with_state(x[:, t], state)
            steps.append(y)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(torch.stack(steps, 1), whole)
    assert sum(isinstance(m, nn.LSTM) for m in net.rtneural_layers()) == len(state) == 1


def _covers(layout: dict[str, int | slice], size: int) -> None:
    seen: list[int] = []
    for v in layout.values():
        seen += [v] if isinstance(v, int) else list(range(v.start, v.stop))
    assert sorted(seen) == list(range(size)), "every index used exactly once"


def test_layouts_are_complete() -> None:
    _covers(EMOTION, 64)
    _covers(HARMONY_CONTEXT, 128)
    _covers(DYNAMICS_CONTEXT, 32)
    _covers(dict(GROOVE), 32)
    assert len(EXPRESSION_PARAMS) == len(set(EXPRESSION_PARAMS)) == 16
    assert MEL.n_mels == 128


def test_chord_vocabulary() -> None:
    names = [chord_name(i) for i in range(64)]
    assert len(set(names[:60])) == 60 and names[60:] == ["N", "X", "reserved", "reserved"]
    assert chord_class(0, "maj") == 0 and chord_name(chord_class(9, "min")) == "A:min"
    assert all(chord_class(r, q) < 60 for r in range(12) for q in CHORD_QUALITIES)


def test_json_size_is_compact() -> None:
    """~12 bytes per number vs ~32 in the design document's files (37 MB for 1.15 M parameters)."""
    total = sum(len(to_rtneural_text(_net(n))) for n in NETS)
    assert total < 15_000_000, total
