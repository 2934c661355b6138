"""The song sketch's pipeline after the structure: write_song runs the stages (stems as MIDI, render, mix, master,
report) into a folder and says how long each took. `idaw sketch` (command.py) and its variants (variants.py) call it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf
from tqdm import tqdm

from idaw.base import output_file
from idaw.base.errors import IdawError
from idaw.sketch import drumkit, mixdown, report, stems
from idaw.sketch.structure import Structure
from realtime import master
from realtime.midi_file import MidiRecording, Note

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
    drums: str = ""
    """What played the drums: a Hydrogen kit's name, or the General MIDI soundfont when no kit could be read."""
    remarks: list[str] = field(default_factory=list)
    """What a user should know (a fallback taken)."""


def write_song(structure: Structure, folder: Path, models: Path | None, progress: bool) -> SongResult:
    """Writes structure.json, song.mid, stems/*.wav, song.wav and report.png into `folder` (which exists)."""
    result = SongResult()
    rate = stems.SAMPLE_RATE
    with tqdm(total=len(STAGES) - 1, disable=not progress, leave=False, file=sys.stderr, unit="stage") as bar:

        @contextlib.contextmanager
        def stage(name: str) -> Iterator[None]:
            bar.set_description(name)
            began = time.perf_counter()
            yield
            result.seconds[name] = round(time.perf_counter() - began, 3)
            bar.update(1)

        with output_file.replacing(folder / "structure.json") as part:
            part.write_text(json.dumps(structure.to_json(), indent=2) + "\n", encoding="utf-8")
        with stage("stems (MIDI)"):
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
        with stage("render"):
            kit = None
            try:
                kit = drumkit.read_kit(drumkit.kit_for(structure.drums), rate)
                result.drums = f"Hydrogen kit {drumkit.kit_for(structure.drums)}"
            except IdawError as error:
                result.drums = "the General MIDI soundfont"
                result.remarks.append(f"drums from the soundfont: {error}")
            played_by_fluidsynth = {k: v for k, v in midi_files.items() if kit is None or k != "drums"}
            rendered = mixdown.render_stems(played_by_fluidsynth, frames, rate)
            if kit is not None:
                drum_notes = [n for n in notes if n.channel == stems.STEMS["drums"]]
                rendered["drums"], missing = drumkit.render(drum_notes, kit, frames)
                if missing:
                    result.remarks.append(f"{missing} drum notes had no instrument in the kit")
            rendered = {name: rendered[name] for name in stems.STEMS}
            for name, audio in rendered.items():
                write_wav(stem_dir / f"{name}.wav", audio, rate)
                midi_files[name].unlink()
        with stage("mix"):
            mixed = mixdown.mix(rendered, rate)
        with stage("master"):
            mastered = mixdown.master_mix(mixed, rate, structure.production)
            write_wav(folder / "song.wav", mastered.audio, rate)
            result.loudness_lufs = mastered.loudness_out
            result.true_peak_dbtp = mastered.true_peak_out
            result.limiter_peak_db = mastered.limiter_peak_db
        with stage("report"):
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


def write_wav(path: Path, audio: npt.NDArray[np.float32], rate: int) -> None:
    """A 24-bit WAV (complete or absent)."""
    with output_file.replacing(path) as part:
        sf.write(part, audio, rate, subtype="PCM_24", format="WAV")
