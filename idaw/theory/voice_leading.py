"""Voice-leading faults: parallel and hidden fifths and octaves, voice crossings, unresolved leading tones, large leaps.

`voices_of(notes)` cuts a piece into monophonic lines (highest first); `analyze_voice_leading(notes, key_at)` checks
them and returns, JSON-ready:

    {"voice_pairs_checked": int,
     "parallel_fifths": {"count": int, "offsets": [float, ...]},
     "parallel_octaves": {...}, "hidden_fifths": {...}, "hidden_octaves": {...},
     "voice_crossings": {...}, "unresolved_leading_tones": {...}, "large_leaps": {...}}

Every fault entry has the same shape: `offsets` are quarter notes from the start where the fault sounds (the second
verticality of a faulty pair, the note a leading tone moves to instead of the tonic, the note leapt to), rounded to 4
decimals and sorted; each fault is listed once, so `count == len(offsets)`, and two voice pairs at fault at the same
time give the same offset twice. `voice_pairs_checked` counts the (voice pair, change) units the pair checks ran on,
so callers can report rates per 100 voice pairs.

How the pairs are compared (music21 `voiceLeading.VoiceLeadingQuartet` semantics): the verticalities are the onsets
of any voice; for each pair of voices (upper = the higher line of the two) and each two consecutive verticalities
where at least one of the two voices has a new note, and both voices sound at both times, one quartet (upper before,
upper after, lower before, lower after) is judged. Intervals are the sounding ones (MIDI numbers; a MIDI file spells
nothing), taken modulo the octave, so compound intervals count, and unison and octave are one class.

- parallel fifths / octaves: both voices move in the same direction and both vertical intervals are perfect fifths
  (octaves / unisons). A repeated fifth or octave with no motion is not parallel, nor is contrary motion between
  them (music21's `parallelFifth` also counts such "antiparallel" fifths; issue 11's definition does not).
- hidden (direct) fifths / octaves, as the textbooks define the forbidden ones (e.g. Aldwell & Schachter): similar
  motion into a perfect fifth (octave) from any other interval, between the outer voices only, with a leap (more
  than two semitones) in the upper voice. Into an octave from a unison counts as a parallel octave, not hidden.
- voice crossings: the upper line sounds below the lower one (music21's `voiceCrossing`, unison is not a
  crossing); each crossed (pair, verticality) of a checked quartet is one fault, so a crossing held over two
  changes is listed once per verticality it sounds at, not once per quartet that sees it.
- unresolved leading tones (hand-written): a note on the leading tone (a semitone under the tonic, raised 7 in
  minor) in the top or bottom line, at whose onset every sounding pitch class belongs to the dominant family of
  the key (V, V7, viio, viio7 / viiø7: degrees 5, 7, 2, 4 and the 6 of the key), with at least two pitch classes
  sounding, that does not go up a semitone at the line's next change of pitch (repeated leading tones are skipped).
  The key is `key_at(onset)` (local keys) when given, else one global key from music21's key analysis of the whole
  piece. A leading tone at a fermata (phrase end, e.g. a half cadence) or at the end of its line is not judged.
- large leaps (hand-written): a melodic interval between consecutive notes of a line, not separated by a rest of a
  beat or longer, larger than an octave (over 12 semitones) in an outer line, larger than a major sixth (over 9
  semitones: a seventh or wider) in an inner line.

From music21: the quartet verdicts (parallelFifth, parallelUnisonOrOctave, hiddenFifth, hiddenOctave,
voiceCrossing, similarMotion) through `music21_verdicts`, and the global key (`Stream.analyze('key')`).
Hand-written: the split into voices (`voices_of`), the verticality walk, the outer-voice and leap conditions of
hidden fifths and octaves, the leading-tone and large-leap checks, and `quartet_verdicts`, the same verdicts as
`music21_verdicts` from MIDI numbers: a VoiceLeadingQuartet costs about 0.3-0.5 ms to build (music21 spells and
names four intervals), some 80 times the whole fast check of a pair (benchmarks/bench_theory_voice_leading.py),
too slow for every pair of generated MIDI analysed many times. The tests hold the two equal on random quartets and
on a real chorale.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import music21

from idaw.theory.notes import NoteEvent, Notes

_EPS = 1e-6
"""Tolerance of offset comparisons (notes.py rounds offsets to 6 decimals)."""

STEP = 2
"""The largest melodic interval (semitones) that is a step; more is a leap (hidden fifths and octaves)."""

OUTER_LEAP_LIMIT = 12
"""Largest melodic interval (semitones) allowed in an outer line: an octave."""

INNER_LEAP_LIMIT = 9
"""Largest melodic interval (semitones) allowed in an inner line: a major sixth."""

DOUBLING_SHARE = 0.9
"""Share of a part's notes that another part also plays (same onset, length and pitch) that makes it a doubling."""

KeyAt = Callable[[float], music21.key.Key]
"""The key in force at an offset (quarter notes)."""


class Verdicts(NamedTuple):
    """What one quartet (two voices over two verticalities) shows, before the outer-voice and leap conditions."""

    parallel_fifth: bool
    """Both voices move the same way, from a perfect fifth (or compound) to a perfect fifth."""
    parallel_octave: bool
    """Both voices move the same way, from an octave or unison (or compound) to an octave or unison."""
    hidden_fifth: bool
    """Similar motion into a perfect fifth from any other interval."""
    hidden_octave: bool
    """Similar motion into an octave or unison from any other interval."""
    crossing: bool
    """The upper voice sounds below the lower one at either verticality."""


Judge = Callable[[int, int, int, int], Verdicts]
"""Verdicts of a quartet given as MIDI numbers (upper before, upper after, lower before, lower after)."""


def quartet_verdicts(upper_before: int, upper_after: int, lower_before: int, lower_after: int) -> Verdicts:
    """The verdicts of one quartet of MIDI numbers, computed directly (equal to `music21_verdicts`, ~80x faster)."""
    upper_motion = upper_after - upper_before
    lower_motion = lower_after - lower_before
    similar = upper_motion != 0 and lower_motion != 0 and (upper_motion > 0) == (lower_motion > 0)
    before = abs(upper_before - lower_before) % 12
    after = abs(upper_after - lower_after) % 12
    return Verdicts(
        parallel_fifth=similar and before == 7 and after == 7,
        parallel_octave=similar and before == 0 and after == 0,
        hidden_fifth=similar and after == 7 and before != 7,
        hidden_octave=similar and after == 0 and before != 0,
        crossing=upper_before < lower_before or upper_after < lower_after,
    )


_STEPS = "FCGDAEB"
"""Note letters along the line of fifths, from F (position -1, C = 0)."""


def _spelled(midis: Sequence[int]) -> list[music21.pitch.Pitch]:
    """music21 pitches for MIDI numbers, spelled as close together on the line of fifths as the pitch classes allow.

    The line of fifths is cut at the widest gap between the pitch classes, so that (for up to four pitch classes)
    every two pitches a fifth apart are spelled as a perfect fifth, never as a diminished sixth, and equal pitch
    classes are spelled alike: music21 then names the intervals a listener hears.
    """
    positions = sorted({(m * 7) % 12 for m in midis})  # C 0, G 1, D 2, ... F 11 around the circle of fifths
    gaps = [((positions[(i + 1) % len(positions)] - positions[i]) % 12 or 12, i) for i in range(len(positions))]
    start = positions[(max(gaps)[1] + 1) % len(positions)]
    line = {p: start + (p - start) % 12 for p in positions}
    # Move the whole window by octaves of fifths so that it centres on D: the fewest sharps and flats.
    centre = sum(line.values()) / len(line)
    shift = 12 * round((2 - centre) / 12)
    pitches = []
    for m in midis:
        index = line[(m * 7) % 12] + shift + 1  # 0 = F
        alter = index // 7
        name = _STEPS[index % 7] + ("#" * alter if alter > 0 else "-" * -alter)
        pitch = music21.pitch.Pitch(name + "4")
        pitch.octave = 4 + (m - int(pitch.midi)) // 12
        pitches.append(pitch)
    return pitches


def music21_verdicts(upper_before: int, upper_after: int, lower_before: int, lower_after: int) -> Verdicts:
    """The verdicts of one quartet through music21's VoiceLeadingQuartet (the reference `quartet_verdicts` follows).

    Where these rules differ from music21's methods, the difference is written out here: parallels need similar
    motion (music21 also counts antiparallel ones); unison to octave is a parallel octave (music21: hidden);
    similar motion into a perfect fifth or octave from a diminished or augmented fifth, octave or unison is hidden
    (music21 sees the same generic interval twice and calls it neither: sounding pitches cannot tell a d5 from an
    A4, so these rules look at the perfect interval reached only).
    """
    v1n1, v1n2, v2n1, v2n2 = _spelled([upper_before, upper_after, lower_before, lower_after])
    quartet = music21.voiceLeading.VoiceLeadingQuartet(v1n1, v1n2, v2n1, v2n2)
    similar = quartet.similarMotion()
    first, second = quartet.vIntervals  # harmonic intervals; octaves reduce to 'P1', twelfths to 'P5'
    before, after = first.simpleName, second.simpleName
    generic_before = first.generic.semiSimpleUndirected if first.generic is not None else 0
    unequal = similar and before not in ("P1", "P5")  # similar motion from an imperfect interval
    return Verdicts(
        parallel_fifth=similar and quartet.parallelFifth(),
        parallel_octave=similar and (quartet.parallelUnisonOrOctave() or (quartet.hiddenOctave() and before == "P1")),
        hidden_fifth=quartet.hiddenFifth() or (unequal and after == "P5" and generic_before == 5),
        hidden_octave=(quartet.hiddenOctave() and before != "P1")
        or (unequal and after == "P1" and generic_before in (1, 8)),
        crossing=quartet.voiceCrossing(),
    )


def _split_by_rank(events: list[NoteEvent]) -> list[list[NoteEvent]]:
    """One part's notes as monophonic lines, highest first (see `voices_of` for the rule)."""
    by_onset = [
        (t, sorted(group, key=lambda n: -n.pitch)) for t, group in itertools.groupby(events, lambda n: n.offset)
    ]
    held: list[NoteEvent] = []
    count = 0
    for t, new in by_onset:
        held = [n for n in held if n.end > t + _EPS] + new
        count = max(count, len(held))
    if count <= 1:
        return [list(events)]

    lines: list[list[NoteEvent]] = [[] for _ in range(count)]
    last_pitch: list[int | None] = [None] * count
    sounding: list[tuple[NoteEvent, int]] = []  # (note, its line) still sounding
    for t, new in by_onset:
        sounding = [(n, v) for n, v in sounding if n.end > t + _EPS]
        used = {v for _, v in sounding}
        everything = sorted([n for n, _ in sounding] + new, key=lambda n: -n.pitch)
        size = len(everything)
        fresh = {id(n) for n in new}
        for rank, note in enumerate(everything):
            if id(note) not in fresh:
                continue
            if size == count:
                wanted = rank
            elif size == 1:
                # A lone note joins whichever outer line last sounded nearer (the top one when neither did).
                top, bottom = last_pitch[0], last_pitch[count - 1]
                nearer_bottom = bottom is not None and (top is None or abs(note.pitch - bottom) < abs(note.pitch - top))
                wanted = count - 1 if nearer_bottom else 0
            else:
                wanted = rank if rank < size - 1 else count - 1
            line = min((v for v in range(count) if v not in used), key=lambda v: (abs(v - wanted), v))
            used.add(line)
            lines[line].append(note)
            last_pitch[line] = note.pitch
            sounding.append((note, line))
    return lines


def voices_of(notes: Notes) -> list[list[NoteEvent]]:
    """One monophonic line per voice, highest first: each a list of the piece's notes, sorted by offset.

    Each part is a voice. A part that holds chords (a piano track of a MIDI file, a divisi) is split into as many
    lines as it ever has notes sounding at once, fixed for the whole piece: at each onset the sounding notes are
    ranked by pitch; with all lines sounding the highest goes to the first line, the next to the second, and so on;
    with fewer notes the lowest goes to the bottom line (the bass stays the bass) and the others fill lines from
    the top; a lone note goes to whichever of the top and bottom lines last sounded nearer it. A note keeps its
    line while it is held; a new note that finds its line held takes the nearest free one. Parts come in order of
    mean pitch, highest first (a score lists them top-down already, a MIDI file's tracks may not), each part's
    lines top-down. A part that doubles another at the unison (at least 90 % of its notes are also the other's,
    same onset, length and pitch: a continuo or an instrument playing colla parte) is not a voice and is left out;
    doublings at the octave are kept (in four-part writing they are the faults this module looks for).
    """
    parts: dict[int, list[NoteEvent]] = {}
    for event in sorted(notes.events, key=lambda n: (n.offset, -n.pitch)):
        parts.setdefault(event.voice, []).append(event)
    doublings = _doublings(parts)
    kept = [(v, events) for v, events in parts.items() if v not in doublings]
    kept.sort(key=lambda item: (-sum(n.pitch for n in item[1]) / len(item[1]), item[0]))
    return [line for _, events in kept for line in _split_by_rank(events)]


def _doublings(parts: dict[int, list[NoteEvent]]) -> set[int]:
    """Parts that double another part: at least DOUBLING_SHARE of their notes are the other part's notes too.

    Of two parts that double each other, the first is kept.
    """
    played = {v: {(n.offset, n.duration, n.pitch) for n in events} for v, events in parts.items()}
    doublings: set[int] = set()
    for v in sorted(parts):
        for w in sorted(parts):
            if w == v or w in doublings:
                continue
            shared = len(played[v] & played[w])
            mutual = shared >= DOUBLING_SHARE * len(played[w])
            if shared >= DOUBLING_SHARE * len(played[v]) and (not mutual or w < v):
                doublings.add(v)
                break
    return doublings


def _global_key(notes: Notes) -> music21.key.Key:
    """The key of the whole piece by music21's default key analysis of its notes (durations weigh)."""
    stream: music21.stream.Stream[music21.note.Note] = music21.stream.Stream()
    for event in notes.events:
        stream.insert(event.offset, music21.note.Note(event.pitch, quarterLength=event.duration))
    found = stream.analyze("key")
    return found if isinstance(found, music21.key.Key) else music21.key.Key("C")


def _faults(offsets: list[float]) -> dict[str, Any]:
    """The JSON entry of one kind of fault: {count, offsets (rounded to 4 decimals, sorted)}."""
    rounded = sorted(round(offset, 4) for offset in offsets)
    return {"count": len(rounded), "offsets": rounded}


def _grid(lines: list[list[NoteEvent]], onsets: list[float]) -> tuple[list[list[int]], list[list[bool]]]:
    """For each line and onset: the sounding MIDI pitch (-1 in a rest) and whether a note starts there."""
    pitches: list[list[int]] = []
    attacks: list[list[bool]] = []
    for line in lines:
        pitch_row = [-1] * len(onsets)
        attack_row = [False] * len(onsets)
        index = 0
        for k, t in enumerate(onsets):
            while index < len(line) and line[index].end <= t + _EPS:
                index += 1
            if index < len(line) and line[index].offset <= t + _EPS:
                pitch_row[k] = line[index].pitch
                attack_row[k] = abs(line[index].offset - t) <= _EPS
        pitches.append(pitch_row)
        attacks.append(attack_row)
    return pitches, attacks


def _dominant_family(key: music21.key.Key) -> tuple[int, frozenset[int]]:
    """(leading tone's pitch class, pitch classes of V, V7, viio and viio7 / viiø7) in `key`."""
    tonic = int(key.tonic.pitchClass)
    sixth = 9 if key.mode == "major" else 8
    return (tonic + 11) % 12, frozenset((tonic + step) % 12 for step in (11, 2, 5, 7, sixth))


def _unresolved_leading_tones(
    notes: Notes,
    lines: list[list[NoteEvent]],
    onsets: list[float],
    pitches: list[list[int]],
    key_at: KeyAt | None,
) -> list[float]:
    """Offsets where an outer line's leading tone on a dominant chord fails to rise a semitone (module docstring)."""
    global_key: music21.key.Key | None = None
    fermatas = {round(f, 6) for f in notes.fermatas}
    outer = sorted({0, len(lines) - 1}) if lines else []
    faults: set[tuple[int, float]] = set()
    for v in outer:
        line = lines[v]
        for index, note in enumerate(line):
            if key_at is not None:
                key = key_at(note.offset)
            else:
                global_key = global_key or _global_key(notes)
                key = global_key
            leading_tone, family = _dominant_family(key)
            if note.pitch % 12 != leading_tone or round(note.offset, 6) in fermatas:
                continue
            k = bisect.bisect_left(onsets, note.offset - _EPS)
            chord = {row[k] % 12 for row in pitches if row[k] >= 0}
            if len(chord) < 2 or not chord <= family:
                continue
            following = next((n for n in line[index + 1 :] if n.pitch != note.pitch), None)
            if following is not None and following.pitch != note.pitch + 1:
                faults.add((v, following.offset))
    return [offset for _, offset in faults]


def _large_leaps(lines: list[list[NoteEvent]], beat_length: float) -> list[float]:
    """Offsets of notes reached by a leap over the limit of their line (module docstring)."""
    leaps: list[float] = []
    for v, line in enumerate(lines):
        limit = INNER_LEAP_LIMIT if 0 < v < len(lines) - 1 else OUTER_LEAP_LIMIT
        for before, after in itertools.pairwise(line):
            if after.offset - before.end < beat_length - _EPS and abs(after.pitch - before.pitch) > limit:
                leaps.append(after.offset)
    return leaps


def analyze_voice_leading(
    notes: Notes, key_at: KeyAt | None = None, *, judge: Judge = quartet_verdicts
) -> dict[str, Any]:
    """The voice-leading faults of a piece: the dict described in the module docstring (JSON-ready).

    `key_at(offset)` gives the local key for the leading-tone check (a global key is found when it is None);
    `judge` decides each quartet (`music21_verdicts` gives the same answers through music21, slowly).
    """
    lines = voices_of(notes)
    onsets = sorted({n.offset for line in lines for n in line})
    pitches, attacks = _grid(lines, onsets)
    checked = 0
    parallel_fifths: list[float] = []
    parallel_octaves: list[float] = []
    hidden_fifths: list[float] = []
    hidden_octaves: list[float] = []
    crossings: set[tuple[int, int, float]] = set()
    bottom = len(lines) - 1
    for upper, lower in itertools.combinations(range(len(lines)), 2):
        up, low, up_attacks, low_attacks = pitches[upper], pitches[lower], attacks[upper], attacks[lower]
        outer = upper == 0 and lower == bottom
        for k in range(1, len(onsets)):
            if not (up_attacks[k] or low_attacks[k]):
                continue
            a1, a2, b1, b2 = up[k - 1], up[k], low[k - 1], low[k]
            if a1 < 0 or a2 < 0 or b1 < 0 or b2 < 0:
                continue
            checked += 1
            verdict = judge(a1, a2, b1, b2)
            t = onsets[k]
            if verdict.parallel_fifth:
                parallel_fifths.append(t)
            if verdict.parallel_octave:
                parallel_octaves.append(t)
            if outer and abs(a2 - a1) > STEP:
                if verdict.hidden_fifth:
                    hidden_fifths.append(t)
                if verdict.hidden_octave:
                    hidden_octaves.append(t)
            if verdict.crossing:
                if a1 < b1:
                    crossings.add((upper, lower, onsets[k - 1]))
                if a2 < b2:
                    crossings.add((upper, lower, t))
    return {
        "voice_pairs_checked": checked,
        "parallel_fifths": _faults(parallel_fifths),
        "parallel_octaves": _faults(parallel_octaves),
        "hidden_fifths": _faults(hidden_fifths),
        "hidden_octaves": _faults(hidden_octaves),
        "voice_crossings": _faults([offset for _, _, offset in crossings]),
        "unresolved_leading_tones": _faults(_unresolved_leading_tones(notes, lines, onsets, pitches, key_at)),
        "large_leaps": _faults(_large_leaps(lines, notes.beat_length)),
    }
