"""`idaw sketch PROMPT -o DIR`: a song sketched from words, in the five stages of music-generation-architecture.md:
structure (idaw/sketch/structure.py), stems as MIDI from the core's generator (stems.py), render with fluidsynth,
mix through the core and master (mixdown.py). Writes structure.json, song.mid (four tracks), stems/*.wav, song.wav
and report.png (report.py), with a progress bar over the stages, and sums it up in a few lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from idaw.base.errors import IdawError, check_in_range
from idaw.listen.corpus import SCHEDULER_FORMS, check_scheduler_address, check_workers, cores
from idaw.sketch.song import SongResult, write_song
from idaw.sketch.structure import (
    BPM_RANGE,
    DEFAULT_DURATION_S,
    DURATION_RANGE_S,
    Structure,
    genres,
    make_structure,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw sketch`."""
    parser.add_argument("prompt", help='what the song should be, e.g. "upbeat indie rock song about summer"')
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to write the sketch into")
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="S",
        help=f"length in seconds ({DURATION_RANGE_S[0]:g}..{DURATION_RANGE_S[1]:g}; default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--genre",
        default=None,
        help="genre instead of the one the prompt suggests: " + ", ".join(g.name for g in genres()),
    )
    parser.add_argument("--key", default=None, help="key instead of the one the mood suggests, e.g. 'A minor', 'Eb'")
    parser.add_argument(
        "--bpm",
        type=float,
        default=None,
        help=f"tempo instead of the genre's, placed by the mood ({BPM_RANGE[0]:g}..{BPM_RANGE[1]:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--force", action="store_true", help="write into DIR even when it is not empty")
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        metavar="N",
        help="make N variants (seeds SEED..SEED+N-1) into DIR/variant-K, in parallel on Dask (default 1: DIR itself)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help=f"with --count: the Dask cluster at {SCHEDULER_FORMS}, whose workers see DIR (default: a local one)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=None,
        help=f"with --count: worker processes of the local cluster (default: one per core, {cores()} here)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `idaw sketch`; returns the exit code (errors are raised as IdawError)."""
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise IdawError(f"{folder} is a file; --out needs a folder")
    if folder.is_dir() and any(folder.iterdir()) and not args.force:
        raise IdawError(f"{folder} is not empty; pass --force to write into it")
    from idaw.sketch.variants import MAX_COUNT, write_variants

    count = int(check_in_range("--count", args.count, (1, MAX_COUNT)))
    if count == 1 and (args.scheduler is not None or args.workers is not None):
        raise IdawError("--scheduler and --workers are for --count 2 or more")
    scheduler = check_scheduler_address(args.scheduler) if args.scheduler is not None else None
    workers = check_workers(args.workers) if args.workers is not None else cores()
    began = time.perf_counter()
    structures = [
        make_structure(args.prompt, args.duration, args.genre, args.key, args.bpm, args.seed + k) for k in range(count)
    ]
    structure_s = round(time.perf_counter() - began, 3)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IdawError(f"cannot create {folder}: {error.strerror or error}") from None
    progress = sys.stderr.isatty()
    if count == 1:
        song = write_song(structures[0], folder, models=None, progress=progress)
        song.seconds = {"structure": structure_s, **song.seconds}
        print(summary(structures[0], folder, song))
        return 0
    variants = write_variants(structures, folder, scheduler, workers, progress)
    failed = 0
    for variant in variants:
        if variant.result is None:
            failed += 1
            print(f"{variant.folder}: failed: {variant.error}")
        else:
            print(summary(variant.structure, variant.folder, variant.result))
    print(f"{count - failed} of {count} variants written into {folder} ({time.perf_counter() - began:.1f} s)")
    return 1 if failed else 0


def summary(structure: Structure, folder: Path, song: SongResult) -> str:
    """A few lines: what the prompt became, section by section, and what was written."""
    sections = ", ".join(f"{s.name} {s.bars}" for s in structure.sections)
    total = sum(song.seconds.values())
    lines = [
        f"wrote {folder}: song.wav, song.mid, stems/, structure.json, report.png",
        f"{structure.genre} (genre from: {structure.genre_from}), {structure.key}, {structure.bpm:g} BPM, "
        f"{structure.bars} bars ({structure.duration_s:.0f} s); mood valence {structure.valence:+.2f}, "
        f"arousal {structure.arousal:+.2f}",
        f"sections (bars): {sections}",
        f"{song.notes} notes, drums by {song.drums}; master {song.loudness_lufs:.1f} LUFS, "
        f"true peak {song.true_peak_dbtp:.1f} dBTP; "
        f"{total:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in song.seconds.items()) + ")",
    ]
    lines.extend(f"note: {note}" for note in [*structure.notes, *song.remarks])
    return "\n".join(lines)
