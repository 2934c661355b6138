"""Rhythm descriptors of a piece: note density, syncopation, metric weight, groove template and groove consistency.

Everything here is hand-written (music21 has no syncopation or groove measures); it reads `Notes` only. All
voices count together: an *onset* is a distinct attack time, so a four-note chord is one onset (and four notes).

The metric grid: four steps per beat in simple meters (a 16th-note grid in 2/4, 3/4, 4/4; eighths in 2/2), three
per beat in compound meters (the eighth notes of 6/8, 9/8, 12/8). Onsets between grid steps (triplets in a
simple meter) are counted at the nearest step by the syncopation and groove measures. Bars are the score's
measures; a pickup measure holds the last steps of a bar. A piece with meter changes is read on its first time
signature.

`analyze_rhythm(notes)` returns (floats rounded to 4 decimals)::

    {
      "grid": {"step": 0.25, "steps_per_beat": 4, "steps_per_bar": 16, "compound": false},
      "density": {
        "onsets": 40,            # distinct attack times, all voices together
        "notes": 120,            # note events (a chord counts each of its notes)
        "per_beat": 1.25,        # onsets per beat (beats = duration / beat length)
        "per_bar": 5.0,          # onsets per bar (bars = duration / bar length)
        "per_second": 2.5        # only where the file gives a tempo
      },
      "syncopation": {
        "method": "longuet-higgins-lee",
        "index": 0.35,           # summed syncopation strength / onsets (0 = none)
        "syncopated_onsets": 7   # onsets that start a syncopation
      },
      "metric_weight": {"downbeat": 0.25, "beat": 0.5, "division": 0.2, "finer": 0.05},
      "groove_template": [1.0, 0.0, 0.5, ...],   # steps_per_bar values in [0, 1]
      "groove_consistency": 0.9375               # null with fewer than two bars or no notes
    }

- syncopation: Longuet-Higgins & Lee (1984) over the bar's metric hierarchy (bar 0, then each finer level one
  lower: in 4/4 half bar -1, beat -2, eighth -3, 16th -4; in 6/8 beat -1, eighth -2). An onset at weight w that is
  followed, before the next onset (across bar lines; the last one until the end of the piece), by silent or held
  grid steps whose strongest weight w' > w adds w' - w. The index is the sum divided by the number of onsets, so
  straight beats give 0 and pieces of any length compare.
- metric_weight: share of onsets exactly on the downbeat, on another beat, on the beat's first division (the
  half beat in simple meters, the third of a beat in compound ones) or anywhere finer (including off-grid).
- groove_template: for each grid step of the bar, the share of bars (that reach that step) with an onset there.
- groove_consistency: MusPy's measure, 1 - mean Hamming distance between consecutive bars' onset patterns on the
  grid, normalised by the number of steps compared (steps both bars reach; all of them for full bars).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from idaw.theory.notes import Notes

_EPS = 1e-6


class GridInfo(TypedDict):
    step: float
    steps_per_beat: int
    steps_per_bar: int
    compound: bool


class Density(TypedDict):
    onsets: int
    notes: int
    per_beat: float
    per_bar: float
    per_second: NotRequired[float]


class Syncopation(TypedDict):
    method: str
    index: float
    syncopated_onsets: int


class MetricWeight(TypedDict):
    downbeat: float
    beat: float
    division: float
    finer: float


class RhythmAnalysis(TypedDict):
    """What `analyze_rhythm` returns (module docstring)."""

    grid: GridInfo
    density: Density
    syncopation: Syncopation
    metric_weight: MetricWeight
    groove_template: list[float]
    groove_consistency: float | None


def _r(value: float) -> float:
    """A plain float rounded to 4 decimals (the JSON convention of idaw.theory)."""
    return round(float(value), 4)


@dataclass(frozen=True)
class BarSpan:
    """One bar of the piece: the measure's extent and where a full bar would start (earlier for a pickup)."""

    start: float
    """Offset where the measure starts."""
    end: float
    """Offset where the measure ends."""
    grid_start: float
    """Offset of the bar's downbeat: `start` for a full measure, `end - bar_length` for a pickup."""


def bar_spans(notes: Notes) -> list[BarSpan]:
    """The bars of the piece in order: the score's measures, or a grid of full bars where it has none.

    A first measure shorter than a bar is a pickup: its downbeat lies before the start of the piece. A short measure
    right after a short measure that, together, fit in one bar continues that bar (a bar split at a phrase end, as
    chorale editions do at fermatas): it keeps the previous measure's downbeat.
    """
    bar = notes.bar_length if notes.bar_length > _EPS else 4.0
    if not notes.measure_offsets:
        count = max(1, int(-(-notes.duration // bar)))
        return [BarSpan(i * bar, min((i + 1) * bar, max(notes.duration, bar)), i * bar) for i in range(count)]
    starts = sorted(notes.measure_offsets)
    ends = [*starts[1:], max(notes.duration, starts[-1] + _EPS)]
    spans: list[BarSpan] = []
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if end - start <= _EPS:
            continue
        short = end - start < bar - _EPS
        if index == 0 and short:
            spans.append(BarSpan(start, end, end - bar))
        elif (
            short
            and spans
            and spans[-1].end - spans[-1].grid_start < bar - _EPS
            and end <= spans[-1].grid_start + bar + _EPS
        ):
            spans.append(BarSpan(start, end, spans[-1].grid_start))
        else:
            spans.append(BarSpan(start, end, start))
    return spans


def bar_locator(spans: list[BarSpan]) -> Callable[[float], int]:
    """A function offset -> index of the bar in `spans` holding it (the first or last bar outside the piece)."""
    starts = [span.start for span in spans]

    def locate(offset: float) -> int:
        index = bisect.bisect_right(starts, offset + _EPS) - 1
        return min(max(index, 0), len(spans) - 1)

    return locate


@dataclass(frozen=True)
class MetricGrid:
    """The grid the rhythm measures count on and the weight of each of its steps in the bar."""

    step: float
    """Grid step in quarter notes."""
    steps_per_beat: int
    steps_per_bar: int
    compound: bool
    weights: tuple[int, ...]
    """Longuet-Higgins & Lee weight of each step of the bar: 0 on the downbeat, one less per finer level."""


def _is_compound(beat_length: float) -> bool:
    """A dotted beat (1.5 quarter notes in 6/8, 0.75 in 6/16, 3.0 in 6/4) divides in three: a compound meter."""
    ratio = beat_length / 1.5
    return any(abs(ratio - 2.0**k) < _EPS for k in range(-4, 5))


def metric_grid(notes: Notes) -> MetricGrid:
    """The grid of `notes`' first time signature: four steps per beat (simple) or three (compound), with weights."""
    beat = notes.beat_length if notes.beat_length > _EPS else 1.0
    bar = notes.bar_length if notes.bar_length > _EPS else 4.0
    compound = _is_compound(beat)
    steps_per_beat = 3 if compound else 4
    step = beat / steps_per_beat
    beats_per_bar = max(1, round(bar / beat))
    steps_per_bar = beats_per_bar * steps_per_beat
    # Levels from the bar down, each a step count that divides the bar: groups of beats halve while the beat count
    # stays even (4/4: half bar, then beats), then the beat divides in three (compound) or in halves (simple).
    levels = [steps_per_bar]
    group = beats_per_bar
    while group % 2 == 0 and group > 2:
        group //= 2
        levels.append(group * steps_per_beat)
    levels.append(steps_per_beat)
    levels.extend([1] if compound else [2, 1])
    weights = tuple(-next(i for i, size in enumerate(levels) if s % size == 0) for s in range(steps_per_bar))
    return MetricGrid(step, steps_per_beat, steps_per_bar, compound, weights)


def _onsets(notes: Notes) -> list[float]:
    """Distinct attack times of all voices, sorted."""
    return sorted({round(n.offset, 6) for n in notes.events})


def _grid_position(
    spans: list[BarSpan], locate: Callable[[float], int], grid: MetricGrid, offset: float
) -> tuple[int, int]:
    """(bar index, grid step in the bar) of `offset`, snapped to the nearest step (a step at the bar line wraps)."""
    bar = locate(offset)
    step = round((offset - spans[bar].grid_start) / grid.step)
    while step >= grid.steps_per_bar and bar + 1 < len(spans):
        step -= round((spans[bar + 1].grid_start - spans[bar].grid_start) / grid.step)
        bar += 1
    return bar, step % grid.steps_per_bar


def _bar_patterns(spans: list[BarSpan], grid: MetricGrid, onsets: list[float]) -> list[list[bool | None]]:
    """Per bar, per grid step: True (onset), False (no onset) or None (the step lies outside the measure)."""
    patterns: list[list[bool | None]] = []
    for span in spans:
        first = max(0, round((span.start - span.grid_start) / grid.step))
        last = min(grid.steps_per_bar, round((span.end - span.grid_start) / grid.step))
        patterns.append([False if first <= s < last else None for s in range(grid.steps_per_bar)])
    locate = bar_locator(spans)
    for offset in onsets:
        bar, step = _grid_position(spans, locate, grid, offset)
        patterns[bar][step] = True
    return patterns


def syncopation(notes: Notes) -> tuple[float, int]:
    """Longuet-Higgins & Lee syncopation of all onsets: (summed strength / onsets, onsets that syncopate)."""
    onsets = _onsets(notes)
    if not onsets:
        return 0.0, 0
    spans = bar_spans(notes)
    grid = metric_grid(notes)
    locate = bar_locator(spans)
    # Grid positions counted from the first downbeat; each position's weight comes from its place in its own bar.
    origin = spans[0].grid_start
    steps = sorted({round((offset - origin) / grid.step) for offset in onsets})
    # The last onset is followed by whatever silence is left before the end of the piece.
    end = max(round((notes.duration - origin) / grid.step), steps[-1] + 1)
    weights = {
        position: grid.weights[_grid_position(spans, locate, grid, origin + position * grid.step)[1]]
        for position in range(steps[0], end)
    }
    strength = 0
    syncopated = 0
    for here, following in zip(steps, [*steps[1:], end], strict=True):
        weight = weights[here]
        stronger = max((weights[position] for position in range(here + 1, following)), default=weight)
        if stronger > weight:
            strength += stronger - weight
            syncopated += 1
    return strength / len(steps), syncopated


def metric_weight_profile(notes: Notes) -> MetricWeight:
    """Share of onsets on the downbeat, on another beat, on the beat's first division and anywhere finer."""
    onsets = _onsets(notes)
    spans = bar_spans(notes)
    grid = metric_grid(notes)
    beat = grid.step * grid.steps_per_beat
    division = beat / (3 if grid.compound else 2)
    counts = {"downbeat": 0, "beat": 0, "division": 0, "finer": 0}
    locate = bar_locator(spans)

    def on(position: float, size: float) -> bool:
        return abs(position / size - round(position / size)) * size < _EPS

    for offset in onsets:
        position = offset - spans[locate(offset)].grid_start
        if abs(position) < _EPS:
            counts["downbeat"] += 1
        elif on(position, beat):
            counts["beat"] += 1
        elif on(position, division):
            counts["division"] += 1
        else:
            counts["finer"] += 1
    share = {key: _r(value / len(onsets)) if onsets else 0.0 for key, value in counts.items()}
    return MetricWeight(
        downbeat=share["downbeat"], beat=share["beat"], division=share["division"], finer=share["finer"]
    )


def groove_template(notes: Notes) -> list[float]:
    """Per grid step of the bar: the share of bars reaching that step that have an onset on it."""
    grid = metric_grid(notes)
    patterns = _bar_patterns(bar_spans(notes), grid, _onsets(notes))
    template: list[float] = []
    for step in range(grid.steps_per_bar):
        column = [p[step] for p in patterns if p[step] is not None]
        template.append(_r(sum(1 for v in column if v) / len(column)) if column else 0.0)
    return template


def groove_consistency(notes: Notes) -> float | None:
    """MusPy's groove consistency on the grid: 1 - mean Hamming distance of consecutive bars (None under 2 bars or
    without notes)."""
    grid = metric_grid(notes)
    onsets = _onsets(notes)
    if not onsets:
        return None
    patterns = _bar_patterns(bar_spans(notes), grid, onsets)
    differing = compared = 0
    for before, after in itertools.pairwise(patterns):
        for a, b in zip(before, after, strict=True):
            if a is not None and b is not None:
                compared += 1
                differing += a != b
    return _r(1.0 - differing / compared) if compared else None


def analyze_rhythm(notes: Notes) -> RhythmAnalysis:
    """The rhythm descriptors of `notes`, JSON-ready (shape in the module docstring)."""
    grid = metric_grid(notes)
    onsets = _onsets(notes)
    beats = notes.duration / (grid.step * grid.steps_per_beat)
    bars = notes.duration / (grid.step * grid.steps_per_bar)
    density = Density(
        onsets=len(onsets),
        notes=len(notes.events),
        per_beat=_r(len(onsets) / beats) if beats > 0 else 0.0,
        per_bar=_r(len(onsets) / bars) if bars > 0 else 0.0,
    )
    seconds = notes.seconds_at(notes.duration)
    if seconds is not None and seconds > 0:
        density["per_second"] = _r(len(onsets) / seconds)
    index, syncopated = syncopation(notes)
    return RhythmAnalysis(
        grid=GridInfo(
            step=_r(grid.step),
            steps_per_beat=grid.steps_per_beat,
            steps_per_bar=grid.steps_per_bar,
            compound=grid.compound,
        ),
        density=density,
        syncopation=Syncopation(method="longuet-higgins-lee", index=_r(index), syncopated_onsets=syncopated),
        metric_weight=metric_weight_profile(notes),
        groove_template=groove_template(notes),
        groove_consistency=groove_consistency(notes),
    )
