"""Form: the sections of a piece found by self-similarity between its bars, labelled A, B, A', ...

Hand-written (music21 has no form analysis); numpy does the matrix work. Steps:

1. One feature vector per bar (the score's measures; a pickup is a bar of its own) made of three unit-length blocks,
   weighted so that the dot product of two bars is a similarity in [0, 1]:
   - 0.5 × chroma: duration-weighted pitch classes of all voices sounding in the bar (a 13th entry marks silence);
   - 0.2 × melody rhythm: the melody's onsets on the bar's grid (rhythm.metric_grid; an extra entry: no onset);
   - 0.3 × melody intervals: at each onset step, the interval from the previous melody note of the same bar
     (-12..+12, clipped; one more class for the bar's first note), one-hot: transposition-free, and a bar's
     pattern does not depend on what precedes it.
2. The bar-by-bar self-similarity matrix S = F Fᵀ.
3. Repeats: for each lag k, runs of at least `min_run` bars (4, or a quarter of a piece under 16 bars, at least 2)
   where S[i, i + k] >= 0.85 (or its mean with the two diagonal neighbours is, so one varied bar does not break
   a repeat), the copies not overlapping (run <= k) and the block not uniform (mean similarity of its distinct
   bars under 0.85: an ostinato repeats at every lag and says nothing).
4. Boundaries, accepted in this order where at least `min_section` bars (bars // 8, at least 2) from the ends of
   the piece and from every boundary accepted so far:
   - the start of both copies of each repeat, longest repeats first;
   - peaks of two novelty curves, strongest first. Both slide a Gaussian-tapered checkerboard kernel (Foote 2000)
     of 2 × min(4, bars // 4, at least 2) bars along a similarity matrix (diagonal left out); the novelty is the
     weighted mean similarity within the two sides minus across them, in [-1, 1]. On S (the notes change: new
     key, new texture) a peak must reach 0.08 and the curve's mean + 2 standard deviations; on the similarity of
     the bars' repetition profiles (at which lags each bar recurs, Serrà et al. 2012: this changes where a
     repeated block gives way to new material even when bars differ as much inside sections as across) a peak
     must reach 0.5.
5. Labels, section by section: the similarity to each earlier section is S summed along the best alignment of
   the two (any shift) over the longer length. The best earlier match at >= 0.98 (equal up to detail) gives its
   label; at >= 0.7 (a close variant: most bars match) its letter with one more prime than that letter's variants
   so far (A', A'', ...); otherwise the next unused letter.

A piece shorter than 4 bars (or without notes) is one section A. `analyze_form(notes)` returns, in order (`time`
and `end_time` in seconds only where the file gives a tempo)::

    [{"offset": 0.0, "end": 32.0, "label": "A", "bars": 8, "time": 0.0, "end_time": 16.0}, ...]

`bars` counts the bars (measures) of the section.
"""

from __future__ import annotations

import itertools
import string
from typing import NamedTuple, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from idaw.theory.melody import melody_line
from idaw.theory.notes import Notes
from idaw.theory.rhythm import BarSpan, bar_locator, bar_spans, metric_grid

FloatArray = npt.NDArray[np.float64]

CHROMA_WEIGHT, RHYTHM_WEIGHT, INTERVAL_WEIGHT = 0.5, 0.2, 0.3
REPEAT_SIMILARITY = 0.85
NOVELTY_PEAK = 0.08
STRUCTURE_PEAK = 0.5
MIN_SECTION_BARS = 2
SAME_LABEL = 0.98
VARIANT_LABEL = 0.7
_EPS = 1e-6


class Section(TypedDict):
    """One section as `analyze_form` returns it (module docstring)."""

    offset: float
    end: float
    time: NotRequired[float]
    end_time: NotRequired[float]
    label: str
    bars: int


def _r(value: float) -> float:
    """A plain float rounded to 4 decimals (the JSON convention of idaw.theory)."""
    return round(float(value), 4)


def _unit(block: FloatArray, empty_index: int) -> FloatArray:
    """`block` scaled to unit length; an all-zero block becomes a one-hot at `empty_index` (silence matches silence)."""
    norm = float(np.linalg.norm(block))
    if norm <= _EPS:
        block = np.zeros_like(block)
        block[empty_index] = 1.0
        return block
    return block / norm


def bar_features(notes: Notes, spans: list[BarSpan]) -> FloatArray:
    """One row per bar: the weighted chroma, melody-rhythm and melody-interval blocks (module docstring)."""
    grid = metric_grid(notes)
    steps = grid.steps_per_bar
    chroma = np.zeros((len(spans), 13))
    rhythm = np.zeros((len(spans), steps + 1))
    intervals = np.zeros((len(spans), steps * 26 + 1))
    locate = bar_locator(spans)
    for event in notes.events:
        for bar in range(locate(event.offset), len(spans)):
            span = spans[bar]
            if span.start >= event.end - _EPS:
                break
            chroma[bar, event.pitch % 12] += max(0.0, min(event.end, span.end) - max(event.offset, span.start))
    previous: tuple[int, int] | None = None  # (bar, pitch) of the previous melody note
    for note in melody_line(notes):
        bar = locate(note.offset)
        step = round((note.offset - spans[bar].grid_start) / grid.step) % steps
        rhythm[bar, step] = 1.0
        # Intervals inside the bar only: a bar's pattern then does not depend on what came before it.
        interval = 25 if previous is None or previous[0] != bar else max(-12, min(12, note.pitch - previous[1])) + 12
        intervals[bar, step * 26 + interval] = 1.0
        previous = (bar, note.pitch)
    rows = [
        np.concatenate(
            [
                np.sqrt(CHROMA_WEIGHT) * _unit(chroma[i], 12),
                np.sqrt(RHYTHM_WEIGHT) * _unit(rhythm[i], steps),
                np.sqrt(INTERVAL_WEIGHT) * _unit(intervals[i], steps * 26),
            ]
        )
        for i in range(len(spans))
    ]
    return np.array(rows, dtype=np.float64)


def self_similarity(features: FloatArray) -> FloatArray:
    """Bar-by-bar similarity in [0, 1] (1 on the diagonal)."""
    return np.asarray(np.clip(features @ features.T, 0.0, 1.0), dtype=np.float64)


def _diagonal_smooth(similarity: FloatArray) -> FloatArray:
    """Each entry averaged with its neighbours along the diagonal (bars i±1 against j±1): one varied bar in a
    repeat no longer breaks it."""
    n = len(similarity)
    total = similarity.copy()
    count = np.ones_like(similarity)
    total[1:, 1:] += similarity[:-1, :-1]
    count[1:, 1:] += 1
    total[:-1, :-1] += similarity[1:, 1:]
    count[:-1, :-1] += 1
    smooth = total / count
    smooth[np.arange(n), np.arange(n)] = 1.0
    return np.asarray(smooth, dtype=np.float64)


def novelty_curve(similarity: FloatArray, half_width: int) -> FloatArray:
    """Novelty at each bar line t (between bars t-1 and t), t = 0..n: checkerboard kernel, in [-1, 1]."""
    n = len(similarity)
    offsets = np.arange(-half_width, half_width) + 0.5
    taper = np.exp(-0.5 * (offsets / (0.5 * half_width)) ** 2)
    sign = np.sign(offsets)
    kernel = np.outer(sign * taper, sign * taper)
    # A bar's similarity to itself (1) says nothing about a boundary: leave the diagonal out of the sides.
    np.fill_diagonal(kernel, 0.0)
    curve = np.zeros(n + 1)
    for t in range(1, n):
        index = np.arange(t - half_width, t + half_width)
        inside = (index >= 0) & (index < n)
        k = kernel[np.ix_(inside, inside)]
        s = similarity[np.ix_(index[inside], index[inside])]
        within, across = k > 0, k < 0
        if not within.any() or not across.any():
            continue
        inner = (k[within] * s[within]).sum() / k[within].sum()
        outer = (k[across] * s[across]).sum() / k[across].sum()
        curve[t] = float(inner - outer)
    return curve


class Repeat(NamedTuple):
    """Bars start..start+length-1 come back, similar bar for bar, at start+lag."""

    length: int
    lag: int
    start: int


def find_repeats(similarity: FloatArray, min_run: int) -> list[Repeat]:
    """Non-overlapping repeated blocks of >= min_run bars (on the diagonally smoothed matrix), longest first."""
    # A bar pair repeats when it is similar itself or on average with its diagonal neighbours (bridging one varied
    # bar inside a repeat without cutting the repeat short at its ends).
    smooth = np.maximum(similarity, _diagonal_smooth(similarity))
    n = len(similarity)
    repeats: list[Repeat] = []
    for lag in range(min_run, n):
        diagonal = np.diagonal(smooth, offset=lag) >= REPEAT_SIMILARITY
        start: int | None = None
        for i, similar in enumerate([*diagonal.tolist(), False]):
            if similar and start is None:
                start = i
            elif not similar and start is not None:
                length = i - start
                block = similarity[start : start + length, start : start + length]
                # A block of near-identical bars (an ostinato) repeats at every lag: no structure in that.
                uniform = (block.sum() - length) / max(1, length * (length - 1)) >= REPEAT_SIMILARITY
                if min_run <= length <= lag and not uniform:
                    repeats.append(Repeat(length, lag, start))
                start = None
    repeats.sort(key=lambda r: (-r.length, r.lag, r.start))
    return repeats


def structure_similarity(repeats: list[Repeat], n: int) -> FloatArray:
    """Bar-by-bar similarity of the bars' repetition profiles (at which lags each bar comes back or came from):
    bars of one section share a profile even where their notes differ (Serrà et al. 2012's structure features)."""
    profile = np.zeros((n, 2 * n + 1))
    for repeat in repeats:
        for i in range(repeat.start, repeat.start + repeat.length):
            profile[i, n + repeat.lag] = 1.0
            profile[i + repeat.lag, n - repeat.lag] = 1.0
    profile[:, 2 * n] = profile[:, : 2 * n].sum(axis=1) == 0  # bars that repeat nothing share that
    unit = profile / np.linalg.norm(profile, axis=1, keepdims=True)
    return np.asarray(unit @ unit.T, dtype=np.float64)


def _peaks(curve: FloatArray, floor: float) -> list[int]:
    """Interior local maxima of `curve` at or above `floor`, strongest first."""
    peaks = [t for t in range(1, len(curve) - 1) if curve[t] >= floor and curve[t] >= max(curve[t - 1], curve[t + 1])]
    return sorted(peaks, key=lambda t: -curve[t])


def section_bounds(similarity: FloatArray) -> list[int]:
    """Bar indices where sections start, plus the number of bars at the end (rules in the module docstring)."""
    n = len(similarity)
    min_section = max(MIN_SECTION_BARS, n // 8)
    repeats = find_repeats(similarity, max(2, min(4, n // 4)))
    half_width = max(2, min(4, n // 4))
    notes_novelty = novelty_curve(similarity, half_width)
    structure_novelty = novelty_curve(structure_similarity(repeats, n), half_width)
    # Bar-level similarity is noisy (every bar has its own chord and figure): a notes peak must stand out from
    # the piece's own novelty curve as well as pass an absolute floor.
    interior = notes_novelty[1:n]
    notes_floor = max(NOVELTY_PEAK, float(interior.mean() + 2 * interior.std()))
    candidates = [bar for r in repeats for bar in (r.start, r.start + r.lag)]
    peaks = {t: float(structure_novelty[t]) for t in _peaks(structure_novelty, STRUCTURE_PEAK)}
    for t in _peaks(notes_novelty, notes_floor):
        peaks[t] = max(peaks.get(t, 0.0), float(notes_novelty[t]))
    candidates.extend(sorted(peaks, key=lambda t: -peaks[t]))
    accepted = [0, n]
    for t in candidates:
        if all(abs(t - a) >= min_section for a in accepted):
            accepted.append(t)
    return sorted(accepted)


def _segment_similarity(similarity: FloatArray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Similarity of two bar ranges: S summed along their best-matching alignment (any shift of one against the
    other), over the longer length; 1 for identical ranges, lower for partial or shifted copies."""
    block = similarity[a[0] : a[1], b[0] : b[1]]
    best = max(float(np.trace(block, offset=shift)) for shift in range(-(a[1] - a[0]) + 1, b[1] - b[0]))
    return best / max(a[1] - a[0], b[1] - b[0])


def _letter(index: int) -> str:
    """The index-th new label: A..Z, then A1..Z1, ..."""
    letter = string.ascii_uppercase[index % 26]
    return letter if index < 26 else f"{letter}{index // 26}"


def section_labels(similarity: FloatArray, bounds: list[int]) -> list[str]:
    """A, B, ... per section; repeats take the earlier label, close variants add primes (A', A'')."""
    segments = list(itertools.pairwise(bounds))
    labels: list[str] = []
    letters = 0
    variants: dict[str, int] = {}
    for index, segment in enumerate(segments):
        scores = [(_segment_similarity(similarity, segments[j], segment), -j) for j in range(index)]
        best, negative_j = max(scores, default=(0.0, 0))
        if best >= SAME_LABEL:
            labels.append(labels[-negative_j])
        elif best >= VARIANT_LABEL:
            letter = labels[-negative_j].rstrip("'")
            variants[letter] = variants.get(letter, 0) + 1
            labels.append(letter + "'" * variants[letter])
        else:
            labels.append(_letter(letters))
            letters += 1
    return labels


def analyze_form(notes: Notes) -> list[Section]:
    """The sections of `notes` in order, JSON-ready (shape and rules in the module docstring)."""
    spans = bar_spans(notes)
    if not notes.events or len(spans) < 4:
        bounds = [0, len(spans)]
        labels = ["A"]
    else:
        similarity = self_similarity(bar_features(notes, spans))
        bounds = section_bounds(similarity)
        labels = section_labels(similarity, bounds)
    sections: list[Section] = []
    for (first, last), label in zip(itertools.pairwise(bounds), labels, strict=True):
        offset = 0.0 if first == 0 else spans[first].start
        end = notes.duration if last == len(spans) else spans[last].start
        section = Section(offset=_r(offset), end=_r(end), label=label, bars=last - first)
        start_seconds, end_seconds = notes.seconds_at(offset), notes.seconds_at(end)
        if start_seconds is not None and end_seconds is not None:
            section["time"] = _r(start_seconds)
            section["end_time"] = _r(end_seconds)
        sections.append(section)
    return sections
