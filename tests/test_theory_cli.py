"""`idaw analyze FILE`, run as a user runs it: every input format, the summary, the JSON, the PNG report, and every
kind of bad input answered with one line and exit 2 (never a traceback, never a hang)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.image
import mido
import music21
import numpy as np
import pytest

from idaw.theory.load import MAX_FILE_BYTES
from idaw.theory.report import DPI, VOICE_COLOURS, figure_inches
from tests.support.idaw_command import RunIdaw, one_error_line
from tests.support.needs import need
from tests.support.repo import REPO

TICKS = 480
PROGRESSION = (
    # (soprano, alto, tenor, bass) of I - IV - V - I in C major, one chord per 4/4 bar, no parallel fifths or octaves.
    (72, 64, 55, 48),
    (72, 65, 57, 53),
    (71, 62, 55, 43),
    (72, 64, 55, 48),
)


def corpus_file(relative: str) -> Path:
    """A file of music21's corpus (shipped inside the music21 package), or skip/fail when it is not installed."""
    path = Path(music21.common.getCorpusFilePath()) / relative
    need(path.is_file(), f"music21's corpus file {relative} is missing (music21 installed without its corpus)")
    return path


def write_midi(path: Path, chords: tuple[tuple[int, ...], ...] = PROGRESSION, bpm: float = 120.0) -> Path:
    """A type-1 MIDI file: a tempo track, then one track per voice (soprano first), each chord a whole note."""
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    song.tracks.append(meta)
    for voice in range(len(chords[0]) if chords else 0):
        track = mido.MidiTrack()
        for chord in chords:
            track.append(mido.Message("note_on", note=chord[voice], velocity=80, channel=voice, time=0))
            track.append(mido.Message("note_off", note=chord[voice], velocity=0, channel=voice, time=4 * TICKS))
        song.tracks.append(track)
    song.save(str(path))
    return path


def analyse_json(run_idaw: RunIdaw, path: Path, *extra: str | Path) -> dict[str, Any]:
    """The JSON `idaw analyze PATH --format json` prints (after checking it ran cleanly)."""
    result = run_idaw("analyze", path, "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)  # nothing but the JSON on stdout
    return parsed


def test_midi_progression_in_c_major_gives_key_chords_and_cadence(tmp_path: Path, run_idaw: RunIdaw) -> None:
    song = write_midi(tmp_path / "cadence.mid")
    result = analyse_json(run_idaw, song)
    assert result["format"] == "midi"
    assert result["key"] == "C major"
    assert result["voices"] == 4
    assert [c["roman"] for c in result["chords"]] == ["I", "IV", "V", "I"]
    assert [c["offset"] for c in result["chords"]] == [0.0, 4.0, 8.0, 12.0]
    # MIDI always states a tempo (120 here): times in seconds come with the offsets.
    assert result["chords"][2]["time"] == pytest.approx(4.0)
    assert result["duration"]["time"] == pytest.approx(8.0)
    assert [(c["type"], c["offset"]) for c in result["cadences"]][-1] == ("PAC", 12.0)

    summary = run_idaw("analyze", song)
    assert summary.returncode == 0 and summary.stderr == "", summary.stderr
    assert "Key: C major" in summary.stdout
    assert "perfect authentic cadence in C major at bar 4" in summary.stdout
    assert "I IV V I" in summary.stdout


def write_musicxml(folder: Path) -> Path:
    """Bach's chorale BWV 269 (G major, four voices) from music21's corpus, written out by music21 as MusicXML."""
    corpus_file("bach/bwv269.mxl")
    score = music21.corpus.parse("bach/bwv269", forceSource=True)  # forceSource: no pickle written to the cache
    written = score.write("musicxml", fp=folder / "bwv269.musicxml")
    return Path(written)


def copy_corpus(relative: str) -> Callable[[Path], Path]:
    """A writer that copies a corpus file into the test's folder (the test reads the copy, as a user's file)."""

    def write(folder: Path) -> Path:
        return Path(shutil.copy(corpus_file(relative), folder))

    return write


@pytest.mark.parametrize(
    ("write", "fmt", "key", "voices", "time_signature"),
    [
        (write_musicxml, "musicxml", "G major", 4, "3/4"),
        (copy_corpus("bach/bwv269.mxl"), "musicxml", "G major", 4, "3/4"),
        (copy_corpus("bach/bwv281.krn"), "humdrum", "F major", 4, "4/4"),
        (copy_corpus("oneills1850/0731-0731.abc"), "abc", "G major", 1, "6/8"),
    ],
    ids=["musicxml", "mxl", "humdrum", "abc"],
)
def test_score_formats_are_analysed(
    tmp_path: Path,
    run_idaw: RunIdaw,
    write: Callable[[Path], Path],
    fmt: str,
    key: str,
    voices: int,
    time_signature: str,
) -> None:
    path = write(tmp_path)
    result = analyse_json(run_idaw, path)
    assert (result["format"], result["key"], result["voices"]) == (fmt, key, voices)
    assert result["time_signature"] == time_signature
    assert len(result["chords"]) >= 8
    assert all({"offset", "roman", "key", "function"} <= set(chord) for chord in result["chords"])
    # A score states no tempo: offsets only, no times in seconds.
    assert "time" not in result["duration"]


def test_abc_tune_book_analyses_the_first_tune_and_says_so(tmp_path: Path, run_idaw: RunIdaw) -> None:
    book = Path(shutil.copy(corpus_file("airdsAirs/book1.abc"), tmp_path))
    tunes = book.read_text(encoding="utf-8").count("\nX:")
    result = run_idaw("analyze", book, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["voices"] == 1
    warning = one_error_line(result.stderr)
    assert warning.startswith("idaw analyze: warning:") and f"holds {tunes} tunes; analysing the first" in warning


def test_what_music21_prints_becomes_one_warning_line(tmp_path: Path, run_idaw: RunIdaw) -> None:
    tune = tmp_path / "odd.abc"
    # '~~' is no note music21 knows: it writes a warning of its own to stderr while it parses.
    tune.write_text("X:1\nT:Odd\nM:4/4\nL:1/8\nK:G\nGABc d2 e2|GA ~~ B4|GABc d4|]\n", encoding="utf-8")
    result = run_idaw("analyze", tune, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["format"] == "abc"  # stdout holds the JSON and nothing music21 said
    warning = one_error_line(result.stderr)
    assert warning.startswith(f"idaw analyze: warning: {tune}: "), warning
    assert "~~" in warning and "WARNING" not in warning


def test_report_png_has_the_expected_size_and_every_voice_drawn(tmp_path: Path, run_idaw: RunIdaw) -> None:
    song = write_midi(tmp_path / "cadence.mid")
    png = tmp_path / "report.png"
    result = analyse_json(run_idaw, song, "--report", png)
    image = matplotlib.image.imread(png)
    width, height = figure_inches(result["duration"]["offset"])
    assert image.shape[:2] == (round(height * DPI), round(width * DPI))
    # Each voice's notes are drawn in its colour (85 % over white).
    pixels = (image[..., :3] * 255).reshape(-1, 3)
    for colour in VOICE_COLOURS[:4]:
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        blended = 0.85 * rgb + 0.15 * 255
        assert (np.abs(pixels - blended).max(axis=1) <= 3).sum() > 100, colour
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def write_truncated_mxl(folder: Path) -> Path:
    data = corpus_file("bach/bwv269.mxl").read_bytes()
    path = folder / "cut.mxl"
    path.write_bytes(data[: len(data) // 2])
    return path


def write_mxl_without_score(folder: Path) -> Path:
    path = folder / "empty.mxl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "no score here")
    return path


def write_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return write


def make_folder(folder: Path) -> Path:
    path = folder / "scores.mid"
    path.mkdir()
    return path


def write_huge_midi(folder: Path) -> Path:
    path = folder / "huge.mid"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: takes no disk space, refused before it is read
    return path


def write_silent_midi(folder: Path) -> Path:
    return write_midi(folder / "silent.mid", chords=())


def write_drum_midi(folder: Path) -> Path:
    """Kick and snare on General MIDI's drum channel (10): notes, but none with a pitch."""
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    track = mido.MidiTrack()
    for beat in range(8):
        drum = 36 if beat % 2 == 0 else 38
        track.append(mido.Message("note_on", note=drum, velocity=100, channel=9, time=0))
        track.append(mido.Message("note_off", note=drum, velocity=0, channel=9, time=TICKS))
    song.tracks.append(track)
    path = folder / "drums.mid"
    song.save(str(path))
    return path


# Each bad input: how to make it, and words its one-line error must hold.
BAD_INPUTS = [
    pytest.param(write_bytes("song.txt", b"C D E F"), "unknown format '.txt'; allowed: .mid, .midi", id="suffix"),
    pytest.param(lambda folder: folder / "missing.mid", "no such file", id="missing"),
    pytest.param(make_folder, "it is a folder", id="folder"),
    pytest.param(write_bytes("empty.mid", b""), "empty", id="empty"),
    pytest.param(write_bytes("noise.mid", bytes(range(256)) * 4), "not a valid Standard MIDI file", id="garbage-midi"),
    pytest.param(write_truncated_mxl, "not a valid MusicXML file", id="truncated-mxl"),
    pytest.param(write_mxl_without_score, "holds no MusicXML score", id="mxl-without-score"),
    pytest.param(write_bytes("page.musicxml", b"<html><body>hi</body></html>"), "not a MusicXML score", id="html"),
    pytest.param(write_bytes("latin1.abc", b"X:1\nT:Caf\xe9\nK:G\nGAB|\n"), "not UTF-8", id="abc-not-utf8"),
    pytest.param(write_silent_midi, "no notes", id="midi-without-notes"),
    pytest.param(write_drum_midi, "no notes", id="midi-drums-only"),
    pytest.param(write_huge_midi, "too large; allowed: up to 32 MiB", id="too-large"),
]


@pytest.mark.parametrize(("write", "says"), BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, run_idaw: RunIdaw, write: Callable[[Path], Path], says: str
) -> None:
    path = write(tmp_path)
    result = run_idaw("analyze", path)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith("idaw analyze: error:") and says in line and str(path) in line, line
    assert result.stdout == ""


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)  # nobody writes to it: opening it to read would wait forever
    env = {key: value for key, value in os.environ.items() if key != "IDAW_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "idaw.cli", "analyze", str(fifo)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # generous for a loaded machine; the refusal itself takes no time
        check=False,
    )
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith("idaw analyze: error:") and "FIFO" in line and "not a regular file" in line, line


@pytest.mark.parametrize("where", ["missing/report.png", "."], ids=["missing-folder", "a-folder"])
def test_bad_report_path_is_one_line_and_exit_2(tmp_path: Path, run_idaw: RunIdaw, where: str) -> None:
    song = write_midi(tmp_path / "cadence.mid")
    result = run_idaw("analyze", song, "--report", tmp_path / where)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith("idaw analyze: error: cannot write"), line
    assert result.stdout == ""
