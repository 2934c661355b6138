"""`idaw process IN -o OUT --midi-out song.mid`: the engine generates MIDI while it renders the file, exactly as it
would live (same grid, same nets); the notes are written as a standard MIDI file aligned with the audio (tick 0 =
the file's first sample). realtime/offline.py calls add_arguments(), from_args() and passes the result to render().
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from realtime import midi_settings
from realtime.midi_file import MidiRecording


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register --midi-out and the other MIDI generation options of `idaw process`."""
    midi_settings.add_arguments(parser)


class OfflineMidi:
    """MIDI generation during one offline render: attach() before the first block, collect() between chunks,
    finish() after the last."""

    def __init__(self, path: str, settings: midi_settings.MidiSettings, models: Path | None) -> None:
        self.path = path
        self.settings = settings
        self.models = models
        self.recording: MidiRecording | None = None
        self.notes = 0
        self.seconds = 0.0

    def attach(self, engine: Any) -> None:
        """Installs the nets and switches the generator on, so its grid starts at the first sample."""
        midi_settings.install_nets(engine, self.models)
        self.recording = MidiRecording(engine.sample_rate, self.settings.tempo_bpm)
        midi_settings.push(engine, self.settings, enabled=True, sequence=1)

    def collect(self, engine: Any) -> None:
        """Moves the events generated so far into the recording."""
        assert self.recording is not None
        for event in engine.drain_midi():
            self.recording.add(*event)

    def finish(self, engine: Any, frames: int) -> int:
        """Switches the generator off (a zero-frame block takes the control up and ends every note), writes the file
        cut at `frames` (engine rate: notes beyond the audio's end are dropped or ended there); returns the notes."""
        assert self.recording is not None
        midi_settings.push(engine, self.settings, enabled=False, sequence=2)
        engine.process(np.zeros((0, engine.channels), np.float32))
        self.collect(engine)
        self.seconds = frames / engine.sample_rate
        self.notes = self.recording.write(self.path, end_sample=frames)
        return self.notes

    def summary_line(self) -> str:
        """One line: what was written."""
        return (
            f"wrote {self.path}: {self.notes} notes in {self.seconds:.2f} s, {self.settings.key_name} at "
            f"{self.settings.tempo_bpm:g} BPM"
        )


def from_args(args: argparse.Namespace) -> OfflineMidi | None:
    """The MIDI request of the options (validated; the nets must exist), or None without --midi-out."""
    if args.midi_out is None:
        return None
    settings = midi_settings.settings_from_args(args)
    midi_settings.nets_folder(args.midi_models)  # fail before any rendering
    return OfflineMidi(args.midi_out, settings, args.midi_models)
