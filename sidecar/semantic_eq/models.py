"""The two small networks: the EQ VAE (13 parameters <-> 32-d latent) and the audio encoder (log-mel -> latent).

Both are plain torch modules with a fixed architecture given by a small config dict, so shipped weights load
as a state dict with `torch.load(..., weights_only=True)` (no pickled code).
"""

from __future__ import annotations

import torch
from torch import nn

from sidecar.semantic_eq import eqmath

LATENT = 32


ENCODER_GRID_POINTS = 64


class EqVae(nn.Module):
    """VAE over normalised EQ settings (`eqmath.to_unit`): encode -> (mean, log-variance), decode -> unit values.

    The encoder's first stage is fixed physics: the setting's exact dB response (the engine's formulas) on a
    64-point log-frequency grid, 20 Hz-20 kHz. Settings that sound the same (a band at 0 dB whatever its
    frequency, equivalent band orders) therefore share a latent, and the latent is a function of what an
    audio encoder can hear. The decoder returns all 13 parameters, frequencies and Qs on a log scale.
    """

    def __init__(self, hidden: int = 96, latent: int = LATENT) -> None:
        super().__init__()
        self.register_buffer(
            "grid", torch.as_tensor(eqmath.log_grid(ENCODER_GRID_POINTS), dtype=torch.float64), persistent=False
        )
        self.encoder = nn.Sequential(
            nn.Linear(ENCODER_GRID_POINTS, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, eqmath.NUM_EQ),
        )
        self.latent = latent

    def encode(self, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance), each (B, latent), of normalised settings (B, 13)."""
        return self.encode_response(self.grid_response(unit))

    def grid_response(self, unit: torch.Tensor) -> torch.Tensor:
        """The dB response / 10 (B, ENCODER_GRID_POINTS) of normalised settings (B, 13) on the encoder's grid."""
        grid: torch.Tensor = self.grid  # type: ignore[assignment]
        return eqmath.response_db_torch(eqmath.from_unit_torch(unit.double()), grid).float() / 10.0

    def encode_response(self, response: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of dB responses / 10 (B, ENCODER_GRID_POINTS) on the encoder's grid."""
        mean, logvar = self.encoder(response).chunk(2, dim=-1)
        return mean, torch.clamp(logvar, -12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised settings (B, 13) in (-1, 1) for latents (B, latent)."""
        out: torch.Tensor = torch.tanh(self.decoder(z))
        return out

    def forward(self, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction in unit space, mean, log-variance), sampling z by reparametrisation."""
        mean, logvar = self.encode(unit)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        return self.decode(z), mean, logvar


class AudioEncoder(nn.Module):
    """Log-mel (B, mels, frames) -> the EQ's dB response / 10 on the VAE encoder's grid (B, ENCODER_GRID_POINTS).

    Frame-wise 1-D convolutions, then mean and standard-deviation pooling over time concatenated with the
    long-term average spectrum (the log of the mean mel power, which an EQ shifts exactly), then an MLP. The
    latent is not predicted directly: the response goes through the frozen VAE encoder (`AudioToLatent`), so
    audio and settings share one map into the latent and the network only has to estimate what it can hear.
    """

    def __init__(
        self,
        mels: int = 64,
        channels: int = 96,
        hidden: int = 160,
        out: int = ENCODER_GRID_POINTS,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.frames = nn.Sequential(
            nn.Conv1d(mels, channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.SiLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * channels + mels, hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out),
        )
        self.mels = mels

    def forward(self, log_mel: torch.Tensor, ltas_db: torch.Tensor) -> torch.Tensor:
        """Response / 10 (B, out) from log-mel frames (B, mels, T) in dB/10 and the LTAS (B, mels) in dB/10."""
        h = self.frames(log_mel)
        pooled = torch.cat([h.mean(dim=-1), h.std(dim=-1, unbiased=False), ltas_db], dim=-1)
        out: torch.Tensor = self.head(pooled)
        return out


class AudioToLatent(nn.Module):
    """The audio encoder followed by the (frozen) VAE encoder: log-mel -> latent mean (B, latent)."""

    def __init__(self, audio: AudioEncoder, vae: EqVae) -> None:
        super().__init__()
        self.audio = audio
        self.vae = vae

    def forward(self, log_mel: torch.Tensor, ltas_db: torch.Tensor) -> torch.Tensor:
        """Latent means (B, latent) of log-mel frames (B, mels, T) and LTAS (B, mels), both in dB/10."""
        mean, _ = self.vae.encode_response(self.audio(log_mel, ltas_db))
        return mean


def parameter_count(module: nn.Module) -> int:
    """Number of trainable values in `module`."""
    return sum(p.numel() for p in module.parameters())
