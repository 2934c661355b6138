"""`idaw train semantic-eq`: reproduce the shipped semantic-EQ weights and metrics from the data and a seed.

    idaw train semantic-eq --data ../shared/data --out DIR [--size full|tiny] [--seed 0] [--threads 2]

Writes DIR/semantic_eq.pt (both networks, vocabulary, centroids, synonym embeddings), DIR/metrics.json and
DIR/safe_median_curves.json (SAFE-DB's median curve per frequent word, for `idaw demo`'s picture).
Renders and curve fits are cached under ~/.cache/idaw. torch is imported inside run() only.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from idaw.base.errors import IdawError

VERSION = "semantic-eq-1"


@dataclass(frozen=True)
class Size:
    """How much data and training one run uses."""

    curve_limit: int | None
    pieces: int
    sample_groups: int | None
    pink: int
    seconds: float
    vae_epochs: int
    audio_steps: int
    eval_settings_per_clip: int
    fit_effort: str


SIZES: dict[str, Size] = {
    "full": Size(None, 120, None, 24, 6.0, 200, 8000, 6, "full"),
    "tiny": Size(12, 2, 6, 4, 3.0, 4, 12, 1, "quick"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw train semantic-eq`."""
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="folder holding safedb/, socialfx/ and audealize/ (default ../shared/data)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write semantic_eq.pt and metrics.json to")
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="full: the shipped run (about 12 min on 2 shared cores, cold cache); tiny: a seconds-long smoke run",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, fits, training and evaluation")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the models are small)")
    parser.add_argument("--audio-steps", type=int, default=None, help="override the audio encoder's step count")
    parser.add_argument("--skip-eval", action="store_true", help="train and save only; metrics.json gets no figures")


def run(args: argparse.Namespace) -> int:
    """Train, save and evaluate; returns 0 on success."""
    import numpy as np
    import torch

    from sidecar.semantic_eq import (
        audio_corpus,
        eqmath,
        labelled,
        median_curves,
        synonyms,
        train_audio,
        train_vae,
        traversal,
        vocab,
    )
    from sidecar.semantic_eq.bundle import Bundle

    data_dir: Path = args.data
    for needed in ("safedb/SAFEEqualiserUserData.csv", "socialfx/eq_contributions.csv", "audealize/eqdescriptors.json"):
        if not (data_dir / needed).exists():
            raise IdawError(f"missing {data_dir / needed}; pass --data pointing at the shared data folder")
    size = SIZES[args.size]
    if args.audio_steps is not None:
        size = replace(size, audio_steps=int(args.audio_steps))
    torch.set_num_threads(max(1, int(args.threads)))
    seed = int(args.seed)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    freqs = eqmath.log_grid()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 1)
        return now

    t = time.perf_counter()
    lab = labelled.load_labelled(data_dir, seed, freqs, curve_limit=size.curve_limit, effort=size.fit_effort)
    t = lap("data_and_curve_fits", t)
    vae_config = train_vae.VaeConfig(epochs=size.vae_epochs)
    vae, vae_stats = train_vae.train_vae(lab, freqs, vae_config, seed)
    t = lap("vae", t)
    latents = train_vae.encode_mean(vae, lab.params)
    voc = vocab.build_vocabulary(lab, latents)
    clips = audio_corpus.build_clips(size.pieces, size.sample_groups, size.pink, size.seconds, seed)
    t = lap("audio_sources", t)
    splits = np.array(lab.splits)
    pool = train_audio.eq_pool(lab.params[splits == "train"], seed)
    audio_config = train_audio.AudioConfig(steps=size.audio_steps)
    encoder, audio_stats = train_audio.train_audio_encoder(
        vae, clips, pool, freqs, audio_config, seed, val_params=lab.params[splits == "val"]
    )
    t = lap("audio_encoder", t)
    try:
        embeddings = synonyms.embed(voc.words)
    except synonyms.SynonymsUnavailableError as error:
        print(f"semantic-eq: warning: {error}; the bundle will have no synonym embeddings", flush=True)
        embeddings = None
    t = lap("synonym_embeddings", t)
    config: dict[str, Any] = {
        "version": VERSION,
        "seed": seed,
        "size": args.size,
        "grid_points": len(freqs),
        "vae_hidden": vae_config.hidden,
        "mels": 64,
        "audio_channels": audio_config.channels,
        "audio_hidden": audio_config.hidden,
        "vae": asdict(vae_config),
        "audio": asdict(audio_config),
    }
    bundle = Bundle(vae, encoder, voc.words, voc.counts, voc.centroids, embeddings, config)
    print(f"semantic-eq: fitting the character of {len(voc.words)} descriptors (the sidecar's start) ...", flush=True)
    bundle.characters = np.array([traversal.character_fit(bundle, z) for z in voc.centroids])
    t = lap("character_fits", t)
    path = bundle.save(args.out)
    median_curves.write(args.out, median_curves.compute(data_dir))
    metrics: dict[str, Any] = {
        "version": VERSION,
        "seed": seed,
        "size": args.size,
        "threads": int(args.threads),
        "data": _data_summary(lab, clips, voc.words),
        "training": {**vae_stats, **audio_stats},
        "weights_bytes": path.stat().st_size,
        "parameters": {
            "vae": sum(p.numel() for p in vae.parameters()),
            "audio_encoder": sum(p.numel() for p in encoder.parameters()),
        },
    }
    if not args.skip_eval:
        metrics.update(_evaluate(bundle, lab, clips, voc, size, seed))
        t = lap("evaluation", t)
    timings["total"] = round(time.perf_counter() - started, 1)
    metrics["timings_seconds"] = timings
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    print(
        f"semantic-eq: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and metrics.json in {timings['total']:.0f} s",
        flush=True,
    )
    return 0


def _data_summary(lab: Any, clips: list[Any], words: list[str]) -> dict[str, Any]:
    """Counts only (no metadata): settings per source and split, contributors per split, clips per kind."""
    from collections import Counter

    contributors: dict[str, set[str]] = {}
    for c, s, src in zip(lab.contributors, lab.splits, lab.sources, strict=True):
        if src == "safe":
            contributors.setdefault(s, set()).add(c)
    fits = [e for e, src in zip(lab.fit_error_db, lab.sources, strict=True) if src != "safe"]
    pairs = Counter(zip(lab.sources, lab.splits, strict=True))
    import numpy as np

    return {
        "settings": {f"{src}/{s}": n for (src, s), n in sorted(pairs.items())},
        "safe_contributors_per_split": {s: len(v) for s, v in sorted(contributors.items())},
        "contributor_overlap_between_splits": sum(
            len(contributors.get(a, set()) & contributors.get(b, set()))
            for a, b in (("train", "val"), ("train", "test"), ("val", "test"))
        ),
        "curve_fit_db_rms": {
            "median": float(np.median(fits)) if fits else None,
            "p90": float(np.percentile(fits, 90)) if fits else None,
            "n": len(fits),
        },
        "clips": {f"{k}/{s}": n for (k, s), n in sorted(Counter((c.kind, c.split) for c in clips).items())},
        "vocabulary_words": len(words),
    }


def _evaluate(bundle: Any, lab: Any, clips: list[Any], voc: Any, size: Size, seed: int) -> dict[str, Any]:
    import numpy as np

    from sidecar.semantic_eq import evaluate_adaptive, evaluate_models
    from sidecar.semantic_eq.handler import SemanticEqHandler

    safe_test = np.array([s == "safe" and sp == "test" for s, sp in zip(lab.sources, lab.splits, strict=True)])
    print("semantic-eq: evaluating ...", flush=True)
    out: dict[str, Any] = {"eq_vae": evaluate_models.vae_metrics(bundle, lab)}
    out["audio_encoder"] = evaluate_models.audio_metrics(
        bundle, clips, lab.params[safe_test], size.eval_settings_per_clip, seed
    )
    handler = SemanticEqHandler(bundle=bundle)
    out["adaptive_eq"] = evaluate_adaptive.adaptive_metrics(handler, clips, lab)
    sweep: dict[str, Any] = {}
    for lam in (0.0, 0.5, 1.0):  # how lam was chosen: validation clips only, intensities 0 and 0.7
        m = evaluate_adaptive.adaptive_metrics(
            SemanticEqHandler(bundle=bundle, orthogonal_weight=lam), clips, lab, split="val", intensities=(0.0, 0.7)
        )
        sweep[f"lam={lam:g}"] = {
            k: m[k]
            for k in (
                "clips",
                "ltas_change_correlation_with_safe_median_at_0.7",
                "already_has_character_gets_smaller_change_fraction",
                "change_ratio_already_vs_opposite",
            )
        }
    out["adaptive_eq_lambda_sweep_on_validation_clips"] = sweep
    out["synonyms_leave_one_word_out"] = evaluate_adaptive.synonym_metrics(handler, voc)
    return out
