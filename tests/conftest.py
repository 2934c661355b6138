"""Shared fixtures: writing test audio files, running the `idaw` command as a user would, a private JACK server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from jack_server import JackServer, serving

REPO = Path(__file__).resolve().parents[1]

WriteAudio = Callable[..., Path]
RunIdaw = Callable[..., "subprocess.CompletedProcess[str]"]


def noise(rate: int, seconds: float, channels: int = 2, level: float = 0.1, seed: int = 0) -> npt.NDArray[np.float32]:
    """Gaussian noise, shape (frames, channels), with RMS `level`, clipped to +-0.9 (under the limiter)."""
    rng = np.random.default_rng(seed)
    frames = round(rate * seconds)
    return np.clip(rng.normal(0.0, level, (frames, channels)), -0.9, 0.9).astype(np.float32)


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    """A private dummy JACK server at 48 kHz, period 256, shared by one test module (skips without JACK locally)."""
    with serving(48000, 256) as server:
        yield server


@pytest.fixture
def write_audio(tmp_path: Path) -> WriteAudio:
    """A function (name, data, rate, subtype="FLOAT") -> Path writing `data` under tmp_path."""

    def write(name: str, data: npt.ArrayLike, rate: int, subtype: str | None = "FLOAT") -> Path:
        path = tmp_path / name
        if path.suffix.lower() == ".flac" and subtype == "FLOAT":
            subtype = "PCM_24"
        sf.write(path, np.asarray(data), rate, subtype=subtype)
        return path

    return write


@pytest.fixture
def run_idaw() -> RunIdaw:
    """A function (*args, stderr=None) -> CompletedProcess running `python -m idaw.cli ARGS` in the repo.

    Output is captured as text; pass `stderr` (a file descriptor) to send stderr elsewhere, e.g. a pty.
    """

    def run(*args: str | os.PathLike[str], stderr: int | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("IDAW_DEBUG", None)
        return subprocess.run(
            [sys.executable, "-m", "idaw.cli", *map(str, args)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr is None else stderr,
            text=True,
            timeout=300,
            check=False,
        )

    return run
