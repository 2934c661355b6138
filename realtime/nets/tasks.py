"""The five training tasks: batches (seeded) and losses for each net, built from PieceTables.

Sequence nets (EmotionRecognizer over mel frames, MelodyTransformer over sixteenths) train on random crops that
start from a zero LSTM state; the row nets (Harmony per bar, Dynamics per beat, Groove per bar) on shuffled rows.
Each downstream example takes its emotion input in ``audio`` or ``direct`` mode (see chain.py): a coin flip per
example when training, both modes when validating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from realtime.nets.architectures import EmotionRecognizer, MelodyTransformer, RTNet
from realtime.nets.chain import audio_emotion, direct_emotion
from realtime.nets.dataset import AUX_SIZE, PieceTables

F32 = npt.NDArray[np.float32]
DIRECT_NOISE = 0.05
EMOTION_WEIGHTS = np.asarray([1.0, 1.0] + [0.25] * 10, dtype=np.float32)  # valence/arousal count most


def _crops(lengths: list[int], crop: int, per_piece: int, rng: np.random.Generator | None) -> list[tuple[int, int]]:
    """(piece, start) crops: random starts when rng is given, else up to 3 evenly spaced ones per piece."""
    out: list[tuple[int, int]] = []
    for i, n in enumerate(lengths):
        if n == 0:
            continue
        room = max(n - crop, 0)
        if rng is None:
            count = min(3, int(np.ceil(n / crop)))
            out.extend((i, int(s)) for s in np.linspace(0, room, count).round())
        else:
            out.extend((i, int(rng.integers(0, room + 1))) for _ in range(per_piece))
    return out


def _stack(seqs: list[F32], start: list[int], crop: int) -> tuple[Tensor, Tensor]:
    """Zero-padded [batch, crop, features] tensor of the crops and the [batch, crop] validity mask."""
    feats = seqs[0].shape[1]
    x = np.zeros((len(seqs), crop, feats), dtype=np.float32)
    mask = np.zeros((len(seqs), crop), dtype=np.float32)
    for b, (seq, s) in enumerate(zip(seqs, start, strict=True)):
        part = seq[s : s + crop]
        x[b, : len(part)] = part
        mask[b, : len(part)] = 1.0
    return torch.from_numpy(x), torch.from_numpy(mask)


@dataclass
class Task:
    """One net's training problem: ``modules`` (net first), ``train_batches(epoch)``, ``val_batches``, ``loss``."""

    name: str
    modules: list[nn.Module]
    train_batches: Callable[[int], Iterator[tuple[Tensor, ...]]]
    val_batches: list[tuple[Tensor, ...]]
    loss: Callable[[tuple[Tensor, ...], bool], Tensor]

    @property
    def net(self) -> RTNet:
        """The net being trained."""
        net = self.modules[0]
        assert isinstance(net, RTNet)
        return net


def _seq_batches(
    make: Callable[[list[tuple[int, int]], np.random.Generator | None], tuple[Tensor, ...]],
    crops: list[tuple[int, int]],
    batch: int,
    rng: np.random.Generator | None,
) -> list[tuple[Tensor, ...]]:
    order = rng.permutation(len(crops)) if rng is not None else np.arange(len(crops))
    return [make([crops[i] for i in order[j : j + batch]], rng) for j in range(0, len(crops), batch)]


_Maker = Callable[[list[tuple[int, int]], np.random.Generator | None], tuple[Tensor, ...]]


def emotion_task(
    train: list[PieceTables], val: list[PieceTables], seed: int, crop: int = 128, per_piece: int = 2, batch: int = 16
) -> Task:
    """EmotionRecognizer: mel frames -> weak emotion dims 0-11 (weighted MSE) + latent dims -> musical state
    (training-only linear head on dims 12-63: melody pitch class (cross-entropy where the melody sounds), chroma
    (BCE), melody register (MSE), onset (BCE)), so the latent dims carry what the melody and groove nets can use.
    Training crops get a random level change of +-7.5 dB (the frames shift by +-0.1 and are re-clipped)."""
    net, head = EmotionRecognizer(), nn.Linear(52, AUX_SIZE)
    weights = torch.from_numpy(EMOTION_WEIGHTS)

    def maker(data: list[PieceTables]) -> _Maker:
        def make(crops: list[tuple[int, int]], rng: np.random.Generator | None) -> tuple[Tensor, ...]:
            starts = [s for _, s in crops]
            x, mask = _stack([data[i].mel for i, _ in crops], starts, crop)
            if rng is not None:
                gain = torch.from_numpy(rng.uniform(-0.1, 0.1, (len(crops), 1, 1)).astype(np.float32))
                x = torch.clamp(x + gain, -1.0, 1.0)
            emo, _ = _stack([data[i].frame_emotion for i, _ in crops], starts, crop)
            aux, _ = _stack([data[i].frame_aux for i, _ in crops], starts, crop)
            return x, mask, emo, aux

        return make

    lengths = [len(t.mel) for t in train]

    def train_batches(epoch: int) -> Iterator[tuple[Tensor, ...]]:
        rng = np.random.default_rng([seed, epoch, 1])
        yield from _seq_batches(maker(train), _crops(lengths, crop, per_piece, rng), batch, rng)

    val_batches = _seq_batches(maker(val), _crops([len(t.mel) for t in val], crop, 0, None), batch, None)

    def loss(b: tuple[Tensor, ...], _training: bool) -> Tensor:
        x, mask, emo, aux = b
        y = net(x)
        denom = mask.sum().clamp(min=1.0)
        squared = ((y[..., :12] - emo) ** 2) * weights.to(y.device)
        emo_loss = squared.sum(-1).mul(mask).sum() / denom / float(weights.sum())
        logits = head(y[..., 12:])
        sounding = mask * (aux[..., :12].sum(-1) > 0)
        pitch_class = F.cross_entropy(
            logits[..., :12].reshape(-1, 12), aux[..., :12].argmax(-1).reshape(-1), reduction="none"
        ).reshape(sounding.shape)
        chroma = F.binary_cross_entropy_with_logits(logits[..., 12:24], aux[..., 12:24], reduction="none").sum(-1)
        onset = F.binary_cross_entropy_with_logits(logits[..., 25], aux[..., 25], reduction="none")
        register = (torch.tanh(logits[..., 24]) - aux[..., 24]) ** 2
        aux_loss = ((pitch_class * sounding).sum() + ((chroma / 12 + onset + register) * mask).sum()) / denom
        total: Tensor = emo_loss + 0.25 * aux_loss
        return total

    return Task("EmotionRecognizer", [net, head], train_batches, val_batches, loss)


def _mode_inputs(audio: F32, direct: F32, use_audio: bool, rng: np.random.Generator | None) -> F32:
    if use_audio:
        return audio
    if rng is None:
        return direct
    noisy = direct.copy()
    noisy[:, :12] += rng.normal(0.0, DIRECT_NOISE, (len(direct), 12)).astype(np.float32)
    return noisy


def melody_task(
    train: list[PieceTables],
    val: list[PieceTables],
    emb: dict[str, F32],
    seed: int,
    crop: int = 128,
    per_piece: int = 2,
    batch: int = 16,
) -> Task:
    """MelodyTransformer: emotion embedding per sixteenth -> top-voice piano roll of that sixteenth (BCE)."""
    net = MelodyTransformer()

    def inputs(data: list[PieceTables]) -> tuple[list[F32], list[F32], list[F32]]:
        audio = [audio_emotion(emb[t.pid], t.step_times) for t in data]
        direct = [direct_emotion(t.step_emotion) for t in data]
        return audio, direct, [t.melody.astype(np.float32) for t in data]

    tr, va = inputs(train), inputs(val)

    def maker(src: tuple[list[F32], list[F32], list[F32]], force: bool | None) -> _Maker:
        def make(crops: list[tuple[int, int]], rng: np.random.Generator | None) -> tuple[Tensor, ...]:
            use = [bool(rng.random() < 0.5) if force is None and rng is not None else bool(force) for _ in crops]
            xs = [_mode_inputs(src[0][i], src[1][i], u, rng) for (i, _), u in zip(crops, use, strict=True)]
            starts = [s for _, s in crops]
            x, mask = _stack(xs, starts, crop)
            y, _ = _stack([src[2][i] for i, _ in crops], starts, crop)
            return x, mask, y

        return make

    lengths = [len(t.step_times) for t in train]

    def train_batches(epoch: int) -> Iterator[tuple[Tensor, ...]]:
        rng = np.random.default_rng([seed, epoch, 2])
        yield from _seq_batches(maker(tr, None), _crops(lengths, crop, per_piece, rng), batch, rng)

    val_crops = _crops([len(t.step_times) for t in val], crop, 0, None)
    val_batches = [b for force in (True, False) for b in _seq_batches(maker(va, force), val_crops, batch, None)]

    def loss(b: tuple[Tensor, ...], _training: bool) -> Tensor:
        x, mask, y = b
        bce = F.binary_cross_entropy_with_logits(net(x, logits=True), y, reduction="none").mean(-1)
        result: Tensor = (bce * mask).sum() / mask.sum().clamp(min=1.0)
        return result

    return Task("MelodyTransformer", [net], train_batches, val_batches, loss)


@dataclass
class Rows:
    """Row-task arrays: inputs in both modes and the targets."""

    audio: F32
    direct: F32
    target: npt.NDArray[np.float32] | npt.NDArray[np.int64]


def row_batches(
    rows: Rows, batch: int, rng: np.random.Generator | None, force: bool | None
) -> list[tuple[Tensor, Tensor]]:
    """Shuffled (when rng is given) (x, target) batches; x per row from the audio or direct mode."""
    n = len(rows.target)
    use = rng.random(n) < 0.5 if rng is not None and force is None else np.full(n, bool(force))
    x = np.where(use[:, None], rows.audio, rows.direct).astype(np.float32)
    if rng is not None and force is None:
        x[~use, :12] += rng.normal(0.0, DIRECT_NOISE, (int((~use).sum()), 12)).astype(np.float32)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [
        (torch.from_numpy(x[order[j : j + batch]]), torch.from_numpy(rows.target[order[j : j + batch]]))
        for j in range(0, n, batch)
    ]


def row_task(
    name: str,
    net: RTNet,
    train: Rows,
    val: Rows,
    seed: int,
    loss_fn: Callable[[RTNet, Tensor, Tensor], Tensor],
    batch: int = 64,
) -> Task:
    """A task over independent rows (HarmonyPredictor, DynamicsEngine, GroovePredictor)."""

    def train_batches(epoch: int) -> Iterator[tuple[Tensor, ...]]:
        yield from row_batches(train, batch, np.random.default_rng([seed, epoch, 3]), None)

    val_batches: list[tuple[Tensor, ...]] = [*row_batches(val, 256, None, True), *row_batches(val, 256, None, False)]

    def loss(b: tuple[Tensor, ...], _training: bool) -> Tensor:
        return loss_fn(net, b[0], b[1])

    return Task(name, [net], train_batches, val_batches, loss)


def harmony_loss(net: RTNet, x: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of the chord class."""
    return F.cross_entropy(net(x, logits=True), y)


def dynamics_loss(net: RTNet, x: Tensor, y: Tensor) -> Tensor:
    """BCE of the soft expression targets in [0, 1], over the entries that are not masked (NaN)."""
    known = ~torch.isnan(y)
    bce = F.binary_cross_entropy_with_logits(net(x, logits=True), torch.nan_to_num(y), reduction="none")
    result: Tensor = (bce * known).sum() / known.sum().clamp(min=1)
    return result


def groove_loss(net: RTNet, x: Tensor, y: Tensor) -> Tensor:
    """Onsets: BCE of (tanh + 1) / 2, i.e. sigmoid(2 z); timing: MSE of tanh vs 2 * offset where an onset is."""
    z = net(x, logits=True)
    onset, timing = y[:, :16], y[:, 16:]
    onset_loss = F.binary_cross_entropy_with_logits(2.0 * z[:, :16], onset)
    timing_loss = (((torch.tanh(z[:, 16:]) - 2.0 * timing) ** 2) * onset).sum() / onset.sum().clamp(min=1.0)
    return onset_loss + timing_loss
