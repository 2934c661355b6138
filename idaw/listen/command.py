"""`idaw analyze FILE`: a score or MIDI file goes to the theory layer's command (idaw.theory.command), a recording
(.wav, .flac) to the listening analysis (idaw.listen.analysis). Same options, same output: a summary by default,
`--format json` for every field, `--report FILE.png` for a picture (for a recording: waveform, beats, chroma, keys,
chords, sections; idaw.listen.report). A bad recording is one line and exit 2 (idaw.listen.audio says what is
refused); the report path is checked before the analysis runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from idaw.listen import corpus
from idaw.listen.audio import AUDIO_FORMATS, is_audio_path
from idaw.theory import command as score_command
from idaw.theory.load import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw analyze` (the score command's, with recordings named in the help)."""
    score_command.add_arguments(parser)
    corpus.add_arguments(parser)  # a folder: `idaw analyze DIR --out FILE.jsonl` (idaw.listen.corpus)
    for action in parser._actions:
        if action.dest == "file":
            action.help = f"score or MIDI file ({', '.join(FORMATS)}) or recording ({', '.join(AUDIO_FORMATS)})"
        if action.dest == "report":
            action.help = (
                "also draw the analysis into this PNG (a score: piano roll; a recording: waveform, beats and chroma) "
                "with keys, Roman numerals, cadences and sections"
            )


def run(args: argparse.Namespace) -> int:
    """Analyse args.file as a score or as a recording; returns the exit code (0)."""
    if corpus.wanted(args):  # a folder, or a folder's options
        return corpus.run(args)
    if not is_audio_path(args.file):
        return score_command.run(args)
    from idaw.listen.analysis import analyze_audio_path
    from idaw.theory.load import music21_quietly
    from idaw.theory.report import check_report_path

    report: Path | None = check_report_path(args.report) if args.report is not None else None
    with music21_quietly(args.file):
        heard, recording, result = analyze_audio_path(args.file, args.adapter_features)
    if report is not None:
        from idaw.listen.report import draw_audio_report

        draw_audio_report(recording, heard, result, report)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        from idaw.theory.summary import summary_text

        measures = list(zip(heard.notes.measure_offsets, heard.notes.measure_numbers, strict=False)) if heard else None
        from idaw.listen.adapter import summary_lines

        print("\n".join([summary_text(result, measures=measures), *summary_lines(result)]))
    return 0
