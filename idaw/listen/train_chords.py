"""`idaw train chords`: train the acoustic chord model (idaw.listen.chord_model) and write its weights.

Data: the test set's train split (idaw.listen.testset: Bach chorales not among the analysed ones, none sharing a
tune with them, rendered with fluidsynth with the train instruments and drum kits), rendered into --data where
missing. Each labelled beat (the score's beats, so the features line up with the weak labels: idaw's own analysis
of the score) gives one example: its treble and bass chroma (idaw.listen.features) and its chord. Whole pieces are
held out for validation (every tenth); the epoch with the best validation loss is kept. Seeded: the same data and
seed give the same weights on a machine (torch on CPU); across CPUs the weights may differ in the last digits.
Writes chords.json (the weights) and chords.metrics.json (accuracies, data sizes, settings) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError

DEFAULT_DATA = Path("out/listen_train")
DEFAULT_OUT = Path(__file__).parent / "weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw train chords`."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"train split folder [{DEFAULT_DATA}]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for chords.json [the shipped one]")
    parser.add_argument("--count", type=int, default=None, help="use only the first N train pieces [all]")
    parser.add_argument("--epochs", type=int, default=150, help="epochs [150]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batches [0]")


def parse_chord(label: str) -> tuple[int, str] | None:
    """(root pitch class, idaw quality) of a mir_eval chord label, None for 'N', 'X' or a shorthand idaw lacks."""
    import mir_eval

    from idaw.listen.testset import SHORTHAND_QUALITY

    if label in ("N", "X"):
        return None
    root_name, _, rest = label.partition(":")
    shorthand = rest.split("/")[0] or "maj"
    quality = SHORTHAND_QUALITY.get(shorthand)
    if quality is None:
        return None
    return int(mir_eval.chord.pitch_class_to_semitone(root_name)) % 12, quality


def piece_examples(json_path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[int]]:
    """Treble chroma, bass chroma (beats × 12 each) and the class (root × qualities + quality index, or -1 where
    unlabelled) of every labelled beat of one rendered piece. The chroma are kept beside the audio
    (NAME.chroma.npz, plain arrays) and read back while they are newer than the audio and the labels."""
    from idaw.listen import features
    from idaw.listen.audio import read_recording
    from idaw.listen.testset import load_labels
    from idaw.theory.progressions import QUALITIES

    labels = load_labels(json_path)
    beats = [float(b) for b in labels["beats"]]
    end = float(labels["music_end_s"])
    audio, cache = json_path.with_suffix(".flac"), json_path.with_suffix(".chroma.npz")
    if cache.is_file() and cache.stat().st_mtime > max(audio.stat().st_mtime, json_path.stat().st_mtime):
        with np.load(cache, allow_pickle=False) as stored:
            treble, bass = stored["treble"], stored["bass"]
    else:
        recording = read_recording(audio)
        treble = features.beat_chroma(recording.samples, beats, end)
        spectra = features.beat_spectra(features.constant_q(recording.samples), beats, end)
        bass = features.beat_bass_chroma(spectra)
        np.savez(cache, treble=treble, bass=bass)
    chords = labels["chords"]
    classes: list[int] = []
    for i, start in enumerate(beats):
        stop = beats[i + 1] if i + 1 < len(beats) else end
        middle = 0.5 * (start + stop)
        label = next((c[2] for c in chords if c[0] <= middle < c[1]), "N")
        parsed = parse_chord(str(label))
        classes.append(-1 if parsed is None else parsed[0] * len(QUALITIES) + QUALITIES.index(parsed[1]))
    return treble, bass, classes


def run(args: argparse.Namespace) -> int:
    """Render what is missing, extract the examples, train, write the weights and metrics; returns 0."""
    import torch
    from tqdm import tqdm

    from idaw.base import output_file
    from idaw.listen import chord_model
    from idaw.listen.testset import build_testset
    from idaw.theory.progressions import QUALITIES

    if args.epochs < 1:
        raise IdawError(f"--epochs {args.epochs}: allowed: 1 or more")
    if args.count is not None and args.count < 10:
        raise IdawError(f"--count {args.count}: allowed: 10 or more (every tenth piece is held out)")
    items = build_testset(args.data, split="train", count=args.count, seed=0)
    pieces: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[int]]] = []
    refused: list[str] = []
    for item in tqdm(items, desc="chroma", unit="piece", file=sys.stderr):
        try:
            pieces.append(piece_examples(item))
        except IdawError as error:  # a label file that does not validate: that piece is left out, by name
            refused.append(f"{item.name}: {error}")
    for line in refused:
        print(f"left out {line}", file=sys.stderr)
    if len(pieces) < 10:
        raise IdawError(f"only {len(pieces)} usable pieces in {args.data}; at least 10 are needed")

    def stack(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        treble = np.concatenate([pieces[i][0] for i in indices])
        bass = np.concatenate([pieces[i][1] for i in indices])
        classes = np.concatenate([np.asarray(pieces[i][2], dtype=np.int64) for i in indices])
        keep = classes >= 0
        rooted = chord_model.rooted_features(treble[keep], bass[keep])
        return torch.tensor(rooted, dtype=torch.float32), torch.tensor(classes[keep])

    held_out = [i for i in range(len(pieces)) if i % 10 == 9]
    train_x, train_y = stack([i for i in range(len(pieces)) if i % 10 != 9])
    valid_x, valid_y = stack(held_out)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(chord_model.FEATURES, chord_model.HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(chord_model.HIDDEN, len(QUALITIES)),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)

    def loss_and_accuracy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = net(x).reshape(len(x), -1)  # beats × (12 roots × qualities)
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss, float((logits.argmax(dim=1) == y).float().mean())

    best: dict[str, Any] = {"loss": float("inf")}
    history = []
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), 256):
            batch = order[start : start + 256]
            optimiser.zero_grad()
            loss, _ = loss_and_accuracy(train_x[batch], train_y[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        net.eval()
        with torch.no_grad():
            _, train_accuracy = loss_and_accuracy(train_x, train_y)
            valid_loss, valid_accuracy = loss_and_accuracy(valid_x, valid_y)
        history.append([epoch, round(float(valid_loss), 4), round(valid_accuracy, 4)])
        if float(valid_loss) < best["loss"]:
            best = {
                "loss": float(valid_loss),
                "epoch": epoch,
                "train_accuracy": train_accuracy,
                "valid_accuracy": valid_accuracy,
                "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
            }
    state = best["state"]
    model = chord_model.ChordModel(
        state["0.weight"].double().numpy(),
        state["0.bias"].double().numpy(),
        state["2.weight"].double().numpy(),
        state["2.bias"].double().numpy(),
        tuple(QUALITIES),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "pieces": len(pieces),
        "pieces_left_out": refused,
        "held_out_pieces": len(held_out),
        "train_beats": len(train_x),
        "valid_beats": len(valid_x),
        "best_epoch": best["epoch"],
        "train_accuracy": round(best["train_accuracy"], 4),
        "valid_accuracy": round(best["valid_accuracy"], 4),
        "valid_loss": round(best["loss"], 4),
        "seed": args.seed,
        "epochs": args.epochs,
        "history": history,
        "labels": "idaw.theory.decode on the scores (weak); chord of each beat's middle",
    }
    for name, content in (("chords.json", model.to_json()), ("chords.metrics.json", metrics)):
        with output_file.replacing(args.out / name, "chord model") as part:
            Path(part).write_text(json.dumps(content, separators=(",", ":")) + "\n")
    print(
        f"chord model: {len(pieces)} pieces, validation accuracy {best['valid_accuracy']:.3f} "
        f"(epoch {best['epoch']}); wrote {args.out / 'chords.json'}"
    )
    return 0
