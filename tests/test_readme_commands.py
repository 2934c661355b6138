"""Every `idaw` command line README.md shows runs as written, so the README cannot drift from the program.

The commands come from README.md itself at test time: each line of its ```sh blocks, and each inline code span that
is an `idaw COMMAND ARGS` line. Each runs through bash, as typed, with the venv's bin first on PATH (what
`. .venv/bin/activate` does), a fresh HOME (a new user: no keys, no caches, no config), in a folder holding the files
the README names (in.wav, song.wav, chorale.mid, generated here), against a private dummy JACK server (the only audio
devices there are). What "works" means per command:

- `idaw process`, `idaw devices`, `idaw demo`, `idaw analyze`, `idaw sidecar --make-keys`: exit 0, nothing on
  stderr that looks like an error, and the files named by -o, --out, --midi-out and --report written and readable.
- `idaw live ...` and `idaw sidecar` (servers, documented to stop on Ctrl-C with exit 0): they come up (live's ready
  line, and with --stats a stats line; the sidecar's "listening on" line), then SIGINT, then exit 0 and their
  --midi-out file. While the first `idaw live` runs, the README's `idaw sidecar --bind ENDPOINT --describe warm`
  runs with the endpoint that live printed, as the README says to.
- `idaw sidecar --bind ... --curve` first runs the README's own `idaw sidecar --make-keys` in the same HOME.
- `idaw train ...`: training on the full corpus takes tens of minutes (realtime/nets/TRAINING.md: 13.5 min plus 13
  to render the corpus), so the exact line is parsed by the program's real argument parser instead, and the data
  folder it names must exist; the same commands run end to end with tiny settings in tests/test_nets_training.py and
  tests/test_semantic_eq_train_cli.py.

Not run: `make demo` / `make test` (the README's setup and test commands, which CI itself runs),
`plugin_cpp/plugin/build_and_test.sh` (the plugin build and its tests, run by `make test`) and `. .venv/bin/activate`
(what the PATH above does). Any other line makes the test fail until a rule for it is added here.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mido
import music21
import numpy as np
import pytest
import soundfile as sf

from idaw.cli import build_parser
from tests.support.jack_server import JackServer
from tests.support.needs import need
from tests.support.repo import REPO

pytestmark = [pytest.mark.jack, pytest.mark.slow]

README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
NOT_RUN = ("make ", "plugin_cpp/plugin/build_and_test.sh", ". .venv/bin/activate")
"""README lines this test leaves alone (see the module docstring for why)."""
COMMANDS = ("process", "master", "sketch", "live", "devices", "demo", "train", "sidecar", "analyze")
START_TIMEOUT = 180.0
"""Seconds a command may take to come up or finish (sidecar models and torch load slowly on a busy machine)."""


def readme_commands(text: str) -> list[str]:
    """The command lines README.md shows, in order, without duplicates: ```sh block lines (comments removed) and
    inline `idaw COMMAND ARGS` spans (line breaks inside a span are spaces)."""
    found: list[tuple[int, str]] = []
    for block in re.finditer(r"```sh\n(.*?)```", text, re.S):
        offset = block.start(1)
        for line in block.group(1).splitlines(keepends=True):
            words = shlex.split(line, comments=True)
            if words:
                found.append((offset, shlex.join(words)))
            offset += len(line)
    for span in re.finditer(r"`(idaw [^`]+)`", text):
        words = span.group(1).split()
        if len(words) > 2 and words[1] in COMMANDS:
            found.append((span.start(), " ".join(words)))
    return list(dict.fromkeys(line for _, line in sorted(found)))


ALL_LINES = readme_commands(README.read_text(encoding="utf-8"))
LINES = [line for line in ALL_LINES if not line.startswith(NOT_RUN) and not re.search(r"\b[A-Z]{4,}\b", line)]
"""The lines run one per test; a line with a placeholder (ENDPOINT) runs inside the first `idaw live` test."""
COMPANIONS = [line for line in ALL_LINES if line.startswith("idaw ") and re.search(r"\b[A-Z]{4,}\b", line)]


@dataclass
class Process:
    """One command line running under bash (exec'd, so signals reach idaw itself); both streams are collected."""

    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, line: str, cwd: Path, env: dict[str, str]) -> Process:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process = cls(proc)
        for stream, lines in ((proc.stdout, process.out), (proc.stderr, process.err)):
            reader = threading.Thread(target=process._read, args=(stream, lines), daemon=True)
            reader.start()
            process.readers.append(reader)
        return process

    def _read(self, stream: object, lines: list[str]) -> None:
        assert hasattr(stream, "__iter__")
        for line in stream:
            with self.arrived:
                lines.append(str(line).rstrip("\n"))
                self.arrived.notify_all()
        with self.arrived:
            self.arrived.notify_all()

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first output line (stdout or stderr) matching `pattern`; fails if the process ends or time runs out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for line in self.out + self.err:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or all(not r.is_alive() for r in self.readers):
                    break
                self.arrived.wait(min(left, 0.5))
        self.stop(signal.SIGKILL)
        pytest.fail(f"no line matching {pattern!r} (exit {self.proc.poll()}); stdout {self.out}; stderr {self.err}")

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send `signum` (if still running) and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.finish()

    def finish(self, timeout: float = START_TIMEOUT) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"did not end within {timeout:g} s; stdout {self.out}; stderr {self.err}")
        for reader in self.readers:
            reader.join(10)
        return status


def assert_quiet_success(line: str, status: int, process: Process) -> None:
    """Exit 0 and nothing on stderr that reads as a failure."""
    text = "\n".join(process.err)
    assert status == 0, f"`{line}` exited {status}; stderr: {text}"
    assert "Traceback" not in text and not re.search(r"\b(error|warning)\b", text, re.I), f"`{line}`: {text}"


def assert_outputs(words: list[str], cwd: Path, frames: dict[str, int]) -> None:
    """The files the command's -o/--output, --out and --midi-out name exist and read back."""
    for flag, value in itertools.pairwise(words):
        path = cwd / value
        if flag in ("-o", "--out") and words[1] == "sketch":
            structure = json.loads((path / "structure.json").read_text())
            assert structure["bars"] == sum(s["bars"] for s in structure["sections"]), path
            song = sf.info(str(path / "song.wav"))
            assert song.duration >= structure["duration_s"] and song.channels == 2, path
            assert len(mido.MidiFile(path / "song.mid").tracks) == 5, path  # a tempo track and the four stems
            assert all((path / "stems" / f"{name}.wav").is_file() for name in ("drums", "bass", "harmony", "melody"))
            assert (path / "report.png").read_bytes().startswith(b"\x89PNG"), path
        elif flag in ("-o", "--output"):
            audio, _ = sf.read(path, always_2d=True)
            source = next(w for w in words[2:] if not w.startswith("-"))
            assert audio.shape[0] == frames[source] and np.isfinite(audio).all(), path
        elif flag == "--out" and words[1] == "demo":
            for name in ("before.wav", "after.wav"):
                assert sf.info(str(path / name)).frames > 0
            assert (path / "spectrum.png").read_bytes().startswith(b"\x89PNG"), path
        elif flag == "--midi-out":  # type 1: a tempo track, then one named track per part
            midi = mido.MidiFile(path)
            names = [m.name for track in midi.tracks[1:] for m in track if m.type == "track_name"]
            assert midi.type == 1 and set(names) <= {"melody", "chords", "bass", "drums"}, (path, names)
        elif flag == "--report":
            assert path.read_bytes().startswith(b"\x89PNG"), path


@dataclass
class Workspace:
    """Where a README command runs: a folder with the README's input files, and a fresh HOME."""

    cwd: Path
    env: dict[str, str]
    frames: dict[str, int]

    def run(self, line: str) -> Process:
        return Process.start(line, self.cwd, self.env)


@pytest.fixture
def workspace(jack_server: JackServer, tmp_path: Path) -> Iterator[Workspace]:
    need((VENV_BIN / "idaw").exists(), f"the idaw console script is not installed in {VENV_BIN} (run make setup)")
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    rng = np.random.default_rng(7)
    frames = {}
    for name, seconds in (("in.wav", 3.0), ("song.wav", 6.0)):
        t = np.arange(int(48000 * seconds)) / 48000
        tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
        audio = np.stack([tone, tone], axis=1) + rng.normal(0, 0.02, (t.size, 2))
        sf.write(cwd / name, audio.astype(np.float32), 48000, subtype="PCM_24")
        frames[name] = t.size
    # A score to analyse: a Bach chorale from music21's corpus, written as MIDI.
    music21.corpus.parse("bach/bwv269").write("midi", fp=str(cwd / "chorale.mid"))
    env = jack_server.env()
    for name in ("IDAW_DEBUG", "IDAW_SIDECAR_KEYS", "IDAW_SIDECAR_ENDPOINT", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    env.update(HOME=str(home), PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(VENV_BIN.parent))
    yield Workspace(cwd, env, frames)


def test_the_readme_shows_the_commands_this_test_expects() -> None:
    """The parsing above finds the README's commands (an empty list would make every other test vacuous), every line
    left out is one the module docstring explains, and every line with a placeholder has an `idaw live` to run in."""
    assert any(line.startswith("idaw live --device jack") for line in LINES), LINES
    assert sum(line.startswith("idaw ") for line in LINES) >= 10, LINES
    left_out = [line for line in ALL_LINES if line not in LINES and line not in COMPANIONS]
    assert all(line.startswith(NOT_RUN) for line in left_out), left_out
    assert all(c.startswith("idaw sidecar") and "ENDPOINT" in c for c in COMPANIONS), COMPANIONS
    assert not COMPANIONS or "--no-sidecar" not in first_live_line(), first_live_line()


def first_live_line() -> str:
    """The README's first `idaw live` line: the one that runs the placeholder lines while it is up."""
    return next(line for line in LINES if line.startswith("idaw live"))


@pytest.mark.parametrize("line", LINES)
def test_readme_command_works_as_written(line: str, workspace: Workspace) -> None:
    words = shlex.split(line)
    assert words[0] == "idaw" and len(words) > 1 and words[1] in COMMANDS, f"no rule for README line `{line}`"
    command = words[1]
    if command == "train":
        check_training_line(words)
    elif command == "live":
        run_live(line, words, workspace)
    elif command == "sidecar" and "--make-keys" not in words and "--describe" not in words:
        run_sidecar_server(line, workspace)
    else:
        process = workspace.run(line)
        assert_quiet_success(line, process.finish(), process)
        assert_outputs(words, workspace.cwd, workspace.frames)
        if command == "devices":  # the README's `--device jack` is what the listing offers
            assert "--device jack" in "\n".join(process.out), process.out


def check_training_line(words: list[str]) -> None:
    """Parse the exact line with idaw's own parser; the folders it reads must exist (relative to the repository)."""
    args = build_parser(only="train").parse_args(words[1:])
    assert args.command == "train" and args.target == words[2]
    for flag, value in itertools.pairwise(words):
        if flag == "--data":
            need((REPO / value).is_dir(), f"the training data the README names is not at {REPO / value}")


def run_live(line: str, words: list[str], workspace: Workspace) -> None:
    """Start live, wait until it runs (and prints stats with --stats), Ctrl-C, expect exit 0 and its files."""
    for value in words:
        if value.endswith(".mid"):
            (workspace.cwd / value).unlink(missing_ok=True)
    process = workspace.run(line)
    process.wait_for(r"Ctrl-C to stop")
    if "--stats" in words:
        process.wait_for(r"callback p50 .* \| xruns \d+ \| blocks \d+")
    if line == first_live_line():
        endpoint = process.wait_for(r"sidecar at (\S+): ").group(1)
        for companion in COMPANIONS:
            asked = workspace.run(companion.replace("ENDPOINT", shlex.quote(endpoint)))
            assert_quiet_success(companion, asked.finish(), asked)
            assert '"used"' in "\n".join(asked.out), asked.out
    status = process.stop(signal.SIGINT)
    assert_quiet_success(line, status, process)
    assert any(out.startswith("idaw live: stopped after") for out in process.out), process.out
    assert_outputs(words, workspace.cwd, workspace.frames)


def run_sidecar_server(line: str, workspace: Workspace) -> None:
    """Start the sidecar (after the README's --make-keys when it needs CURVE keys), wait until it listens, Ctrl-C,
    expect exit 0."""
    if "--curve" in line:
        make_keys = next(w for w in LINES if w.startswith("idaw sidecar") and "--make-keys" in w)
        keys = workspace.run(make_keys)
        assert_quiet_success(make_keys, keys.finish(), keys)
    process = workspace.run(line)
    process.wait_for(r"listening on ")
    status = process.stop(signal.SIGINT)
    assert_quiet_success(line, status, process)
