"""The `idaw analyze song.wav --report FILE.png` picture: what was heard, on the recording's own time axis.

From top to bottom: the band of idaw.theory.report (sections, keys coloured by their place on the circle of
fifths, cadences); the waveform's envelope with the beats (thin lines) and downbeats (thick lines); the chroma of
each beat (the notes the analysis heard, folded to pitch classes; darker is louder); the chords' Roman numerals.
x is seconds. Drawn and written the way the score report is (matplotlib's Agg canvas, a part file renamed over
the target).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from idaw.listen.analysis import HeardPiece
from idaw.listen.audio import SAMPLE_RATE, Recording
from idaw.theory.pitch_names import PITCH_NAMES
from idaw.theory.report import (
    DPI,
    FONT_SIZE,
    LEFT_INCHES,
    RIGHT_INCHES,
    LabelScale,
    draw_band,
    draw_romans,
    save_png,
)

INCHES_PER_SECOND = 0.25
MIN_WIDTH, MAX_WIDTH = 12.0, 80.0
HEIGHT = 7.0


def in_seconds(result: Mapping[str, Any], heard: HeardPiece) -> dict[str, Any]:
    """The result with each key, cadence, chord and section placed at its time in seconds (their `offset` is
    score time on the beat grid): what the band and chord lanes of the score report draw."""
    notes = heard.notes

    def moved(entry: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(entry)
        for name in ("offset", "end"):
            if isinstance(entry.get(name), int | float):
                out[name] = notes.seconds_at(float(entry[name]))
        return out

    return {
        **result,
        **{name: [moved(e) for e in result.get(name) or []] for name in ("keys", "cadences", "chords", "sections")},
    }


def draw_audio_report(
    recording: Recording, heard: HeardPiece | None, result: Mapping[str, Any], path: str | os.PathLike[str]
) -> None:
    """Draw the analysis of `recording` as a PNG at `path` (replaced whole; IdawError when it cannot be written).
    With nothing heard (`heard` None) the waveform is drawn alone."""
    seconds = max(recording.seconds, 1.0)
    width = min(max(seconds * INCHES_PER_SECOND + LEFT_INCHES + RIGHT_INCHES, MIN_WIDTH), MAX_WIDTH)
    figure = Figure(figsize=(width, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        4,
        1,
        height_ratios=(1.2, 1.5, 3.0, 0.8),
        hspace=0.05,
        left=LEFT_INCHES / width,
        right=1 - RIGHT_INCHES / width,
        top=1 - 0.45 / HEIGHT,
        bottom=0.45 / HEIGHT,
    )
    band = figure.add_subplot(grid[0])
    wave = figure.add_subplot(grid[1], sharex=band)
    chroma_axes = figure.add_subplot(grid[2], sharex=band)
    romans = figure.add_subplot(grid[3], sharex=band)
    lanes = LabelScale(span=seconds, inches=width - LEFT_INCHES - RIGHT_INCHES)
    timed = in_seconds(result, heard) if heard is not None else dict(result)
    draw_band(band, wave, timed, seconds, lanes)
    _draw_wave(wave, recording, result)
    if heard is not None:
        _draw_chroma(chroma_axes, heard, seconds)
    chroma_axes.set_ylabel("pitch class", fontsize=FONT_SIZE)
    draw_romans(romans, timed, lanes)
    romans.set_xlabel("seconds", fontsize=FONT_SIZE)
    for axes in (band, wave, chroma_axes):
        axes.tick_params(axis="x", labelbottom=False, bottom=False)
    band.set_xlim(0, seconds)
    tempo = f", {result['tempo_bpm']:.0f} BPM" if result.get("tempo_bpm") else ", no steady beat"
    key = f", {result['key']}" if result.get("key") else ""
    title = f"{os.path.basename(str(result.get('file') or 'recording'))}{key}{tempo}"
    figure.suptitle(title, fontsize=FONT_SIZE + 3, x=LEFT_INCHES / width, ha="left", y=1 - 0.12 / HEIGHT)
    save_png(figure, Path(path))


def _draw_wave(axes: Any, recording: Recording, result: Mapping[str, Any]) -> None:
    """The peak envelope (one column per 10 ms), beats and downbeats."""
    hop = SAMPLE_RATE // 100
    frames = len(recording.samples) // hop
    peaks = np.abs(recording.samples[: frames * hop]).reshape(frames, hop).max(axis=1) if frames else np.zeros(1)
    times = np.arange(len(peaks)) * hop / SAMPLE_RATE
    axes.fill_between(times, -peaks, peaks, color="#7a8fa6", linewidth=0)
    for beat in result.get("beats") or []:
        axes.axvline(beat, color="#333333", linewidth=0.3, alpha=0.6)
    for downbeat in result.get("downbeats") or []:
        axes.axvline(downbeat, color="#c0392b", linewidth=1.0, alpha=0.8)
    axes.set_ylim(-1.0, 1.0)
    axes.set_yticks([])
    axes.set_ylabel("beats", fontsize=FONT_SIZE, rotation=0, ha="right", va="center")


def _draw_chroma(axes: Any, heard: HeardPiece, seconds: float) -> None:
    """The heard chroma, one column per beat span, each column scaled to its loudest pitch class."""
    chroma = heard.chroma / (heard.chroma.max(axis=1, keepdims=True) + 1e-9)
    edges = np.append(heard.beats, seconds)
    axes.pcolormesh(edges, np.arange(13) - 0.5, chroma.T, cmap="Greys", vmin=0.0, vmax=1.0, shading="flat")
    axes.set_yticks(range(12), PITCH_NAMES, fontsize=FONT_SIZE - 1)
    axes.set_ylim(-0.5, 11.5)
