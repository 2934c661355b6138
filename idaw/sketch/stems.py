"""The song sketch's second stage: the structure becomes four MIDI stems (melody, harmony, bass, drums), played by
the core's MIDI generator: the five nets choose, the theory layer filters, and a chord plan holds each bar to the
section's progression.

- Each section is one run of the generator from a fresh grid, so its first bar is a phrase start (a crash, the
  phrase's cadence plan from bar 0) and its last bars hold the fills the generator plays every 4th and 8th bar.
  Sections longer than MAX_RUN_BARS (the generator's longest chord plan) are played as several runs.
- Chords: the section's progression (music21 Roman numerals) one a bar, looped; the last section ends V7 - I (an
  authentic cadence), a section before a chorus ends on V (a half cadence). Roman numerals become the core's chord
  classes (chord_class): sevenths other than the dominant one play as their triads (the core has five qualities).
- Mood: the song's valence and arousal moved per section (SECTION_MOOD: verses calmer, choruses brighter and
  busier) so the sections contrast.
- Seeds: one per section name, so every chorus (and every verse) replays the same material: a repeated chorus is
  the first one again, as songs do; a shorter repeat is the first one's beginning (the generator is deterministic).
- Voice leading across sections: each run starts from what sounded on the last bar line of the one before (Carry:
  the voicing and the melody pitch, MidiControl::start_bass), so its first chord moves by the smallest motion and
  without parallels from the last one. A repeat replays its first take exactly when it follows the same music.

The events of each run are moved onto the song's sample clock (the run's first bar line on the section's start) and
cut at the section's end; runs with the same settings are generated once.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import music21
import numpy as np

import idaw_core
from idaw.sketch.structure import SECTION_ROLES, Structure
from idaw.theory.keys import KeyLabel, parse_key_name
from realtime import midi_settings
from realtime.midi_file import MidiRecording, Note

SAMPLE_RATE: Final = 48000
"""The generator's clock (samples per second); the song's too."""
BLOCK: Final = 1024
"""Engine block size for the generator runs (the events do not depend on it)."""
MAX_RUN_BARS: Final = 16
"""Bars per generator run: the core's longest chord plan (MidiControl::kMaxChordPlanBars)."""
STEMS: Final = {"melody": 0, "harmony": 1, "bass": 2, "drums": 9}
"""Stem name -> MIDI channel (0-based; drums on General MIDI channel 10)."""
SECTION_MOOD: Final = {
    "intro": (0.0, -0.3),
    "verse": (0.0, -0.15),
    "pre-chorus": (0.05, 0.05),
    "chorus": (0.1, 0.2),
    "drop": (0.1, 0.3),
    "bridge": (-0.15, 0.0),
    "break": (0.0, -0.3),
    "build": (0.0, 0.1),
    "solo": (0.05, 0.15),
    "head": (0.0, 0.0),
    "outro": (0.0, -0.25),
}
"""Section name -> (valence, arousal) added to the song's mood (clipped to -1..1); other names get (0, 0)."""
DOMINANT_SEVENTH: Final = 2
"""ChordQuality::Dom7 (music_theory.h): classes are quality * 12 + root."""
QUALITIES: Final = {"major": 0, "minor": 1, "diminished": 3, "augmented": 4}
"""music21's triad quality -> the core's ChordQuality."""


@dataclass(frozen=True)
class Carry:
    """What sounded on the last bar line of the run before (MidiControl::start_bass): the voicing (bass and three
    upper pitches) and the melody pitch, so the next run's first bar leads its voices from them."""

    voicing: tuple[int, int, int, int] | None = None
    melody: int = -1


@dataclass(frozen=True)
class Run:
    """One generator run: a section, or a part of a long one."""

    section: str
    start_bar: int
    bars: int
    chords: tuple[int, ...]
    """The core's chord class of each bar."""
    valence: float
    arousal: float
    seed: int


def chord_class(figure: str, key: KeyLabel) -> int:
    """The core's chord class (quality * 12 + root; music_theory.h) of a music21 Roman numeral in `key`: the dominant
    seventh keeps its seventh, every other chord plays as its triad. IdawError-free: the genre table's numerals are
    checked by the tests."""
    numeral = music21.roman.RomanNumeral(figure, key.to_music21())
    root = numeral.root().pitchClass
    if numeral.isDominantSeventh():
        return DOMINANT_SEVENTH * 12 + root
    return QUALITIES.get(numeral.quality, 0) * 12 + root


def structure_key(structure: Structure) -> KeyLabel:
    """The structure's key as a KeyLabel."""
    key = parse_key_name(structure.key)
    assert key is not None, structure.key  # make_structure writes KeyLabel.name
    return key


def section_chords(structure: Structure) -> list[list[str]]:
    """The Roman numeral of every bar, section by section: the progression looped, with the cadences of the module
    docstring at the section ends."""
    key = structure_key(structure)
    out: list[list[str]] = []
    for i, section in enumerate(structure.sections):
        bars = [section.progression[b % len(section.progression)] for b in range(section.bars)]
        last = i == len(structure.sections) - 1
        following = None if last else SECTION_ROLES.get(structure.sections[i + 1].name, "verse")
        if last and section.bars >= 2:
            bars[-2:] = ["V7", "i" if key.minor else "I"]
        elif following == "chorus" and SECTION_ROLES.get(section.name, "verse") != "chorus":
            bars[-1] = "V"
        out.append(bars)
    return out


def section_seed(structure: Structure, name: str) -> int:
    """The generator's seed for every section called `name` (never 0)."""
    return (structure.seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 62) + 1


def runs(structure: Structure) -> list[Run]:
    """The generator runs that play the structure, in song order."""
    key = structure_key(structure)
    out: list[Run] = []
    for section, numerals in zip(structure.sections, section_chords(structure), strict=True):
        dv, da = SECTION_MOOD.get(section.name, (0.0, 0.0))
        valence = float(np.clip(structure.valence + dv, -1.0, 1.0))
        arousal = float(np.clip(structure.arousal + da, -1.0, 1.0))
        chords = [chord_class(n, key) for n in numerals]
        for part, first in enumerate(range(0, section.bars, MAX_RUN_BARS)):
            bars = min(MAX_RUN_BARS, section.bars - first)
            out.append(
                Run(
                    section=section.name,
                    start_bar=section.start_bar + first,
                    bars=bars,
                    chords=tuple(chords[first : first + bars]),
                    valence=round(valence, 4),
                    arousal=round(arousal, 4),
                    seed=section_seed(structure, section.name) + part,
                )
            )
    return out


class StemGenerator:
    """Plays runs on one engine with the nets installed once; generate() returns a run's notes on its own clock
    (its first bar line at sample 0; notes of the first step may start up to half a step before it)."""

    def __init__(self, structure: Structure, models: Path | None = None) -> None:
        self.structure = structure
        self.engine = idaw_core.Engine()
        self.engine.prepare(float(SAMPLE_RATE), BLOCK, 2)
        midi_settings.install_nets(self.engine, models)
        key = structure_key(structure)
        self.base = midi_settings.MidiSettings(
            tempo_bpm=float(structure.bpm),
            key_tonic=key.tonic,
            scale=midi_settings.parse_key(f"C:{'minor' if key.minor else 'major'}")[1],
        )
        self._cache: dict[tuple[int, tuple[int, ...], float, float, int, Carry], list[Note]] = {}

    @property
    def bar_samples(self) -> float:
        """Samples per 4/4 bar at the song's tempo."""
        return SAMPLE_RATE * 240.0 / float(self.structure.bpm)

    def generate(self, run: Run, carry: Carry = Carry()) -> list[Note]:
        """The run's notes, carrying on from `carry` (cached by the run's settings and the carry)."""
        cache_key = (run.bars, run.chords, run.valence, run.arousal, run.seed, carry)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._play(run, carry)
        return self._cache[cache_key]

    def _play(self, run: Run, carry: Carry) -> list[Note]:
        engine = self.engine
        engine.prepare(float(SAMPLE_RATE), BLOCK, 2)  # sample clock 0, nothing sounding, the nets kept
        emotion = tuple(float(x) for x in midi_settings.emotion_from_valence_arousal(run.valence, run.arousal))
        settings = midi_settings.MidiSettings(
            tempo_bpm=self.base.tempo_bpm,
            key_tonic=self.base.key_tonic,
            scale=self.base.scale,
            emotion=emotion,
            seed=run.seed,
        )
        midi_settings.push(
            engine,
            settings,
            enabled=True,
            sequence=1,
            chord_plan=run.chords,
            start_voicing=carry.voicing or (),
            start_melody=carry.melody,
        )
        origin = engine.midi_lookahead_samples(self.base.tempo_bpm)  # the grid's first bar line (started at 0)
        end = origin + run.bars * self.bar_samples
        recording = MidiRecording(SAMPLE_RATE, self.base.tempo_bpm)
        silence = np.zeros((SAMPLE_RATE, 2), np.float32)
        done = 0
        while done < end:
            frames = min(silence.shape[0], math.ceil(end) - done)
            engine.render(silence[:frames], BLOCK)
            done += frames
            for event in engine.drain_midi():
                recording.add(*event)
        midi_settings.push(engine, settings, enabled=False, sequence=2)
        engine.process(np.zeros((0, 2), np.float32))
        for event in engine.drain_midi():
            recording.add(*event)
        # Notes of the next bar's first step start at most 0.45 step before its line: cut half a step before it.
        step = self.bar_samples / 16.0
        cut = round(end - 0.5 * step)
        shift = round(origin)
        return [
            Note(n.channel, n.pitch, n.velocity, n.start - shift, min(n.end, round(end)) - shift)
            for n in recording.notes(end_sample=round(end))
            if n.start < cut
        ]


def last_bar_carry(notes: Sequence[Note], bars: int, bar_samples: float) -> Carry:
    """What a run's notes (on its own clock) sound on its last bar line: the bass and the three chord notes struck
    within half a sixteenth of it, and the melody note sounding there; no voicing when they are not all there."""
    line = (bars - 1) * bar_samples
    half_step = bar_samples / 32.0
    near = [n for n in notes if abs(n.start - line) <= half_step]
    bass = [n.pitch for n in near if n.channel == STEMS["bass"]]
    upper = sorted(n.pitch for n in near if n.channel == STEMS["harmony"])
    voicing = (bass[0], upper[0], upper[1], upper[2]) if len(bass) == 1 and len(upper) == 3 else None
    sounding = [n for n in notes if n.channel == STEMS["melody"] and n.start <= line + half_step and n.end > line]
    melody = max(sounding, key=lambda n: n.start).pitch if sounding else -1
    return Carry(voicing, melody)


def song_notes(structure: Structure, models: Path | None = None) -> Iterator[tuple[Run, list[Note]]]:
    """Each run with its notes on the song's sample clock (bar 0 at sample 0; nothing before 0). Each run carries on
    from the last bar line of the one before (Carry)."""
    generator = StemGenerator(structure, models)
    carry = Carry()
    for run in runs(structure):
        played = generator.generate(run, carry)
        carry = last_bar_carry(played, run.bars, generator.bar_samples)
        offset = round(run.start_bar * generator.bar_samples)
        notes = [Note(n.channel, n.pitch, n.velocity, max(0, n.start + offset), max(1, n.end + offset)) for n in played]
        yield run, notes
