"""`idaw analyze DIR --out results.jsonl`: a folder of scores, MIDI files and recordings analysed on a two-worker
Dask LocalCluster, as a user runs it: one line per file, the broken file named with its error and the run going
on, results equal to `idaw analyze FILE --format json`, resuming (only new files analysed, on a running cluster
given with --scheduler), repairing a line cut by a kill, --retry-failed, Ctrl-C at the terminal (exit 130, one
line, the output still valid JSON lines, no worker left behind), and bad arguments in one line with exit 2.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from idaw.listen.corpus import find_files
from tests.support.idaw_command import RunIdaw, one_error_line
from tests.support.listen_signals import write_chords_wav, write_midi
from tests.support.repo import REPO

CADENCE_KEYS = {"a.mid": "C major", "b.mid": "D major", "sub/c.MID": "F major", "sub/deeper/d.midi": "G major"}
"""The MIDI files of the corpus and the keys they are written in (the cadence transposed)."""
RECORDINGS = ("e.wav",)
"""One recording: each worker process that analyses its first recording spends seconds compiling librosa's kernels."""
BROKEN = "sub/broken.mid"


def build_corpus(folder: Path) -> set[str]:
    """The test corpus in `folder`: four MIDI cadences, a WAV of chords, a broken .mid, and files that are not
    analysed (a text file, a hidden folder, a link to a folder); returns the names that are analysed."""
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name, key in CADENCE_KEYS.items():
        write_midi(folder / name, transpose={"C": 0, "D": 2, "F": 5, "G": 7}[key[0]])
    write_chords_wav(folder / "e.wav")
    (folder / BROKEN).write_bytes(b"not a MIDI file at all\n" * 4)
    write_midi(folder / ".hidden" / "h.mid")
    (folder / "notes.txt").write_text("not music\n")
    (folder / "again").symlink_to(folder / "sub", target_is_directory=True)
    return {*CADENCE_KEYS, *RECORDINGS, BROKEN}


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON lines file, parsed (fails on a line that does not parse)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_file(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The lines keyed by their "file", after checking that no file has two."""
    names = [line["file"] for line in lines]
    assert len(names) == len(set(names)), names
    return {line["file"]: line for line in lines}


def analyse(run_idaw: RunIdaw, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`idaw analyze ARGS`, after checking that it exited 0 with nothing on stderr (no progress bar off a terminal,
    no log lines from Dask)."""
    result = run_idaw("analyze", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result


def test_find_files_walks_the_tree_without_hidden_files_or_linked_folders(tmp_path: Path) -> None:
    expected = build_corpus(tmp_path)
    write_chords_wav(tmp_path / "sub" / "f.FLAC")
    (tmp_path / "outside.mid").symlink_to(tmp_path / "a.mid")  # a link to a file is read like the file

    assert find_files(tmp_path) == sorted({*expected, "sub/f.FLAC", "outside.mid"})


@pytest.mark.slow
def test_corpus_run_resume_repair_and_retry(tmp_path: Path, run_idaw: RunIdaw) -> None:
    corpus = tmp_path / "corpus"
    names = build_corpus(corpus)
    out = tmp_path / "results.jsonl"

    # A two-worker LocalCluster analyses every file once; the broken one fails by name and the run goes on.
    first = analyse(run_idaw, corpus, "--out", out, "--workers", "2")
    lines = by_file(read_lines(out))
    assert set(lines) == names
    for name, key in CADENCE_KEYS.items():
        assert lines[name]["format"] == "midi" and lines[name]["key"] == key, lines[name]
    for name in RECORDINGS:
        assert lines[name]["source"] == "audio" and lines[name]["tempo_bpm"] > 0, lines[name]
    assert lines[BROKEN]["error"].startswith(f"{BROKEN}: not a valid Standard MIDI file"), lines[BROKEN]
    assert [n for n, line in lines.items() if "error" in line] == [BROKEN]
    assert all(line["seconds"] > 0 for line in lines.values())
    summary = first.stdout
    assert f"6 files in the folder: 5 analysed, 1 failed, 0 skipped (already in {out})" in summary, summary
    assert f"  {lines[BROKEN]['error']}" in summary.splitlines(), summary
    assert "on 2 worker(s)" in summary, summary

    # Each line is what `idaw analyze FILE --format json` prints for the file, but for "file" and "seconds".
    for name in ("sub/c.MID", "e.wav"):
        alone = json.loads(analyse(run_idaw, corpus / name, "--format", "json").stdout)
        in_corpus = dict(lines[name])
        assert in_corpus.pop("seconds") > 0
        assert in_corpus.pop("file") == name and alone.pop("file") == str(corpus / name)
        assert in_corpus == alone

    # Two new files, analysed on a running cluster (--scheduler), which also shows the progress bar on a terminal:
    # only they are analysed, and the lines already written stay as they were.
    before = out.read_bytes()
    write_midi(corpus / "sub" / "g.mid", transpose=9)
    write_midi(corpus / "h.midi", transpose=4)
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        result, terminal_text = run_on_a_terminal(
            run_idaw, corpus, "--out", out, "--scheduler", cluster.scheduler_address
        )
    assert result.returncode == 0, terminal_text
    assert re.search(r"2/2 \[.*(file/s|s/file)\]", terminal_text), terminal_text  # tqdm's bar, on stderr
    assert out.read_bytes().startswith(before)
    lines = by_file(read_lines(out))
    assert set(lines) == names | {"sub/g.mid", "h.midi"}
    assert lines["sub/g.mid"]["key"] == "A major" and lines["h.midi"]["key"] == "E major"
    assert "8 files in the folder: 2 analysed, 0 failed, 6 skipped" in result.stdout, result.stdout
    assert "1 file(s) failed in an earlier run" in result.stdout, result.stdout

    # A kill while a line was being written: the cut line is dropped, the file rewritten as valid JSON lines, and
    # that file analysed again (with --retry-failed, the broken one too, still once in the output).
    text = out.read_bytes()
    last_start = text.rstrip(b"\n").rfind(b"\n") + 1
    cut = json.loads(text[last_start:])["file"]
    out.write_bytes(text[: last_start + (len(text) - last_start) // 2])
    third = analyse(run_idaw, corpus, "--out", out, "--workers", "1", "--retry-failed")
    lines = by_file(read_lines(out))
    assert set(lines) == names | {"sub/g.mid", "h.midi"}
    assert "8 files in the folder: 1 analysed, 1 failed, 6 skipped" in third.stdout, third.stdout
    assert f"dropped 1 line(s) of {out}: cut short when a run was stopped" in third.stdout, third.stdout
    assert "error" not in lines[cut] and lines[BROKEN]["error"].startswith(BROKEN)


def run_on_a_terminal(run_idaw: RunIdaw, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """`idaw analyze ARGS` with stderr on a pseudo-terminal (80 columns); the result and what the terminal got."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # tqdm draws nothing in 0 columns
    try:
        result = run_idaw("analyze", *args, stderr=terminal)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
    return result, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_ctrl_c_keeps_the_lines_written_and_leaves_no_worker(tmp_path: Path) -> None:
    """Ctrl-C at a terminal reaches the whole process group (idaw and its Dask worker processes) once a first line is
    written: exit 130, the one line `idaw: interrupted` (no worker's traceback), every line written whole, and no
    process of the group left."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(300):  # far more than two workers analyse between the first line and the Ctrl-C
        write_midi(corpus / f"{i:03d}.mid", transpose=i % 12)
    out = tmp_path / "results.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IDAW_DEBUG", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "idaw.cli", "analyze", str(corpus), "--out", str(out), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.stat().st_size > 0) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert child.poll() is None, child.communicate()
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 130, stderr
    assert one_error_line(stderr) == "idaw: interrupted"
    lines = by_file(read_lines(out))
    assert 1 <= len(lines) < 300
    assert all(line["key"] and "error" not in line for line in lines.values())
    assert group_is_gone(child.pid, within=30.0)


def group_is_gone(group: int, within: float) -> bool:
    """Whether no live process of process group `group` is left, waiting up to `within` seconds for them to end
    (zombies do not count: whether an orphan is reaped at once depends on the machine's init process)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not live_members(group):
            return True
        time.sleep(0.2)
    return False


def live_members(group: int) -> list[int]:
    """The processes of process group `group` that are not zombies, from /proc/PID/stat."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # after "PID (COMMAND)": state, ppid, pgrp, ...
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


@pytest.mark.slow
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, run_idaw: RunIdaw) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    song = write_midi(folder / "a.mid")
    out = tmp_path / "out.jsonl"
    cases: list[tuple[list[str | Path], str]] = [
        ([folder], f"{folder}: it is a folder; give --out FILE.jsonl to analyse every file in it"),
        ([song, "--out", out], f"are for a folder, and {song} is not one"),
        ([folder, "--out", out, "--scheduler", "http://x:8786"], "not a scheduler address; allowed: tcp://HOST:PORT"),
        ([folder, "--out", out, "--scheduler", "tcp://nohost"], "not a scheduler address; allowed: tcp://HOST:PORT"),
        ([folder, "--out", out, "--workers", "0"], "--workers 0: allowed 1 to"),
        ([folder, "--out", tmp_path], "it is a folder; allowed: a JSON lines file"),
        ([tmp_path / "missing", "--out", out], "missing: no such file or folder"),
        ([folder, "--out", song], f"{song}: line 1 is not a line of this command's output"),  # left as it was
    ]
    midi = song.read_bytes()
    for args, expected in cases:
        result = run_idaw("analyze", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in one_error_line(result.stderr), (args, result.stderr)
    assert not out.exists()
    assert song.read_bytes() == midi
