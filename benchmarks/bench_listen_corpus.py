"""Corpus throughput of `idaw analyze DIR --out F.jsonl`: files per minute on one and on two Dask workers.

The corpus is generated: 24 MIDI files (a four-voice cadence, transposed) and 8 WAV files (struck chords, 22.05 kHz
mono, 7 to 11 s long: 16 beats at 96 to 152 BPM); --quick uses 12 and 4. Two LocalClusters run side by side, one of
one worker and one of two (one thread per worker process, as `idaw analyze` starts them), and
idaw.listen.corpus.analyze_corpus analyses the whole corpus into a fresh output on each, through their scheduler
addresses (the `--scheduler` path).

- cold: the first run on each cluster: every worker process imports the analysis and compiles librosa's kernels on
  its first recording (seconds), as in a one-off `idaw analyze DIR` on a small corpus. Cluster start is separate.
- warm: the following runs (interleaved, the order of the two clusters rotated each round): the steady rate a long
  corpus reaches. Per run: files per minute (files over the time from the first file submitted to the last line
  written); per file: its analysis's own wall time on its worker ("seconds" in the output), median and p99 over all
  warm runs, MIDI and recordings apart.
- two_over_one: the ratio of the median warm files per minute, two workers over one (2.0 would be perfect scaling;
  a machine with fewer than two free cores cannot reach it).
Run alone with `python -m benchmarks.bench_listen_corpus [--quick] [--out F]`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from idaw.listen.corpus import CorpusSummary, analyze_corpus, local_cluster
from tests.support.listen_signals import write_chords_wav, write_midi

WORKER_COUNTS = (1, 2)


def _corpus(folder: Path, midi: int, recordings: int) -> float:
    """`midi` MIDI cadences and `recordings` WAVs of chords (varied keys and tempi) in `folder`; returns the
    recordings' total length in seconds."""
    import soundfile

    for i in range(midi):
        write_midi(folder / f"m{i:03d}.mid", transpose=i % 12)
    return sum(
        float(
            soundfile.info(str(write_chords_wav(folder / f"r{i:03d}.wav", bpm=96.0 + 8 * i, transpose=i % 12))).duration
        )
        for i in range(recordings)
    )


def _run(folder: Path, out_folder: Path, address: str, tag: str) -> tuple[CorpusSummary, list[Any]]:
    """One whole-corpus run on the cluster at `address` into a fresh output; its summary and output lines."""
    import json

    out = out_folder / f"{tag}.jsonl"
    summary = analyze_corpus(folder, out, scheduler=address)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    failed = [line for line in lines if "error" in line]
    if failed:
        raise RuntimeError(f"the benchmark corpus must analyse cleanly: {failed[0]}")
    return summary, lines


def _seconds(values: Sequence[float]) -> common.Json:
    """{median_s, p99_s, n} of per-file analysis times."""
    data = np.asarray(values, dtype=np.float64)
    return {
        "median_s": round(float(np.median(data)), 4),
        "p99_s": round(float(np.percentile(data, 99)), 4),
        "n": len(data),
    }


def run(quick: bool = False) -> common.Json:
    """{corpus, cold, warm, two_over_one}: see the module docstring."""
    midi, recordings = (12, 4) if quick else (24, 8)
    rounds = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="idaw-bench-corpus-") as tmp:
        folder, outs = Path(tmp) / "corpus", Path(tmp) / "out"
        folder.mkdir()
        outs.mkdir()
        audio_seconds = _corpus(folder, midi, recordings)
        clusters: dict[int, Any] = {}
        cold: common.Json = {}
        warm_rates: dict[int, list[float]] = {k: [] for k in WORKER_COUNTS}
        warm_seconds: dict[int, dict[str, list[float]]] = {k: {"midi": [], "recording": []} for k in WORKER_COUNTS}
        try:
            for workers in WORKER_COUNTS:
                started = time.perf_counter()
                clusters[workers] = local_cluster(workers)  # the one `idaw analyze` starts
                start_s = time.perf_counter() - started
                summary, _ = _run(folder, outs, clusters[workers].scheduler_address, f"cold-{workers}")
                cold[f"workers_{workers}"] = {
                    "cluster_start_s": round(start_s, 2),
                    "seconds": round(summary.seconds, 2),
                    "files_per_minute": round(summary.files_per_minute, 1),
                }
            for round_index in range(rounds):
                order = WORKER_COUNTS[round_index % 2 :] + WORKER_COUNTS[: round_index % 2]
                for workers in order:
                    summary, lines = _run(folder, outs, clusters[workers].scheduler_address, f"{round_index}-{workers}")
                    warm_rates[workers].append(summary.files_per_minute)
                    for line in lines:
                        kind = "midi" if line["format"] == "midi" else "recording"
                        warm_seconds[workers][kind].append(float(line["seconds"]))
        finally:
            for cluster in reversed(clusters.values()):  # last first: each restores the log level it found
                cluster.close()
    warm: common.Json = {}
    for workers in WORKER_COUNTS:
        rates = warm_rates[workers]
        warm[f"workers_{workers}"] = {
            "files_per_minute": {
                "median": round(statistics.median(rates), 1),
                "min": round(min(rates), 1),
                "max": round(max(rates), 1),
                "runs": len(rates),
            },
            "file_seconds": {kind: _seconds(values) for kind, values in warm_seconds[workers].items()},
        }
    return {
        "corpus": {
            "midi_files": midi,
            "wav_files": recordings,
            "wav_seconds_total": round(audio_seconds, 1),
            "files": midi + recordings,
        },
        "cold": cold,
        "warm": warm,
        "two_over_one": round(
            warm["workers_2"]["files_per_minute"]["median"] / warm["workers_1"]["files_per_minute"]["median"], 3
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
