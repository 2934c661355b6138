"""Per-beat chord labels from music21's chordify, with a template fallback for beats full of passing tones."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

QUALITIES = (
    "major",
    "minor",
    "diminished",
    "augmented",
    "dominant7",
    "major7",
    "minor7",
    "half-diminished7",
    "diminished7",
    "suspended",
)
QUALITY_INDEX = {q: i for i, q in enumerate(QUALITIES)}
TEMPLATES: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "diminished": (0, 3, 6),
    "augmented": (0, 4, 8),
    "dominant7": (0, 4, 7, 10),
    "major7": (0, 4, 7, 11),
    "minor7": (0, 3, 7, 10),
    "half-diminished7": (0, 3, 6, 10),
    "diminished7": (0, 3, 6, 9),
    "suspended": (0, 5, 7),
}


def match_template(weights: npt.NDArray[np.float64], bass: int) -> tuple[int, int]:
    """(root pc, quality index) best explaining a 12-bin pitch-class weight vector; (-1, -1) when empty.

    Score = weight inside the template - weight outside - 0.3 * (missing template tones) + 0.2 if the root is the bass;
    ties go to the simpler (earlier) quality.
    """
    if weights.sum() <= 0:
        return -1, -1
    w = weights / weights.sum()
    best, best_score = (-1, -1), -np.inf
    for q_index, quality in enumerate(QUALITIES):
        for root in range(12):
            members = [(root + i) % 12 for i in TEMPLATES[quality]]
            inside = float(w[members].sum())
            missing = sum(1 for m in members if w[m] <= 0)
            score = inside - (1.0 - inside) - 0.3 * missing + (0.2 if root == bass else 0.0)
            if score > best_score + 1e-9:
                best, best_score = (root, q_index), score
    return best


def music21_quality(chord: Any) -> str | None:
    """A QUALITIES name for a music21 Chord, or None when music21 does not see a plain tertian chord."""
    pcs = set(chord.pitchClasses)
    if len(pcs) < 2:
        return None
    if chord.isDominantSeventh():
        return "dominant7"
    if chord.isDiminishedSeventh():
        return "diminished7"
    if chord.isHalfDiminishedSeventh():
        return "half-diminished7"
    root = chord.root().pitchClass
    rel = {(pc - root) % 12 for pc in pcs}
    if chord.isSeventh():
        if rel >= {4, 11}:
            return "major7"
        if rel >= {3, 10}:
            return "minor7"
        return None
    quality = str(chord.quality)
    if quality in ("major", "minor", "diminished", "augmented") and len(pcs) <= 3 and (len(pcs) == 3 or 7 not in rel):
        return quality
    return None


def label_beats(score: Any, n_beats: int, beat_ql: float, shift: float) -> npt.NDArray[np.int16]:
    """int16 (n_beats, 3) rows of (root pc, quality index, bass pc), one per beat.

    Beat b spans offsets [b * beat_ql - shift, (b + 1) * beat_ql - shift). The chordify slice sounding at the
    beat's start is used when music21 calls it a plain triad or seventh chord; otherwise the beat's pitch classes,
    weighted by duration, are matched against TEMPLATES. Beats with no notes get -1.
    """
    from music21 import chord as m21chord

    slices = [
        (float(c.offset), float(c.offset + c.quarterLength), c)
        for c in score.chordify().flatten().getElementsByClass(m21chord.Chord)
    ]
    out = np.full((n_beats, 3), -1, dtype=np.int16)
    j = 0
    for b in range(n_beats):
        start, end = b * beat_ql - shift, (b + 1) * beat_ql - shift
        while j < len(slices) and slices[j][1] <= start:
            j += 1
        inside = [s for s in slices[j:] if s[0] < end and s[1] > start]
        if not inside:
            continue
        first = inside[0][2]
        quality = music21_quality(first)
        bass = int(first.bass().pitchClass)
        if quality is not None:
            root = int(first.root().pitchClass)
        else:
            weights = np.zeros(12)
            for s0, s1, c in inside:
                for pc in c.pitchClasses:
                    weights[pc] += min(s1, end) - max(s0, start)
            root, q_index = match_template(weights, bass)
            quality = QUALITIES[q_index] if q_index >= 0 else None
        if quality is not None:
            out[b] = (root, QUALITY_INDEX[quality], bass)
    return out


# Our QUALITIES -> the architecture's CHORD_QUALITIES (maj, min, dom7, dim, aug); None -> class X (other).
TO_ARCH_QUALITY: dict[str, str | None] = {
    "major": "maj",
    "minor": "min",
    "diminished": "dim",
    "augmented": "aug",
    "dominant7": "dom7",
    "major7": "maj",
    "minor7": "min",
    "half-diminished7": "dim",
    "diminished7": "dim",
    "suspended": None,
}


def to_class(root: int, quality: int) -> int:
    """Chord class (`architectures.chord_class`; 60 = N for no chord, 61 = X for other) of a (root, quality) row."""
    from realtime.nets.architectures import NO_CHORD, OTHER_CHORD, chord_class

    if root < 0 or quality < 0:
        return NO_CHORD
    arch = TO_ARCH_QUALITY[QUALITIES[quality]]
    return OTHER_CHORD if arch is None else chord_class(int(root), arch)
