"""Standard MIDI files from the engine's MIDI events: notes paired from note-on/note-off, ticks from sample times.

Sample 0 of the engine (the first sample of the stream or of the rendered file) is tick 0, so the file lines up with
the audio. Each channel gets its own track, named after its role (melody, chords, bass, drums). One tempo (the
generator's) is written as the file's tempo meta event; times in seconds are exact whatever that tempo is. Events at
the same tick go note-offs first, so a repeated pitch never swallows its successor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mido

from idaw.base import output_file
from idaw.base.errors import path_error

PPQ = 480
"""Ticks per quarter note."""


@dataclass(frozen=True)
class Note:
    """One note: channel 0-15, pitch, velocity, start and end on the engine's sample clock."""

    channel: int
    pitch: int
    velocity: int
    start: int
    end: int


class MidiRecording:
    """Collects (sample_time, status, data1, data2) events in any order; pairs them into notes and writes a file."""

    def __init__(
        self,
        sample_rate: float,
        tempo_bpm: float,
        ppq: int = PPQ,
        track_names: Mapping[int, str] | None = None,
        programs: Mapping[int, int] | None = None,
    ) -> None:
        self.rate = float(sample_rate)
        self.tempo_bpm = float(tempo_bpm)
        self.ppq = ppq
        self.track_names = dict(track_names or {})
        """Name of each channel's track (0-based channel -> name); others are called 'channel N'."""
        self.programs = dict(programs or {})
        """General MIDI program (0-127) of each channel, written at the start of its track; others get none."""
        self._events: list[tuple[int, int, int, int, int]] = []  # (time, order, status, data1, data2)

    def __len__(self) -> int:
        return len(self._events)

    def add(self, sample_time: int, status: int, data1: int, data2: int) -> None:
        """Adds one channel message."""
        self._events.append((int(sample_time), len(self._events), status & 0xFF, data1 & 0x7F, data2 & 0x7F))

    def _sorted(self) -> list[tuple[int, int, int, int, int]]:
        def rank(e: tuple[int, int, int, int, int]) -> tuple[int, int, int]:
            kind = e[2] & 0xF0
            is_on = kind == 0x90 and e[4] > 0
            return e[0], 2 if is_on else (1 if kind == 0xB0 else 0), e[1]

        return sorted(self._events, key=rank)

    def notes(self, end_sample: int | None = None) -> list[Note]:
        """Every note, by start time. With `end_sample`, notes starting there or later are dropped and notes still
        sounding then (or never ended) end there; without it, an unended note ends at the last event's time."""
        last = max((e[0] for e in self._events), default=0)
        stop = last if end_sample is None else int(end_sample)
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        out: list[Note] = []
        for time, _, status, d1, d2 in self._sorted():
            kind, channel = status & 0xF0, status & 0x0F
            key = (channel, d1)
            if kind == 0x90 and d2 > 0:
                if key in sounding:  # a repeated note-on ends the sounding one (never made by the generator)
                    start, velocity = sounding.pop(key)
                    out.append(Note(channel, d1, velocity, start, time))
                if end_sample is None or time < stop:
                    sounding[key] = (time, d2)
            elif kind == 0x80 or (kind == 0x90 and d2 == 0):
                if key in sounding:
                    start, velocity = sounding.pop(key)
                    out.append(Note(channel, d1, velocity, start, min(time, stop)))
            elif kind == 0xB0 and d1 in (120, 123):  # all sound off / all notes off
                for held in [k for k in sounding if k[0] == channel]:
                    start, velocity = sounding.pop(held)
                    out.append(Note(channel, held[1], velocity, start, min(time, stop)))
        out.extend(Note(ch, pitch, vel, start, max(start + 1, stop)) for (ch, pitch), (start, vel) in sounding.items())
        return sorted(out, key=lambda n: (n.start, n.channel, n.pitch))

    def tick(self, sample_time: int) -> int:
        """The tick of a sample time."""
        return round(sample_time / self.rate * self.tempo_bpm / 60.0 * self.ppq)

    def write(self, path: str | Path, end_sample: int | None = None) -> int:
        """Writes a type-1 standard MIDI file of the notes (see notes()) plus control changes before `end_sample`:
        a first track with the tempo and time signature, then one track per channel, named after its role
        (track_names); returns the number of notes. IdawError when the file cannot be written."""
        notes = self.notes(end_sample)
        timed: list[tuple[int, int, mido.Message]] = []
        for n in notes:
            start, end = self.tick(n.start), self.tick(n.end)
            end = max(end, start + 1)  # a note never collapses to zero ticks
            timed.append((start, 2, mido.Message("note_on", channel=n.channel, note=n.pitch, velocity=n.velocity)))
            timed.append((end, 0, mido.Message("note_off", channel=n.channel, note=n.pitch, velocity=0)))
        for time, _, status, d1, d2 in self._events:
            if status & 0xF0 == 0xB0 and (end_sample is None or time <= end_sample):
                timed.append(
                    (self.tick(time), 1, mido.Message("control_change", channel=status & 0x0F, control=d1, value=d2))
                )
        timed.sort(key=lambda t: (t[0], t[1]))
        conductor = mido.MidiTrack()
        conductor.append(mido.MetaMessage("track_name", name="idaw", time=0))
        conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.tempo_bpm), time=0))
        conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        conductor.append(mido.MetaMessage("end_of_track", time=0))
        midi = mido.MidiFile(type=1, ticks_per_beat=self.ppq)
        midi.tracks.append(conductor)
        for channel in sorted({int(m.channel) for _, _, m in timed}):
            track = mido.MidiTrack()
            name = self.track_names.get(channel, f"channel {channel + 1}")
            track.append(mido.MetaMessage("track_name", name=name, time=0))
            if channel in self.programs:
                track.append(mido.Message("program_change", channel=channel, program=self.programs[channel], time=0))
            now = 0
            for tick, _, message in timed:
                if message.channel == channel:
                    track.append(message.copy(time=tick - now))
                    now = tick
            track.append(mido.MetaMessage("end_of_track", time=0))
            midi.tracks.append(track)
        with output_file.replacing(path, "MIDI file") as part:  # complete or absent, even after Ctrl-C
            try:
                midi.save(str(part))
            except OSError as error:
                raise path_error("write MIDI file", path, error) from None
        return len(notes)
