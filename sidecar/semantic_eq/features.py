"""Audio features for the audio encoder: 22.05 kHz mono, power STFT, 64-band log-mel and its long-term average.

An EQ is a fixed filter, so training applies it in the spectral domain: the power spectrogram of a source is
multiplied by |H(f)|^2 of the setting (`apply_eq_power`), which matches filtering then analysing for
stationary material; held-out evaluation filters through the real engine instead. Levels are relative to a
reference: a source (or, in the sidecar, the analysed window) is scaled to unit mean power before the EQ.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import soxr
import torch

from idaw.base.protocol import SCHEMA
from sidecar.semantic_eq import eqmath

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

RATE = int(SCHEMA.analysis["rate"])
"""The protocol's analysis rate (idaw/base/protocol/protocol.json); 16 kHz would hide everything above 8 kHz,
where SAFE's high shelves act (half of them sit above 7.8 kHz)."""
N_FFT = 2048
HOP = 1024
MELS = 64
FMIN, FMAX = 30.0, 10000.0
"""FMAX stays below soxr HQ's pass-band edge (91 % of 11.025 kHz), where both hosts' decimation is flat."""
FLOOR = 1e-9
"""Power floor (-90 dB re the reference) so silence stays finite."""
DB_SCALE = 10.0
"""Log-mel values are dB / DB_SCALE, keeping the network's inputs near unit scale."""
EQ_RATE = eqmath.REFERENCE_RATE
"""Rate at which the EQ is assumed to run before the analysis resampling (the engine's host rate)."""


def to_analysis(audio: npt.ArrayLike, rate: int) -> F32:
    """Mono float32 at RATE: channels averaged, resampled with soxr when `rate` differs."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != RATE:
        x = soxr.resample(x, rate, RATE).astype(np.float32)
    return np.ascontiguousarray(x)


def power_spectrogram(mono16k: npt.ArrayLike) -> F32:
    """Power STFT (frames, N_FFT // 2 + 1) with a Hann window, hop HOP; at least one frame (zero-padded)."""
    x = np.asarray(mono16k, dtype=np.float32)
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    frames = 1 + (x.shape[0] - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    spec = np.fft.rfft(x[index] * window, axis=1)
    out: F32 = (spec.real**2 + spec.imag**2).astype(np.float32) / float(np.sum(window**2))
    return out


def bin_freqs() -> F64:
    """Centre frequency (Hz) of each STFT bin."""
    return np.arange(N_FFT // 2 + 1) * RATE / N_FFT


@lru_cache(maxsize=1)
def mel_matrix() -> F32:
    """(MELS, bins) triangular HTK-mel filterbank, each band normalised to unit sum, every band non-empty."""

    def mel(f: F64) -> F64:
        out: F64 = 2595.0 * np.log10(1.0 + f / 700.0)
        return out

    edges_mel = np.linspace(mel(np.array(FMIN)), mel(np.array(FMAX)), MELS + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    f = bin_freqs()
    bank = np.zeros((MELS, f.shape[0]), dtype=np.float64)
    for m in range(MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (f - lo) / max(mid - lo, 1e-9)
        fall = (hi - f) / max(hi - mid, 1e-9)
        bank[m] = np.clip(np.minimum(rise, fall), 0.0, None)
        if bank[m].sum() == 0.0:
            bank[m, int(np.argmin(np.abs(f - mid)))] = 1.0
    bank /= bank.sum(axis=1, keepdims=True)
    return bank.astype(np.float32)


def normalise_level(power: F32) -> F32:
    """The spectrogram scaled to unit mean power (the reference level); silence is returned unchanged."""
    mean = float(power.mean())
    return power if mean <= 0.0 else (power / mean).astype(np.float32)


def eq_power_gain(params: torch.Tensor) -> torch.Tensor:
    """|H(f)|^2 (B, bins) at the STFT bins for settings (B, 13) in natural units, at EQ_RATE."""
    f = torch.as_tensor(bin_freqs(), dtype=torch.float64)
    db = eqmath.response_db_torch(params.double(), f.clamp(min=1.0), EQ_RATE)
    return torch.pow(10.0, db / 10.0).float()


def apply_eq_power(power: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Power spectrograms (B, T, bins) after settings (B, 13), in the spectral domain."""
    return power * eq_power_gain(params)[:, None, :]


def log_mel(power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-mel (B, MELS, T), LTAS (B, MELS)) in dB / DB_SCALE from power spectrograms (B, T, bins)."""
    bank = torch.as_tensor(mel_matrix())
    mel_power = power @ bank.T
    frames = (10.0 / DB_SCALE) * torch.log10(mel_power + FLOOR)
    ltas = (10.0 / DB_SCALE) * torch.log10(mel_power.mean(dim=1) + FLOOR)
    return frames.transpose(1, 2), ltas


def features_from_audio(audio: npt.ArrayLike, rate: int, normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder inputs for one clip (batch of 1): log-mel (1, MELS, T) and LTAS (1, MELS).

    With `normalise` (the sidecar's case) the clip is first scaled to the reference level; evaluation on
    sources already scaled before their EQ passes False.
    """
    power = power_spectrogram(to_analysis(audio, rate))
    if normalise:
        power = normalise_level(power)
    return log_mel(torch.as_tensor(power)[None])


def rms_db(audio: npt.ArrayLike) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    x = np.asarray(audio, dtype=np.float64)
    power = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * math.log10(power) if power > 0.0 else -math.inf
