"""`idaw train adapter`: train the listening adapter (idaw.listen.adapter) and write its weights and metadata.

Data: a folder of rendered, labelled recordings (idaw.listen.testset's train split: NAME.flac with NAME.json
beside it; render one with `python -m idaw.listen.testset --split train --out DIR`). The features are read from the
JSON lines `idaw analyze DIR --out FILE.jsonl --adapter-features` writes (idaw.listen.corpus, on Dask); when FILE
(--jsonl, default DIR/adapter.jsonl) is missing, that analysis is run first. Each line's `adapter_frames` are the
piece's 2 s frames (hop 1 s); its label file gives the weak labels (adapter.weak_labels: rules from the render's
drums, tempo and key).

Training samples are frames: each audible frame of a piece carries the piece's labels (the labels are per piece,
so cutting pieces into sections adds no label information, and frames are what the live sidecar judges). A frame's
chroma is rotated by a random number of semitones each time it is drawn, its key label with it (the other features
unchanged), so every key is seen. Loss, as the design's: CE(emotion) + 0.5 L1(BPM, in octaves: log2 BPM) + 0.5
CE(key) + CE(style); AdamW (lr 3e-4, weight decay 1e-3, the design's), at most --epochs (30) epochs of batches of
BATCH, with DROPOUT on the hidden layers, stopped when the validation loss has not improved for PATIENCE (5)
epochs; the best epoch is kept. Validation: every tenth
piece of the folder (at least one), never trained on. Seeded (torch, numpy), on one thread: the same JSON lines and
seed give the same weights on a machine. Writes adapter.json (int8 weights, adapter.quantise) and
adapter.meta.json (seeds, versions, settings, data counts, validation figures and, with --eval DIR, held-out
figures on another labelled folder, e.g. the eval split) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError, one_line
from idaw.listen import adapter as model_lib
from idaw.listen import frames as frame_features

F64 = npt.NDArray[np.float64]

DEFAULT_DATA: Final = Path("out/listen_train")
DEFAULT_OUT: Final = Path(__file__).parent / "weights"
JSONL_NAME: Final = "adapter.jsonl"
LEARNING_RATE: Final = 3e-4
WEIGHT_DECAY: Final = 1e-3
BATCH: Final = 64
PATIENCE: Final = 5
DROPOUT: Final = 0.5
"""Dropout after each head's hidden layer while training (not in the design; frames of one piece are alike, so the
heads overfit within a dozen epochs). Chosen by the validation loss of the train split (best epoch's: no dropout
3.459, 0.3 3.435, 0.5 3.426), never by the held-out figures."""
VALID_EVERY: Final = 10
BPM_WEIGHT: Final = 0.5
KEY_WEIGHT: Final = 0.5
TEMPO_TOLERANCE: Final = 0.04
"""Accuracy1's tolerance: a tempo within 4 % of the truth is right."""
MIN_PIECES: Final = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw train adapter`."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"labelled recordings [{DEFAULT_DATA}]")
    parser.add_argument(
        "--jsonl",
        type=Path,
        default=None,
        help=f"`idaw analyze DATA --out F --adapter-features` output, made when missing [DATA/{JSONL_NAME}]",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for adapter.json [the shipped one]")
    parser.add_argument("--eval", type=Path, default=None, help="labelled folder to report held-out figures on")
    parser.add_argument("--epochs", type=int, default=30, help="most epochs [30]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, batches and rotations [0]")
    parser.add_argument("--workers", type=int, default=None, help="workers of the analysis when it runs [one a core]")


# --- reading the data ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One labelled recording: its frames (audible ones only) and its weak labels."""

    name: str
    values: F64
    labels: model_lib.WeakLabels


def label_path(folder: Path, name: str) -> Path:
    """The label file of the recording `name` (relative to `folder`): NAME.json beside NAME.flac."""
    return (folder / name).with_suffix(".json")


def read_pieces(jsonl: Path, folder: Path) -> tuple[list[Piece], dict[str, int]]:
    """The labelled pieces of the analysis output `jsonl` of `folder`, sorted by name, and counts of the lines left
    out (failed analyses, recordings without a label file, pieces without an audible frame). IdawError (one line)
    when the file cannot be read or a line is not one `idaw analyze DIR --out F --adapter-features` writes."""
    from idaw.listen.corpus import MAX_LINE_BYTES
    from idaw.listen.testset import load_labels

    pieces: list[Piece] = []
    left_out: Counter[str] = Counter()
    try:
        with open(jsonl, "rb") as lines:
            for number, line in enumerate(iter(lambda: lines.readline(MAX_LINE_BYTES + 1), b""), start=1):
                if not line.strip():
                    continue
                record = _record(line, number, jsonl)
                if "error" in record:
                    left_out["failed analysis"] += 1
                    continue
                if not str(record["file"]).lower().endswith((".wav", ".flac")):
                    left_out["not a recording"] += 1
                    continue
                where = f"{jsonl} line {number} ({record['file']})"
                if "adapter_frames" not in record:
                    raise IdawError(
                        f"{where} has no adapter features; allowed: the output of idaw analyze DIR --out F "
                        "--adapter-features (give another --jsonl, or delete this one to analyse again)"
                    )
                frames = frame_features.frames_from_json(record["adapter_frames"], where)
                labels_file = label_path(folder, str(record["file"]))
                if not labels_file.is_file():
                    left_out["no label file"] += 1
                    continue
                labels = model_lib.weak_labels(load_labels(labels_file))
                usable = frames.values[frames.usable]
                if len(usable) == 0:
                    left_out["no audible frame"] += 1
                    continue
                pieces.append(Piece(str(record["file"]), usable, labels))
    except OSError as error:
        raise IdawError(f"cannot read {jsonl}: {one_line(str(error))}") from None
    pieces.sort(key=lambda piece: piece.name)
    return pieces, dict(left_out)


def _record(line: bytes, number: int, jsonl: Path) -> dict[str, Any]:
    """The JSON object of an output line; IdawError unless it is one with a string "file"."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("file"), str):
        raise IdawError(
            f'{jsonl}: line {number} is not a line of idaw analyze DIR\'s output (a JSON object with "file"); '
            "allowed: the output of idaw analyze DIR --out F --adapter-features"
        )
    return record


def ensure_analysis(folder: Path, jsonl: Path, workers: int | None) -> None:
    """Run `idaw analyze FOLDER --out JSONL --adapter-features` when JSONL is missing (on a local Dask cluster)."""
    from idaw.listen import corpus

    if jsonl.exists():
        return
    print(f"analysing {folder} into {jsonl} (idaw analyze DIR --out F --adapter-features)", file=sys.stderr)
    summary = corpus.analyze_corpus(
        folder,
        jsonl,
        workers=corpus.check_workers(workers) if workers is not None else corpus.cores(),
        progress=sys.stderr.isatty(),
        adapter_features=True,
    )
    print(summary.text(), file=sys.stderr)


# --- figures -------------------------------------------------------------------------------------------------------


def confusion(truth: Sequence[int], predicted: Sequence[int], classes: int) -> list[list[int]]:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[t, p] += 1
    result: list[list[int]] = matrix.tolist()
    return result


def tempo_right(estimate: float, truth: float) -> bool:
    """Accuracy1: within TEMPO_TOLERANCE of the true tempo."""
    return abs(estimate - truth) <= TEMPO_TOLERANCE * truth


def figures(
    judgements: Sequence[model_lib.Judgement],
    truths: Sequence[model_lib.WeakLabels],
    majority: dict[str, int],
    tracker_bpm: Sequence[float | None] | None = None,
) -> dict[str, Any]:
    """Piece-level scores of the adapter's judgements against the weak labels: emotion and style accuracy with their
    confusion matrices and the accuracy of always answering the training data's majority class (`majority`:
    {"emotion": i, "style": j}), key accuracy (exact key), BPM Accuracy1; with the beat tracker's tempi, also
    Accuracy1 of the tracker alone and of the tracker's tempo moved to the adapter's octave (adapter.octave_choice)."""
    count = len(truths)
    out: dict[str, Any] = {"pieces": count}
    for head, classes, names in (
        ("emotion", len(model_lib.EMOTIONS), list(model_lib.EMOTIONS)),
        ("style", len(model_lib.STYLE_PROMPTS), [s for s, _ in model_lib.STYLE_PROMPTS]),
    ):
        truth = [getattr(t, head) for t in truths]
        predicted = [int(np.argmax(getattr(j, head))) for j in judgements]
        out[head] = {
            "accuracy": round(float(np.mean([a == b for a, b in zip(truth, predicted, strict=True)])), 3),
            "majority_class": names[majority[head]],
            "majority_accuracy": round(float(np.mean([t == majority[head] for t in truth])), 3),
            "classes": names,
            "confusion": confusion(truth, predicted, classes),
        }
    key_right = [int(np.argmax(j.key)) == t.key for j, t in zip(judgements, truths, strict=True)]
    out["key_accuracy"] = round(float(np.mean(key_right)), 3)
    out["bpm_accuracy1"] = round(
        float(np.mean([tempo_right(j.bpm, t.bpm) for j, t in zip(judgements, truths, strict=True)])), 3
    )
    errors = [abs(np.log2(j.bpm / t.bpm)) for j, t in zip(judgements, truths, strict=True)]
    out["bpm_median_error_octaves"] = round(float(np.median(errors)), 3)
    if tracker_bpm is not None:
        alone, handled = [], []
        for j, t, tracked in zip(judgements, truths, tracker_bpm, strict=True):
            alone.append(tracked is not None and tempo_right(tracked, t.bpm))
            chosen = None if tracked is None else model_lib.octave_choice(tracked, j.bpm)
            handled.append(chosen is not None and tempo_right(chosen, t.bpm))
        out["tracker_bpm_accuracy1"] = round(float(np.mean(alone)), 3)
        out["octave_handled_bpm_accuracy1"] = round(float(np.mean(handled)), 3)
    return out


def held_out_figures(
    model: model_lib.Adapter, label_files: Sequence[Path], majority: dict[str, int], progress: bool = False
) -> dict[str, Any]:
    """`figures` on labelled recordings read from their audio (NAME.flac beside each label file): the adapter on
    the audible frames of each, the beat tracker (idaw.listen.beats) for the octave-handled tempo."""
    from tqdm import tqdm

    from idaw.listen import beats, features
    from idaw.listen.audio import read_recording
    from idaw.listen.testset import load_labels

    judgements, truths, tracked = [], [], []
    for path in tqdm(label_files, desc="held out", unit="piece", disable=not progress, file=sys.stderr):
        recording = read_recording(path.with_suffix(".flac"))
        frames = frame_features.recording_features(recording.samples)
        usable = frames.values[frames.usable] if frames.usable.any() else frames.values
        judgements.append(model.judge(usable))
        truths.append(model_lib.weak_labels(load_labels(path)))
        tempo = beats.estimate_tempo(features.onset_envelopes(recording.samples).full)
        tracked.append(None if tempo is None else tempo.bpm)
    return figures(judgements, truths, majority, tracked)


# --- training ------------------------------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise IdawError(f"--epochs {args.epochs}: allowed: 1 or more")
    if args.seed < 0:
        raise IdawError(f"--seed {args.seed}: allowed: 0 or more")
    if not args.data.is_dir():
        raise IdawError(
            f"{args.data}: no such folder; allowed: a folder of labelled recordings "
            "(python -m idaw.listen.testset --split train --out DIR renders one)"
        )
    if args.eval is not None and not args.eval.is_dir():
        raise IdawError(f"--eval {args.eval}: no such folder; allowed: a folder of labelled recordings")


def run(args: argparse.Namespace) -> int:
    """Analyse the folder when needed, train, write adapter.json and adapter.meta.json; returns 0."""
    _check(args)
    jsonl = args.jsonl if args.jsonl is not None else args.data / JSONL_NAME
    ensure_analysis(args.data, jsonl, args.workers)
    pieces, left_out = read_pieces(jsonl, args.data)
    if len(pieces) < MIN_PIECES:
        raise IdawError(
            f"{jsonl}: only {len(pieces)} labelled recordings with audible frames (left out: {left_out or 'none'}); "
            f"at least {MIN_PIECES} are needed, each NAME.flac with its label file NAME.json"
        )
    started = time.perf_counter()
    valid = [i for i in range(len(pieces)) if i % VALID_EVERY == VALID_EVERY - 1] or [len(pieces) - 1]
    train = [i for i in range(len(pieces)) if i not in valid]
    trained = train_heads([pieces[i] for i in train], [pieces[i] for i in valid], args.epochs, args.seed)
    model = model_lib.quantise(trained.model)  # scored as it ships
    counts = {head: Counter(getattr(pieces[i].labels, head) for i in train) for head in ("emotion", "style", "key")}
    majority = {head: counts[head].most_common(1)[0][0] for head in ("emotion", "style")}
    valid_figures = figures([model.judge(pieces[i].values) for i in valid], [pieces[i].labels for i in valid], majority)
    held_out = None
    if args.eval is not None:
        label_files = sorted(p for p in args.eval.glob("*.json") if p.with_suffix(".flac").is_file())
        if not label_files:
            raise IdawError(f"--eval {args.eval}: no NAME.flac with its label file NAME.json in it")
        held_out = held_out_figures(model, label_files, majority, progress=sys.stderr.isatty())
    meta = _metadata(args, jsonl, pieces, train, valid, left_out, counts, trained, valid_figures, held_out)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    _write(args.out, model.to_json(), meta)
    emotion = valid_figures["emotion"]
    print(
        f"listening adapter: {len(train)} training and {len(valid)} validation pieces, validation emotion accuracy "
        f"{emotion['accuracy']:.3f} (majority {emotion['majority_accuracy']:.3f}), best epoch {trained.best_epoch}; "
        f"wrote {args.out / model_lib.WEIGHTS_PATH.name}"
    )
    return 0


@dataclass
class Trained:
    """What training gave: the best epoch's model and the history."""

    model: model_lib.Adapter
    best_epoch: int
    best_loss: float
    history: list[list[float]]
    train_frames: int
    valid_frames: int


def _targets(pieces: Sequence[Piece]) -> tuple[F64, npt.NDArray[np.int64]]:
    """All frames of `pieces` stacked, and per frame [emotion, style, key] and log2(BPM / BPM_CENTRE) (as float)."""
    values = np.concatenate([p.values for p in pieces])
    labels = np.concatenate(
        [np.tile([p.labels.emotion, p.labels.style, p.labels.key], (len(p.values), 1)) for p in pieces]
    ).astype(np.int64)
    return values, labels


def train_heads(train: Sequence[Piece], valid: Sequence[Piece], epochs: int, seed: int) -> Trained:
    """Train the four heads jointly on the frames of `train`, early-stopped on the loss over `valid`."""
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)  # the same sums in the same order on every run: reproducible on this machine
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_x, train_y = _targets(train)
    valid_x, valid_y = _targets(valid)
    train_bpm = np.concatenate([np.full(len(p.values), p.labels.bpm) for p in train])
    valid_bpm = np.concatenate([np.full(len(p.values), p.labels.bpm) for p in valid])
    mean = train_x.mean(axis=0)
    scale = train_x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)  # a constant feature (a tag never set) stays as it is
    inputs = frame_features.FEATURE_COUNT
    heads = torch.nn.ModuleDict(
        {
            name: torch.nn.Sequential(
                torch.nn.Linear(inputs, model_lib.HIDDEN),
                torch.nn.ReLU(),
                torch.nn.Dropout(DROPOUT),
                torch.nn.Linear(model_lib.HIDDEN, size),
            )
            for name, size in model_lib.HEADS.items()
        }
    )
    optimiser = torch.optim.AdamW(heads.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    mean_t, scale_t = torch.tensor(mean), torch.tensor(scale)

    def loss_of(x: F64, y: npt.NDArray[np.int64], bpm: F64) -> Any:
        inputs_t = ((torch.tensor(x) - mean_t) / scale_t).float()
        target_t = torch.tensor(y)
        log2_bpm = torch.tensor(np.log2(bpm / model_lib.BPM_CENTRE)).float()
        cross = torch.nn.functional.cross_entropy
        return (
            cross(heads["emotion"](inputs_t), target_t[:, 0])
            + BPM_WEIGHT * torch.nn.functional.l1_loss(heads["bpm"](inputs_t)[:, 0], log2_bpm)
            + KEY_WEIGHT * cross(heads["key"](inputs_t), target_t[:, 2])
            + cross(heads["style"](inputs_t), target_t[:, 1])
        )

    chroma = frame_features.CHROMA_SLICE
    best: dict[str, Any] = {"loss": float("inf"), "epoch": -1}
    history: list[list[float]] = []
    for epoch in tqdm(range(epochs), desc="adapter", unit="epoch", file=sys.stderr, disable=not sys.stderr.isatty()):
        heads.train()
        order = rng.permutation(len(train_x))
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            x = train_x[batch].copy()
            y = train_y[batch].copy()
            shifts = rng.integers(0, 12, size=len(batch))  # the key augmentation: chroma and key label move together
            x[:, chroma] = x[:, chroma][np.arange(len(batch))[:, None], (np.arange(12)[None, :] - shifts[:, None]) % 12]
            y[:, 2] = (y[:, 2] // 12) * 12 + (y[:, 2] % 12 + shifts) % 12
            optimiser.zero_grad()
            loss = loss_of(x, y, train_bpm[batch])
            loss.backward()
            optimiser.step()
        heads.eval()
        with torch.no_grad():
            valid_loss = float(loss_of(valid_x, valid_y, valid_bpm))
        history.append([epoch, round(valid_loss, 4)])
        if valid_loss < best["loss"]:
            best = {
                "loss": valid_loss,
                "epoch": epoch,
                "state": {k: v.detach().clone() for k, v in heads.state_dict().items()},
            }
        elif epoch - best["epoch"] >= PATIENCE:
            break
    state = best["state"]
    model = model_lib.Adapter(
        mean,
        scale,
        {
            name: model_lib.Head(
                state[f"{name}.0.weight"].double().numpy(),
                state[f"{name}.0.bias"].double().numpy(),
                state[f"{name}.3.weight"].double().numpy(),
                state[f"{name}.3.bias"].double().numpy(),
            )
            for name in model_lib.HEADS
        },
    )
    return Trained(model, int(best["epoch"]), round(float(best["loss"]), 4), history, len(train_x), len(valid_x))


def _metadata(
    args: argparse.Namespace,
    jsonl: Path,
    pieces: Sequence[Piece],
    train: Sequence[int],
    valid: Sequence[int],
    left_out: dict[str, int],
    counts: dict[str, Counter[int]],
    trained: Trained,
    valid_figures: dict[str, Any],
    held_out: dict[str, Any] | None,
) -> dict[str, Any]:
    """adapter.meta.json: what was trained on what, how, and how well."""
    import librosa
    import torch

    names = {
        "emotion": list(model_lib.EMOTIONS),
        "style": [s for s, _ in model_lib.STYLE_PROMPTS],
        "key": list(model_lib.KEY_NAMES),
    }
    return {
        "format": "idaw-listen-adapter-meta-1",
        "seed": args.seed,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "librosa": str(getattr(librosa, "__version__", "unknown")),
        },
        "hyperparameters": {
            "hidden": model_lib.HIDDEN,
            "optimiser": "AdamW",
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
            "batch": BATCH,
            "max_epochs": args.epochs,
            "patience": PATIENCE,
            "dropout": DROPOUT,
            "loss": "CE(emotion) + 0.5 L1(log2 BPM) + 0.5 CE(key) + CE(style)",
            "key_augmentation": "chroma rotated by a random 0-11 semitones per drawn frame, key label with it",
            "weights": "int8 per row with a float scale (what is scored)",
        },
        "features": {
            "names": list(frame_features.FEATURE_NAMES),
            "frame_s": frame_features.FRAME_S,
            "hop_s": frame_features.HOP_S,
        },
        "weak_labels": {
            "emotion": f"busy: drums and tempo >= {model_lib.BUSY_BPM:g}; else major: bright at tempo >= "
            f"{model_lib.LIVELY_BPM:g}, calm below; minor: tense at tempo >= {model_lib.LIVELY_BPM:g}, dark below",
            "style": f"tempo bands below {model_lib.STYLE_BANDS_BPM[0]:g}, to {model_lib.STYLE_BANDS_BPM[1]:g}, "
            "above; without drums hymn, chorale, procession; with drums ballad, groove, drive",
            "bpm": "the rendered tempo",
            "key": "the label's key (music21's global key of the score, transposed as rendered)",
        },
        "data": {
            "folder": os.fspath(args.data),
            "jsonl": os.fspath(jsonl),
            "pieces": len(pieces),
            "train_pieces": len(train),
            "valid_pieces": len(valid),
            "train_frames": trained.train_frames,
            "valid_frames": trained.valid_frames,
            "left_out_lines": left_out,
            "train_label_counts": {
                head: {names[head][c]: n for c, n in sorted(counter.items())} for head, counter in counts.items()
            },
        },
        "training": {
            "best_epoch": trained.best_epoch,
            "best_valid_loss": trained.best_loss,
            "history": trained.history,
        },
        "validation": valid_figures,
        "held_out": None if held_out is None else {"folder": os.fspath(args.eval), "figures": held_out},
    }


def _write(folder: Path, weights: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write adapter.json and adapter.meta.json into `folder` (created), each replaced atomically."""
    from idaw.base import output_file

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IdawError(f"cannot create folder {folder}: {one_line(str(error))}") from None
    for name, content, separators in (
        (model_lib.WEIGHTS_PATH.name, weights, (",", ":")),
        (model_lib.META_PATH.name, meta, None),
    ):
        with output_file.replacing(folder / name, "listening adapter") as part:
            text = json.dumps(content, separators=separators, indent=None if separators else 1)
            Path(part).write_text(text + "\n")
