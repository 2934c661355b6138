"""Test signals and writing them as audio files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

WriteAudio = Callable[..., Path]
"""(name, data, rate, subtype="FLOAT") -> the Path written (the `write_audio` fixture)."""


def noise(rate: int, seconds: float, channels: int = 2, level: float = 0.1, seed: int = 0) -> npt.NDArray[np.float32]:
    """Gaussian noise, shape (frames, channels), with RMS `level`, clipped to +-0.9 (under the limiter)."""
    rng = np.random.default_rng(seed)
    frames = round(rate * seconds)
    return np.clip(rng.normal(0.0, level, (frames, channels)), -0.9, 0.9).astype(np.float32)


def audio_writer(folder: Path) -> WriteAudio:
    """A function (name, data, rate, subtype="FLOAT") -> Path writing `data` as the file `folder`/name.

    FLAC cannot hold floats: a FLAC file asked for as FLOAT is written as 24-bit PCM.
    """

    def write(name: str, data: npt.ArrayLike, rate: int, subtype: str | None = "FLOAT") -> Path:
        path = folder / name
        if path.suffix.lower() == ".flac" and subtype == "FLOAT":
            subtype = "PCM_24"
        sf.write(path, np.asarray(data), rate, subtype=subtype)
        return path

    return write
