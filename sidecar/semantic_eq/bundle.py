"""The shipped model bundle: both networks, the vocabulary, centroids and synonym embeddings, in one file.

The file is a plain dict of tensors, strings and numbers, read with `torch.load(..., weights_only=True)`, so
loading it never runs pickled code. Inference needs nothing else (no training data, no GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from sidecar.semantic_eq import eqmath
from sidecar.semantic_eq.models import AudioEncoder, AudioToLatent, EqVae

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
FORMAT = 2
"""2: the audio encoder estimates the response and reaches the latent through the VAE encoder."""
FILE_NAME = "semantic_eq.pt"
DEFAULT_DIR = Path(__file__).resolve().parent / "weights"


@dataclass
class Bundle:
    """Everything inference needs. `embeddings` (V, 768), see synonyms.embed, may be None (no synonyms)."""

    vae: EqVae
    encoder: AudioEncoder
    words: list[str]
    counts: list[int]
    centroids: F64
    embeddings: F32 | None
    config: dict[str, Any] = field(default_factory=dict)
    characters: F64 | None = None
    """(V, 13) per word, the fit of its character at k = 1 (traversal.character_fit); None: fitted on demand."""

    @property
    def freqs(self) -> F64:
        """The log-frequency grid (Hz) curves are compared on."""
        return eqmath.log_grid(int(self.config.get("grid_points", 96)))

    def audio_latent(self, log_mel: torch.Tensor, ltas_db: torch.Tensor) -> torch.Tensor:
        """Latent means (B, latent) of encoder inputs (features.log_mel), through the VAE's own encoder."""
        with torch.no_grad():
            out: torch.Tensor = AudioToLatent(self.encoder, self.vae)(log_mel, ltas_db)
        return out

    def flat_latent(self) -> F64:
        """Latent mean of the flat EQ (all gains 0, default frequencies and Qs)."""
        flat = eqmath.DEFAULTS.copy()
        with torch.no_grad():
            mean, _ = self.vae.encode(torch.as_tensor(eqmath.to_unit(flat)[None], dtype=torch.float32))
        out: F64 = mean[0].double().numpy()
        return out

    def save(self, directory: Path) -> Path:
        """Write the bundle (float32 networks, int8 embeddings) to directory/FILE_NAME; returns the path."""
        directory.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {
            "format": FORMAT,
            "config": dict(self.config),
            "vae": {k: v.detach().float().clone() for k, v in self.vae.state_dict().items()},
            "audio": {k: v.detach().float().clone() for k, v in self.encoder.state_dict().items()},
            "words": list(self.words),
            "counts": [int(c) for c in self.counts],
            "centroids": torch.as_tensor(self.centroids, dtype=torch.float32),
        }
        if self.embeddings is not None:
            payload["embeddings_int8"], payload["embeddings_scale"] = _quantise(self.embeddings)
        if self.characters is not None:
            payload["characters"] = torch.as_tensor(self.characters, dtype=torch.float32)
        path = directory / FILE_NAME
        torch.save(payload, path)
        return path


def load_bundle(directory: Path | None = None) -> Bundle:
    """Load the bundle from `directory` (default: the shipped weights/) with weights_only=True."""
    path = (directory or DEFAULT_DIR) / FILE_NAME
    if not path.exists():
        raise FileNotFoundError(f"no semantic EQ weights at {path}; run `idaw train semantic-eq --out DIR`")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported format {payload.get('format')!r} (expected {FORMAT})")
    config: dict[str, Any] = dict(payload["config"])
    vae = EqVae(hidden=int(config["vae_hidden"]))
    vae.load_state_dict(payload["vae"])
    encoder = AudioEncoder(
        mels=int(config["mels"]), channels=int(config["audio_channels"]), hidden=int(config["audio_hidden"])
    )
    encoder.load_state_dict(payload["audio"])
    vae.eval()
    encoder.eval()
    embeddings = None
    if "embeddings_int8" in payload:
        embeddings = (payload["embeddings_int8"].float() * payload["embeddings_scale"][:, None]).numpy()
    return Bundle(
        vae=vae,
        encoder=encoder,
        words=list(payload["words"]),
        counts=[int(c) for c in payload["counts"]],
        centroids=payload["centroids"].double().numpy(),
        embeddings=embeddings,
        config=config,
        characters=payload["characters"].double().numpy() if "characters" in payload else None,
    )


def _quantise(values: F32) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows as int8 with a float32 scale per row (cosine similarities change by < 1e-3)."""
    v = torch.as_tensor(values, dtype=torch.float32)
    scale = v.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    return torch.round(v / scale[:, None]).to(torch.int8), scale
