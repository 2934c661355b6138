"""The `idaw analyze --report FILE.png` picture: a piano roll with the analysis drawn on it.

From top to bottom: a band with the sections (A, B, A' ...), the keys (a coloured span per key, hue by the key's
place on the circle of fifths, darker for minor) and the cadences (type names over dashed lines that cross the
roll); the piano roll (x: score time in quarter notes, ticks at bar numbers; y: MIDI pitch, C's named; notes
coloured by voice); a strip with the Roman numerals under their chords. The figure grows with the piece
(INCHES_PER_QUARTER, between MIN_WIDTH and MAX_WIDTH inches), and labels that would overlap are thinned out
(each lane places a label only where it fits after the previous one) rather than drawn over each other.

matplotlib draws through its Agg canvas directly (no pyplot: no global figure state, no GUI backend). The PNG is
written to a hidden part file in the target's folder and renamed over the target (idaw.base.output_file), so a
failed or interrupted report leaves no half-written file; `check_report_path` makes the same attempt before any
analysis runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import hsv_to_rgb, to_rgba
from matplotlib.figure import Figure

from idaw.base import output_file
from idaw.base.errors import path_error
from idaw.theory.notes import Notes

DPI = 100
INCHES_PER_QUARTER = 0.12
"""Horizontal scale: a 2-minute piece at 120 quarter notes per minute (240 quarters) is about 29 inches wide."""
MIN_WIDTH, MAX_WIDTH = 12.0, 80.0
"""Figure width bounds in inches (80 in = 8000 pixels: a long piece is squeezed rather than made endless)."""
HEIGHT = 8.0
LEFT_INCHES, RIGHT_INCHES = 0.9, 0.3
FONT_SIZE = 8.0
CHAR_WIDTH = 0.62
"""Average glyph width as a fraction of the font size (DejaVu Sans), to estimate how wide a label is."""
LABEL_GAP_INCHES = 0.06
VOICE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
CADENCE_COLOURS = {"PAC": "#8b0000", "IAC": "#e07000", "HC": "#1f4fbf", "PC": "#2e8b57", "DC": "#7b3fa0"}
PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def figure_inches(duration: float) -> tuple[float, float]:
    """(width, height) of the report in inches for a piece `duration` quarter notes long."""
    width = min(max(duration * INCHES_PER_QUARTER + LEFT_INCHES + RIGHT_INCHES, MIN_WIDTH), MAX_WIDTH)
    return width, HEIGHT


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path, after checking a PNG can be written there (its folder exists, it is not a folder, a file
    can be created next to it). Raises IdawError naming the path and the problem."""
    return output_file.check_writable(path, "report")


def draw_report(notes: Notes, result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw the piano roll of `notes` with the analysis `result` (the dict `analyze_file` returns) on it, as a PNG
    at `path` (replaced whole, or left as it was when drawing fails). Raises IdawError when it cannot be written."""
    duration = max(notes.duration, max((n.end for n in notes.events), default=0.0), 1.0)
    width, height = figure_inches(duration)
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        3,
        1,
        height_ratios=(1.2, 6.0, 0.8),
        hspace=0.04,
        left=LEFT_INCHES / width,
        right=1 - RIGHT_INCHES / width,
        top=1 - 0.45 / height,
        bottom=0.45 / height,
    )
    band = figure.add_subplot(grid[0])
    roll = figure.add_subplot(grid[1], sharex=band)
    romans = figure.add_subplot(grid[2], sharex=band)
    inches_wide = width - LEFT_INCHES - RIGHT_INCHES
    lanes = LabelScale(span=duration, inches=inches_wide)

    _draw_notes(roll, notes)
    _draw_bars(roll, romans, notes, duration, lanes)
    draw_band(band, roll, result, duration, lanes)
    draw_romans(romans, result, lanes)
    _voice_legend(figure, roll, notes.voices, width, height)
    for axes in (band, roll):
        axes.tick_params(axis="x", labelbottom=False, bottom=False)
    band.set_xlim(0, duration)
    figure.suptitle(_title(result), fontsize=FONT_SIZE + 3, x=LEFT_INCHES / width, ha="left", y=1 - 0.12 / height)
    save_png(figure, Path(path))


@dataclass
class LabelScale:
    """Converts label sizes to score time, and places labels in rows without overlap."""

    span: float
    """Quarter notes across the axes."""
    inches: float
    """Width of the axes in inches."""

    def width(self, text: str, size: float = FONT_SIZE) -> float:
        """Estimated width of `text` in quarter notes."""
        return len(text) * size * CHAR_WIDTH / 72.0 * self.span / self.inches

    def place(
        self, labels: Sequence[tuple[float, str]], rows: int, centred: bool = False, size: float = FONT_SIZE
    ) -> list[tuple[float, int, str]]:
        """(x, row, text) of the labels that fit, greedily in time order: each goes to the first row where it
        starts after the previous label of that row ends (plus a gap); one that fits nowhere is left out."""
        gap = LABEL_GAP_INCHES * self.span / self.inches
        row_ends = [float("-inf")] * rows
        placed: list[tuple[float, int, str]] = []
        for x, text in sorted(labels, key=lambda label: label[0]):
            w = self.width(text, size)
            start = x - w / 2 if centred else x
            for row in range(rows):
                if start >= row_ends[row] + gap:
                    row_ends[row] = start + w
                    placed.append((x, row, text))
                    break
        return placed


def _draw_notes(roll: Axes, notes: Notes) -> None:
    """Notes as bars, one colour per voice, C's named on the pitch axis."""
    shapes: list[list[tuple[float, float]]] = []
    colours: list[tuple[float, float, float, float]] = []
    for note in notes.events:
        low, high = note.pitch - 0.42, note.pitch + 0.42
        shapes.append([(note.offset, low), (note.end, low), (note.end, high), (note.offset, high)])
        colours.append(to_rgba(VOICE_COLOURS[note.voice % len(VOICE_COLOURS)], 0.85))
    roll.add_collection(PolyCollection(shapes, facecolors=colours, edgecolors="none"))
    pitches = [n.pitch for n in notes.events] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    roll.set_ylim(low - 0.5, high + 0.5)
    cs = [p for p in range(low, high + 1) if p % 12 == 0]
    roll.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs], fontsize=FONT_SIZE)
    for p in cs:
        roll.axhline(p - 0.5, color="#cccccc", linewidth=0.5, zorder=0)
    roll.set_ylabel("pitch", fontsize=FONT_SIZE)


def _voice_legend(figure: Figure, roll: Axes, voices: int, width: float, height: float) -> None:
    """Which colour is which voice, in the title row at the right (where it hides no note)."""
    if voices < 2:
        return
    shown = min(voices, len(VOICE_COLOURS))
    handles = [roll.scatter([], [], marker="s", color=VOICE_COLOURS[v], label=f"voice {v + 1}") for v in range(shown)]
    figure.legend(
        handles=handles,
        loc="upper right",
        bbox_to_anchor=(1 - RIGHT_INCHES / width, 1 - 0.02 / height),
        fontsize=FONT_SIZE,
        ncols=shown,
        frameon=False,
    )


def _draw_bars(roll: Axes, bottom: Axes, notes: Notes, duration: float, lanes: LabelScale) -> None:
    """Bar lines across the roll; bar numbers under the lowest strip, every 1, 2, 4, 5, 10, ... bars as room allows."""
    starts = list(notes.measure_offsets)
    numbers = list(notes.measure_numbers)
    if not starts:
        count = int(duration / notes.bar_length + 1e-9) + 1
        starts = [i * notes.bar_length for i in range(count)]
        numbers = [i + 1 for i in range(count)]
    per_bar_inches = lanes.inches * notes.bar_length / lanes.span
    if per_bar_inches >= 0.06:
        for start in starts:
            roll.axvline(start, color="#dddddd", linewidth=0.6, zorder=0)
    step = next((s for s in (1, 2, 4, 5, 10, 20, 50, 100, 200, 500) if s * per_bar_inches >= 0.32), 1000)
    ticks = [(x, n) for x, n in zip(starts, numbers, strict=False) if n % step == 0 or (n == numbers[0] and n <= 1)]
    bottom.set_xticks([x for x, _ in ticks], [str(n) for _, n in ticks], fontsize=FONT_SIZE)
    bottom.set_xlabel("bar", fontsize=FONT_SIZE)


def draw_band(band: Axes, roll: Axes, result: Mapping[str, Any], duration: float, lanes: LabelScale) -> None:
    """Three lanes above the roll: sections (top), keys, cadences (bottom; their lines cross the roll)."""
    band.set_ylim(0, 3)
    band.set_yticks([0.5, 1.5, 2.5], ["cadences", "keys", "sections"], fontsize=FONT_SIZE)
    band.tick_params(axis="y", length=0)
    for spine in ("top", "right"):
        band.spines[spine].set_visible(False)

    sections = [s for s in result.get("sections") or [] if isinstance(s, Mapping) and _number(s.get("offset"))]
    labels = []
    for index, section in enumerate(sections):
        start = float(section["offset"])
        end = float(section["end"]) if _number(section.get("end")) else duration
        band.axvspan(start, end, ymin=2 / 3, ymax=1, color="#d9d9d9" if index % 2 else "#ececec", linewidth=0)
        band.axvline(start, ymin=2 / 3, ymax=1, color="#888888", linewidth=0.8)
        labels.append(((start + end) / 2, str(section.get("label", ""))))
    for x, _, text in lanes.place(labels, rows=1, centred=True, size=FONT_SIZE + 1):
        band.text(x, 2.5, text, ha="center", va="center", fontsize=FONT_SIZE + 1, fontweight="bold")

    keys = [k for k in result.get("keys") or [] if isinstance(k, Mapping) and k.get("key") and _number(k.get("offset"))]
    if not keys and result.get("key"):
        keys = [{"offset": 0.0, "key": result["key"]}]
    labels = []
    for index, key in enumerate(keys):
        start = float(key["offset"])
        end = float(keys[index + 1]["offset"]) if index + 1 < len(keys) else duration
        band.axvspan(start, end, ymin=1 / 3, ymax=2 / 3, color=key_colour(str(key["key"])), linewidth=0)
        labels.append(((start + end) / 2, str(key["key"])))
    for x, _, text in lanes.place(labels, rows=1, centred=True):
        band.text(x, 1.5, text, ha="center", va="center", fontsize=FONT_SIZE)

    cadences = [c for c in result.get("cadences") or [] if isinstance(c, Mapping) and _number(c.get("offset"))]
    labels = []
    for cadence in cadences:
        kind = str(cadence.get("type", ""))
        colour = CADENCE_COLOURS.get(kind, "#444444")
        x = float(cadence["offset"])
        roll.axvline(x, color=colour, linewidth=1.0, linestyle="--", alpha=0.8, zorder=3)
        band.axvline(x, ymin=0, ymax=1 / 3, color=colour, linewidth=1.0, linestyle="--")
        labels.append((x, kind))
    for x, _, text in lanes.place(labels, rows=1, centred=True):
        colour = CADENCE_COLOURS.get(text, "#444444")
        band.text(x, 0.5, text, ha="center", va="center", fontsize=FONT_SIZE, color=colour, fontweight="bold")
        band.texts[-1].set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5})


def draw_romans(romans: Axes, result: Mapping[str, Any], lanes: LabelScale) -> None:
    """Roman numerals at their chords' offsets, in two staggered rows; the ones that fit neither are left out."""
    romans.set_ylim(0, 2)
    romans.set_yticks([])
    romans.set_ylabel("chords", fontsize=FONT_SIZE, rotation=0, ha="right", va="center")
    chords = [c for c in result.get("chords") or [] if isinstance(c, Mapping) and _number(c.get("offset"))]
    labels = [(float(c["offset"]), str(c.get("roman") or c.get("root") or "?")) for c in chords]
    nudge = LABEL_GAP_INCHES / 2 * lanes.span / lanes.inches  # off the bar line the chord starts on
    for x, row, text in lanes.place(labels, rows=2):
        romans.text(x + nudge, 1.45 - row * 0.9, text, ha="left", va="center", fontsize=FONT_SIZE)


def key_colour(name: str) -> tuple[float, float, float]:
    """A key's colour: hue from its tonic's place on the circle of fifths (neighbour keys look alike), minor keys
    darker and more saturated than major ones; grey for a name that is not 'TONIC major|minor'."""
    words = name.split()
    tonic = words[0] if words else ""
    if not tonic or tonic[0].upper() not in PITCH_CLASSES:
        return (0.85, 0.85, 0.85)
    pitch_class = PITCH_CLASSES[tonic[0].upper()] + tonic[1:].count("#") - tonic[1:].count("b")
    fifths = (pitch_class * 7) % 12
    minor = len(words) > 1 and words[1].lower() == "minor"
    hue, saturation, value = fifths / 12.0, (0.45 if minor else 0.3), (0.82 if minor else 0.97)
    red, green, blue = hsv_to_rgb((hue, saturation, value))
    return float(red), float(green), float(blue)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _title(result: Mapping[str, Any]) -> str:
    name = os.path.basename(str(result.get("file", ""))) or "score"
    key = f": {result['key']}" if result.get("key") else ""
    count = len(result.get("cadences") or [])
    return f"{name}{key} ({count} cadence{'s' if count != 1 else ''})"


def save_png(figure: Figure, target: Path) -> None:
    """Write `figure` as a PNG to a part file next to `target`, then rename it over `target`
    (idaw.base.output_file: the same part-file rules as every output of idaw)."""
    with output_file.replacing(target, "report") as part:
        try:
            figure.savefig(part, format="png", dpi=DPI)
        except OSError as error:
            raise path_error("write", f"report {target}", error) from None
