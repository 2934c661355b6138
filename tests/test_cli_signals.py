"""Ctrl-C at any moment: `idaw process` ends with exit 130 and the one line `idaw: interrupted`, never a traceback,
never a part file left behind, and its output is either absent or complete (byte for byte what an uninterrupted run
writes).

How the moments are chosen, with no hook in idaw: the child is the `idaw` console script, run by the interpreter
with its own diagnostic `-X importtime`, which prints a line to stderr as each import finishes. main() installs its
SIGINT handler first and then imports idaw.base.errors (MARKER), so from that line on, Ctrl-C is idaw's to handle.
(Before it the interpreter starts up and runs the editable install's import hook, a few tens of ms in which no idaw
code has run yet and a Ctrl-C gets the interpreter's own traceback.)
An uninterrupted run first counts the imports after the marker, times the rest of the run and the final write;
the interrupted runs then signal
  (1) after 0 .. all of those imports: the start-up, at points that do not depend on the machine's speed;
  (2) at fractions of the time from the last import to the exit: reading, rendering, writing;
  (3) as soon as the output's part file holds data, and at fractions of the write's duration after that: the final
      write, the moment between the finished part file and its rename, and the rename.
Whatever the moment, the same invariants must hold (assert_clean_end).

Also: Ctrl-C while `--describe` starts or uses its own sidecar stops the sidecar too; `idaw live` interrupted on its
way to the ready line exits 130 in one line (after it, Ctrl-C is how it is stopped: exit 0), and its JACK client
goes with it (a Ctrl-C inside libjack's calls used to make PortAudio abort the process); and the CLI's one-line
display of warnings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from idaw import cli
from tests.support.audio import noise
from tests.support.jack_server import JackServer
from tests.support.needs import need, need_program

pytestmark = pytest.mark.slow

IDAW = Path(sys.executable).with_name("idaw")
"""The console script `pip install` made, which is what a user runs."""
MARKER = "idaw.base.errors"
"""Imported by main() right after it installed its SIGINT handler."""
INTERRUPTED = "idaw: interrupted"
TIMEOUT = 180.0


@dataclass
class Child:
    """One `python -X importtime idaw ARGS` run; a thread reads its stderr and counts imports after MARKER."""

    proc: subprocess.Popen[str]
    imports: int = -1
    """Imports finished after MARKER (-1 until the marker)."""
    last_import: float = 0.0
    """time.monotonic() when the newest import line arrived."""
    lines: list[str] = field(default_factory=list)
    """stderr without the import lines."""
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None
    out: list[str] = field(default_factory=list)
    """stdout read by wait_output() so far."""

    @classmethod
    def start(cls, args: list[str], cwd: Path, base_env: dict[str, str] | None = None) -> Child:
        env = {**(os.environ if base_env is None else base_env), "PYTHONUNBUFFERED": "1"}
        env.pop("IDAW_DEBUG", None)
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", str(IDAW), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        child = cls(proc)
        child.reader = threading.Thread(target=child._read, daemon=True)
        child.reader.start()
        return child

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                if line.startswith("import time:"):
                    if self.imports >= 0:
                        self.imports += 1
                    elif line.rsplit("|", 1)[-1].strip() == MARKER:
                        self.imports = 0
                    self.last_import = time.monotonic()
                else:
                    self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_imports(self, count: int) -> bool:
        """Wait until `count` imports finished after the marker; False if the process ended first."""
        reader = self.reader
        assert reader is not None
        with self.changed:
            self.changed.wait_for(lambda: self.imports >= count or not reader.is_alive(), TIMEOUT)
            return self.imports >= count

    def wait_output(self, text: str) -> float:
        """Read stdout until a line holds `text`; returns when (time.monotonic()). Fails if idaw ends first."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            if text in line:
                return time.monotonic()
        pytest.fail(f"no {text!r} from idaw (exit {self.proc.wait()}); stderr {self.lines}")

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C in a terminal sends (only to idaw: its sidecar runs in a session of its own)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str, list[str]]:
        """(exit status, stdout, stderr lines without the import lines), once the process has ended."""
        timer = threading.Timer(TIMEOUT, self.proc.kill)
        timer.start()
        try:
            assert self.proc.stdout is not None and self.reader is not None
            out = "".join(self.out) + self.proc.stdout.read()
            status = self.proc.wait()
            self.reader.join()
        finally:
            timer.cancel()
        assert status != -signal.SIGKILL, f"idaw did not end within {TIMEOUT:g} s; stderr: {self.lines}"
        return status, out, list(self.lines)


def part_files(folder: Path) -> list[Path]:
    """Hidden part files of unfinished outputs in `folder`."""
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part")]


def wait_for_part_with_data(folder: Path, child: Child) -> float | None:
    """Poll until a part file in `folder` holds data (the final write has begun); returns when, or None if idaw ended
    first. The early probe (an empty part file, created and removed before any work) does not count."""
    while child.proc.poll() is None:
        for part in part_files(folder):
            try:
                if part.stat().st_size > 0:
                    return time.monotonic()
            except FileNotFoundError:
                continue
        time.sleep(0.0002)
    return None


@dataclass
class Scene:
    """The files of one run and the bytes an uninterrupted run writes."""

    folder: Path
    source: Path
    output: Path
    expected: bytes = b""

    def args(self) -> list[str]:
        return ["process", str(self.source), "-o", str(self.output), "--no-sidecar"]

    def reset(self) -> None:
        self.output.unlink(missing_ok=True)
        assert sorted(self.folder.iterdir()) == [self.source]


def assert_clean_end(scene: Scene, status: int, out: str, errors: list[str], moment: str) -> str:
    """The invariants after a SIGINT at `moment`; returns 'interrupted' or 'finished' (the signal came too late)."""
    text = "\n".join(errors)
    assert "Traceback" not in text and "Error" not in text, f"{moment}: {text}"
    leftovers = [p.name for p in scene.folder.iterdir() if p not in (scene.source, scene.output)]
    assert not leftovers, f"{moment}: left behind {leftovers}"
    if status == 130:
        assert errors == [INTERRUPTED], f"{moment}: {errors}"
        if scene.output.exists():  # interrupted after the rename: the file is complete
            assert scene.output.read_bytes() == scene.expected, f"{moment}: an incomplete output"
        return "interrupted"
    # 0: the signal arrived after idaw had exited. -SIGINT: it arrived after main() returned, while the interpreter
    # shut down with the default action restored (a shell shows 130 as well, and nothing is printed); in both
    # cases the command had finished, so its output and summary must be there.
    assert status in (0, -signal.SIGINT), f"{moment}: exit {status}; stderr {errors}"
    assert errors == [], f"{moment}: {errors}"
    assert out.startswith(f"wrote {scene.output}"), f"{moment}: {out!r}"
    assert scene.output.read_bytes() == scene.expected, f"{moment}: an incomplete output"
    return "finished"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Three minutes of stereo noise to render into a FLAC (whose encoding makes the final write last a while)."""
    need(IDAW.exists(), f"the idaw console script is not installed at {IDAW} (run make setup)")
    folder = tmp_path_factory.mktemp("signals")
    source = folder / "long.wav"
    sf.write(source, noise(48000, 180.0, 2, seed=3), 48000, subtype="FLOAT")
    return Scene(folder, source, folder / "out.flac")


@dataclass(frozen=True)
class Baseline:
    """What an uninterrupted run did: imports after the marker, seconds from the last import to the exit, and
    seconds from the part file's first data to the output's appearance."""

    imports: int
    tail_seconds: float
    write_seconds: float


@pytest.fixture(scope="module")
def baseline(scene: Scene) -> Baseline:
    scene.reset()
    child = Child.start(scene.args(), scene.folder)
    began_writing = wait_for_part_with_data(scene.folder, child)
    written = None
    while child.proc.poll() is None and written is None:
        if scene.output.exists():
            written = time.monotonic()
        time.sleep(0.0002)
    status, out, errors = child.finish()
    ended = time.monotonic()
    assert status == 0 and errors == [], errors
    assert out.startswith(f"wrote {scene.output}"), out
    scene.expected = scene.output.read_bytes()
    audio, rate = sf.read(scene.output, dtype="float32")
    assert rate == 48000 and audio.shape == (180 * 48000, 2)
    assert child.imports > 100, "the marker import was not seen: main() must import it after installing its handler"
    assert began_writing is not None, "the final write's part file was never seen"
    write_seconds = (written or ended) - began_writing
    return Baseline(child.imports, ended - child.last_import, write_seconds)


def test_ctrl_c_during_start_up_ends_at_once_in_one_line(scene: Scene, baseline: Baseline) -> None:
    """Ctrl-C while the modules load (numpy, torch, the core: seconds on a slow machine) prints no traceback."""
    counts = sorted({0, 1, baseline.imports // 50, baseline.imports // 5, baseline.imports // 2, baseline.imports - 1})
    for count in counts:
        scene.reset()
        child = Child.start(scene.args(), scene.folder)
        reached = child.wait_imports(count)
        child.interrupt()
        status, out, errors = child.finish()
        assert reached, f"idaw ended before import {count}: exit {status}, {errors}"
        outcome = assert_clean_end(scene, status, out, errors, f"after import {count} of {baseline.imports}")
        assert outcome == "interrupted" and not scene.output.exists()


def test_ctrl_c_while_reading_rendering_and_writing_leaves_no_part_file(scene: Scene, baseline: Baseline) -> None:
    """Ctrl-C after start-up, at fractions of the rest of the run: the output is absent or complete, never a part."""
    outcomes = []
    for fraction in (0.05, 0.3, 0.6, 0.9):
        scene.reset()
        child = Child.start(scene.args(), scene.folder)
        child.wait_imports(baseline.imports)
        time.sleep(fraction * baseline.tail_seconds)
        child.interrupt()
        status, out, errors = child.finish()
        outcomes.append(assert_clean_end(scene, status, out, errors, f"{fraction:.0%} into the work"))
    assert "interrupted" in outcomes, outcomes


def test_ctrl_c_during_the_final_write_removes_the_part_file(scene: Scene, baseline: Baseline) -> None:
    """Ctrl-C once the part file has data, and at fractions of the write after that (up to the rename and past it):
    never a complete hidden part file, and the output is absent or complete."""
    outcomes = []
    for fraction in (0.0, 0.0, 0.5, 0.9, 1.0, 1.2):
        scene.reset()
        child = Child.start(scene.args(), scene.folder)
        seen = wait_for_part_with_data(scene.folder, child)
        if seen is not None:
            time.sleep(fraction * baseline.write_seconds)
        child.interrupt()
        status, out, errors = child.finish()
        outcome = assert_clean_end(scene, status, out, errors, f"{fraction:.0%} into the write")
        outcomes.append((outcome, scene.output.exists()))
    assert ("interrupted", False) in outcomes, f"no run was interrupted during its write: {outcomes}"


def children(pid: int) -> list[int]:
    """Process ids of the children of `pid` (e.g. the sidecar idaw started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("moment", ["sidecar starting", "sidecar answering"])
def test_ctrl_c_while_a_sidecar_runs_stops_it_too(moment: str, tmp_path: Path) -> None:
    """`--describe` starts a sidecar: Ctrl-C while it starts or answers ends idaw in one line and the sidecar with
    it, and removes the sidecar's temporary folder."""
    need(IDAW.exists(), f"the idaw console script is not installed at {IDAW} (run make setup)")
    source = tmp_path / "in.wav"
    sf.write(source, noise(48000, 3.0, 2), 48000, subtype="FLOAT")
    output = tmp_path / "out.wav"
    args = ["process", str(source), "-o", str(output), "--describe", "warm", "--sidecar-handler", "fallback"]
    child = Child.start(args, tmp_path)
    sidecar, ready_folder = None, None
    deadline = time.monotonic() + TIMEOUT
    while child.proc.poll() is None and time.monotonic() < deadline and sidecar is None:
        for pid in children(child.proc.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"sidecar" in command and b"--ready-file" in command:
                sidecar = pid
                ready_folder = Path(command[command.index(b"--ready-file") + 1].decode()).parent
        time.sleep(0.001)
    assert sidecar is not None and ready_folder is not None, f"no sidecar started: {child.lines}"
    if moment == "sidecar answering":
        while child.proc.poll() is None and not any(ready_folder.glob("ready-*")):
            time.sleep(0.001)
    child.interrupt()
    status, _, errors = child.finish()
    assert status == 130 and errors == [INTERRUPTED], (status, errors)
    assert not output.exists() and not part_files(tmp_path)
    end = time.monotonic() + 15
    while alive(sidecar) and time.monotonic() < end:
        time.sleep(0.05)
    assert not alive(sidecar), "the sidecar outlived the interrupted idaw"
    assert not ready_folder.exists(), f"the sidecar's temporary folder {ready_folder} was left behind"


def jack_clients(server: JackServer) -> set[str]:
    """Names of the clients that have ports on `server`."""
    listing = subprocess.run(
        [need_program("jack_lsp", "jackd2")], env=server.env(), capture_output=True, text=True, timeout=30, check=True
    )
    return {line.split(":", 1)[0] for line in listing.stdout.splitlines() if ":" in line}


@pytest.mark.jack
def test_ctrl_c_while_live_starts_ends_it_in_one_line_or_stops_it_cleanly(
    jack_server: JackServer, tmp_path: Path
) -> None:
    """`idaw live` from its last import to its ready line (PortAudio, the JACK client, the stream) and just after:
    exit 130 with the one line while it starts, exit 0 with its summary once its own stop handler runs (Ctrl-C is
    how it is stopped); either way its JACK client is gone and its report, if written, is complete JSON."""
    need(IDAW.exists(), f"the idaw console script is not installed at {IDAW} (run make setup)")
    report = tmp_path / "report.json"
    args = ["live", "--no-sidecar", "--device", "jack", "--client-name", "idaw-signals", "--report", str(report)]
    first = Child.start(args, tmp_path, jack_server.env())
    assert first.wait_imports(1)
    ready = first.wait_output("Ctrl-C to stop")
    imports, start_seconds = first.imports, ready - first.last_import
    first.interrupt()
    status, out, errors = first.finish()
    assert status == 0 and errors == [] and "idaw live: stopped after" in out, (status, errors, out)
    moments: list[tuple[str, float]] = [("half the imports", 0.0)]
    moments += [(f"{f:.0%} of the way to ready", f) for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    moments += [("ready", 0.0)]
    outcomes = {}
    for moment, fraction in moments:
        report.unlink(missing_ok=True)
        child = Child.start(args, tmp_path, jack_server.env())
        if moment == "half the imports":
            child.wait_imports(imports // 2)
        elif moment == "ready":
            child.wait_output("Ctrl-C to stop")
        else:
            child.wait_imports(imports)
            time.sleep(fraction * max(start_seconds, 0.0))
        child.interrupt()
        status, out, errors = child.finish()
        assert "Traceback" not in "\n".join(errors), f"{moment}: {errors}"
        if status == 130:
            assert errors == [INTERRUPTED], f"{moment}: {errors}"
        else:
            assert status == 0 and errors == [] and "idaw live: stopped after" in out, f"{moment}: {status} {errors}"
        outcomes[moment] = status
        if report.exists():
            assert json.loads(report.read_text())["status"] in ("starting", "error", "ok"), moment
        assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["report.json"]), f"{moment}: left behind"
        deadline = time.monotonic() + 10
        while "idaw-signals" in jack_clients(jack_server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "idaw-signals" not in jack_clients(jack_server), f"{moment}: the JACK client outlived idaw"
    assert outcomes["half the imports"] == 130 and outcomes["ready"] == 0, outcomes


def test_warnings_are_shown_in_one_line_without_their_source(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's warning display: one line naming the command, the warning and where, never the source line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        cli._show_warnings_in_one_line("idaw test")
        np.float32(1e39)  # numpy: "overflow encountered in cast"
        line = sys._getframe().f_lineno - 1
    err = capsys.readouterr().err
    assert err == f"idaw test: warning: overflow encountered in cast (RuntimeWarning, {Path(__file__).name}:{line})\n"
