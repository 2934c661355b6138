"""Training the audio encoder into the frozen EQ VAE's latent.

Each step draws source crops (pink noise and instrument clips, scaled to the reference level) and EQ settings
(SAFE-DB train contributors, fitted descriptor curves, some flat), filters the crops' power spectrograms by
the settings' |H|^2, and trains the encoder (which estimates the response on the VAE encoder's grid; the frozen
VAE encoder maps that to the latent, see models.AudioEncoder) on four losses:
- latent MSE to the frozen VAE encoder's mean (the document's loss),
- the dB MSE of the estimated response on the VAE encoder's grid against the applied one,
- an InfoNCE contrastive term: each audio latent must be closer to its own EQ latent than to the batch's
  other EQ latents (instance-level, so it also separates settings that share a descriptor),
- the dB RMS of the frozen decoder's response for the audio latent against the applied response.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from sidecar.semantic_eq import eqmath, features
from sidecar.semantic_eq.audio_corpus import Clip
from sidecar.semantic_eq.models import AudioEncoder, AudioToLatent, EqVae

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AudioConfig:
    """Hyper-parameters of the audio encoder run."""

    steps: int = 3000
    batch: int = 64
    crop_seconds: float = 2.0
    """The sidecar's analysis window is 2 s."""
    lr: float = 2e-3
    contrastive_weight: float = 0.2
    temperature: float = 1.0
    response_weight: float = 0.02
    grid_response_weight: float = 0.02
    flat_fraction: float = 0.1
    pink_fraction: float = 0.35
    """Share of crops drawn from pink noise (the rest from instrument clips)."""
    mix_fraction: float = 0.8
    """Share of instrument crops that are a mix of two or three clips (more source variety than the clips)."""
    dropout: float = 0.3
    weight_decay: float = 1e-2
    val_every: int = 250
    channels: int = 96
    hidden: int = 160


def eq_pool(params: F64, seed: int) -> F64:
    """The settings training draws from: the given ones plus a flat setting, de-duplicated."""
    flat = eqmath.DEFAULTS.copy()
    for g in eqmath.GAIN_INDEX:
        flat[g] = 0.0
    pool = np.vstack([params, flat[None]])
    return np.unique(np.round(pool, 6), axis=0)


class _Batcher:
    """Random crops of the clips' power spectrograms, each scaled to unit mean power (the reference level)."""

    def __init__(
        self, clips: list[Clip], crop_frames: int, pink_fraction: float, seed: int, mix_fraction: float = 0.0
    ) -> None:
        self.spectra = [
            torch.as_tensor(features.power_spectrogram(features.to_analysis(c.audio, 44100))) for c in clips
        ]
        self.pink = np.array([i for i, c in enumerate(clips) if c.kind == "pink"], dtype=np.int64)
        self.other = np.array([i for i, c in enumerate(clips) if c.kind != "pink"], dtype=np.int64)
        self.pink_fraction = pink_fraction if len(self.pink) and len(self.other) else float(len(self.pink) > 0)
        self.mix_fraction = mix_fraction
        self.crop = crop_frames
        self.rng = np.random.default_rng(seed)

    def _crop(self, pool: npt.NDArray[np.int64]) -> torch.Tensor:
        spec = self.spectra[int(pool[self.rng.integers(len(pool))])]
        frames = spec.shape[0]
        if frames > self.crop:
            begin = int(self.rng.integers(frames - self.crop + 1))
            spec = spec[begin : begin + self.crop]
        elif frames < self.crop:
            spec = torch.cat([spec] * (self.crop // frames + 1))[: self.crop]
        return spec / spec.mean().clamp(min=1e-12)

    def draw(self, count: int) -> torch.Tensor:
        """`count` crops (count, frames, bins), each at unit mean power."""
        out = []
        for is_pink in self.rng.random(count) < self.pink_fraction:
            spec = self._crop(self.pink if is_pink else self.other)
            if not is_pink and len(self.other) > 1 and self.rng.random() < self.mix_fraction:
                for _ in range(int(self.rng.integers(1, 3))):  # powers of independent sources add
                    spec = spec + float(self.rng.uniform(0.2, 1.0)) * self._crop(self.other)
                spec = spec / spec.mean().clamp(min=1e-12)
            out.append(spec)
        return torch.stack(out)


def train_audio_encoder(
    vae: EqVae,
    clips: list[Clip],
    pool: F64,
    freqs: F64,
    config: AudioConfig,
    seed: int,
    val_params: F64 | None = None,
    log: bool = True,
) -> tuple[AudioEncoder, dict[str, float]]:
    """Train on the 'train' clips with the VAE frozen; returns (encoder in eval mode, stats).

    When there are 'val' clips and `val_params` (settings of validation contributors), the encoder is scored
    every `val_every` steps on fixed validation crops and the best state is kept.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    train = [c for c in clips if c.split == "train"]
    crop_frames = max(4, int(config.crop_seconds * features.RATE / features.HOP))
    batcher = _Batcher(train, crop_frames, config.pink_fraction, seed, config.mix_fraction)
    validation = _validation_set(vae, [c for c in clips if c.split == "val"], val_params, crop_frames, seed)
    best_state, best_val, best_parts = None, float("inf"), (float("nan"), float("nan"))
    flat_index = int(np.argmin(np.abs(pool[:, list(eqmath.GAIN_INDEX)]).sum(axis=1)))
    pool_t = torch.as_tensor(pool, dtype=torch.float64)
    with torch.no_grad():
        pool_z, _ = vae.encode(torch.as_tensor(eqmath.to_unit(pool), dtype=torch.float32))
        pool_grid = vae.grid_response(torch.as_tensor(eqmath.to_unit(pool), dtype=torch.float32))
    pool_resp = torch.as_tensor(eqmath.response_db(pool, freqs))
    f = torch.as_tensor(freqs, dtype=torch.float64)
    encoder = AudioEncoder(mels=features.MELS, channels=config.channels, hidden=config.hidden, dropout=config.dropout)
    to_latent = AudioToLatent(encoder, vae)
    optimiser = torch.optim.AdamW(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=max(1, config.steps))
    start = time.perf_counter()
    running = [0.0, 0.0, 0.0]
    for step in range(config.steps):
        pick = rng.integers(len(pool), size=config.batch)
        pick[rng.random(config.batch) < config.flat_fraction] = flat_index
        pick_t = torch.as_tensor(pick)
        power = features.apply_eq_power(batcher.draw(config.batch), pool_t[pick_t])
        log_mel, ltas = features.log_mel(power)
        grid_estimate = encoder(log_mel, ltas)
        z, _ = vae.encode_response(grid_estimate)
        target = pool_z[pick_t]
        latent = ((z - target) ** 2).sum(dim=1).mean()
        logits = -(torch.cdist(z, target) ** 2) / config.temperature
        same = torch.as_tensor(pick[:, None] == pick[None, :])
        logits = logits.masked_fill(same & ~torch.eye(len(pick), dtype=torch.bool), -1e9)
        contrastive = torch.nn.functional.cross_entropy(logits, torch.arange(len(pick)))
        decoded = eqmath.response_db_torch(eqmath.from_unit_torch(vae.decode(z).double()), f)
        response = ((decoded - pool_resp[pick_t]) ** 2).mean().float()
        grid_response = (100.0 * (grid_estimate - pool_grid[pick_t]) ** 2).mean()  # dB^2
        loss = (
            latent
            + config.contrastive_weight * contrastive
            + config.response_weight * response
            + config.grid_response_weight * grid_response
        )
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 5.0)
        optimiser.step()
        scheduler.step()
        values = (latent, contrastive, response)
        running = [0.98 * r + 0.02 * float(v.detach()) for r, v in zip(running, values, strict=True)]
        if validation is not None and (step % config.val_every == config.val_every - 1 or step == config.steps - 1):
            encoder.eval()
            with torch.no_grad():
                err = ((to_latent(*validation[0]) - validation[1]) ** 2).sum(dim=1)
            encoder.train()
            val_parts = (float(err[validation[2]].mean()), float(err[~validation[2]].mean()))
            val = 0.5 * (val_parts[0] + val_parts[1])  # pink noise and instruments count equally
            if val < best_val:
                best_val, best_state = val, {k: v.detach().clone() for k, v in encoder.state_dict().items()}
                best_parts = val_parts
            if log:
                print(
                    f"semantic-eq: audio step {step + 1}: val latent (pink, instruments) "
                    f"{val_parts[0]:.3f}, {val_parts[1]:.3f}",
                    flush=True,
                )
        if log and (step % 500 == 499 or step == config.steps - 1):
            print(
                f"semantic-eq: audio step {step + 1}/{config.steps}: latent {running[0]:.3f}, "
                f"contrastive {running[1]:.3f}, response dB^2 {running[2]:.2f}, best val latent (pink, "
                f"instruments) {best_parts[0]:.3f}, {best_parts[1]:.3f}",
                flush=True,
            )
    if best_state is not None:
        encoder.load_state_dict(best_state)
    encoder.eval()
    return encoder, {
        "audio_seconds": time.perf_counter() - start,
        "audio_train_clips": float(len(train)),
        "audio_best_val_latent_sq_pink": best_parts[0],
        "audio_best_val_latent_sq_instruments": best_parts[1],
    }


def _validation_set(
    vae: EqVae, clips: list[Clip], params: F64 | None, crop_frames: int, seed: int, count: int = 256
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor] | None:
    """Fixed validation ((log-mel, LTAS), target latents, is-pink mask): half pink noise, half instruments.

    None when there are no validation clips of both kinds or no settings.
    """
    if params is None or len(params) == 0:
        return None
    kinds = {c.kind == "pink" for c in clips}
    if kinds != {True, False}:
        return None
    rng = np.random.default_rng(seed + 7)
    pink = _Batcher(clips, crop_frames, 1.0, seed + 7).draw(count // 2)
    other = _Batcher(clips, crop_frames, 0.0, seed + 8).draw(count - count // 2)
    settings = torch.as_tensor(params[rng.integers(len(params), size=count)], dtype=torch.float64)
    with torch.no_grad():
        inputs = features.log_mel(features.apply_eq_power(torch.cat([pink, other]), settings))
        target, _ = vae.encode(torch.as_tensor(eqmath.to_unit(settings.numpy()), dtype=torch.float32))
    is_pink = torch.arange(count) < count // 2
    return inputs, target, is_pink
