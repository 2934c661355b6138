"""Reading a recording for analysis: WAV or FLAC, any rate and channel count, checked and made mono at one rate.

What is refused is said in one line (IdawError, exit 2): a path that is not a regular readable file, a file
larger than MAX_FILE_BYTES or longer than MAX_SECONDS, a file soundfile cannot decode, no samples at all, and
samples that are NaN or infinite (a broken file: there is no honest way to analyse around them). Silence, noise
and very short files are read; the analysis then says it found no key or tempo.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from idaw.base.errors import IdawError, one_line

SAMPLE_RATE: Final = 22050
"""Rate every analysis runs at (Hz): the band up to 11 kHz holds what key, chords and beats are heard from."""
MAX_SECONDS: Final = 30 * 60.0
"""Longest recording analysed (30 minutes: the beat and chord decoders keep a little state per beat)."""
MAX_FILE_BYTES: Final = 1 << 30
AUDIO_FORMATS: Final = (".wav", ".flac")


@dataclass(frozen=True)
class Recording:
    """A recording as the analysis reads it: mono float32 at SAMPLE_RATE, with where it came from."""

    samples: npt.NDArray[np.float32]
    source_rate: int
    """The file's own sample rate (Hz)."""
    channels: int
    """The file's channel count (they are averaged)."""

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a recording (by its extension: .wav or .flac, any case)."""
    return os.fspath(path).lower().endswith(AUDIO_FORMATS)


def read_recording(path: str | os.PathLike[str]) -> Recording:
    """The recording at `path`, mono at SAMPLE_RATE (IdawError, one line, for anything refused)."""
    from idaw.theory.load import read_bounded  # the same checks on the path as for scores (no FIFOs, no devices)

    name = os.fspath(path)
    data = read_bounded(name, MAX_FILE_BYTES, "a WAV or FLAC file")
    try:
        info = sf.info(io.BytesIO(data))
        if info.frames / max(info.samplerate, 1) > MAX_SECONDS:
            raise IdawError(
                f"{name}: {info.frames / info.samplerate / 60:.1f} minutes is too long to analyse; "
                f"allowed: up to {MAX_SECONDS / 60:.0f} minutes"
            )
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except IdawError:
        raise
    except Exception as error:  # libsndfile's own words for a file it cannot decode
        reason = one_line(str(error)).split(">: ", 1)[-1]  # without "Error opening <_io.BytesIO object at 0x...>"
        raise IdawError(f"{name}: not a readable WAV or FLAC file ({reason[:200]})") from None
    return recording_from_samples(samples, int(rate), name)


def recording_from_samples(samples: npt.NDArray[np.floating], rate: int, name: str = "the audio") -> Recording:
    """`samples` (frames × channels, or frames) at `rate` Hz as a Recording; IdawError when empty or not finite."""
    frames = np.asarray(samples, dtype=np.float32)
    if frames.ndim == 1:
        frames = frames[:, None]
    if frames.ndim != 2 or frames.shape[0] == 0 or frames.shape[1] == 0:
        raise IdawError(f"{name}: no audio samples; allowed: a WAV or FLAC file with at least one sample")
    if rate < 1000 or rate > 384_000:
        raise IdawError(f"{name}: a sample rate of {rate} Hz cannot be analysed; allowed: 1000 to 384000 Hz")
    bad = int(np.count_nonzero(~np.isfinite(frames)))
    if bad:
        raise IdawError(
            f"{name}: {bad} samples are NaN or infinite; allowed: finite samples only (the file is damaged)"
        )
    mono = frames.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return Recording(np.ascontiguousarray(mono, dtype=np.float32), rate, frames.shape[1])
