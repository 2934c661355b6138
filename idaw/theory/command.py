"""`idaw analyze FILE`: the analysis of a score or MIDI file, as a summary, as JSON, and as a piano-roll PNG.

The summary (idaw/theory/summary.py) is the default; `--format json` prints the analysis's dict as it is (the
fields are described in idaw/theory/analysis.py); `--report FILE.png` also draws it (idaw/theory/report.py). A
bad input file or report path is one line and exit 2 (idaw/theory/load.py says what is refused); the report path
is checked before the analysis runs. What music21 would print while it reads and analyses is collected and shown
as at most one warning line.
"""

from __future__ import annotations

import argparse
import json

from idaw.theory.load import FORMATS, music21_quietly


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw analyze`."""
    parser.add_argument("file", help=f"score or MIDI file ({', '.join(FORMATS)})")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: a readable summary (default); json: every field, for programs",
    )
    parser.add_argument(
        "--report",
        metavar="FILE.png",
        default=None,
        help="also draw a piano roll with keys, Roman numerals, cadences and sections into this PNG",
    )


def run(args: argparse.Namespace) -> int:
    """Analyse args.file, draw the report if asked, print the summary or JSON; returns the exit code (0)."""
    from idaw.theory.analysis import analyze_path  # here: after the arguments are read (--help stays fast)

    report = None
    if args.report is not None:
        from idaw.theory.report import check_report_path

        report = check_report_path(args.report)  # a bad path fails before the analysis runs
    with music21_quietly(args.file):
        notes, result = analyze_path(args.file)
    if report is not None:
        from idaw.theory.report import draw_report

        draw_report(notes, result, report)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        from idaw.theory.summary import summary_text

        print(summary_text(result, measures=list(zip(notes.measure_offsets, notes.measure_numbers, strict=False))))
    return 0
