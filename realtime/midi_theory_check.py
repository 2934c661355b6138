"""Issue 11's yardstick for generated MIDI: generate, read back with music21 and mido only, compare with the goals.

    python -m realtime.midi_theory_check [--keys all|C:major,A:minor,...] [--moods corners|V:A,...] [--seeds 1,2,3]
        [--bars 32] [--tempo 120] [--out DIR] [--json FILE] [--reference FILE] [--no-theory]

For each case (key x mood x seed) the project's generator writes a MIDI file through the path of
`idaw process SILENCE.wav -o OUT.wav --midi-out FILE.mid --key K --tempo T --valence V --arousal A --midi-seed S
--no-sidecar` (realtime/offline.py `render` with realtime/midi_offline.py's OfflineMidi, in-process; the audio is
thrown away). The silence is `bars` bars of 4/4 long plus the generator's lookahead (docs/MIDI.md: its grid starts
1.5 sixteenths + 100 ms after it is switched on) less half a sixteenth, so the file holds `bars` whole bars and no
note of the next one.

Each file is then read back by mido (notes, channels, track names, tempo, time signature) and music21 (key, Roman
numerals, voice-leading quartets) and MusPy (three metrics); never by the project's own analysis (idaw.theory), as
issue 11 asks. What is read:

- parts: by track name when tracks are named after their role (melody/lead, chords/harmony/pad, bass,
  drums/percussion), else by channel (0-based: 0 melody, 1 chords, 2 bass, 9 drums; other channels count as
  "other"). With no chords part (today's files: melody and strummed chords share channel 0) the strum heuristic
  splits the melody part: notes whose onsets follow each other within STRUM_WINDOW_S form a group, and a group of at
  least MIN_STRUM_NOTES notes is a strummed chord, less its melody notes: those in the melody's register (at or
  above the lowest pitch that ever sounds alone, i.e. with no other onset within the window) and, failing those,
  the group's highest note when it is released more than the window apart from its lowest (a strummed chord is
  released together; a melody note struck with it ends on its own). Each separate chords-part onset group is a
  chord. With no bass part, the bass is each chord's lowest note.
- bar 1 begins on the sixteenth-note grid line nearest the file's first onset, the grid's phase being the one that
  fits all onsets best (their circular mean against a sixteenth): the generator's grid starts a lookahead after
  tick 0, so tick 0 is no bar line, and its notes are humanised (micro-timing up to 0.4 sixteenth, rolled chords),
  so the first onset alone can be off the grid. Bars have the length of the file's first time signature (4/4
  without one).
- key heard: music21 `analyze('key')` on a stream of every non-drum note (pitch, offset and length in quarter
  notes), compared with the key asked by tonic pitch class and mode.
- parallel fifths and octaves, through music21 `voiceLeading.VoiceLeadingQuartet`, counted only in similar motion
  (both voices move, the same way), as idaw/theory/voice_leading.py defines them: a repeated fifth, or contrary
  motion between two fifths, is not parallel; unison to octave is a parallel octave. Pitches are spelled in the key
  asked (Roman numerals: each pitch nearest the key's centre on the line of fifths; voice-leading quartets: the four
  pitches together, so that a sounding fifth is always a perfect fifth), so music21 names what a listener hears.
  * chord voicings: between consecutive chords with the same number of notes (voices = pitch ranks within each
    chord), each pair of voices at least one of which changes pitch is one voice pair;
  * melody and bass: at each chord onset, the melody note sounding then (begun at most STRUM_WINDOW_S after it)
    against the bass note (the chord's lowest note, or the bass part's note sounding then); consecutive chord onsets
    where both are present and at least one moves are one voice pair.
- phrase-end cadences: phrases of PHRASE_BARS bars from bar 1, complete phrases only. A chord belongs to the phrase
  its onset falls in, read with ONSET_TOLERANCE_Q of early play (a chord struck a little before a phrase starts is
  that phrase's first). At each phrase end the last chord and the last chord before it with another pitch-class set
  (both within the phrase) are read with music21 `roman.romanNumeralFromChord` in the key asked: "authentic" when a
  major V (V, V7, any inversion) or a diminished vii (viio, viio7, viiø7) goes to I or i; "half" when the phrase ends
  on a major V; "modal" when a minor v goes to i or the phrase ends on a minor v (no leading tone: not counted as
  a cadence); "none" otherwise.
- MusPy's pitch-class entropy, scale consistency and groove consistency (muspy.pitch_class_entropy,
  muspy.scale_consistency, muspy.groove_consistency) on the notes quantised to RESOLUTION steps per quarter note from
  bar 1 (measure resolution = one bar), and the same on a reference: music21's corpus Bach chorales and Essen folk
  songs (German, from four collections), each metric's interquartile range per corpus and pooled; per run, whether
  its value lies inside each. MusPy gets onsets only (see `muspy_metrics`).

The JSON (--json) holds the settings, one row per case, the reference distributions and a summary with issue 11's
goals side by side with the figures; stdout gets a short table. The figures pool all runs: key match is a share of
runs, parallels and cadences are counted over all voice pairs and phrase ends; for each metric the value is the share
of runs inside the pooled (chorales + folk songs) IQR, and the goal counts as met when the runs' median is inside it
(the JSON also has each corpus's IQR and share). Files go to --out DIR (default: a temporary folder removed at the
end).
"""

from __future__ import annotations

import argparse
import bisect
import functools
import itertools
import json
import math
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import music21
import numpy as np
from tqdm import tqdm

from idaw.base.errors import IdawError
from idaw.theory.pitch_names import PITCH_NAMES
from realtime import midi_offline, midi_settings, offline, options

STRUM_WINDOW_S = 0.060
"""Onsets closer than this (seconds) to the previous onset of a group belong to the same strum."""
MIN_STRUM_NOTES = 3
"""A group of at least this many onsets is a strummed chord (in a part that mixes melody and chords)."""
PHRASE_BARS = 4
"""Bars per phrase: a cadence is looked for at the end of every complete phrase."""
ONSET_TOLERANCE_Q = 0.25
"""A chord struck up to this many quarter notes (a sixteenth) before a phrase starts belongs to that phrase."""
RESOLUTION = 4
"""MusPy time steps per quarter note for the three metrics: the sixteenth grid the generator composes on. Its files
are performed (humanised timing and rolled chords), the corpus is notated: on this grid both give their composed
rhythm (a finer one would count the humanisation as rhythm in groove consistency; corpus triplets land on the nearest
sixteenth)."""
GRID_Q = 0.25
"""The grid (quarter notes) whose phase places bar 1: a sixteenth."""
RENDER_RATE = 48000
"""Sample rate of the silence the generator runs on."""
DRUM_CHANNEL = 9
"""General MIDI percussion (channel 10, 0-based 9)."""
CHANNEL_ROLES = {0: "melody", 1: "chords", 2: "bass", DRUM_CHANNEL: "drums"}
"""Role of each channel when the tracks are not named after their roles."""
ROLE_NAMES = (
    ("drums", re.compile(r"drum|percussion|\bkit\b", re.IGNORECASE)),
    ("bass", re.compile(r"bass", re.IGNORECASE)),
    ("chords", re.compile(r"chord|harmony|\bpad\b|comp", re.IGNORECASE)),
    ("melody", re.compile(r"melody|lead|tune|vocal", re.IGNORECASE)),
)
"""Track names that say a part's role, tried in this order."""
MODES = ("major", "minor")
ALL_KEYS = tuple(f"{tonic}:{mode}" for mode in MODES for tonic in PITCH_NAMES)
MOOD_CORNERS = ((-0.6, -0.6), (-0.6, 0.6), (0.6, -0.6), (0.6, 0.6))
"""(valence, arousal) of --moods corners."""
METRICS = ("pitch_class_entropy", "scale_consistency", "groove_consistency")
REFERENCE_CHORALES = 100
"""Riemenschneider numbers 1..this of music21's Bach chorales form the chorale reference."""
FOLK_SOURCES = ("essenFolksong/erk10", "essenFolksong/boehme10", "essenFolksong/zuccal0", "essenFolksong/kinder0")
"""Essen collections (Erk, Böhme, Zuccalmaglio, children's songs) the folk reference takes its first songs from."""
REFERENCE_FOLK = 200
"""Folk songs in the reference, split evenly over FOLK_SOURCES."""
KEPT_COUNTERS = ("chord_choices", "chords_kept", "melody_choices", "melody_kept")
"""The generator's counters of the nets' choices and of those the theory layer kept (idaw_core midi_counters)."""
GOALS = {
    "key_match_share": 0.95,
    "chord_voicing_parallels": 0,
    "melody_bass_per_100_pairs": 1.0,
    "cadence_share": 0.80,
}
"""Issue 11's must-show for generated MIDI (the three metrics: inside the corpus interquartile range)."""


# ---------------------------------------------------------------------------------------------------------------
# Reading a file (mido)


@dataclass(frozen=True)
class HeardNote:
    """One note read from a MIDI file: times in quarter notes (ticks / ticks per beat) and seconds (tempo map)."""

    pitch: int
    channel: int
    track: int
    start_q: float
    end_q: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Reading:
    """Everything read from one MIDI file."""

    notes: tuple[HeardNote, ...]
    """Every note, by onset."""
    track_names: tuple[str, ...]
    """The first track_name of each track ('' when none)."""
    bar_q: float
    """Bar length in quarter notes, from the first time signature (4.0 without one)."""


def read_midi(path: str | Path) -> Reading:
    """The notes of a standard MIDI file, read with mido; IdawError (one line) when it cannot be read.

    Notes are paired per track, channel and pitch (a note-on while the same note sounds ends the sounding one); a
    note never ended ends at the track's last event.
    """
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise IdawError(f"cannot read MIDI file {path}: {error}") from None
    ppq = midi.ticks_per_beat
    seconds = _tempo_map(midi)
    names: list[str] = []
    notes: list[HeardNote] = []
    bar_q: float | None = None
    for index, track in enumerate(midi.tracks):
        name = ""
        now = 0
        sounding: dict[tuple[int, int], int] = {}
        for message in track:
            now += message.time
            if message.type == "track_name" and not name:
                name = str(message.name)
            elif message.type == "time_signature" and bar_q is None:
                bar_q = 4.0 * message.numerator / message.denominator
            elif message.type in ("note_on", "note_off"):
                key = (message.channel, message.note)
                if key in sounding:  # a note-off, or a note-on striking the sounding note again, ends it
                    start = sounding.pop(key)
                    notes.append(_note(message.note, message.channel, index, start, now, ppq, seconds))
                if message.type == "note_on" and message.velocity > 0:
                    sounding[key] = now
        for (channel, pitch), start in sounding.items():
            notes.append(_note(pitch, channel, index, start, max(now, start + 1), ppq, seconds))
        names.append(name)
    notes.sort(key=lambda n: (n.start_q, n.pitch))
    return Reading(tuple(notes), tuple(names), 4.0 if bar_q is None else bar_q)


def _tempo_map(midi: mido.MidiFile) -> Callable[[int], float]:
    """A function: absolute tick -> seconds, from every set_tempo in the file (120 BPM before the first)."""
    changes: list[tuple[int, int]] = []
    for track in midi.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type == "set_tempo":
                changes.append((now, message.tempo))
    changes.sort()
    ticks = [0]
    tempos = [500000]
    starts = [0.0]
    for tick, tempo in changes:
        starts.append(starts[-1] + (tick - ticks[-1]) * tempos[-1] / 1e6 / midi.ticks_per_beat)
        ticks.append(tick)
        tempos.append(tempo)

    def to_seconds(tick: int) -> float:
        i = bisect.bisect_right(ticks, tick) - 1
        return float(starts[i] + (tick - ticks[i]) * tempos[i] / 1e6 / midi.ticks_per_beat)

    return to_seconds


def _note(
    pitch: int, channel: int, track: int, start: int, end: int, ppq: int, seconds: Callable[[int], float]
) -> HeardNote:
    """A HeardNote from ticks."""
    return HeardNote(pitch, channel, track, start / ppq, end / ppq, seconds(start), seconds(end))


# ---------------------------------------------------------------------------------------------------------------
# Parts


@dataclass(frozen=True)
class Chord:
    """One chord struck: its notes (by pitch), onset (earliest note) in quarter notes and seconds."""

    notes: tuple[HeardNote, ...]

    @property
    def pitches(self) -> tuple[int, ...]:
        """MIDI pitches, lowest first."""
        return tuple(n.pitch for n in self.notes)

    @property
    def pitch_classes(self) -> frozenset[int]:
        """The pitch-class set (what makes two chords the same harmony)."""
        return frozenset(p % 12 for p in self.pitches)

    @property
    def start_q(self) -> float:
        return min(n.start_q for n in self.notes)

    @property
    def start_s(self) -> float:
        return min(n.start_s for n in self.notes)


@dataclass(frozen=True)
class Parts:
    """The file's notes by role."""

    melody: tuple[HeardNote, ...]
    chords: tuple[Chord, ...]
    bass: tuple[HeardNote, ...]
    """The bass part's notes; empty when the bass is read from the chords' lowest notes."""
    drums: tuple[HeardNote, ...]
    other: tuple[HeardNote, ...]
    source: str
    """How the parts were told apart, e.g. 'channels + strum heuristic; bass = lowest chord note'."""
    origin_q: float
    """Bar 1's downbeat, quarter notes (`grid_origin`)."""
    bar_q: float

    @property
    def pitched(self) -> list[HeardNote]:
        """Every non-drum note, by onset."""
        notes = [*self.melody, *(n for c in self.chords for n in c.notes), *self.bass, *self.other]
        return sorted(notes, key=lambda n: (n.start_q, n.pitch))


def role_of_track(name: str) -> str | None:
    """The role a track name announces ('melody', 'chords', 'bass', 'drums'), or None."""
    for role, pattern in ROLE_NAMES:
        if pattern.search(name):
            return role
    return None


def onset_groups(notes: Iterable[HeardNote], window_s: float = STRUM_WINDOW_S) -> list[list[HeardNote]]:
    """Notes grouped by onset: each note joins the group of the previous onset when it starts at most `window_s`
    seconds after it. Groups and their notes by onset."""
    groups: list[list[HeardNote]] = []
    for note in sorted(notes, key=lambda n: (n.start_s, n.pitch)):
        if groups and note.start_s - groups[-1][-1].start_s <= window_s:
            groups[-1].append(note)
        else:
            groups.append([note])
    return groups


def split_strums(notes: Sequence[HeardNote]) -> tuple[list[HeardNote], list[Chord]]:
    """(melody, chords) of a part that mixes a melody and strummed chords (the module docstring's heuristic)."""
    groups = onset_groups(notes)
    alone = [g[0].pitch for g in groups if len(g) == 1]
    melody_floor = min(alone) if alone else 128
    melody: list[HeardNote] = []
    chords: list[Chord] = []
    for group in groups:
        if len(group) >= MIN_STRUM_NOTES:
            by_pitch = sorted(group, key=lambda n: n.pitch)
            top, bottom = by_pitch[-1], by_pitch[0]
            tune = [n for n in by_pitch if n.pitch >= melody_floor]
            if not tune and abs(top.end_s - bottom.end_s) > STRUM_WINDOW_S:
                tune = [top]  # under the melody's lowest lone note, but released on its own: the melody's
            low = [n for n in by_pitch if n not in tune]
            if len(low) >= MIN_STRUM_NOTES:
                chords.append(Chord(tuple(low)))
                melody.extend(tune)
                continue
        melody.extend(group)
    melody.sort(key=lambda n: (n.start_q, n.pitch))
    return melody, chords


def grid_origin(onsets: Sequence[float], grid_q: float = GRID_Q) -> float:
    """Bar 1's downbeat (quarter notes) for onsets played on a grid of `grid_q`: the grid line nearest the first
    onset, the grid's phase being the circular mean of every onset's phase; 0.0 without onsets."""
    if not onsets:
        return 0.0
    first = min(onsets)
    turns = (np.asarray(onsets, dtype=np.float64) - first) / grid_q
    mean = complex(np.mean(np.exp(2j * np.pi * turns)))
    phase = math.atan2(mean.imag, mean.real) / (2 * math.pi) * grid_q if abs(mean) > 1e-9 else 0.0
    return first + phase


def split_parts(reading: Reading) -> Parts:
    """The parts of a file (see the module docstring for the rules)."""
    roles = [role_of_track(name) for name in reading.track_names]
    by_name = sum(role is not None for role in roles) >= 2
    found: dict[str, list[HeardNote]] = {"melody": [], "chords": [], "bass": [], "drums": [], "other": []}
    for note in reading.notes:
        role = roles[note.track] if by_name else None
        if role is None:
            role = CHANNEL_ROLES.get(note.channel, "other")
        found[role].append(note)
    source = "track names" if by_name else "channels"
    chords: list[Chord]
    if found["chords"]:
        chords = [Chord(tuple(sorted(g, key=lambda n: n.pitch))) for g in onset_groups(found["chords"])]
        melody = found["melody"]
    else:
        melody, chords = split_strums(found["melody"])
        source += " + strum heuristic"
    if not found["bass"]:
        source += "; bass = lowest chord note"
    origin = grid_origin([n.start_q for n in reading.notes])
    return Parts(
        melody=tuple(melody),
        chords=tuple(chords),
        bass=tuple(found["bass"]),
        drums=tuple(found["drums"]),
        other=tuple(found["other"]),
        source=source,
        origin_q=origin,
        bar_q=reading.bar_q,
    )


# ---------------------------------------------------------------------------------------------------------------
# Keys and spelling (music21)


def music21_key(key_name: str) -> music21.key.Key:
    """The music21 key of 'A:minor', 'Eb:major', ... (TONIC:major|minor): the spelling of the tonic with the smaller
    key signature (Db major rather than C# major)."""
    tonic, scale = midi_settings.parse_key(key_name)
    mode = midi_settings.SCALES[scale]
    if mode not in MODES:
        raise IdawError(f"key '{key_name}': this check reads major and minor keys only")
    return _key_of(tonic, mode)


@functools.cache
def _key_of(tonic: int, mode: str) -> music21.key.Key:
    """The music21 key of a tonic pitch class and mode, spelled with the fewest sharps or flats (flats on a tie)."""
    candidates = []
    for name in _spellings(tonic):
        k = music21.key.Key(name if mode == "major" else name.lower(), mode)
        candidates.append((abs(k.sharps), k.sharps, k))
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def _spellings(pitch_class: int) -> list[str]:
    """Note names of a pitch class with at most one sharp or flat, music21 style ('C#', 'D-')."""
    names = []
    for letter, natural in (("C", 0), ("D", 2), ("E", 4), ("F", 5), ("G", 7), ("A", 9), ("B", 11)):
        for alter, sign in ((0, ""), (1, "#"), (-1, "-")):
            if (natural + alter) % 12 == pitch_class:
                names.append(letter + sign)
    return names


_LETTERS_BY_FIFTHS = "FCGDAEB"


@functools.cache
def spelled(midi: int, tonic: int, mode: str) -> music21.pitch.Pitch:
    """A music21 pitch for a MIDI number, spelled in the key of `tonic` and `mode`: the spelling nearest the key's
    centre on the line of fifths (its diatonic notes, plus the raised seventh in minor; ties go to the sharp side).
    Used for Roman numerals, which are read in the key."""
    centre = _key_centre(_key_of(tonic, mode))
    base = (midi * 7) % 12  # line-of-fifths position of the pitch class (C = 0), modulo 12
    position = min((base + 12 * k for k in range(-2, 3)), key=lambda p: (abs(p - centre), -p))
    return _pitch_at(position, midi)


def key_heard(notes: Sequence[HeardNote]) -> music21.key.Key | None:
    """music21's key analysis (`analyze('key')`) of the notes, or None without notes."""
    if not notes:
        return None
    stream: music21.stream.Stream[music21.note.Note] = music21.stream.Stream()
    for n in notes:
        element = music21.note.Note(n.pitch)
        element.quarterLength = max(n.end_q - n.start_q, 1 / 64)
        stream.coreInsert(n.start_q, element)
    stream.coreElementsChanged()
    result = stream.analyze("key")
    return result if isinstance(result, music21.key.Key) else None


def same_key(heard: music21.key.Key | None, asked: music21.key.Key) -> bool:
    """True when the key heard has the tonic pitch class and mode of the key asked."""
    return heard is not None and heard.tonic.pitchClass == asked.tonic.pitchClass and heard.mode == asked.mode


def key_text(key: music21.key.Key | None) -> str | None:
    """'A minor', 'E- major', ... or None."""
    return None if key is None else f"{key.tonic.name} {key.mode}"


# ---------------------------------------------------------------------------------------------------------------
# Voice leading (music21 VoiceLeadingQuartet)


def spelled_together(midis: Sequence[int], key: music21.key.Key) -> list[music21.pitch.Pitch]:
    """music21 pitches for up to four MIDI numbers, spelled as close together on the line of fifths as their pitch
    classes allow, the window placed nearest the key's centre: equal pitch classes are spelled alike and two pitch
    classes a fifth apart always as a perfect fifth (the line is cut at the widest gap between the pitch classes,
    at least 3 fifths wide for four of them), whatever the key, so music21 names the intervals a listener hears.
    (The rule of idaw/theory/voice_leading.py's spelling, restated here: this check must not use idaw.theory.)"""
    positions = sorted({(m * 7) % 12 for m in midis})  # C 0, G 1, D 2, ... F 11 around the circle of fifths
    gaps = [((positions[(i + 1) % len(positions)] - positions[i]) % 12 or 12, i) for i in range(len(positions))]
    start = positions[(max(gaps)[1] + 1) % len(positions)]
    line = {p: start + (p - start) % 12 for p in positions}
    centre = sum(line.values()) / len(line)
    shift = 12 * round((_key_centre(key) - centre) / 12)
    return [_pitch_at(line[(m * 7) % 12] + shift, m) for m in midis]


def _key_centre(key: music21.key.Key) -> float:
    """The middle of a key's notes on the line of fifths (C = 0): its diatonic notes, plus the raised seventh in
    minor."""
    return float(key.sharps) + (2.0 if key.mode == "major" else 3.5)


def _pitch_at(position: int, midi: int) -> music21.pitch.Pitch:
    """The music21 pitch at a line-of-fifths position (C = 0) that sounds as the MIDI number."""
    index = position + 1  # F = 0
    alter = index // 7
    name = _LETTERS_BY_FIFTHS[index % 7] + ("#" * alter if alter > 0 else "-" * -alter)
    pitch = music21.pitch.Pitch(name + "4")
    pitch.octave = 4 + (midi - int(pitch.midi)) // 12
    return pitch


@functools.cache
def parallels(
    upper_before: int, upper_after: int, lower_before: int, lower_after: int, tonic: int, mode: str
) -> tuple[bool, bool]:
    """(parallel fifth, parallel octave) of one quartet of MIDI numbers by music21's VoiceLeadingQuartet, the four
    pitches spelled together (`spelled_together`) near the key of `tonic` and `mode`: similar motion only (music21
    also calls contrary motion between two fifths parallel); unison to octave counts as a parallel octave."""
    v1n1, v1n2, v2n1, v2n2 = spelled_together(
        [upper_before, upper_after, lower_before, lower_after], _key_of(tonic, mode)
    )
    quartet = music21.voiceLeading.VoiceLeadingQuartet(v1n1, v1n2, v2n1, v2n2)
    similar = bool(quartet.similarMotion())
    first, second = quartet.vIntervals
    octave_class = first.simpleName == "P1" and second.simpleName == "P1"
    fifth = similar and bool(quartet.parallelFifth())
    octave = similar and (bool(quartet.parallelUnisonOrOctave()) or octave_class)
    return fifth, octave


@dataclass
class ParallelCount:
    """Parallel fifths and octaves over a number of judged voice pairs."""

    voice_pairs: int = 0
    parallel_fifths: int = 0
    parallel_octaves: int = 0
    transitions: int = 0
    unequal_skipped: int = 0
    at: list[float] = field(default_factory=list)
    """Onsets (quarter notes from bar 1) of the second chord of each faulty pair."""

    def judge(self, upper: tuple[int, int], lower: tuple[int, int], key: music21.key.Key, at_q: float) -> None:
        """Counts one voice pair moving from (upper[0], lower[0]) to (upper[1], lower[1]) when at least one moves."""
        if upper[0] == upper[1] and lower[0] == lower[1]:
            return
        self.voice_pairs += 1
        fifth, octave = parallels(upper[0], upper[1], lower[0], lower[1], key.tonic.pitchClass, key.mode)
        self.parallel_fifths += fifth
        self.parallel_octaves += octave
        if fifth or octave:
            self.at.append(round(at_q, 3))

    def describe(self) -> dict[str, Any]:
        """JSON-ready counts plus the faults per 100 voice pairs (None without pairs)."""
        faults = self.parallel_fifths + self.parallel_octaves
        return {
            "voice_pairs": self.voice_pairs,
            "parallel_fifths": self.parallel_fifths,
            "parallel_octaves": self.parallel_octaves,
            "parallels": faults,
            "per_100_pairs": None if not self.voice_pairs else 100.0 * faults / self.voice_pairs,
            "transitions": self.transitions,
            "unequal_skipped": self.unequal_skipped,
            "at": self.at,
        }


def chord_voicing_parallels(parts: Parts, key: music21.key.Key) -> ParallelCount:
    """Parallel fifths and octaves between consecutive chord voicings (voices by pitch rank; equal sizes only)."""
    count = ParallelCount()
    for before, after in itertools.pairwise(parts.chords):
        a, b = before.pitches, after.pitches
        if a == b:
            continue
        count.transitions += 1
        if len(a) != len(b):
            count.unequal_skipped += 1
            continue
        for low, high in itertools.combinations(range(len(a)), 2):
            count.judge((a[high], b[high]), (a[low], b[low]), key, after.start_q - parts.origin_q)
    return count


def sounding_at(notes: Sequence[HeardNote], at_s: float, window_s: float = STRUM_WINDOW_S) -> HeardNote | None:
    """The latest-begun note that starts at most `window_s` after `at_s` and still sounds at `at_s`, or None."""
    best: HeardNote | None = None
    for note in notes:
        if note.start_s > at_s + window_s:
            break
        if note.end_s > at_s and (best is None or note.start_s >= best.start_s):
            best = note
    return best


def melody_bass_parallels(parts: Parts, key: music21.key.Key) -> ParallelCount:
    """Parallel fifths and octaves between melody and bass at consecutive chord onsets (see the module docstring)."""
    count = ParallelCount()
    pairs: list[tuple[int, int, float] | None] = []
    for chord in parts.chords:
        tune = sounding_at(parts.melody, chord.start_s)
        if parts.bass:
            low = sounding_at(parts.bass, chord.start_s)
            bass = None if low is None else low.pitch
        else:
            bass = chord.pitches[0]
        pairs.append(None if tune is None or bass is None else (tune.pitch, bass, chord.start_q))
    for before, after in itertools.pairwise(pairs):
        count.transitions += 1
        if before is None or after is None:
            continue
        count.judge((before[0], after[0]), (before[1], after[1]), key, after[2] - parts.origin_q)
    return count


# ---------------------------------------------------------------------------------------------------------------
# Cadences (music21 romanNumeralFromChord)


def roman_numeral(chord: Chord, key: music21.key.Key) -> music21.roman.RomanNumeral:
    """music21's Roman numeral of a chord in the key (pitches spelled in the key)."""
    pitches = [spelled(p, key.tonic.pitchClass, key.mode) for p in chord.pitches]
    return music21.roman.romanNumeralFromChord(music21.chord.Chord(pitches), key)


def _function(rn: music21.roman.RomanNumeral) -> str:
    """'dominant' (major V), 'leading' (diminished vii), 'tonic' (I or i), 'minor-v' or 'other'."""
    degree, quality = rn.scaleDegree, rn.quality
    if degree == 5 and quality == "major":
        return "dominant"
    if degree == 7 and quality == "diminished":
        return "leading"
    if degree == 1 and quality in ("major", "minor"):
        return "tonic"
    if degree == 5 and quality == "minor":
        return "minor-v"
    return "other"


def cadence_type(before: music21.roman.RomanNumeral | None, last: music21.roman.RomanNumeral) -> str:
    """'authentic', 'half', 'modal' or 'none' for a phrase ending on `last` after `before` (module docstring)."""
    end = _function(last)
    start = "other" if before is None else _function(before)
    if end == "tonic" and start in ("dominant", "leading"):
        return "authentic"
    if end == "dominant":
        return "half"
    if (end == "tonic" and start == "minor-v") or end == "minor-v":
        return "modal"
    return "none"


def phrase_cadences(parts: Parts, key: music21.key.Key, phrase_bars: int = PHRASE_BARS) -> dict[str, Any]:
    """The cadence at the end of every complete phrase: counts, share authentic or half, and each ending."""
    phrase_q = phrase_bars * parts.bar_q
    onsets = [n.start_q - parts.origin_q for n in parts.pitched + list(parts.drums)]
    bars = int(max(onsets) // parts.bar_q) + 1 if onsets else 0  # the bar of the last onset (no tolerance: a late
    # note at a bar's end is that bar's)
    phrases = bars // phrase_bars
    by_phrase: dict[int, list[Chord]] = {}
    for chord in parts.chords:
        index = int((chord.start_q - parts.origin_q + ONSET_TOLERANCE_Q) // phrase_q)
        by_phrase.setdefault(index, []).append(chord)
    ends = []
    counts = {"authentic": 0, "half": 0, "modal": 0, "none": 0}
    for index in range(phrases):
        chords = by_phrase.get(index, [])
        figures: list[str] = []
        kind = "none"
        if chords:
            last = chords[-1]
            before = next((c for c in reversed(chords) if c.pitch_classes != last.pitch_classes), None)
            last_rn = roman_numeral(last, key)
            before_rn = None if before is None else roman_numeral(before, key)
            kind = cadence_type(before_rn, last_rn)
            figures = [*([] if before_rn is None else [before_rn.figure]), last_rn.figure]
        counts[kind] += 1
        ends.append({"bar": (index + 1) * phrase_bars, "chords": figures, "type": kind})
    good = counts["authentic"] + counts["half"]
    return {
        "phrase_ends": phrases,
        **counts,
        "share": None if not phrases else good / phrases,
        "ends": ends,
    }


# ---------------------------------------------------------------------------------------------------------------
# MusPy metrics


def _muspy() -> Any:
    """The muspy module; IdawError saying how to install it when it is missing."""
    try:
        import muspy
    except ImportError as error:
        raise IdawError(f"the metrics need MusPy ({error}); install it with: pip install muspy") from None
    return muspy


def muspy_metrics(
    notes: Iterable[tuple[float, int]], drums: Iterable[tuple[float, int]], bar_q: float | None
) -> dict[str, float | None]:
    """MusPy's pitch-class entropy, scale consistency and groove consistency of notes given as (onset, pitch), onsets
    in quarter notes from bar 1's downbeat, quantised to RESOLUTION steps a quarter; drums count for the groove only;
    no groove without `bar_q`. MusPy gets the notes as onsets (duration 0): none of the three reads durations, and its
    groove counts measures up to the last note's end, so a note ending on a bar line would add an empty measure.
    NaN (MusPy's answer without notes or bars to compare) comes back as None."""
    muspy = _muspy()

    def track(items: Iterable[tuple[float, int]], drum: bool) -> Any:
        made = [muspy.Note(time=round(t * RESOLUTION), pitch=p, duration=0, velocity=64) for t, p in items]
        return muspy.Track(program=0, is_drum=drum, notes=made)

    music = muspy.Music(resolution=RESOLUTION, tracks=[track(notes, False), track(drums, True)])
    values = {
        "pitch_class_entropy": float(muspy.pitch_class_entropy(music)),
        "scale_consistency": float(muspy.scale_consistency(music)),
        "groove_consistency": math.nan
        if bar_q is None or not any(t.notes for t in music.tracks)
        else float(muspy.groove_consistency(music, round(bar_q * RESOLUTION))),
    }
    return {name: (None if math.isnan(v) else v) for name, v in values.items()}


def file_metrics(parts: Parts) -> dict[str, float | None]:
    """The three MusPy metrics of a read file, from bar 1."""
    pitched = [(n.start_q - parts.origin_q, n.pitch) for n in parts.pitched]
    drums = [(n.start_q - parts.origin_q, n.pitch) for n in parts.drums]
    return muspy_metrics(pitched, drums, parts.bar_q)


def score_metrics(score: music21.stream.Score) -> dict[str, float | None]:
    """The three MusPy metrics of a corpus score: ties merged, grace notes dropped, a pickup bar padded so that bar 1
    starts on a bar line; no groove consistency when the time signature changes."""
    signatures = list(score.recurse().getElementsByClass(music21.meter.TimeSignature))
    ratios = {s.ratioString for s in signatures}
    bar_q = float(signatures[0].barDuration.quarterLength) if len(ratios) == 1 else None
    shift = 0.0
    measures = list(score.parts[0].getElementsByClass(music21.stream.Measure)) if score.parts else []
    if bar_q is not None and measures:
        first = float(measures[0].duration.quarterLength)
        if 0 < first < bar_q - 1e-6:
            shift = bar_q - first
    stripped = score.stripTies()
    notes: list[tuple[float, int]] = []
    lines: list[music21.stream.Stream[Any]] = [*stripped.parts] or [stripped]
    for part in lines:
        for element in part.flatten().notes:
            if float(element.quarterLength) <= 0:
                continue
            notes.extend((float(element.offset) + shift, int(p.midi)) for p in element.pitches)
    return muspy_metrics(notes, [], bar_q)


def reference_scores(chorales: int, folk: int) -> Iterator[tuple[str, str, music21.stream.Score]]:
    """(corpus, name, score) of the reference: Bach chorales by Riemenschneider number, then folk songs."""
    for score in music21.corpus.chorales.Iterator(1, chorales, numberingSystem="riemenschneider", returnType="stream"):
        if isinstance(score, music21.stream.Score):
            yield "chorales", str(score.metadata.title if score.metadata else ""), score
    per_source = -(-folk // len(FOLK_SOURCES)) if folk else 0
    taken = 0
    for source in FOLK_SOURCES:
        for number in range(1, per_source + 1):
            if taken >= folk:
                return
            parsed = music21.corpus.parse(source, number=number)
            if isinstance(parsed, music21.stream.Score):
                taken += 1
                yield "folk", f"{source}#{number}", parsed


def reference_metrics(chorales: int = REFERENCE_CHORALES, folk: int = REFERENCE_FOLK) -> dict[str, Any]:
    """The metrics of every reference score and each metric's interquartile range per corpus and pooled:
    {"pieces": {"chorales": [{name, metrics}], "folk": [...]}, "iqr": {corpus: {metric: [q1, q3]}}}."""
    pieces: dict[str, list[dict[str, Any]]] = {"chorales": [], "folk": []}
    with tqdm(total=chorales + folk, desc="reference", unit="piece", file=sys.stderr, leave=False) as bar:
        for corpus, name, score in reference_scores(chorales, folk):
            pieces[corpus].append({"name": name, "metrics": score_metrics(score)})
            bar.update(1)
    return {"pieces": pieces, "iqr": reference_iqr(pieces)}


def reference_iqr(pieces: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[float] | None]]:
    """Each metric's [25th, 75th] percentile per corpus and over both ('pooled'); None without values."""
    groups = {**pieces, "pooled": [p for corpus in pieces.values() for p in corpus]}
    out: dict[str, dict[str, list[float] | None]] = {}
    for corpus, items in groups.items():
        out[corpus] = {}
        for metric in METRICS:
            values = [p["metrics"][metric] for p in items if p["metrics"][metric] is not None]
            out[corpus][metric] = (
                [float(np.percentile(values, 25)), float(np.percentile(values, 75))] if values else None
            )
    return out


def inside(value: float | None, bounds: Sequence[float] | None) -> bool | None:
    """Whether `value` lies in [q1, q3]; None when either is unknown."""
    if value is None or bounds is None:
        return None
    return bounds[0] <= value <= bounds[1]


# ---------------------------------------------------------------------------------------------------------------
# One file, one case


def check_file(path: str | Path, key_name: str) -> dict[str, Any]:
    """Every reading of one MIDI file against the key asked (a row without the case's settings)."""
    asked = music21_key(key_name)
    parts = split_parts(read_midi(path))
    heard = key_heard(parts.pitched)
    return {
        "key": key_name,
        "parts_from": parts.source,
        "notes": {
            "melody": len(parts.melody),
            "chords": len(parts.chords),
            "chord_notes": sum(len(c.notes) for c in parts.chords),
            "bass": len(parts.bass),
            "drums": len(parts.drums),
            "other": len(parts.other),
        },
        "key_heard": key_text(heard),
        "key_match": same_key(heard, asked),
        "chord_voicings": chord_voicing_parallels(parts, asked).describe(),
        "melody_bass": melody_bass_parallels(parts, asked).describe(),
        "cadences": phrase_cadences(parts, asked),
        "metrics": file_metrics(parts),
    }


def lookahead_s(tempo: float) -> float:
    """How long after the generator is switched on its grid starts (docs/MIDI.md: 1.5 sixteenths + 100 ms)."""
    return 1.5 * 15.0 / tempo + 0.1


def render_seconds(bars: int, tempo: float) -> float:
    """Length of the silence that gives `bars` whole bars of 4/4 and nothing of the next (module docstring)."""
    sixteenth = 15.0 / tempo
    return bars * 16 * sixteenth + lookahead_s(tempo) - 0.5 * sixteenth


def generate(
    path: str | Path,
    key: str,
    valence: float,
    arousal: float,
    seed: int,
    bars: int,
    tempo: float,
    theory: bool = True,
) -> tuple[int, dict[str, int]]:
    """Writes the generator's MIDI for one case to `path` as `idaw process SILENCE.wav --midi-out` would (with
    `--no-theory` when `theory` is false); returns the notes written and the nets' choices the theory layer kept
    (KEPT_COUNTERS of the generator's counters). IdawError for settings the command refuses."""
    parser = argparse.ArgumentParser()
    offline.add_arguments(parser)
    args = parser.parse_args(
        [
            "SILENCE.wav",
            "-o",
            "unused.wav",
            "--midi-out",
            str(path),
            "--key",
            key,
            "--tempo",
            repr(float(tempo)),
            f"--valence={valence!r}",
            f"--arousal={arousal!r}",
            "--midi-seed",
            str(seed),
            "--no-sidecar",
            *([] if theory else ["--no-theory"]),
        ]
    )
    vector = options.chain_from_args(args)
    midi = midi_offline.from_args(args)
    assert midi is not None
    silence = np.zeros((round(render_seconds(bars, tempo) * RENDER_RATE), 1), np.float32)
    offline.render(silence, RENDER_RATE, vector, args.block_size, args.rate, midi=midi)
    return midi.notes, {name: int(midi.counters.get(name, 0)) for name in KEPT_COUNTERS}


@dataclass(frozen=True)
class Case:
    """One generated file's settings."""

    key: str
    valence: float
    arousal: float
    seed: int

    def file_name(self) -> str:
        """A file name that says the case, e.g. 'Eb-minor_v-0.6_a+0.6_s1.mid'."""
        return f"{self.key.replace(':', '-')}_v{self.valence:+g}_a{self.arousal:+g}_s{self.seed}.mid"


def run_case(case: Case, folder: Path, bars: int, tempo: float, theory: bool = True) -> dict[str, Any]:
    """Generates and reads one case; the row with the case's settings first."""
    path = folder / case.file_name()
    written, kept = generate(path, case.key, case.valence, case.arousal, case.seed, bars, tempo, theory)
    row = check_file(path, case.key)
    return {
        "key": case.key,
        "valence": case.valence,
        "arousal": case.arousal,
        "seed": case.seed,
        "file": str(path),
        "notes_written": written,
        "kept": kept,
        **row,
    }


def mark_inside(row: dict[str, Any], iqr: dict[str, dict[str, list[float] | None]]) -> None:
    """Adds row["inside_iqr"][metric][corpus]: whether the row's metric lies in that corpus's IQR."""
    row["inside_iqr"] = {
        metric: {corpus: inside(row["metrics"][metric], bounds[metric]) for corpus, bounds in iqr.items()}
        for metric in METRICS
    }


# ---------------------------------------------------------------------------------------------------------------
# Summary


def _share(flags: Iterable[bool | None]) -> float | None:
    """Share of True among the known flags; None when none is known."""
    known = [f for f in flags if f is not None]
    return None if not known else sum(known) / len(known)


def _breakdown(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Key match and cadence share of a group of rows."""
    ends = sum(r["cadences"]["phrase_ends"] for r in rows)
    good = sum(r["cadences"]["authentic"] + r["cadences"]["half"] for r in rows)
    return {
        "runs": len(rows),
        "key_match_share": _share(r["key_match"] for r in rows),
        "cadence_share": None if not ends else good / ends,
    }


def summarize(rows: Sequence[dict[str, Any]], reference: dict[str, Any] | None) -> dict[str, Any]:
    """The figures of all rows and issue 11's goals side by side ('goals': [{goal, target, value, met}])."""
    voicing = {k: sum(r["chord_voicings"][k] for r in rows) for k in ("voice_pairs", "parallels", "transitions")}
    voicing["unequal_skipped"] = sum(r["chord_voicings"]["unequal_skipped"] for r in rows)
    voicing["runs_with_none"] = sum(r["chord_voicings"]["parallels"] == 0 for r in rows)
    mb_pairs = sum(r["melody_bass"]["voice_pairs"] for r in rows)
    mb_faults = sum(r["melody_bass"]["parallels"] for r in rows)
    melody_bass = {
        "voice_pairs": mb_pairs,
        "parallels": mb_faults,
        "per_100_pairs": None if not mb_pairs else 100.0 * mb_faults / mb_pairs,
        "runs_at_most_goal": sum(
            r["melody_bass"]["per_100_pairs"] is not None
            and r["melody_bass"]["per_100_pairs"] <= GOALS["melody_bass_per_100_pairs"]
            for r in rows
        ),
    }
    cadences = {k: sum(r["cadences"][k] for r in rows) for k in ("phrase_ends", "authentic", "half", "modal", "none")}
    good = cadences["authentic"] + cadences["half"]
    cadence_share = None if not cadences["phrase_ends"] else good / cadences["phrase_ends"]
    key_share = _share(r["key_match"] for r in rows)
    kept = {name: sum(r.get("kept", {}).get(name, 0) for r in rows) for name in KEPT_COUNTERS}
    kept["chords_kept_share"] = kept["chords_kept"] / kept["chord_choices"] if kept["chord_choices"] else None
    kept["melody_kept_share"] = kept["melody_kept"] / kept["melody_choices"] if kept["melody_choices"] else None
    summary: dict[str, Any] = {
        "runs": len(rows),
        "kept": kept,
        "key_match_share": key_share,
        "chord_voicings": voicing,
        "melody_bass": melody_bass,
        "cadences": {**cadences, "share": cadence_share},
        "by_mode": {mode: _breakdown([r for r in rows if r["key"].endswith(mode)]) for mode in MODES if rows},
        "by_mood": {
            f"v{v:+g}_a{a:+g}": _breakdown([r for r in rows if (r["valence"], r["arousal"]) == (v, a)])
            for v, a in sorted({(r["valence"], r["arousal"]) for r in rows if "valence" in r})
        },
    }
    goals: list[dict[str, Any]] = [
        {
            "goal": "key heard = key asked (share of runs)",
            "target": f">= {GOALS['key_match_share']:g}",
            "value": key_share,
            "met": key_share is not None and key_share >= GOALS["key_match_share"],
        },
        {
            "goal": "parallel fifths/octaves between chord voicings (total)",
            "target": "0",
            "value": voicing["parallels"],
            "met": voicing["parallels"] == GOALS["chord_voicing_parallels"],
        },
        {
            "goal": "melody-bass parallels per 100 voice pairs",
            "target": f"<= {GOALS['melody_bass_per_100_pairs']:g}",
            "value": melody_bass["per_100_pairs"],
            "met": melody_bass["per_100_pairs"] is not None
            and melody_bass["per_100_pairs"] <= GOALS["melody_bass_per_100_pairs"],
        },
        {
            "goal": "phrase ends authentic or half (share)",
            "target": f">= {GOALS['cadence_share']:g}",
            "value": cadence_share,
            "met": cadence_share is not None and cadence_share >= GOALS["cadence_share"],
        },
    ]
    if reference is not None:
        metrics: dict[str, Any] = {}
        for metric in METRICS:
            values = [r["metrics"][metric] for r in rows if r["metrics"][metric] is not None]
            median = float(np.median(values)) if values else None
            pooled = reference["iqr"]["pooled"][metric]
            metrics[metric] = {
                "median": median,
                "iqr": reference["iqr"].get("pooled", {}).get(metric),
                "iqr_chorales": reference["iqr"]["chorales"][metric],
                "iqr_folk": reference["iqr"]["folk"][metric],
                **{
                    f"share_inside_{corpus}": _share(r["inside_iqr"][metric][corpus] for r in rows)
                    for corpus in ("pooled", "chorales", "folk")
                },
            }
            goals.append(
                {
                    "goal": f"{metric}: runs in corpus IQR",
                    "target": "inside " + ("?" if pooled is None else f"[{pooled[0]:.3f}, {pooled[1]:.3f}]"),
                    "value": metrics[metric]["share_inside_pooled"],
                    "met": bool(inside(median, pooled)),
                }
            )
        summary["metrics"] = metrics
    summary["goals"] = goals
    return summary


def table(summary: dict[str, Any]) -> str:
    """The goals as a short plain-text table."""

    def shown(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    width = max(len(g["goal"]) for g in summary["goals"])
    lines = [f"{'goal':<{width}}  {'target':<22} {'value':>8}  met", "-" * (width + 40)]
    for g in summary["goals"]:
        lines.append(f"{g['goal']:<{width}}  {g['target']:<22} {shown(g['value']):>8}  {'yes' if g['met'] else 'no'}")
    kept = summary.get("kept", {})
    if kept.get("chord_choices") or kept.get("melody_choices"):
        lines.append(
            f"the nets' choices the theory layer kept: chords {kept['chords_kept']} of {kept['chord_choices']}, "
            f"melody notes {kept['melody_kept']} of {kept['melody_choices']}"
        )
    lines.append("")
    for group in ("by_mode", "by_mood"):
        for name, b in summary[group].items():
            lines.append(
                f"{name:<14} runs {b['runs']:>3}  key match {shown(b['key_match_share']):>6}"
                f"  cadences {shown(b['cadence_share']):>6}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Command line


def parse_keys(text: str) -> list[str]:
    """'all' or a comma-separated list of TONIC:major|minor; IdawError naming a bad one."""
    if text.strip() == "all":
        return list(ALL_KEYS)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise IdawError("--keys: give 'all' or keys such as C:major,A:minor")
    for k in keys:
        music21_key(k)
    return keys


def parse_moods(text: str) -> list[tuple[float, float]]:
    """'corners' or a comma-separated list of VALENCE:AROUSAL, each in -1..1; IdawError otherwise."""
    if text.strip() == "corners":
        return list(MOOD_CORNERS)
    moods = []
    for item in text.split(","):
        valence, sep, arousal = item.strip().partition(":")
        try:
            pair = (float(valence), float(arousal))
        except ValueError:
            pair = (math.nan, math.nan)
        if not sep or not all(-1.0 <= x <= 1.0 for x in pair):
            raise IdawError(f"--moods: '{item}' is not VALENCE:AROUSAL with both in -1..1 (or use 'corners')")
        moods.append(pair)
    return moods


def parse_seeds(text: str) -> list[int]:
    """A comma-separated list of non-negative integers; IdawError otherwise."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise IdawError(f"--seeds '{text}': give non-negative integers separated by commas, e.g. 1,2,3")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    """The options of `python -m realtime.midi_theory_check`."""
    parser = argparse.ArgumentParser(
        prog="python -m realtime.midi_theory_check", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--keys", default="all", help="'all' (24 keys) or e.g. C:major,A:minor (default all)")
    parser.add_argument(
        "--moods",
        default="corners",
        help="'corners' (valence/arousal ±0.6) or VALENCE:AROUSAL,... (write --moods=-0.6:0.6 for negatives)",
    )
    parser.add_argument("--seeds", default="1,2,3", help="humanisation seeds, e.g. 1,2,3 (default)")
    parser.add_argument("--bars", type=int, default=32, help="bars of 4/4 per file, 4..512 (default 32)")
    parser.add_argument("--tempo", type=float, default=120.0, help="BPM (default 120)")
    parser.add_argument("--out", type=Path, default=None, help="keep the MIDI files in this folder")
    parser.add_argument("--json", type=Path, default=None, help="write the rows, reference and summary here")
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="reuse the reference of an earlier --json file instead of reading the corpus again",
    )
    parser.add_argument("--chorales", type=int, default=REFERENCE_CHORALES, help="chorales in the reference")
    parser.add_argument("--folk", type=int, default=REFERENCE_FOLK, help="folk songs in the reference")
    parser.add_argument(
        "--no-theory", dest="theory", action="store_false", help="generate with the theory layer off (for comparison)"
    )
    return parser


def load_reference(path: Path) -> dict[str, Any]:
    """The reference section of an earlier --json file; IdawError when it has none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        reference = data["reference"]
        if not isinstance(reference["iqr"]["pooled"], dict):
            raise TypeError("the reference's iqr holds no pooled ranges")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IdawError(f"--reference {path}: no reference in it ({type(error).__name__}: {error})") from None
    return dict(reference)


def measure(
    cases: Sequence[Case],
    folder: Path,
    bars: int,
    tempo: float,
    reference: dict[str, Any] | None,
    theory: bool = True,
) -> dict[str, Any]:
    """Runs every case (tqdm bar on stderr) and returns {"rows", "summary"}."""
    rows = []
    for case in tqdm(cases, desc="cases", unit="file", file=sys.stderr):
        row = run_case(case, folder, bars, tempo, theory)
        if reference is not None:
            mark_inside(row, reference["iqr"])
        rows.append(row)
    return {"rows": rows, "summary": summarize(rows, reference)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; 0 when it ran (whatever the figures), 2 with one line for bad options."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except IdawError as error:
        print(f"midi_theory_check: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    """main() after parsing."""
    keys, moods, seeds = parse_keys(args.keys), parse_moods(args.moods), parse_seeds(args.seeds)
    if not 4 <= args.bars <= 512:
        raise IdawError(f"--bars {args.bars} is out of range; allowed: 4..512")
    if args.chorales < 0 or args.folk < 0:
        raise IdawError("--chorales and --folk count pieces: 0 or more")
    cases = [Case(k, v, a, s) for k in keys for v, a in moods for s in seeds]
    reference = (
        load_reference(args.reference)
        if args.reference is not None
        else reference_metrics(args.chorales, args.folk)
        if args.chorales + args.folk
        else None
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result = measure(cases, args.out, args.bars, args.tempo, reference, args.theory)
    else:
        with tempfile.TemporaryDirectory(prefix="idaw-midi-check-") as folder:
            result = measure(cases, Path(folder), args.bars, args.tempo, reference, args.theory)
            for row in result["rows"]:
                row["file"] = None
    document = {
        "settings": {
            "keys": keys,
            "moods": [list(m) for m in moods],
            "seeds": seeds,
            "bars": args.bars,
            "tempo": args.tempo,
            "theory": args.theory,
            "strum_window_s": STRUM_WINDOW_S,
            "phrase_bars": PHRASE_BARS,
            "resolution": RESOLUTION,
        },
        "summary": result["summary"],
        "rows": result["rows"],
        "reference": reference,
    }
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        except OSError as error:
            raise IdawError(f"cannot write {args.json}: {error.strerror or error}") from None
    print(table(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
