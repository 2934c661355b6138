"""Issue 14's yardstick for `idaw sketch`: prompts x seeds, each song made and read back by others' tools.

    python -m idaw.sketch.evaluate [--prompts N] [--seeds 0,1] [--duration S] [--json FILE] [--reference FILE]

Every song is written by the path of `idaw sketch` (command.write_song) into a temporary folder and read back:

- song.mid by music21 and MusPy through realtime/midi_theory_check.py (issue 11's reader, never idaw.theory): the
  key heard against structure.json's, parallel fifths and octaves (chord voicings; melody against bass), the
  cadences at 4-bar phrase ends, pitch-class entropy, scale and groove consistency against the interquartile range
  of the corpus's chorales and folk songs; plus the cadences where the sketch plans them (at the end of a section
  that leads into a chorus, and at the song's end), read the same way;
- song.wav by the project's audio analysis (idaw.listen.analysis, as `idaw analyze song.wav`): its key against the
  structure's, its tempo against the structure's by Accuracy2 (within 4 %, octave and third errors allowed);
- song.wav's integrated loudness (pyloudnorm) and true peak (realtime.master.true_peak_dbtp: scipy's 4x).

The issue's goals sit beside the figures in the JSON; stdout gets a short table. The 50 prompts
(PROMPTS, also benchmarks/bench_sketch's) are taken in order.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyloudnorm
import soundfile as sf
from tqdm import tqdm

from idaw.base.errors import IdawError
from idaw.listen.analysis import analyze_audio_path
from idaw.sketch.song import write_song
from idaw.sketch.structure import SECTION_ROLES, Structure, make_structure
from idaw.theory.keys import parse_key_name
from realtime import midi_theory_check as check
from realtime.master import true_peak_dbtp

GOALS: Final[dict[str, float]] = {
    "midi_key_share": 0.95,
    "audio_key_share": 0.90,
    "audio_tempo_accuracy2": 0.90,
    "true_peak_dbtp": -1.0,
}
LOUDNESS_GOAL_LUFS: Final = (-14.5, -13.5)
TEMPO_TOLERANCE: Final = 0.04
PROMPTS: Final = (
    "upbeat indie rock song about summer",
    "sad piano ballad about losing someone",
    "dark brooding trap beat",
    "sleepy lo-fi beats to study to",
    "energetic club track for the weekend",
    "twelve bar blues about my dog",
    "swinging jazz standard with a walking bass",
    "a tender love ballad",
    "furious heavy guitars",
    "triumphant victory anthem",
    "chill sunday morning jazz",
    "aggressive workout music",
    "romantic dinner for two",
    "nostalgic road trip with the windows down",
    "melancholic but hopeful",
    "happy birthday party song",
    "calm meditation music",
    "angry punk song about the government",
    "dreamy synth pop at night",
    "a folk song about the sea",
    "gospel choir praising the morning",
    "motown groove with horns",
    "deep house for a sunset",
    "boom bap hip hop with a dusty sample",
    "country song about a pickup truck",
    "bluesy slow jam about heartbreak",
    "bright cheerful pop for a commercial",
    "lonely rainy day acoustic song",
    "euphoric festival anthem with a big drop",
    "relaxed coffee shop background music",
    "tense thriller chase scene",
    "a lullaby for a baby",
    "garage rock with fuzzy guitars",
    "smooth r&b slow dance",
    "bebop with fast saxophone lines",
    "anxious late night thoughts",
    "sunny beach party",
    "gloomy winter evening",
    "a happy song",
    "a sad song",
    "epic rock ballad with a guitar solo",
    "minimal techno for the club",
    "study music for concentration",
    "campfire singalong",
    "rap battle beat",
    "soulful ballad with electric piano",
    "upbeat synth-pop about first love",
    "tired after a long day",
    "celebration of a wedding",
    "rainy lo-fi afternoon",
)
"""50 prompts, from plain genre names to moods alone."""


def tempo_accuracy2(heard: float | None, true: float) -> bool:
    """Accuracy2: within 4 % of the true tempo or of its double, half, triple or third."""
    if heard is None:
        return False
    return any(abs(heard - f * true) <= TEMPO_TOLERANCE * f * true for f in (1.0, 2.0, 0.5, 3.0, 1 / 3))


def planned_cadences(structure: Structure, parts: check.Parts, key_name: str) -> dict[str, list[str]]:
    """The cadence read (check.cadence_type) at each place the sketch plans one: 'before_chorus' (the end of a
    non-chorus section followed by a chorus: half or authentic wanted) and 'song_end' (authentic wanted)."""
    key = check.music21_key(key_name)
    out: dict[str, list[str]] = {"before_chorus": [], "song_end": []}
    sections = structure.sections
    for i, section in enumerate(sections):
        last = i == len(sections) - 1
        leads_in = (
            not last
            and SECTION_ROLES.get(sections[i + 1].name) == "chorus"
            and SECTION_ROLES.get(section.name) != "chorus"
        )
        if not (last or leads_in):
            continue
        end_q = parts.origin_q + (section.start_bar + section.bars) * parts.bar_q
        start_q = end_q - 2 * parts.bar_q
        chords = [c for c in parts.chords if start_q - check.ONSET_TOLERANCE_Q <= c.start_q < end_q - 0.5]
        kind = "none"
        if chords:
            final = chords[-1]
            before = next((c for c in reversed(chords) if c.pitch_classes != final.pitch_classes), None)
            kind = check.cadence_type(
                None if before is None else check.roman_numeral(before, key), check.roman_numeral(final, key)
            )
        out["song_end" if last else "before_chorus"].append(kind)
    return out


def evaluate_song(prompt: str, seed: int, duration: float, folder: Path, reference: dict[str, Any]) -> dict[str, Any]:
    """One song made and read back (see the module docstring): a JSON row."""
    structure = make_structure(prompt, duration, seed=seed)
    song = write_song(structure, folder, models=None, progress=False)
    key_name = structure.key.replace(" ", ":")
    row: dict[str, Any] = {
        "prompt": prompt,
        "seed": seed,
        "genre": structure.genre,
        "key": structure.key,
        "bpm": structure.bpm,
        "seconds": song.seconds,
    }
    row.update({k: v for k, v in check.check_file(folder / "song.mid", key_name).items() if k != "key"})
    check.mark_inside(row, reference["iqr"])
    parts = check.split_parts(check.read_midi(folder / "song.mid"))
    row["planned_cadences"] = planned_cadences(structure, parts, key_name)
    _, _, heard = analyze_audio_path(folder / "song.wav")
    audio_key = parse_key_name(heard["key"]) if heard.get("key") else None
    row["audio_key"] = heard.get("key")
    row["audio_key_match"] = audio_key is not None and audio_key == parse_key_name(structure.key)
    row["audio_tempo_bpm"] = heard.get("tempo_bpm")
    row["audio_tempo_ok"] = tempo_accuracy2(heard.get("tempo_bpm"), structure.bpm)
    audio, rate = sf.read(folder / "song.wav", dtype="float32", always_2d=True)
    row["loudness_lufs"] = round(float(pyloudnorm.Meter(rate).integrated_loudness(audio)), 3)
    row["true_peak_dbtp"] = round(true_peak_dbtp(audio, rate), 3)
    return row


def summarize(rows: Sequence[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    """The figures over all songs and the issue's goals beside them."""
    theory = check.summarize(rows, reference)

    def share(flags: Sequence[bool]) -> float | None:
        return None if not flags else round(sum(flags) / len(flags), 4)

    before = [kind for r in rows for kind in r["planned_cadences"]["before_chorus"]]
    ends = [kind for r in rows for kind in r["planned_cadences"]["song_end"]]
    loudness = [r["loudness_lufs"] for r in rows]
    peaks = [r["true_peak_dbtp"] for r in rows]
    low, high = LOUDNESS_GOAL_LUFS
    figures = {
        "songs": len(rows),
        "midi_key_share": theory["key_match_share"],
        "audio_key_share": share([r["audio_key_match"] for r in rows]),
        "audio_tempo_accuracy2": share([r["audio_tempo_ok"] for r in rows]),
        "half_or_authentic_before_chorus": share([k in ("half", "authentic") for k in before]),
        "authentic_at_song_end": share([k == "authentic" for k in ends]),
        "loudness_lufs": {"min": min(loudness), "median": float(np.median(loudness)), "max": max(loudness)},
        "loudness_in_range": all(low <= v <= high for v in loudness),
        "true_peak_dbtp_max": max(peaks),
        "true_peak_under_ceiling": all(p <= GOALS["true_peak_dbtp"] for p in peaks),
        "stage_seconds_median": {
            stage: float(np.median([r["seconds"][stage] for r in rows])) for stage in rows[0]["seconds"]
        },
    }
    return {"figures": figures, "theory": theory}


def table(summary: dict[str, Any]) -> str:
    """A few lines for stdout."""
    f = summary["figures"]
    lines = [
        f"songs: {f['songs']}",
        f"key heard in song.mid (music21): {f['midi_key_share']:.3f} (goal >= {GOALS['midi_key_share']})",
        f"key heard in song.wav: {f['audio_key_share']:.3f} (goal >= {GOALS['audio_key_share']})",
        f"tempo Accuracy2 in song.wav: {f['audio_tempo_accuracy2']:.3f} (goal >= {GOALS['audio_tempo_accuracy2']})",
        f"loudness {f['loudness_lufs']['min']:.2f}..{f['loudness_lufs']['max']:.2f} LUFS; "
        f"true peak max {f['true_peak_dbtp_max']:.2f} dBTP",
        f"half or authentic cadence before a chorus: {f['half_or_authentic_before_chorus']}; "
        f"authentic at the song's end: {f['authentic_at_song_end']}",
    ]
    lines.extend(
        f"{g['goal']}: {g['value']} (target {g['target']}, {'met' if g['met'] else 'not met'})"
        for g in summary["theory"]["goals"]
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; 0 when it ran (whatever the figures), 2 with one line for bad options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="how many of the 50 prompts")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--duration", type=float, default=60.0, help="song length in seconds (default 60)")
    parser.add_argument("--json", type=Path, default=None, help="write rows and summary here")
    parser.add_argument("--reference", type=Path, default=None, help="the reference of an earlier --json")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        if not 1 <= args.prompts <= len(PROMPTS):
            raise IdawError(f"--prompts {args.prompts} is out of range; allowed: 1..{len(PROMPTS)}")
        reference = check.load_reference(args.reference) if args.reference else check.reference_metrics()
    except (ValueError, IdawError) as error:
        print(f"idaw sketch evaluate: {error}", file=sys.stderr)
        return 2
    rows = []
    cases = [(p, s) for p in PROMPTS[: args.prompts] for s in seeds]
    for prompt, seed in tqdm(cases, desc="songs", unit="song", file=sys.stderr):
        with tempfile.TemporaryDirectory(prefix="idaw-sketch-eval-") as folder:
            rows.append(evaluate_song(prompt, seed, args.duration, Path(folder), reference))
    summary = summarize(rows, reference)
    if args.json is not None:
        document = {"duration_s": args.duration, "rows": rows, "summary": summary, "reference": reference}
        args.json.write_text(json.dumps(document, indent=1, default=float) + "\n", encoding="utf-8")
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
