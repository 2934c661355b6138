"""The one note list every analysis reads: what sounds when, in which voice, on which metric grid.

music21 parses the files and owns the score; the analyses (keys, harmony, cadences, voice leading, rhythm,
melody, form) read this flat, typed view of it instead of walking music21 streams each in its own way. Times are
score times in quarter notes from the start of the piece (music21's `offset`); `Notes.seconds_at` turns them into
seconds where the score gives a tempo.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

import music21


@dataclass(frozen=True)
class NoteEvent:
    """One sounding note, ties already merged."""

    offset: float
    """Start, in quarter notes from the start of the piece."""
    duration: float
    """Length in quarter notes (> 0)."""
    pitch: int
    """MIDI note number (60 = middle C)."""
    voice: int
    """Index of the part it belongs to (0 = the first part of the score, usually the highest)."""
    spelling: str = ""
    """The note's name as written (e.g. 'F#', 'G-'), empty where the file does not spell it (MIDI)."""
    velocity: int = 64

    @property
    def end(self) -> float:
        """Offset where the note stops sounding."""
        return self.offset + self.duration


@dataclass
class Notes:
    """A piece as notes on a metric grid: the input of every analysis in idaw.theory."""

    events: list[NoteEvent]
    """Every note, sorted by offset then pitch."""
    voices: int
    """Number of parts (voice indices run 0 .. voices-1)."""
    duration: float
    """Length of the piece in quarter notes (the end of its last note or measure)."""
    beat_length: float = 1.0
    """Length of one beat in quarter notes (1.0 in 4/4, 1.5 in 6/8), from the first time signature."""
    bar_length: float = 4.0
    """Length of a full bar in quarter notes, from the first time signature."""
    measure_offsets: list[float] = field(default_factory=list)
    """Offset where each measure starts (a pickup measure starts at 0 and is shorter)."""
    measure_numbers: list[int] = field(default_factory=list)
    """The measure number printed in the score for each entry of measure_offsets (0 for a pickup)."""
    fermatas: list[float] = field(default_factory=list)
    """Offsets of notes carrying a fermata (phrase ends in a chorale), sorted, each once."""
    tempo_map: list[tuple[float, float]] = field(default_factory=list)
    """(offset, quarter notes per minute) at each tempo change; empty when the file states no tempo."""
    time_signature: str = "4/4"
    _onsets: list[float] | None = field(default=None, repr=False, compare=False)
    _longest: float = field(default=0.0, repr=False, compare=False)

    def seconds_at(self, offset: float) -> float | None:
        """Seconds from the start at score time `offset`, or None when the piece gives no tempo."""
        if not self.tempo_map:
            return None
        seconds = 0.0
        index = bisect.bisect_right([start for start, _ in self.tempo_map], offset) - 1
        for i in range(max(index, 0)):
            start, bpm = self.tempo_map[i]
            seconds += (self.tempo_map[i + 1][0] - start) * 60.0 / bpm
        start, bpm = self.tempo_map[max(index, 0)]
        return seconds + (offset - start) * 60.0 / bpm

    def sounding(self, start: float, end: float) -> list[NoteEvent]:
        """Notes that sound at any time in [start, end), in the order of `events`.

        A binary search over the onsets: only notes starting less than the longest note's length before `start`
        are looked at, so analyses that ask this for every beat stay near linear in the piece's length."""
        if self._onsets is None or len(self._onsets) != len(self.events):
            self._onsets = [n.offset for n in self.events]
            self._longest = max((n.duration for n in self.events), default=0.0)
        first = bisect.bisect_left(self._onsets, start - self._longest - 1e-9)
        last = bisect.bisect_left(self._onsets, end)
        return [n for n in self.events[first:last] if n.end > start]

    def beat_offsets(self) -> list[float]:
        """Offset of every beat from the start to the end of the piece, following the measures (pickup included)."""
        if not self.measure_offsets:
            count = int(self.duration / self.beat_length + 1e-9)
            return [i * self.beat_length for i in range(count)]
        beats: list[float] = []
        bounds = [*self.measure_offsets, self.duration]
        for start, end in itertools.pairwise(bounds):
            # A pickup (shorter than a bar) holds its last beats: count them back from the bar line.
            position = end - self.bar_length if end - start < self.bar_length - 1e-9 else start
            while position < end - 1e-9:
                if position >= start - 1e-9:
                    beats.append(round(position, 6))
                position += self.beat_length
        return beats


def _first(stream: music21.stream.Score, kind: type[music21.base.Music21Object]) -> music21.base.Music21Object | None:
    return stream.recurse().getElementsByClass(kind).first()


def notes_from_score(score: music21.stream.Score) -> Notes:
    """The note list of a parsed score (parts become voices, chords become one event per pitch).

    Unpitched notes (percussion) and grace notes (no duration) are left out.
    """
    parts = list(score.parts) if score.hasPartLikeStreams() else [score]
    events: list[NoteEvent] = []
    fermatas: set[float] = set()
    for voice, part in enumerate(parts):
        for element in part.stripTies().recurse().notes:
            duration = float(element.quarterLength)
            if duration <= 0:
                continue
            offset = float(element.getOffsetInHierarchy(part))
            if any(isinstance(e, music21.expressions.Fermata) for e in element.expressions):
                fermatas.add(round(offset, 6))
            pitches = element.pitches if hasattr(element, "pitches") else ()
            for p in pitches:
                events.append(
                    NoteEvent(
                        offset=round(offset, 6),
                        duration=round(duration, 6),
                        pitch=int(p.midi),
                        voice=voice,
                        spelling=p.name if p.spellingIsInferred is False else "",
                        velocity=int(element.volume.velocity or 64) if element.volume is not None else 64,
                    )
                )
    events.sort(key=lambda n: (n.offset, n.pitch, n.voice))

    signature = _first(score, music21.meter.TimeSignature)
    beat_length, bar_length, ts_text = 1.0, 4.0, "4/4"
    if isinstance(signature, music21.meter.TimeSignature):
        beat_length = float(signature.beatDuration.quarterLength)
        bar_length = float(signature.barDuration.quarterLength)
        ts_text = signature.ratioString

    measure_offsets: list[float] = []
    measure_numbers: list[int] = []
    if parts:
        for measure in parts[0].getElementsByClass(music21.stream.Measure):
            measure_offsets.append(round(float(measure.getOffsetInHierarchy(parts[0])), 6))
            measure_numbers.append(int(measure.number))

    tempo_map: list[tuple[float, float]] = []
    for start, _end, mark in score.metronomeMarkBoundaries():  # type: ignore[no-untyped-call]
        # music21 fills a piece without any mark with a default 120; keep that only where the file had a mark.
        bpm = mark.getQuarterBPM()
        at = round(float(start), 6)
        # A MIDI file read back by music21 repeats the tempo in each part: keep one entry per change.
        if bpm and not (mark.number is None and mark.text is None) and (not tempo_map or tempo_map[-1][1] != bpm):
            tempo_map.append((at, float(bpm)))
    if not list(score.recurse().getElementsByClass(music21.tempo.MetronomeMark)):
        tempo_map = []

    last_note = max((n.end for n in events), default=0.0)
    duration = max(last_note, float(score.highestTime))
    return Notes(
        events=events,
        voices=len(parts),
        duration=round(duration, 6),
        beat_length=beat_length,
        bar_length=bar_length,
        measure_offsets=measure_offsets,
        measure_numbers=measure_numbers,
        fermatas=sorted(fermatas),
        tempo_map=tempo_map,
        time_signature=ts_text,
    )
