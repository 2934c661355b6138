"""report.png of a song sketch: the sections as coloured spans with each bar's Roman numeral, the four stems' notes
as a piano roll, and the master's short-term loudness (BS.1770 over 3 s windows, pyloudnorm) against the target.

Drawn through matplotlib's Agg canvas directly (no pyplot, no GUI backend), as idaw/theory/report.py does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyloudnorm
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from idaw.base import output_file
from idaw.sketch.structure import Structure
from realtime.midi_file import Note

WINDOW_S: Final = 3.0
"""Short-term loudness window (EBU R128)."""
HOP_S: Final = 1.0
STEM_COLOURS: Final = {0: "tab:red", 1: "tab:blue", 2: "tab:green", 9: "tab:gray"}
STEM_NAMES: Final = {0: "melody", 1: "harmony", 2: "bass", 9: "drums"}


def short_term_loudness(audio: npt.NDArray[np.float32], rate: int) -> tuple[npt.NDArray[np.float64], list[float]]:
    """(window centre times in s, loudness in LUFS of each 3 s window, -inf where silent), every HOP_S."""
    meter = pyloudnorm.Meter(rate)
    window, hop = round(WINDOW_S * rate), round(HOP_S * rate)
    starts = range(0, max(1, audio.shape[0] - window + 1), hop)
    values = [float(meter.integrated_loudness(audio[s : s + window])) for s in starts]
    return (np.array(list(starts), dtype=np.float64) + window / 2) / rate, values


def draw(
    structure: Structure,
    chords: Sequence[Sequence[str]],
    notes: Sequence[Note],
    rate: int,
    audio: npt.NDArray[np.float32],
    target_lufs: float,
    path: Path,
) -> None:
    """Writes the report (see the module docstring) to `path` (complete or absent)."""
    bar_s = 240.0 / structure.bpm
    duration = audio.shape[0] / rate
    figure = Figure(figsize=(max(10.0, min(30.0, duration / 8.0)), 7.5), dpi=100)
    FigureCanvasAgg(figure)
    sections, roll, loud = figure.subplots(3, 1, sharex=True, height_ratios=[1.2, 3, 1.6])
    palette = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(s.name for s in structure.sections))}
    for section, numerals in zip(structure.sections, chords, strict=True):
        start = section.start_bar * bar_s
        sections.axvspan(start, start + section.bars * bar_s, color=palette[section.name], alpha=0.35)
        sections.text(start + 0.1 * bar_s, 0.78, section.name, fontsize=9, weight="bold", va="center")
        for b, numeral in enumerate(numerals):
            sections.text((section.start_bar + b + 0.5) * bar_s, 0.3, numeral, fontsize=7, ha="center")
    sections.set_ylim(0, 1)
    sections.set_yticks([])
    sections.set_title(
        f"{structure.genre}, {structure.key}, {structure.bpm:g} BPM: sections and chords (Roman numerals)", fontsize=10
    )
    for channel, colour in STEM_COLOURS.items():
        mine = [n for n in notes if n.channel == channel]
        if not mine:
            continue
        starts = np.array([n.start / rate for n in mine])
        lengths = np.array([(n.end - n.start) / rate for n in mine])
        pitches = np.array([n.pitch for n in mine], dtype=np.float64)
        roll.barh(pitches, lengths, left=starts, height=0.8, color=colour, label=STEM_NAMES[channel], linewidth=0)
    roll.set_ylabel("MIDI pitch (drums: GM number)")
    roll.legend(loc="upper right", fontsize=8, ncols=4)
    times, values = short_term_loudness(audio, rate)
    loud.plot(times, values, color="black", linewidth=1, label="short-term loudness (3 s)")
    loud.axhline(target_lufs, color="tab:red", linestyle="--", linewidth=1, label=f"target {target_lufs:g} LUFS")
    finite = [v for v in values if np.isfinite(v)]
    if finite:
        loud.set_ylim(min(finite) - 3, max(max(finite), target_lufs) + 3)
    loud.set_ylabel("LUFS")
    loud.set_xlabel("time (s)")
    loud.legend(loc="lower right", fontsize=8)
    loud.set_xlim(0, duration)
    figure.tight_layout()
    with output_file.replacing(path, "report") as part:
        figure.savefig(part, format="png")
