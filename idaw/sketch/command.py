"""`idaw sketch PROMPT -o DIR`: a song sketched from words. Built so far: the structure (stage 1 of the five of
music-generation-architecture.md: structure, stems, render, mix, master), written as DIR/structure.json and
summed up in a few lines; the later stages follow (`idaw master` already does the last one for any mix)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from idaw.base import output_file
from idaw.base.errors import IdawError
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


def run(args: argparse.Namespace) -> int:
    """Run `idaw sketch`; returns the exit code (errors are raised as IdawError)."""
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise IdawError(f"{folder} is a file; --out needs a folder")
    if folder.is_dir() and any(folder.iterdir()) and not args.force:
        raise IdawError(f"{folder} is not empty; pass --force to write into it")
    structure = make_structure(args.prompt, args.duration, args.genre, args.key, args.bpm, args.seed)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IdawError(f"cannot create {folder}: {error.strerror or error}") from None
    target = folder / "structure.json"
    with output_file.replacing(target) as part:
        part.write_text(json.dumps(structure.to_json(), indent=2) + "\n", encoding="utf-8")
    print(summary(structure, target))
    return 0


def summary(structure: Structure, path: Path) -> str:
    """A few lines: what the prompt became, section by section."""
    sections = ", ".join(f"{s.name} {s.bars}" for s in structure.sections)
    lines = [
        f"wrote {path}: {structure.genre} (genre from: {structure.genre_from}), {structure.key}, "
        f"{structure.bpm:g} BPM, "
        f"{structure.bars} bars ({structure.duration_s:.0f} s); mood valence {structure.valence:+.2f}, "
        f"arousal {structure.arousal:+.2f}",
        f"sections (bars): {sections}",
        "stems, rendering and mixing are not built yet; `idaw master` masters any mix",
    ]
    lines.extend(f"note: {note}" for note in structure.notes)
    return "\n".join(lines)
