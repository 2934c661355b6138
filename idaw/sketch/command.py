"""`idaw sketch PROMPT -o DIR`: a song sketched from words, in the five stages of music-generation-architecture.md:
structure (idaw/sketch/structure.py), stems as MIDI from the core's generator (stems.py), render with fluidsynth,
mix through the core and master (mixdown.py). Writes structure.json, song.mid (four tracks), stems/*.wav, song.wav
and report.png (report.py), with a progress bar over the stages, and sums it up in a few lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import soundfile as sf
from tqdm import tqdm

from idaw.base import output_file
from idaw.base.errors import IdawError
from idaw.sketch import mixdown, report, stems
from idaw.sketch.structure import (
    BPM_RANGE,
    DEFAULT_DURATION_S,
    DURATION_RANGE_S,
    Structure,
    genres,
    make_structure,
)
from realtime import master
from realtime.midi_file import MidiRecording, Note


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
    timings = write_song(structure, folder, models=None, progress=True)
    print(summary(structure, folder, timings))
    return 0


STAGES: Final = ("structure", "stems (MIDI)", "render", "mix", "master", "report")
"""The stages the progress bar counts (the structure is made before the bar starts)."""


@dataclass
class SongResult:
    """What write_song measured."""

    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage."""
    notes: int = 0
    loudness_lufs: float = 0.0
    true_peak_dbtp: float = 0.0
    limiter_peak_db: float = 0.0


def write_song(structure: Structure, folder: Path, models: Path | None, progress: bool) -> SongResult:
    """Writes structure.json, song.mid, stems/*.wav, song.wav and report.png into `folder` (which exists)."""
    result = SongResult()
    rate = stems.SAMPLE_RATE
    with tqdm(total=len(STAGES) - 1, disable=not progress, leave=False, file=sys.stderr, unit="stage") as bar:

        def stage(name: str) -> Iterator[None]:
            bar.set_description(name)
            began = time.perf_counter()
            yield
            result.seconds[name] = round(time.perf_counter() - began, 3)
            bar.update(1)

        with output_file.replacing(folder / "structure.json") as part:
            part.write_text(json.dumps(structure.to_json(), indent=2) + "\n", encoding="utf-8")
        for _ in stage("stems (MIDI)"):
            notes = [n for _, run_notes in stems.song_notes(structure, models) for n in run_notes]
            result.notes = len(notes)
            channels = {channel: name for name, channel in stems.STEMS.items()}
            programs = {stems.STEMS[name]: program for name, program in structure.programs.items()}
            stem_dir = folder / "stems"
            stem_dir.mkdir(exist_ok=True)
            write_midi(folder / "song.mid", notes, structure.bpm, channels, programs)
            midi_files = {}
            for name, channel in stems.STEMS.items():
                midi_files[name] = stem_dir / f"{name}.mid"
                write_midi(
                    midi_files[name], [n for n in notes if n.channel == channel], structure.bpm, channels, programs
                )
        frames = round((structure.duration_s + mixdown.TAIL_S) * rate)
        for _ in stage("render"):
            rendered = mixdown.render_stems(midi_files, frames, rate)
            for name, audio in rendered.items():
                write_wav(stem_dir / f"{name}.wav", audio, rate)
                midi_files[name].unlink()
        for _ in stage("mix"):
            mixed = mixdown.mix(rendered, rate)
        for _ in stage("master"):
            mastered = mixdown.master_mix(mixed, rate, structure.production)
            write_wav(folder / "song.wav", mastered.audio, rate)
            result.loudness_lufs = mastered.loudness_out
            result.true_peak_dbtp = mastered.true_peak_out
            result.limiter_peak_db = mastered.limiter_peak_db
        for _ in stage("report"):
            report.draw(
                structure,
                stems.section_chords(structure),
                notes,
                rate,
                mastered.audio,
                master.DEFAULT_TARGET_LUFS,
                folder / "report.png",
            )
    return result


def write_midi(path: Path, notes: list[Note], bpm: float, channels: dict[int, str], programs: dict[int, int]) -> None:
    """A type-1 MIDI file of `notes` (song sample clock at stems.SAMPLE_RATE): one track per channel, named after
    its stem, with its General MIDI program."""
    recording = MidiRecording(stems.SAMPLE_RATE, bpm, track_names=channels, programs=programs)
    for n in notes:
        recording.add(n.start, 0x90 | n.channel, n.pitch, n.velocity)
        recording.add(n.end, 0x80 | n.channel, n.pitch, 0)
    recording.write(path)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """A 24-bit WAV (complete or absent)."""
    with output_file.replacing(path) as part:
        sf.write(part, audio, rate, subtype="PCM_24", format="WAV")


def summary(structure: Structure, folder: Path, song: SongResult) -> str:
    """A few lines: what the prompt became, section by section, and what was written."""
    sections = ", ".join(f"{s.name} {s.bars}" for s in structure.sections)
    total = sum(song.seconds.values())
    lines = [
        f"wrote {folder}: song.wav, song.mid, stems/, structure.json, report.png",
        f"{structure.genre} (genre from: {structure.genre_from}), {structure.key}, {structure.bpm:g} BPM, "
        f"{structure.bars} bars ({structure.duration_s:.0f} s); mood valence {structure.valence:+.2f}, "
        f"arousal {structure.arousal:+.2f}",
        f"sections (bars): {sections}",
        f"{song.notes} notes; master {song.loudness_lufs:.1f} LUFS, true peak {song.true_peak_dbtp:.1f} dBTP; "
        f"{total:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in song.seconds.items()) + ")",
    ]
    lines.extend(f"note: {note}" for note in structure.notes)
    return "\n".join(lines)
