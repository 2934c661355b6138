"""Voice-leading analysis: the fast verdicts (MIDI arithmetic) against music21's VoiceLeadingQuartet on every pair.

Two pieces: Bach's chorale bwv269 from music21's corpus (4 voices, 6 pairs) and a seeded random 64-bar 4-voice
piece in 4/4 (eighth, quarter and half notes). For each, `analyze_voice_leading` with a fixed key (so the global key
search is left out) is timed with `judge=quartet_verdicts` and with `judge=music21_verdicts`, interleaved, and the
two reports are compared; `voices_of` alone and the global key search (key_at=None) are timed beside them.
Run alone with `python -m benchmarks.bench_theory_voice_leading [--quick] [--out F]`.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Sequence

import music21

from benchmarks import common
from idaw.theory.notes import NoteEvent, Notes, notes_from_score
from idaw.theory.voice_leading import analyze_voice_leading, music21_verdicts, quartet_verdicts, voices_of

RANGES = ((60, 79), (55, 74), (48, 67), (40, 60))
"""MIDI ranges of the random piece's four voices, soprano first."""


def random_piece(bars: int = 64, seed: int = 0) -> Notes:
    """A random 4-voice piece in 4/4: each voice walks by steps and leaps in its range in eighths to halves."""
    rng = random.Random(seed)
    events: list[NoteEvent] = []
    length = 4.0 * bars
    for voice, (low, high) in enumerate(RANGES):
        offset, pitch = 0.0, rng.randint(low, high)
        while offset < length:
            duration = min(rng.choice([0.5, 1.0, 1.0, 2.0]), length - offset)
            events.append(NoteEvent(offset, duration, pitch, voice))
            pitch = min(high, max(low, pitch + rng.choice([-5, -2, -1, 0, 1, 2, 3, 7])))
            offset += duration
    events.sort(key=lambda n: (n.offset, n.pitch, n.voice))
    return Notes(events=events, voices=len(RANGES), duration=length)


def _piece_result(notes: Notes, key: music21.key.Key, repetitions: int) -> common.Json:
    """Timings of the analysis of one piece with both judges, and whether their reports agree."""

    def key_at(_: float) -> music21.key.Key:
        return key

    fast = analyze_voice_leading(notes, key_at, judge=quartet_verdicts)
    slow = analyze_voice_leading(notes, key_at, judge=music21_verdicts)
    alternatives = [
        common.Alternative("fast", lambda: analyze_voice_leading(notes, key_at, judge=quartet_verdicts)),
        common.Alternative("music21", lambda: analyze_voice_leading(notes, key_at, judge=music21_verdicts)),
        common.Alternative("voices_of", lambda: voices_of(notes)),
        common.Alternative("fast_global_key", lambda: analyze_voice_leading(notes)),
    ]
    times = common.interleaved_times_ns(alternatives, repetitions, warmup=1)
    return {
        "notes": len(notes.events),
        "voice_pairs_checked": fast["voice_pairs_checked"],
        "same_report": fast == slow,
        "times": {name: common.summarize_ns(samples) for name, samples in times.items()},
        "music21_over_fast": common.paired_ratio(times["music21"], times["fast"]),
        "fast_us_per_pair": round(statistics.median(times["fast"]) / 1000.0 / max(fast["voice_pairs_checked"], 1), 3),
        "music21_us_per_pair": round(
            statistics.median(times["music21"]) / 1000.0 / max(fast["voice_pairs_checked"], 1), 3
        ),
    }


def run(quick: bool = False) -> common.Json:
    """{pieces: {name: {notes, voice_pairs_checked, same_report, times (µs), music21_over_fast, per-pair µs}}}."""
    repetitions = 3 if quick else 15
    pieces = {
        "bach/bwv269": (notes_from_score(music21.corpus.parse("bach/bwv269")), music21.key.Key("G")),
        "random_64_bars_4_voices": (random_piece(), music21.key.Key("C")),
    }
    return {"pieces": {name: _piece_result(notes, key, repetitions) for name, (notes, key) in pieces.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
