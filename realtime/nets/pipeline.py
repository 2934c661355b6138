"""End-to-end training run: corpus -> audio -> tables -> split -> train the five nets -> metrics -> export."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from realtime.nets import evaluate
from realtime.nets.architectures import (
    EXPRESSION_PARAMS,
    DynamicsEngine,
    EmotionRecognizer,
    GroovePredictor,
    HarmonyPredictor,
    MelodyTransformer,
)
from realtime.nets.audio_features import piece_mels
from realtime.nets.chain import audio_emotion, direct_emotion, er_embeddings
from realtime.nets.corpus import load_piece, select_pieces
from realtime.nets.dataset import PieceTables, build_tables
from realtime.nets.tasks import (
    Rows,
    Task,
    dynamics_loss,
    emotion_task,
    groove_loss,
    harmony_loss,
    melody_task,
    row_task,
)
from realtime.nets.train import EarlyStopping, History, fit

F32 = npt.NDArray[np.float32]
Log = Callable[[str], None]


@dataclass
class Config:
    """Everything a run depends on (saved to run.json beside the weights)."""

    out: Path
    cache: Path
    epochs: int = 60
    device: str = "cpu"
    batch_size: int = 64
    max_pieces: int | None = None
    seed: int = 0
    patience: int = 10
    min_delta: float = 0.001
    lr: float = 1e-3
    weight_digits: int = 4
    threads: int = 1
    progress: bool = True


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/idaw`` or ``~/.cache/idaw``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "idaw"


def _bar(iterable: Any, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="piece", disable=not enabled, leave=False)


def load_tables(cfg: Config, log: Log) -> list[PieceTables]:
    """Parse, render and tabulate the selected pieces (cached); pieces that fail to parse are skipped."""
    refs = select_pieces(cfg.max_pieces)
    loaded = [load_piece(ref, cfg.cache) for ref in _bar(refs, "parse", cfg.progress)]
    pieces = [p for p in loaded if p is not None]
    mels = piece_mels(pieces, cfg.cache, cfg.progress)
    tables = [build_tables(p, m) for p, m in zip(_bar(pieces, "tables", cfg.progress), mels, strict=True)]
    log(f"{len(tables)} pieces loaded ({len(refs) - len(pieces)} could not be parsed)")
    return tables


def split_by_group(
    tables: list[PieceTables], seed: int, fractions: tuple[float, float] = (0.1, 0.1)
) -> dict[str, list[PieceTables]]:
    """Seeded train/val/test split by group (a hymn tune or folk-song family never spans two splits).

    Each source is split on its own (about fractions[0] of its pieces to validation, fractions[1] to test, whole
    groups only) so every split mixes the sources; with three or more groups in all, validation and test are never
    empty. Returns {"train": [...], "val": [...], "test": [...]}.
    """
    rng = np.random.default_rng(seed)
    assign: dict[str, str] = {}
    for source in sorted({t.source for t in tables}):
        mine = [t for t in tables if t.source == source]
        groups = sorted({t.group for t in mine})
        size = {g: sum(1 for t in mine if t.group == g) for g in groups}
        want = {"test": math.floor(fractions[1] * len(mine)), "val": math.floor(fractions[0] * len(mine))}
        got = {"val": 0, "test": 0}
        for i in rng.permutation(len(groups)):
            g = groups[int(i)]
            split = next((k for k in ("test", "val") if got[k] < want[k]), "train")
            assign[g] = split
            if split != "train":
                got[split] += size[g]
    all_groups = sorted(assign)
    if len(all_groups) >= 3:
        for split in ("test", "val"):
            if split not in assign.values():
                spare = [g for g in all_groups if assign[g] == "train"]
                assign[spare[int(rng.integers(len(spare)))]] = split
    out: dict[str, list[PieceTables]] = {"train": [], "val": [], "test": []}
    for t in tables:
        out[assign[t.group]].append(t)
    return out


def _rows(tables: list[PieceTables], emb: dict[str, F32], kind: str) -> Rows:
    audio: list[F32] = []
    direct: list[F32] = []
    target: list[Any] = []
    for t in tables:
        if kind == "harmony":
            keep = t.harmony_target >= 0
            if not keep.any():
                continue
            times, weak, rest = t.bar_times[keep], t.bar_emotion[keep], t.harmony_rest[keep]
            a, d = audio_emotion(emb[t.pid], times), direct_emotion(weak)
            audio.append(np.hstack([a, rest]))
            direct.append(np.hstack([d, rest]))
            target.append(t.harmony_target[keep])
        elif kind == "dynamics":
            a, d = audio_emotion(emb[t.pid], t.beat_times), direct_emotion(t.beat_emotion)
            audio.append(np.hstack([a[:, :12], t.dynamics_rest]))
            direct.append(np.hstack([d[:, :12], t.dynamics_rest]))
            target.append(t.dynamics_target)
        else:
            audio.append(audio_emotion(emb[t.pid], t.groove_times))
            direct.append(direct_emotion(t.groove_emotion))
            target.append(np.hstack([t.groove_onset, t.groove_timing]))
    width = {"harmony": 128, "dynamics": 32, "groove": 64}[kind]
    if not target:
        empty_t: Any = (
            np.zeros(0, np.int64) if kind == "harmony" else np.zeros((0, 16 if kind == "dynamics" else 32), np.float32)
        )
        return Rows(np.zeros((0, width), np.float32), np.zeros((0, width), np.float32), empty_t)
    tgt: Any = np.concatenate(target)
    tgt = tgt.astype(np.int64) if kind == "harmony" else tgt.astype(np.float32)
    return Rows(np.concatenate(audio).astype(np.float32), np.concatenate(direct).astype(np.float32), tgt)


def round_weights(net: nn.Module, digits: int) -> None:
    """Rounds every parameter to ``digits`` significant decimal digits (0 = leave as is), shrinking the JSON."""
    if digits <= 0:
        return
    with torch.no_grad():
        for p in net.parameters():
            v = p.detach().cpu().numpy().astype(np.float64)
            mag = np.where(v == 0, 1.0, 10.0 ** (np.floor(np.log10(np.abs(np.where(v == 0, 1.0, v)))) - digits + 1))
            p.copy_(torch.from_numpy(np.round(v / mag) * mag).to(p.dtype))


def _train(task: Task, cfg: Config, log: Log) -> History:
    torch.manual_seed(cfg.seed)
    for m in task.modules:  # re-seeded initialisation: each net's weights do not depend on the others' runs
        for layer in m.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
    return fit(
        task.name,
        task.modules,
        task.loss,
        task.train_batches,
        task.val_batches,
        cfg.epochs,
        cfg.lr,
        EarlyStopping(cfg.patience, cfg.min_delta),
        log,
        device=cfg.device,
    )


def _save(task: Task, history: History, cfg: Config) -> None:
    net = task.net.cpu()
    round_weights(net, cfg.weight_digits)
    torch.save(net.state_dict(), cfg.out / f"{task.name}.pt")
    (cfg.out / f"{task.name}.history.json").write_text(json.dumps(history.as_dict(), indent=1) + "\n")


def run(cfg: Config, log: Log) -> dict[str, Any]:
    """The whole run; writes weights, histories, metrics.json and run.json into cfg.out and returns the metrics."""
    start = time.perf_counter()
    torch.set_num_threads(max(1, cfg.threads))
    cfg.out.mkdir(parents=True, exist_ok=True)
    tables = load_tables(cfg, log)
    splits = split_by_group(tables, cfg.seed)
    sizes = {k: len(v) for k, v in splits.items()}
    log(f"split by piece group: {sizes}")
    data_seconds = time.perf_counter() - start
    seq_batch = max(1, cfg.batch_size // 4)
    histories: dict[str, History] = {}

    task = emotion_task(splits["train"], splits["val"], cfg.seed, batch=seq_batch)
    histories[task.name] = _train(task, cfg, log)
    _save(task, histories[task.name], cfg)
    er = task.net
    assert isinstance(er, EmotionRecognizer)
    emb = dict(zip([t.pid for t in tables], er_embeddings(er, [t.mel for t in tables]), strict=True))
    metrics: dict[str, Any] = {"EmotionRecognizer": evaluate.emotion_metrics(er, splits["test"])}

    task = melody_task(splits["train"], splits["val"], emb, cfg.seed, batch=seq_batch)
    histories[task.name] = _train(task, cfg, log)
    _save(task, histories[task.name], cfg)
    mel_net = task.net
    assert isinstance(mel_net, MelodyTransformer)
    val_truth = [t.melody.astype(np.float32) for t in splits["val"]]
    thresholds = {
        m: evaluate.best_threshold(evaluate.melody_outputs(mel_net, splits["val"], emb, m), val_truth)
        if val_truth
        else 0.5
        for m in ("audio", "direct")
    }
    prior = np.mean(np.concatenate([t.melody for t in splits["train"]]), axis=0).astype(np.float32)
    metrics["MelodyTransformer"] = evaluate.melody_metrics(mel_net, splits["test"], emb, thresholds, prior)

    for kind, name, net, loss_fn in (
        ("harmony", "HarmonyPredictor", HarmonyPredictor(), harmony_loss),
        ("dynamics", "DynamicsEngine", DynamicsEngine(), dynamics_loss),
        ("groove", "GroovePredictor", GroovePredictor(), groove_loss),
    ):
        rows = {k: _rows(v, emb, kind) for k, v in splits.items()}
        task = row_task(name, net, rows["train"], rows["val"], cfg.seed, loss_fn, cfg.batch_size)
        histories[name] = _train(task, cfg, log)
        _save(task, histories[name], cfg)
        if kind == "harmony":
            metrics[name] = evaluate.harmony_metrics(task.net, rows["test"], rows["train"])
        elif kind == "dynamics":
            metrics[name] = evaluate.dynamics_metrics(task.net, rows["test"], rows["train"], EXPRESSION_PARAMS)
        else:
            metrics[name] = evaluate.groove_metrics(task.net, rows["test"], rows["train"])
        metrics[name]["train_rows"] = len(rows["train"].target)

    counts = {
        s: {src: sum(1 for t in v if t.source == src) for src in ("chorale", "essen", "ryans")}
        for s, v in splits.items()
    }
    metrics["data"] = {
        "pieces": counts,
        "data_seconds": round(data_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "epochs_run": {k: len(h.epochs) for k, h in histories.items()},
        "best_epoch": {k: h.best_epoch for k, h in histories.items()},
        "test_pieces": sorted(t.pid for t in splits["test"]),
    }
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    run_info = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k not in ("cache", "out")}
    (cfg.out / "run.json").write_text(json.dumps(run_info, indent=1) + "\n")
    return metrics
