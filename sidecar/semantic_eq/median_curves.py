"""SAFE-DB's median EQ curve per descriptor: computed from the data once, shipped as a small JSON.

    curves = compute(Path("../shared/data"))     # every word with >= MIN_ROWS SAFE rows, plus warm and bright
    write(Path("sidecar/semantic_eq/weights"), curves)   # -> weights/safe_median_curves.json
    shipped = load()                             # the shipped file (idaw/base/safe_curves.py reads it)
    shipped.curve("warm", freqs)                 # dB at any frequencies (interpolated over log frequency)

A word's median curve is, at each frequency, the median over every SAFE-DB setting labelled with that word
(all contributors) of that setting's dB response (`eqmath.response_db`, 44.1 kHz). The file holds only the
frequency grid, the curves and the row counts: no SAFE metadata column and no contributor pseudonym.

    python -m sidecar.semantic_eq.median_curves --data ../shared/data --out sidecar/semantic_eq/weights/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError
from idaw.base.safe_curves import FILE_NAME, FORMAT, SHIPPED, MedianCurves, load
from sidecar.semantic_eq import data, eqmath

if TYPE_CHECKING:
    from sidecar.semantic_eq.labelled import Labelled

__all__ = [
    "FILE_NAME",
    "SHIPPED",
    "MedianCurves",
    "compute",
    "load",
    "main",
    "median_curve",
    "safe_median_curve",
    "write",
]

F64 = npt.NDArray[np.float64]
MIN_ROWS = 100
"""A word gets a curve when SAFE-DB has at least this many settings for it."""
ALWAYS = ("warm", "bright")
"""Words that get a curve whatever their count (the two SAFE was built around)."""
GRID_POINTS = 96


def median_curve(settings: npt.ArrayLike, freqs: npt.ArrayLike) -> F64:
    """Per-frequency median (dB) of the responses of `settings` (N, 13), natural units; shape (len(freqs),)."""
    rows = np.asarray(settings, dtype=np.float64).reshape(-1, eqmath.NUM_EQ)
    if rows.shape[0] == 0:
        raise IdawError("no settings to take a median curve of")
    out: F64 = np.median(eqmath.response_db(rows, freqs), axis=0)
    return out


def safe_median_curve(lab: Labelled, word: str, freqs: npt.ArrayLike) -> F64:
    """Per-frequency median of the responses of every SAFE-DB setting labelled `word` (all contributors)."""
    rows = [i for i, (w, s) in enumerate(zip(lab.words, lab.sources, strict=True)) if w == word and s == "safe"]
    return median_curve(lab.params[rows], freqs)


def compute(
    data_dir: Path, min_rows: int = MIN_ROWS, freqs: npt.ArrayLike | None = None, always: Sequence[str] = ALWAYS
) -> MedianCurves:
    """The median curves of every SAFE-DB word with >= `min_rows` settings, plus `always`, on `freqs` (default:
    96 log-spaced points, 20 Hz..20 kHz). Raises IdawError when the SAFE-DB file is missing or a word of
    `always` has no settings."""
    grid = eqmath.log_grid(GRID_POINTS) if freqs is None else np.asarray(freqs, dtype=np.float64)
    try:
        rows = data.read_safe(data_dir)
    except OSError as error:
        raise IdawError(f"cannot read SAFE-DB from {data_dir}: {error.strerror or error}") from None
    words, settings = data.safe_arrays(rows)  # only descriptors and the 13 values: no pseudonyms kept
    counts = Counter(words)
    chosen = sorted({w for w, n in counts.items() if n >= min_rows} | set(always))
    missing = [w for w in chosen if counts[w] == 0]
    if missing:
        raise IdawError(f"SAFE-DB in {data_dir} has no settings for {', '.join(missing)}")
    labels = np.array(words, dtype=object)
    curves = {w: median_curve(settings[labels == w], grid) for w in chosen}
    return MedianCurves(grid, curves, {w: int(counts[w]) for w in chosen})


def write(path: Path, curves: MedianCurves) -> Path:
    """Write `curves` as JSON to `path` (a folder gets FILE_NAME inside it); returns the file written."""
    target = path / FILE_NAME if path.is_dir() or str(path).endswith(("/", "\\")) else path
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT,
        "description": "SAFE-DB EQ: per word, the per-frequency median over its settings of the 13-parameter "
        "EQ's dB response (44.1 kHz); rows = settings used. No SAFE metadata or contributor data.",
        "freqs_hz": [round(float(f), 4) for f in curves.freqs],
        "rows": {w: curves.counts[w] for w in sorted(curves.curves)},
        "median_db": {w: [round(float(v), 4) for v in curves.curves[w]] for w in sorted(curves.curves)},
    }
    temporary = target.with_name(target.name + ".tmp")
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in document.items()]  # one line per key
    temporary.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    temporary.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sidecar.semantic_eq.median_curves --data DIR --out DIR_OR_FILE`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sidecar.semantic_eq.median_curves", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the data folder holding safedb/")
    parser.add_argument("--out", type=Path, default=SHIPPED.parent, help=f"folder or file (default {SHIPPED})")
    parser.add_argument("--min-rows", type=int, default=MIN_ROWS, help=f"default {MIN_ROWS}")
    args = parser.parse_args(argv)
    try:
        curves = compute(args.data, args.min_rows)
        written = write(args.out, curves)
    except IdawError as error:
        print(f"median_curves: error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{w} {n}" for w, n in curves.counts.items())
    print(f"wrote {written}: {len(curves.curves)} words ({counts} SAFE rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
