"""The training loop shared by the five nets: Adam, gradient clipping, early stopping, best-weights restore."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

Batch = Any
LossFn = Callable[[Batch, bool], Tensor]  # (batch, training) -> scalar loss


@dataclass
class EarlyStopping:
    """Stops after ``patience`` epochs without an improvement larger than ``min_delta`` (absolute).

    ``update(epoch, loss)`` returns True when the loss is a new best (so the caller keeps those weights);
    ``should_stop`` turns True once ``bad_epochs`` reaches ``patience``.
    """

    patience: int = 10
    min_delta: float = 0.001
    best: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, loss: float) -> bool:
        """Records one epoch's validation loss; returns whether it improved on the best by more than min_delta."""
        if loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.bad_epochs >= self.patience


@dataclass
class History:
    """Per-epoch record of one net's training (written as JSON next to the weights)."""

    name: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_early: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 2),
            "epochs": self.epochs,
        }


def _to(batch: Batch, device: str) -> Batch:
    if isinstance(batch, tuple):
        return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)
    return batch


def _mean_loss(modules: Sequence[nn.Module], loss_fn: LossFn, batches: Iterable[Batch]) -> float:
    for m in modules:
        m.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            total += float(loss_fn(batch, False))
            count += 1
    return total / max(count, 1)


def fit(
    name: str,
    modules: Sequence[nn.Module],
    loss_fn: LossFn,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Sequence[Batch],
    epochs: int,
    lr: float = 1e-3,
    stopper: EarlyStopping | None = None,
    progress: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> History:
    """Trains ``modules`` (the net first, then any training-only heads) and restores the best weights.

    ``train_batches(epoch)`` yields that epoch's (shuffled) batches; the validation loss is the mean of
    ``loss_fn(batch, False)`` over ``val_batches``. Tensors in a batch are moved to ``device``. Returns the
    History; the modules hold the best epoch's weights (and stay on ``device``).
    """
    stopper = stopper or EarlyStopping()
    for m in modules:
        m.to(device)
    val_batches = [_to(b, device) for b in val_batches]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    history = History(name)
    best_state = [copy.deepcopy(m.state_dict()) for m in modules]
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        for m in modules:
            m.train()
        total, count = 0.0, 0
        for batch in train_batches(epoch):
            opt.zero_grad()
            loss = loss_fn(_to(batch, device), True)
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            total += float(loss.detach())
            count += 1
        val = _mean_loss(modules, loss_fn, val_batches)
        improved = stopper.update(epoch, val)
        if improved:
            best_state = [copy.deepcopy(m.state_dict()) for m in modules]
        train_loss = total / max(count, 1)
        history.epochs.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "val_loss": round(val, 6),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
        if progress is not None:
            progress(f"{name} epoch {epoch}: train {train_loss:.4f} val {val:.4f}{' *' if improved else ''}")
        if stopper.should_stop:
            history.stopped_early = True
            break
    for m, state in zip(modules, best_state, strict=True):
        m.load_state_dict(state)
        m.eval()
    history.best_epoch, history.best_val_loss = stopper.best_epoch, stopper.best
    history.seconds = time.perf_counter() - start
    return history
