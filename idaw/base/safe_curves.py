"""SAFE-DB's median EQ curve per descriptor, as shipped: the reader of safe_median_curves.json.

    shipped = load()                    # sidecar/semantic_eq/weights/safe_median_curves.json: no data needed
    shipped.curve("warm", freqs)        # dB at any frequencies (interpolated over log frequency)

The file is made from SAFE-DB by the semantic EQ's training (sidecar/semantic_eq/median_curves.py computes and
writes it, `idaw train semantic-eq`) and read by `idaw demo` (its picture) and the evaluation. Both sides read it
here, so the format has one home. It lives with the semantic EQ's weights: `SHIPPED` is a documented file path,
not an import of the sidecar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError

F64 = npt.NDArray[np.float64]
FILE_NAME = "safe_median_curves.json"
SHIPPED = Path(__file__).resolve().parents[2] / "sidecar" / "semantic_eq" / "weights" / FILE_NAME
"""The shipped file `idaw demo` (and anything else that needs SAFE's medians without the data) reads."""
FORMAT = "idaw-safe-median-curves-1"
"""The file's `format` field; a file with another is refused."""


@dataclass(frozen=True)
class MedianCurves:
    """SAFE-DB median curves: `freqs` (Hz, log grid), word -> dB on that grid, word -> SAFE rows used."""

    freqs: F64
    curves: dict[str, F64]
    counts: dict[str, int]

    def curve(self, word: str, freqs: npt.ArrayLike | None = None) -> F64:
        """The median curve of `word` in dB, on the stored grid or interpolated over log frequency at `freqs`.

        Raises IdawError naming the words there are when `word` has no curve.
        """
        if word not in self.curves:
            raise IdawError(f"no SAFE median curve for '{word}'; there are: {', '.join(sorted(self.curves))}")
        stored = self.curves[word]
        if freqs is None:
            return stored.copy()
        at = np.log(np.clip(np.asarray(freqs, dtype=np.float64), self.freqs[0], self.freqs[-1]))
        out: F64 = np.interp(at, np.log(self.freqs), stored)
        return out


def load(path: Path | None = None) -> MedianCurves:
    """The curves in `path` (a file, or a folder holding FILE_NAME; default: the shipped SHIPPED file). Raises
    IdawError when it is missing or wrong."""
    source = SHIPPED if path is None else (path / FILE_NAME if path.is_dir() else path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT!r}")
        freqs = np.asarray(document["freqs_hz"], dtype=np.float64)
        curves = {str(w): np.asarray(v, dtype=np.float64) for w, v in document["median_db"].items()}
        counts = {str(w): int(n) for w, n in document["rows"].items()}
        if any(c.shape != freqs.shape for c in curves.values()) or set(counts) != set(curves):
            raise ValueError("curves and grid or counts do not match")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IdawError(f"cannot load SAFE median curves from {source}: {error}") from None
    return MedianCurves(freqs, curves, counts)
