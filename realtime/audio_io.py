"""Reading, writing and resampling audio files, with one-line errors for everything the user can get wrong."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

import idaw_core
from idaw.base import output_file
from idaw.base.errors import IdawError, one_line, path_error

Audio = npt.NDArray[np.float32]
"""Audio as float32, shape (frames, channels), C-contiguous."""

OUTPUT_FORMATS: dict[str, tuple[str, str]] = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
"""Output extension -> (libsndfile format, default subtype). FLAC stores at most 24-bit integers."""


def read_audio(path: str | os.PathLike[str]) -> tuple[Audio, int]:
    """Read an audio file; returns (float32 array of shape (frames, channels), sample rate in Hz).

    Raises IdawError for a missing, empty, unreadable or unsupported file, a file without audio, or one
    with more channels than the engine processes (idaw_core.MAX_CHANNELS).
    """
    p = Path(path)
    try:
        if not p.exists():
            raise IdawError(f"input file not found: {p}")
        if p.is_dir():
            raise IdawError(f"input is a directory, not an audio file: {p}")
        if p.stat().st_size == 0:
            raise IdawError(f"input file is empty: {p}")
        with _c_stderr_silenced(), sf.SoundFile(p) as f:
            channels, rate = f.channels, f.samplerate
            if channels > idaw_core.MAX_CHANNELS:
                raise IdawError(f"{p} has {channels} channels; idaw processes at most {idaw_core.MAX_CHANNELS}")
            data = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as error:
        reason = one_line(error.error_string).rstrip(".")
        if "not a regular file" in reason:  # what libsndfile says when its MPEG probe gives up
            reason = "unrecognised or corrupt data"
        raise IdawError(f"cannot read {p}: not a readable audio file ({reason})") from None
    except OSError as error:  # e.g. a name too long, no permission, a folder on the way that is a file
        raise path_error("read", p, error) from None
    except RuntimeError as error:
        raise IdawError(f"cannot read {p}: {one_line(str(error))}") from None
    if data.shape[0] == 0:
        raise IdawError(f"{p} contains no audio (0 frames)")
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def output_format(path: str | os.PathLike[str], subtype: str | None = None) -> tuple[str, str]:
    """The (format, subtype) `write_audio` would use for `path`; raises IdawError if it cannot write it.

    The format follows the extension (.wav or .flac); the subtype defaults to FLOAT for WAV and PCM_24
    for FLAC, and an explicit one must be valid for the format (e.g. PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE).
    """
    ext = Path(path).suffix.lower()
    if ext not in OUTPUT_FORMATS:
        allowed = ", ".join(OUTPUT_FORMATS)
        raise IdawError(f"cannot write {path}: unsupported extension '{ext}'; allowed: {allowed}")
    fmt, default = OUTPUT_FORMATS[ext]
    if subtype is None:
        return fmt, default
    chosen = subtype.upper()
    if chosen not in sf.available_subtypes(fmt) or not sf.check_format(fmt, chosen):
        allowed = ", ".join(s for s in sf.available_subtypes(fmt) if sf.check_format(fmt, s))
        raise IdawError(f"subtype {subtype} is not available for {fmt}; allowed: {allowed}")
    return fmt, chosen


def check_output(path: str | os.PathLike[str], subtype: str | None = None) -> tuple[str, str]:
    """`output_format(path, subtype)` after checking that the file can be created there (see
    output_file.check_writable): what a command calls before any work. Raises IdawError naming the problem."""
    chosen = output_format(path, subtype)
    output_file.check_writable(path)
    return chosen


def write_audio(
    path: str | os.PathLike[str], data: npt.ArrayLike, rate: int, subtype: str | None = None
) -> tuple[str, str]:
    """Write `data` (frames, channels) or (frames,) to a WAV or FLAC file chosen by the extension.

    Integer subtypes get samples clipped to [-1, 1] first (libsndfile would wrap them). The file is written as a
    hidden part file next to its destination and renamed into place (idaw/base/output_file.py), so a failed or
    interrupted write never leaves half a file.
    Returns the (format, subtype) written; raises IdawError when the file cannot be written.
    """
    fmt, chosen = output_format(path, subtype)
    audio = np.asarray(data, dtype=np.float32)
    if chosen.startswith("PCM") or chosen in ("ULAW", "ALAW"):
        audio = np.clip(audio, -1.0, 1.0)
    with output_file.replacing(path) as part:  # names a missing folder, a folder in the way, a name too long
        try:
            sf.write(str(part), audio, int(rate), subtype=chosen, format=fmt)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise IdawError(f"cannot write {os.fspath(path)}: {one_line(str(error))}") from None
        except OSError as error:
            raise path_error("write", path, error) from None
    return fmt, chosen


def resample(data: npt.ArrayLike, from_rate: float, to_rate: float) -> Audio:
    """`data` (frames, channels) resampled by soxr (VHQ); returns float32 (frames', channels).

    The channel count is kept; frames' is round(frames * to_rate / from_rate). Equal rates return a copy.
    """
    audio = np.asarray(data, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, np.newaxis]
    if from_rate <= 0 or to_rate <= 0:
        raise IdawError(f"sample rates must be positive, got {from_rate:g} -> {to_rate:g} Hz")
    if from_rate == to_rate:
        return np.array(audio, dtype=np.float32, order="C", copy=True)
    out = soxr.resample(np.ascontiguousarray(audio), float(from_rate), float(to_rate), quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[1]))


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Discard what C libraries write to file descriptor 2 meanwhile (libmpg123 warns there while
    libsndfile probes a corrupt file); failures still arrive as exceptions. Yields nothing."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (or no sys.stderr): nothing to protect
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
