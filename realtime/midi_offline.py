"""`idaw process IN -o OUT --midi-out song.mid`: the engine generates MIDI while it renders the file, exactly as it
would live (same grid, same nets); the notes are written as a standard MIDI file aligned with the audio (tick 0 =
the file's first sample). realtime/offline.py calls add_arguments(), from_args() and passes the result to render().

With `--emotion input` the EmotionRecognizer follows the input (realtime/emotion_input.py) in step with the render:
the file is rendered in pieces of EMOTION_STEP_S; after each piece the engine's analysis ring (that piece's mono
input) goes through the same resampler and tracker as live, and before the next piece the newest embedding is pushed
to the generator. Everything depends only on the samples, so the same input gives the same MIDI file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import idaw_core
from idaw.base.errors import IdawError
from realtime import emotion_input, midi_settings
from realtime.midi_file import MidiRecording
from realtime.sidecar_link.analysis import WindowMaker

EMOTION_STEP_S = 0.02
"""With --emotion input: render pieces this long (the live link's pump interval), the emotion updated between them."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register --midi-out and the other MIDI generation options of `idaw process`."""
    midi_settings.add_arguments(parser)


class OfflineMidi:
    """MIDI generation during one offline render: attach() before the first block, collect() between chunks,
    finish() after the last."""

    def __init__(
        self,
        path: str,
        settings: midi_settings.MidiSettings,
        models: Path | None,
        tracker: emotion_input.EmotionTracker | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.models = models
        self.tracker = tracker
        """With --emotion input: the EmotionRecognizer that follows the input."""
        self.recording: MidiRecording | None = None
        self.notes = 0
        self.seconds = 0.0
        self.counters: dict[str, Any] = {}
        """The generator's counters when the file was written (chords and melody notes the theory layer kept)."""
        self._windows: WindowMaker | None = None
        self._pushed_version = 0
        self._sequence = 10

    def chunk_frames(self, rate: int, default: int) -> int:
        """Frames per render piece: `default` in manual mode, EMOTION_STEP_S at `rate` when following the input."""
        return default if self.tracker is None else max(1, round(EMOTION_STEP_S * rate))

    def attach(self, engine: idaw_core.Engine) -> None:
        """Installs the nets and switches the generator on, so its grid starts at the first sample."""
        midi_settings.install_nets(engine, self.models)
        self.recording = MidiRecording(
            engine.sample_rate, self.settings.tempo_bpm, track_names=self.settings.track_names
        )
        midi_settings.push(engine, self.settings, enabled=True, sequence=1)
        if self.tracker is not None:
            self._windows = WindowMaker(round(engine.sample_rate))
            self._windows.add_listener(self._hear)
            engine.set_analysis_enabled(True)

    def _hear(self, samples: npt.NDArray[np.float32], rate: int) -> None:
        """WindowMaker listener: the resampled input goes to the tracker; a net that fails is reported once, in one
        line on stderr (the run goes on with the stand-in emotion)."""
        if self.tracker is not None:
            self.tracker.feed(samples, rate)
            failure = self.tracker.take_failure()
            if failure is not None:
                print(f"idaw process: warning: {failure}", file=sys.stderr, flush=True)

    def before(self, engine: idaw_core.Engine) -> None:
        """Before a render piece: with --emotion input, push the newest embedding when it changed since the last
        push (new frames, or the stand-in after the net failed)."""
        if self.tracker is None or self.tracker.version == self._pushed_version:
            return
        self._pushed_version = self.tracker.version
        self._sequence += 1
        settings = emotion_input.settings_with(self.settings, self.tracker.latest())
        midi_settings.push(engine, settings, enabled=True, sequence=self._sequence)

    def collect(self, engine: idaw_core.Engine) -> None:
        """Moves the events generated so far into the recording; with --emotion input, feeds the input heard since
        the last call to the tracker."""
        assert self.recording is not None
        for event in engine.drain_midi():
            self.recording.add(*event)
        if self._windows is not None:
            self._windows.pump(engine)

    def finish(self, engine: idaw_core.Engine, frames: int) -> int:
        """Switches the generator off (a zero-frame block takes the control up and ends every note), writes the file
        cut at `frames` (engine rate: notes beyond the audio's end are dropped or ended there); returns the notes."""
        assert self.recording is not None
        midi_settings.push(engine, self.settings, enabled=False, sequence=2)
        engine.process(np.zeros((0, engine.channels), np.float32))
        self.collect(engine)
        self.seconds = frames / engine.sample_rate
        self.notes = self.recording.write(self.path, end_sample=frames)
        self.counters = dict(engine.midi_counters())
        return self.notes

    def emotion(self) -> dict[str, Any] | None:
        """What the tracker heard (frames, mean and last valence/arousal), None in manual mode."""
        return None if self.tracker is None else self.tracker.describe()

    def summary_line(self) -> str:
        """One line: what was written (and with --emotion input, the emotion heard)."""
        line = (
            f"wrote {self.path}: {self.notes} notes in {self.seconds:.2f} s, {self.settings.key_name} at "
            f"{self.settings.tempo_bpm:g} BPM"
        )
        if self.settings.mood is not None:
            line += f", {self.settings.emotion_text()}"
        kept = theory_kept(self.counters) if self.settings.theory else None
        if kept:
            line += f"; the theory layer kept {kept}"
        heard = self.emotion()
        if heard is not None:
            line += (
                f"; emotion from the input: {heard['frames']} frames, mean valence {heard['mean_valence']:+.3f}, "
                f"mean arousal {heard['mean_arousal']:+.3f}"
            )
            if heard["failure"] is not None:
                line += f" (then the {emotion_input.NET} failed: stand-in emotion)"
        return line


def theory_kept(counters: Mapping[str, Any]) -> str:
    """How many of the nets' choices the theory layer kept, e.g. '21 of 32 chords and 180 of 240 melody notes' (empty
    when the nets chose nothing)."""
    parts = [
        f"{counters[kept]} of {counters[chosen]} {what}"
        for kept, chosen, what in (
            ("chords_kept", "chord_choices", "chords"),
            ("melody_kept", "melody_choices", "melody notes"),
        )
        if counters.get(chosen)
    ]
    return " and ".join(parts)


def from_args(args: argparse.Namespace) -> OfflineMidi | None:
    """The MIDI request of the options (validated; the nets must exist), or None without --midi-out."""
    if args.midi_out is None:
        if getattr(args, "emotion", "manual") != "manual":
            raise IdawError(f"--emotion {args.emotion} needs --midi-out")
        return None
    settings = midi_settings.settings_from_args(args)
    midi_settings.nets_folder(args.midi_models)  # fail before any rendering
    tracker = None
    if settings.emotion_source == "input":
        tracker = emotion_input.EmotionTracker(emotion_input.model_path(args.midi_models))
    return OfflineMidi(args.midi_out, settings, args.midi_models, tracker)
