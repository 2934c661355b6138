"""The five iDAW networks (PyTorch definitions in :mod:`realtime.nets.architectures`; see README.md here)."""

from realtime.nets.architectures import (
    NETS,
    DynamicsEngine,
    EmotionRecognizer,
    GroovePredictor,
    HarmonyPredictor,
    MelodyTransformer,
    RTNet,
    param_count,
)

__all__ = [
    "NETS",
    "DynamicsEngine",
    "EmotionRecognizer",
    "GroovePredictor",
    "HarmonyPredictor",
    "MelodyTransformer",
    "RTNet",
    "param_count",
]
