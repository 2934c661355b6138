"""Reading the descriptor data: SAFE-DB EQ settings, SocialFX (SocialEQ) curves and Audealize word curves.

Only the columns the models need are kept: SAFE-DB's descriptor, contributor pseudonym (column 2, used for
the split and nowhere else) and the 13 parameters. The metadata columns 18-23 are never read into memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.semantic_eq import eqmath

F64 = npt.NDArray[np.float64]

SAFE_FILE = Path("safedb") / "SAFEEqualiserUserData.csv"
SOCIALFX_FILE = Path("socialfx") / "eq_contributions.csv"
AUDEALIZE_FILE = Path("audealize") / "eqdescriptors.json"
JUNK_DESCRIPTORS = frozenset({"test"})
# fmt: off
BAND_FREQS = np.array(
    [20, 50, 83, 120, 161, 208, 259, 318, 383, 455, 537, 628, 729, 843, 971, 1114, 1273, 1452, 1652, 1875, 2126, 2406,
     2719, 3070, 3462, 3901, 4392, 4941, 5556, 6244, 7014, 7875, 8839, 9917, 11124, 12474, 13984, 15675, 17566, 19682],
    dtype=np.float64,
)
# fmt: on
"""The 40 SocialEQ / Audealize band centres (Hz)."""
CURVE_PEAK_DB = 5.0
"""Audealize web API: a curve min-max normalised to [-1, 1] becomes gains of curve x 5 dB (amount 1)."""
CURVE_Q = 4.31
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SafeRow:
    """One SAFE-DB EQ setting: its descriptor (normalised), contributor pseudonym and 13 values."""

    word: str
    contributor: str
    params: tuple[float, ...]


@dataclass(frozen=True)
class Curve:
    """One 40-band descriptor curve (SocialFX contribution or Audealize word) as a dB target."""

    word: str
    source: str
    """'socialfx' or 'audealize'."""
    weights: tuple[float, ...]
    """The 40 relative band weights as published."""


def normalise_word(text: str) -> str:
    """A descriptor as the vocabulary stores it: stripped, lower-case, inner whitespace collapsed."""
    return re.sub(r"\s+", " ", text.strip().lower())


def read_safe(data_dir: Path) -> list[SafeRow]:
    """SAFE-DB EQ rows with the junk descriptor 'test' (and empty descriptors) dropped."""
    rows: list[SafeRow] = []
    with (data_dir / SAFE_FILE).open(encoding="utf-8", errors="replace", newline="") as handle:
        for record in csv.reader(handle):
            word = normalise_word(record[1])
            if not word or word in JUNK_DESCRIPTORS:
                continue
            rows.append(SafeRow(word, record[2], tuple(float(x) for x in record[5:18])))
    return rows


def read_socialfx(data_dir: Path) -> list[Curve]:
    """Every SocialEQ contribution: (descriptor, 40 weights); the header is skipped (it lacks one column)."""
    curves: list[Curve] = []
    with (data_dir / SOCIALFX_FILE).open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for record in reader:
            if len(record) != 44:
                continue
            word = normalise_word(record[0])
            values = tuple(float(x) for x in record[4:44])
            if word and all(math.isfinite(v) for v in values):
                curves.append(Curve(word, "socialfx", values))
    return curves


def read_audealize(data_dir: Path) -> list[Curve]:
    """Every Audealize EQ word map entry as a Curve."""
    entries = json.loads((data_dir / AUDEALIZE_FILE).read_text(encoding="utf-8"))
    return [
        Curve(normalise_word(e["word"]), "audealize", tuple(float(x) for x in e["settings"]))
        for e in entries
        if normalise_word(e["word"])
    ]


def curve_to_db(weights: npt.ArrayLike, freqs: npt.ArrayLike, rate: float = eqmath.REFERENCE_RATE) -> F64:
    """The dB response the Audealize web player gives a 40-band curve, zero-mean over `freqs`.

    The curve is min-max normalised to [-1, 1] and scaled by 5 dB; the response is that of 40 peaking biquads
    (Q 4.31) at the band centres. The mean over the log-frequency grid is removed: the descriptor is a spectral
    shape, and the crowd-sourcing interface had no notion of overall level.
    """
    w = np.asarray(weights, dtype=np.float64)
    span = w.max() - w.min()
    gains = np.zeros_like(w) if span <= 0 else CURVE_PEAK_DB * (2.0 * (w - w.min()) / span - 1.0)
    f = np.asarray(freqs, dtype=np.float64)
    omega_c = 2.0 * math.pi * BAND_FREQS / rate
    w_axis = 2.0 * math.pi * f / rate
    amp = 10.0 ** (gains / 40.0)
    alpha = np.sin(omega_c) / (2.0 * CURVE_Q)
    c2 = -2.0 * np.cos(omega_c)
    a0 = 1.0 + alpha / amp
    b0, b1, b2 = (1.0 + alpha * amp) / a0, c2 / a0, (1.0 - alpha * amp) / a0
    a1, a2 = c2 / a0, (1.0 - alpha / amp) / a0
    cos1, cos2 = np.cos(w_axis)[None, :], np.cos(2.0 * w_axis)[None, :]
    b0, b1, b2, a1, a2 = (x[:, None] for x in (b0, b1, b2, a1, a2))
    num = b0 * b0 + b1 * b1 + b2 * b2 + 2.0 * (b0 * b1 + b1 * b2) * cos1 + 2.0 * b0 * b2 * cos2
    den = 1.0 + a1 * a1 + a2 * a2 + 2.0 * (a1 + a1 * a2) * cos1 + 2.0 * a2 * cos2
    db: F64 = (10.0 * np.log10(num / den)).sum(axis=0)
    out: F64 = db - db.mean()
    return out


def split_contributors(
    rows: list[SafeRow], seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, str]:
    """Contributor pseudonym -> 'train' | 'val' | 'test', so that no contributor is in two splits.

    Greedy and deterministic for a seed: contributors are taken largest first (ties in a seeded hash order) and
    each goes to the split furthest below its target share of warm+bright rows (then of all rows).
    """
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        per[row.contributor][row.word] += 1
    key_rows = {c: v["warm"] + v["bright"] for c, v in per.items()}
    all_rows = {c: sum(v.values()) for c, v in per.items()}
    total_key, total_all = max(1, sum(key_rows.values())), max(1, sum(all_rows.values()))

    def tie(c: str) -> str:
        return hashlib.sha256(f"{seed}:{c}".encode()).hexdigest()

    order = sorted(per, key=lambda c: (-key_rows[c], -all_rows[c], tie(c)))
    have_key = dict.fromkeys(SPLITS, 0.0)
    have_all = dict.fromkeys(SPLITS, 0.0)
    assignment: dict[str, str] = {}
    for c in order:

        def deficit(s: str, c: str = c) -> tuple[float, float]:
            frac = fractions[SPLITS.index(s)]
            key = frac - have_key[s] / total_key if key_rows[c] else 0.0
            return (key, frac - have_all[s] / total_all)

        best = max(SPLITS, key=deficit)
        assignment[c] = best
        have_key[best] += key_rows[c]
        have_all[best] += all_rows[c]
    return assignment


def safe_arrays(rows: list[SafeRow]) -> tuple[list[str], F64]:
    """(descriptor per row, settings array (N, 13) in natural units)."""
    return [r.word for r in rows], np.array([r.params for r in rows], dtype=np.float64).reshape(-1, eqmath.NUM_EQ)
