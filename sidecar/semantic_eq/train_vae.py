"""Training the EQ VAE on labelled settings (SAFE-DB train contributors + fitted curves).

Loss per setting: MSE of the decoded dB response on the log-frequency grid (what the reconstruction metric
measures), a small MSE in the normalised parameter space (keeps unused bands tidy), beta x KL, and a
descriptor term: a linear classifier on the latent mean (discarded after training) predicts the descriptor
of every training setting whose word has at least `min_word_count` training settings (cross-entropy), so
descriptors occupy separable regions around their centroids. The epoch with the best validation
reconstruction (SAFE-DB 'val' contributors) is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from sidecar.semantic_eq import eqmath
from sidecar.semantic_eq.labelled import Labelled
from sidecar.semantic_eq.models import EqVae

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VaeConfig:
    """Hyper-parameters of the VAE run."""

    epochs: int = 300
    batch: int = 128
    lr: float = 2e-3
    beta: float = 0.05
    param_weight: float = 0.1
    descriptor_weight: float = 0.5
    hidden: int = 96
    min_word_count: int = 5


def _word_ids(lab: Labelled, rows: npt.NDArray[np.int64], min_count: int) -> npt.NDArray[np.int64]:
    """Per row of `rows`, an id for its descriptor when it has >= min_count training rows, else -1."""
    words = [lab.words[i] for i in rows]
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    frequent = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: i for i, w in enumerate(frequent)}
    return np.array([index.get(w, -1) for w in words], dtype=np.int64)


def train_vae(
    lab: Labelled, freqs: F64, config: VaeConfig, seed: int, log: bool = True
) -> tuple[EqVae, dict[str, float]]:
    """Train on the 'train' rows and keep the epoch with the lowest validation dB RMS; returns (model, stats)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_rows = np.array([i for i, s in enumerate(lab.splits) if s == "train"], dtype=np.int64)
    val_rows = np.array([i for i, s in enumerate(lab.splits) if s == "val"], dtype=np.int64)
    unit = torch.as_tensor(eqmath.to_unit(lab.params), dtype=torch.float32)
    resp = torch.as_tensor(eqmath.response_db(lab.params, freqs), dtype=torch.float64)
    f = torch.as_tensor(freqs, dtype=torch.float64)
    word_id = torch.as_tensor(_word_ids(lab, train_rows, config.min_word_count))
    n_words = int(word_id.max().item()) + 1 if len(word_id) else 0
    model = EqVae(hidden=config.hidden)
    head = torch.nn.Linear(model.latent, max(1, n_words))
    optimiser = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=config.lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, config.epochs))
    best_state, best_val = None, float("inf")
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = rng.permutation(len(train_rows))
        for begin in range(0, len(order), config.batch):
            pick = order[begin : begin + config.batch]
            rows = torch.as_tensor(train_rows[pick])
            recon, mean, logvar = model(unit[rows])
            # float64: the expanded |H|^2 of low-frequency sections cancels badly in float32
            out_resp = eqmath.response_db_torch(eqmath.from_unit_torch(recon.double()), f)
            loss_resp = ((out_resp - resp[rows]) ** 2).mean().float()
            loss_param = ((recon - unit[rows]) ** 2).mean()
            kl = (-0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(dim=1)).mean()
            loss = loss_resp + config.param_weight * loss_param + config.beta * kl
            if n_words and config.descriptor_weight > 0:
                ids = word_id[pick]
                known = ids >= 0
                if bool(known.any()):
                    ce = torch.nn.functional.cross_entropy(head(mean[known]), ids[known])
                    loss = loss + config.descriptor_weight * ce
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        scheduler.step()
        if len(val_rows) and (epoch % 5 == 4 or epoch == config.epochs - 1):
            val = float(np.median(reconstruction_db(model, lab.params[val_rows], freqs)))
            if val < best_val:
                best_val = val
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if log and epoch % 50 == 49:
                print(
                    f"semantic-eq: VAE epoch {epoch + 1}: train loss {loss.item():.3f}, val median dB RMS {val:.3f}",
                    flush=True,
                )
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, {"vae_seconds": time.perf_counter() - start, "vae_best_val_median_db": best_val}


def encode_mean(model: EqVae, params: F64) -> F64:
    """Latent means (N, 32) of settings (N, 13) in natural units."""
    with torch.no_grad():
        mean, _ = model.encode(torch.as_tensor(eqmath.to_unit(params), dtype=torch.float32))
    out: F64 = mean.double().numpy()
    return out


def decode_params(model: EqVae, z: F64) -> F64:
    """Settings (N, 13) in natural units decoded from latents (N, 32)."""
    with torch.no_grad():
        unit = model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32))
    return eqmath.from_unit(unit.double().numpy())


def reconstruction_db(model: EqVae, params: F64, freqs: F64) -> F64:
    """Per setting, dB RMS between the response of the setting and of its reconstruction through the mean."""
    recon = decode_params(model, encode_mean(model, params))
    return eqmath.db_rms(eqmath.response_db(recon, freqs), eqmath.response_db(params, freqs))
