"""The readable summary `idaw analyze` prints by default, from the analysis's JSON-ready dict.

Every section is optional (a monophonic tune has no voice leading, a piece without cadences none to list): what is
missing is left out, never guessed. Bar numbers are the score's own (a pickup is bar 0) where the caller passes the
measures (or the result lists them as `measures`: [{offset, number}]), else counted from the time signature, bar 1
at offset 0.
"""

from __future__ import annotations

import bisect
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

CADENCE_NAMES: dict[str, str] = {
    "PAC": "perfect authentic cadence",
    "IAC": "imperfect authentic cadence",
    "HC": "half cadence",
    "PC": "plagal cadence",
    "DC": "deceptive cadence",
}

FAULT_NAMES: dict[str, tuple[str, str]] = {
    "parallel_fifths": ("parallel fifth", "parallel fifths"),
    "parallel_octaves": ("parallel octave", "parallel octaves"),
    "hidden_fifths": ("hidden fifth", "hidden fifths"),
    "hidden_octaves": ("hidden octave", "hidden octaves"),
    "voice_crossings": ("voice crossing", "voice crossings"),
    "unresolved_leading_tones": ("unresolved leading tone", "unresolved leading tones"),
    "large_leaps": ("large leap", "large leaps"),
}

BARS_PER_LINE = 4
"""Chord lines hold a phrase (up to its cadence) when it is at most MAX_PHRASE_BARS long, else this many bars."""
MAX_PHRASE_BARS = 5
LINE_WIDTH = 110
_KEEP = "\u00a0"
"""A space the folding does not break at ('bar 4 (0:06)' stays on one line); printed as a plain space."""
"""Longer lines (many modulations, a long phrase) are folded."""
MAX_BARS_LISTED = 8
"""Bars listed per voice-leading fault before '...'."""


class BarGrid:
    """Bar numbers of score offsets: the score's own measures where the result lists them, else the time signature."""

    def __init__(self, result: Mapping[str, Any], measures: Sequence[tuple[float, int]] | None = None) -> None:
        if measures is None:
            listed = [m for m in result.get("measures") or [] if isinstance(m, Mapping)]
            measures = [(float(m.get("offset", 0.0)), int(m.get("number", i + 1))) for i, m in enumerate(listed)]
        self.starts = [float(start) for start, _ in measures]
        self.numbers = [int(number) for _, number in measures]
        self.bar_length = bar_length(str(result.get("time_signature", "4/4")))

    def bar(self, offset: float) -> int:
        """The number of the bar holding `offset`."""
        if not self.starts:
            return int(offset / self.bar_length + 1e-6) + 1
        index = max(bisect.bisect_right(self.starts, offset + 1e-6) - 1, 0)
        return self.numbers[index]

    def bars_between(self, start: float, end: float) -> float:
        """How many bars long the span [start, end) is (counted in full bars of the time signature)."""
        return (end - start) / self.bar_length


def bar_length(time_signature: str) -> float:
    """Length of one bar in quarter notes of a time signature like '3/4' or '6/8' (4.0 where it cannot be read)."""
    try:
        top, bottom = time_signature.split("/")
        length = float(top) * 4.0 / float(bottom)
    except (ValueError, ZeroDivisionError):
        return 4.0
    return length if length > 0 else 4.0


def clock(seconds: float) -> str:
    """'1:05' for 65 s."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _when(grid: BarGrid, entry: Mapping[str, Any]) -> str:
    """'bar 4' or 'bar 4 (0:06)' where the entry has a time."""
    text = f"bar{_KEEP}{grid.bar(float(entry.get('offset', 0.0)))}"
    if isinstance(entry.get("time"), int | float):
        text += f"{_KEEP}({clock(float(entry['time']))})"
    return text


def summary_text(result: Mapping[str, Any], measures: Sequence[tuple[float, int]] | None = None) -> str:
    """The summary of an analysis result (the dict `analyze_file` returns) as lines of text, no trailing newline.

    `measures`: (offset, number) of each bar of the score (Notes.measure_offsets and .measure_numbers), so that bar
    numbers follow the score's own (a pickup is bar 0); without it, the result's `measures` where it has them,
    else bars counted from the time signature."""
    grid = BarGrid(result, measures)
    lines = [_header(result, grid)]
    if result.get("source") == "audio" and not result.get("tempo_bpm"):
        return "\n".join([*lines, *_heard(result)])
    for part in (
        _heard(result),
        _keys(result, grid),
        _chords(result, grid),
        _harmonic_rhythm(result),
        _cadences(result, grid),
        _voice_leading(result, grid),
        _rhythm(result.get("rhythm")),
        _melody(result.get("melody")),
        _form(result, grid),
    ):
        lines.extend(part)
    return "\n".join(_wrapped(line) for line in lines)


def _wrapped(line: str) -> str:
    """`line` folded at LINE_WIDTH, its continuation lines indented under its text."""
    if len(line) > LINE_WIDTH:
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        line = textwrap.fill(line, width=LINE_WIDTH, subsequent_indent=indent, break_on_hyphens=False)
    return line.replace(_KEEP, " ")


def _header(result: Mapping[str, Any], grid: BarGrid) -> str:
    """'bwv1.6.mxl (musicxml): 4 voices, 4/4, 22 bars, 1:05'."""
    name = os.path.basename(str(result.get("file", ""))) or "score"
    facts: list[str] = []
    voices = result.get("voices")
    if isinstance(voices, int):
        facts.append(f"{voices} voice{'s' if voices != 1 else ''}")
    if result.get("time_signature"):
        facts.append(str(result["time_signature"]))
    duration = result.get("duration")
    if isinstance(duration, Mapping) and isinstance(duration.get("offset"), int | float):
        end = float(duration["offset"])
        last = grid.bar(max(end - 1e-3, 0.0))
        facts.append(f"{last} bar{'s' if last != 1 else ''}")
        if isinstance(duration.get("time"), int | float):
            facts.append(clock(float(duration["time"])))
    fmt = f" ({result['format']})" if result.get("format") else ""
    return f"{name}{fmt}: {', '.join(facts)}" if facts else f"{name}{fmt}"


def _heard(result: Mapping[str, Any]) -> list[str]:
    """A recording's tempo and beats (idaw.listen.analysis), or what it did not find; nothing for a score."""
    if result.get("source") != "audio":
        return []
    if not result.get("tempo_bpm"):
        return ["No steady beat heard: no tempo, key or chords"]
    beats, downbeats = len(result.get("beats") or []), len(result.get("downbeats") or [])
    line = f"Tempo: {float(result['tempo_bpm']):.1f} BPM ({beats} beats, {downbeats} downbeats heard)"
    if result.get("found") == "no notes":
        line += "; no notes heard: no key or chords"
    return [line]


def _keys(result: Mapping[str, Any], grid: BarGrid) -> list[str]:
    lines: list[str] = []
    if result.get("key"):
        lines.append(f"Key: {result['key']}")
    changes = [k for k in result.get("keys") or [] if isinstance(k, Mapping) and k.get("key")]
    if len(changes) > 1:
        moves = [f"{k['key']} at {_when(grid, k)}" for k in changes[1:]]
        lines.append("Modulations: " + "; ".join(moves))
    elif changes or result.get("key"):
        lines.append("Modulations: none")
    return lines


def _chords(result: Mapping[str, Any], grid: BarGrid) -> list[str]:
    """One line per phrase (chords up to a cadence) or per BARS_PER_LINE bars, Roman numerals in their keys."""
    chords = [c for c in result.get("chords") or [] if isinstance(c, Mapping) and "offset" in c]
    if not chords:
        return []
    ends = sorted(
        (float(c["offset"]), str(c.get("type", "")))
        for c in result.get("cadences") or []
        if isinstance(c, Mapping) and isinstance(c.get("offset"), int | float)
    )
    lines = ["Chords (Roman numerals; a key in brackets where it changes):"]
    previous_key = None
    for group, cadence in _phrases(chords, ends, grid):
        words: list[str] = []
        for chord in group:
            key = chord.get("key")
            if key and key != previous_key:
                words.append(f"[{key}]")
                previous_key = key
            words.append(str(chord.get("roman") or chord.get("root") or "?"))
        first, last = grid.bar(float(group[0]["offset"])), grid.bar(float(group[-1]["offset"]))
        span = f"bar {first}" if first == last else f"bars {first}-{last}"
        lines.append(f"  {span}: {' '.join(words)}{f'  ({cadence})' if cadence else ''}")
    return lines


def _phrases(
    chords: Sequence[Mapping[str, Any]], cadences: Sequence[tuple[float, str]], grid: BarGrid
) -> list[tuple[list[Mapping[str, Any]], str]]:
    """The chords cut into lines: after the chord a cadence arrives on (the line then ends with the cadence's type),
    and every BARS_PER_LINE bars inside a phrase of MAX_PHRASE_BARS or more or without a cadence."""
    lines: list[tuple[list[Mapping[str, Any]], str]] = []
    current: list[Mapping[str, Any]] = []
    pending = list(cadences)
    for index, chord in enumerate(chords):
        current.append(chord)
        following = float(chords[index + 1]["offset"]) if index + 1 < len(chords) else float("inf")
        arrived = [kind for offset, kind in pending if offset < following - 1e-6]
        if arrived:  # a cadence arrives on this chord (or while it sounds): the phrase ends here
            pending = pending[len(arrived) :]
            lines.extend(_split_long(current, grid, cadence=arrived[-1]))
            current = []
    if current:
        lines.extend(_split_long(current, grid, cadence=""))
    return lines


def _split_long(
    chords: list[Mapping[str, Any]], grid: BarGrid, cadence: str
) -> list[tuple[list[Mapping[str, Any]], str]]:
    """A phrase as one line, or as lines of BARS_PER_LINE bars when it is longer than MAX_PHRASE_BARS; the cadence
    label goes on its last line."""
    start, end = float(chords[0]["offset"]), float(chords[-1]["offset"])
    if grid.bars_between(start, end) < MAX_PHRASE_BARS:
        return [(chords, cadence)]
    lines: list[tuple[list[Mapping[str, Any]], str]] = []
    current: list[Mapping[str, Any]] = []
    first_bar = grid.bar(start)
    for chord in chords:
        bar = grid.bar(float(chord["offset"]))
        if current and (bar - first_bar) >= BARS_PER_LINE:
            lines.append((current, ""))
            current, first_bar = [], bar
        current.append(chord)
    lines.append((current, cadence))
    return lines


def _harmonic_rhythm(result: Mapping[str, Any]) -> list[str]:
    rhythm = result.get("harmonic_rhythm")
    if not isinstance(rhythm, Mapping):
        return []
    facts = []
    if isinstance(rhythm.get("changes_per_bar"), int | float):
        changes = float(rhythm["changes_per_bar"])
        facts.append(f"{changes:.2g} chord change{'' if changes == 1 else 's'} per bar")
    if isinstance(rhythm.get("mean_duration"), int | float):
        facts.append(f"a chord lasts {rhythm['mean_duration']:.2g} quarter notes on average")
    return [f"Harmonic rhythm: {', '.join(facts)}"] if facts else []


def _cadences(result: Mapping[str, Any], grid: BarGrid) -> list[str]:
    cadences = [c for c in result.get("cadences") or [] if isinstance(c, Mapping)]
    if "cadences" not in result:
        return []
    if not cadences:
        return ["Cadences: none"]
    lines = [f"Cadences ({len(cadences)}):"]
    for cadence in cadences:
        kind = str(cadence.get("type", ""))
        name = CADENCE_NAMES.get(kind, kind.lower() + " cadence" if kind else "cadence")
        key = f" in {cadence['key']}" if cadence.get("key") else ""
        lines.append(f"  {name}{key} at {_when(grid, cadence)}")
    return lines


def _voice_leading(result: Mapping[str, Any], grid: BarGrid) -> list[str]:
    """A line per fault found (count and bars), then one line naming the faults not found."""
    leading = result.get("voice_leading")
    if not isinstance(leading, Mapping):
        return []
    pairs = leading.get("voice_pairs_checked")
    lines = [f"Voice leading ({pairs} voice pairs checked):" if isinstance(pairs, int) else "Voice leading:"]
    absent: list[str] = []
    for field in [*FAULT_NAMES, *(k for k in leading if k not in FAULT_NAMES)]:
        fault = leading.get(field)
        if not isinstance(fault, Mapping) or not isinstance(fault.get("count"), int):
            continue
        plain = field.replace("_", " ")
        one, many = FAULT_NAMES.get(field, (plain, plain))
        count = int(fault["count"])
        if count == 0:
            absent.append(many)
            continue
        text = f"  {count} {one if count == 1 else many}"
        bars = sorted({grid.bar(float(o)) for o in fault.get("offsets") or [] if _number(o)})
        if bars:
            more = ", ..." if len(bars) > MAX_BARS_LISTED else ""
            listed = ", ".join(str(b) for b in bars[:MAX_BARS_LISTED]) + more
            text += f" (bar{'s' if len(bars) > 1 else ''} {listed})"
        lines.append(text)
    if absent:
        lines.append(f"  no {', no '.join(absent)}")
    return lines if len(lines) > 1 else []


def _rhythm(section: Any) -> list[str]:
    """'Rhythm: 1.2 onsets per beat (2.5 per second); syncopation index 0.35 (7 syncopated onsets); onsets on
    downbeats 25 %, ...; groove consistency 0.94' (fields as idaw/theory/rhythm.py writes them)."""
    if not isinstance(section, Mapping):
        return []
    facts: list[str] = []
    density = section.get("density")
    if isinstance(density, Mapping) and _number(density.get("per_beat")):
        text = f"{density['per_beat']:.3g} onsets per beat"
        if _number(density.get("per_second")):
            text += f" ({density['per_second']:.3g} per second)"
        facts.append(text)
    syncopation = section.get("syncopation")
    if isinstance(syncopation, Mapping) and _number(syncopation.get("index")):
        text = f"syncopation index {syncopation['index']:.2f}"
        if isinstance(syncopation.get("syncopated_onsets"), int):
            text += f" ({syncopation['syncopated_onsets']} syncopated onsets)"
        facts.append(text)
    weight = section.get("metric_weight")
    if isinstance(weight, Mapping) and weight:
        shares = ", ".join(
            f"{name.replace('_', ' ')} {100 * float(value):.0f} %" for name, value in weight.items() if _number(value)
        )
        facts.append(f"onsets on {shares}")
    if _number(section.get("groove_consistency")):
        facts.append(f"groove consistency {section['groove_consistency']:.2f}")
    if not facts:
        return _described("Rhythm", section)
    return [f"Rhythm: {'; '.join(facts)}"]


def _melody(section: Any) -> list[str]:
    """'Melody: 48 notes, C4-D5 (14 semitones), convex contour, C major pentatonic (fit 1.00), 3 phrases, motif of
    4 notes heard 3 times' (fields as idaw/theory/melody.py writes them)."""
    if not isinstance(section, Mapping):
        return []
    facts: list[str] = []
    if isinstance(section.get("notes"), int):
        facts.append(f"{section['notes']} notes")
    span = section.get("range")
    if isinstance(span, Mapping) and span.get("lowest_name") and span.get("highest_name"):
        semitones = span.get("semitones", "?")
        unit = "semitone" if semitones == 1 else "semitones"
        facts.append(f"{span['lowest_name']}-{span['highest_name']} ({semitones} {unit})")
    if section.get("contour"):
        facts.append(f"{section['contour']} contour")
    scale = section.get("scale")
    if isinstance(scale, Mapping) and scale.get("name"):
        fit = f" (fit {scale['fit']:.2f})" if _number(scale.get("fit")) else ""
        facts.append(f"{scale.get('tonic', '')} {scale['name']}{fit}".strip())
    phrases = section.get("phrases")
    if isinstance(phrases, list) and phrases:
        facts.append(f"{len(phrases)} phrase{'s' if len(phrases) != 1 else ''}")
    motifs = [m for m in section.get("motifs") or [] if isinstance(m, Mapping)]
    if motifs and isinstance(motifs[0].get("notes"), int) and isinstance(motifs[0].get("count"), int):
        top = motifs[0]
        steps = " ".join(f"{i:+d}" for i in top.get("intervals") or [] if isinstance(i, int))
        facts.append(f"main motif {top['notes']} notes heard {top['count']} times" + (f" ({steps})" if steps else ""))
    if not facts:
        return _described("Melody", section)
    return [f"Melody: {', '.join(facts)}"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _described(title: str, section: Any) -> list[str]:
    """A one-liner for a section whose shape its own module decides: its plain values, named, in its order."""
    if not isinstance(section, Mapping) or not section:
        return []
    facts = [f"{str(name).replace('_', ' ')} {_value(value)}" for name, value in section.items() if _plain(value)]
    return [f"{title}: {'; '.join(facts)}"] if facts else []


def _plain(value: Any) -> bool:
    """Whether a value reads well in one line: a number, a short text, or a short list of those."""
    if isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return 0 < len(value) <= 60
    if isinstance(value, list):
        return 0 < len(value) <= 6 and all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in value)
    return False


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def _form(result: Mapping[str, Any], grid: BarGrid) -> list[str]:
    """'Form: A B A'' and the bars of each section."""
    sections = [s for s in result.get("sections") or [] if isinstance(s, Mapping) and s.get("label")]
    if not sections:
        return []
    parts = []
    for section in sections:
        start = grid.bar(float(section.get("offset", 0.0)))
        end = section.get("end")
        last = grid.bar(max(float(end) - 1e-3, 0.0)) if isinstance(end, int | float) else start
        parts.append(f"{section['label']} bars {start}-{last}" if last != start else f"{section['label']} bar {start}")
    return ["Form: " + " ".join(str(s["label"]) for s in sections), "  " + "; ".join(parts)]
