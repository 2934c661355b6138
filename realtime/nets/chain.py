"""How the EmotionRecognizer's embedding reaches the other nets during training.

Two input modes, mirroring the two ways the embedding arrives at run time (docs: idaw-ml-models.md):

* ``audio``  — the trained, frozen EmotionRecognizer run causally over the piece's rendered audio; the net at time t
  gets the embedding after the last mel frame that has fully been heard by t (zeros before the first one).
* ``direct`` — dims 0-11 (valence, arousal, dominance, intensity, Plutchik) set from the weak labels, latent dims
  12-63 zero, as with text/biometric input.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from realtime.nets.architectures import MEL, EmotionRecognizer

F32 = npt.NDArray[np.float32]
MODES = ("audio", "direct")


def er_embeddings(model: EmotionRecognizer, mels: list[F32], chunk: int = 2048) -> list[F32]:
    """The (frames, 64) embedding sequence of each mel sequence, run causally from a zero state."""
    model.eval()
    device = next(model.parameters()).device
    out: list[F32] = []
    with torch.no_grad():
        for mel in mels:
            state = None
            parts = []
            for first in range(0, len(mel), chunk):
                x = torch.from_numpy(np.ascontiguousarray(mel[first : first + chunk]))[None].to(device)
                y, state = model.forward_with_state(x, state)
                parts.append(y[0].cpu().numpy())
            out.append(np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 64), np.float32))
    return out


def heard_frame(times: npt.NDArray[np.float64], n_frames: int) -> npt.NDArray[np.int64]:
    """Index of the last mel frame fully heard by each time (seconds), -1 when none is."""
    idx = np.floor((times * MEL.sample_rate - MEL.n_fft) / MEL.hop).astype(np.int64)
    return np.minimum(idx, n_frames - 1)


def audio_emotion(embedding: F32, times: npt.NDArray[np.float64]) -> F32:
    """(len(times), 64) audio-mode inputs: the embedding after the last heard frame (zeros before the first)."""
    idx = heard_frame(times, len(embedding))
    out = np.zeros((len(times), 64), dtype=np.float32)
    ok = idx >= 0
    out[ok] = embedding[idx[ok]]
    return out


def direct_emotion(weak: F32) -> F32:
    """(rows, 64) direct-mode inputs: weak dims 0-11, latent zeros."""
    out = np.zeros((len(weak), 64), dtype=np.float32)
    out[:, :12] = weak
    return out
