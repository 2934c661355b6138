"""Symbolic piece -> MIDI -> fluidsynth (FluidR3_GM) -> 128-bin log-mel frames, cached under the cache dir.

The frames follow `realtime.nets.architectures.MEL` exactly (22050 Hz mono, causal 2048-point periodic-Hann STFT,
hop 512, Slaney mel 0-11025 Hz, dB clipped to [-100, 50], (dB + 25) / 75), computed with numpy (no librosa).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from idaw.base.fluidsynth import SOUNDFONT as SOUNDFONT  # where the nets' callers look for it
from idaw.base.fluidsynth import fluidsynth_command as fluidsynth_command
from realtime.nets.architectures import MEL
from realtime.nets.corpus import SymbolicPiece

F32 = npt.NDArray[np.float32]

CACHE_VERSION = "audio-v3"
RENDER_BATCH = 15  # pieces per fluidsynth run (one MIDI channel each, drums' channel 10 left out)
GAP_SECONDS = 3.0
TAIL_SECONDS = 1.5
SAMPLE_RATE = MEL.sample_rate
FRAME_RATE = MEL.sample_rate / MEL.hop
# General MIDI programs a piece is rendered with (picked from its id, so timbre does not give its source away).
PROGRAMS = (0, 19, 48, 73, 40, 52, 24, 6)
DEFAULT_VELOCITY = 80


class RenderError(RuntimeError):
    """fluidsynth or the soundfont is missing, or rendering failed."""


def program_for(pid: str) -> int:
    """The General MIDI program a piece is rendered with (stable: a hash of its id)."""
    digest = hashlib.sha256(pid.encode()).digest()
    return PROGRAMS[digest[0] % len(PROGRAMS)]


def note_velocities(piece: SymbolicPiece) -> npt.NDArray[np.float32]:
    """MIDI velocity per note: the score's own where set, else the latest dynamics marking, else DEFAULT_VELOCITY."""
    vel = piece.notes[:, 3].copy()
    if len(piece.dynamics):
        order = np.argsort(piece.dynamics[:, 0])
        marks = piece.dynamics[order]
        idx = np.searchsorted(marks[:, 0], piece.notes[:, 0], side="right") - 1
        from_marks = np.where(idx >= 0, 30.0 + 90.0 * marks[np.maximum(idx, 0), 1], DEFAULT_VELOCITY)
        vel = np.where(vel > 0, vel, from_marks)
    return np.clip(np.where(vel > 0, vel, DEFAULT_VELOCITY), 1, 127).astype(np.float32)


def write_midi(pieces: list[SymbolicPiece], starts: list[float], path: Path) -> None:
    """Write pieces into one MIDI file, piece k on its own channel (program `program_for`) from ``starts[k]`` s."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for piece, start in zip(pieces, starts, strict=True):
        inst = pretty_midi.Instrument(program=program_for(piece.ref.pid))
        spq = piece.seconds_per_ql
        for (onset, dur, pitch, _v, _p, _f), vel in zip(piece.notes, note_velocities(piece), strict=True):
            begin = start + float(onset) * spq
            end = begin + max(float(dur) * spq * 0.95, 0.03)
            inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=begin, end=end))
        midi.instruments.append(inst)
    midi.write(str(path))


def render_many(pieces: list[SymbolicPiece], soundfont: Path = SOUNDFONT) -> list[npt.NDArray[np.float32]]:
    """Mono float32 audio at 22050 Hz of each piece, played by fluidsynth (reverb and chorus off).

    Up to RENDER_BATCH pieces share one fluidsynth run (loading the 140 MB soundfont dominates the cost), placed
    GAP_SECONDS apart; each piece's audio is its own span plus TAIL_SECONDS of release. Raises RenderError.
    """
    import soundfile as sf

    exe = shutil.which("fluidsynth")
    if exe is None or not soundfont.exists():
        raise RenderError(f"need the fluidsynth program and {soundfont} (Debian: fluidsynth fluid-soundfont-gm)")
    out: list[npt.NDArray[np.float32]] = []
    for first in range(0, len(pieces), RENDER_BATCH):
        batch = pieces[first : first + RENDER_BATCH]
        starts = list(np.cumsum([0.0] + [p.seconds + GAP_SECONDS for p in batch[:-1]]))
        with tempfile.TemporaryDirectory(prefix="idaw-render-") as tmp:
            mid, wav = Path(tmp) / "pieces.mid", Path(tmp) / "pieces.wav"
            write_midi(batch, starts, mid)
            cmd = fluidsynth_command(exe, mid, wav, soundfont, SAMPLE_RATE, gain=0.5)
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or not wav.exists():
                raise RenderError(f"fluidsynth failed: {done.stderr.strip()[-300:]}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise RenderError(f"fluidsynth wrote {rate} Hz, expected {SAMPLE_RATE}")
        mono = audio.mean(axis=1)
        for piece, start in zip(batch, starts, strict=True):
            lo = round(start * SAMPLE_RATE)
            hi = round((start + piece.seconds + TAIL_SECONDS) * SAMPLE_RATE)
            span = np.zeros(hi - lo, dtype=np.float32)
            got = mono[lo:hi]
            span[: len(got)] = got
            out.append(span)
    return out


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.asarray(np.where(f >= 1000.0, log_part, mel))


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3.0)))


@lru_cache(maxsize=1)
def mel_filterbank() -> npt.NDArray[np.float64]:
    """(128, 1025) Slaney-scale triangular filters with Slaney area normalisation, as librosa.filters.mel(sr=22050,
    n_fft=2048, n_mels=128, fmin=0, fmax=11025, htk=False, norm="slaney")."""
    freqs = np.linspace(0.0, MEL.sample_rate / 2.0, MEL.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.asarray(MEL.fmin)), _hz_to_mel(np.asarray(MEL.fmax)), MEL.n_mels + 2))
    diffs = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    bank = np.zeros((MEL.n_mels, len(freqs)))
    for i in range(MEL.n_mels):
        lower = -ramps[i] / diffs[i]
        upper = ramps[i + 2] / diffs[i + 1]
        bank[i] = np.maximum(0.0, np.minimum(lower, upper))
    bank *= (2.0 / (edges[2 : MEL.n_mels + 2] - edges[: MEL.n_mels]))[:, None]
    return bank


def log_mel(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(frames, 128) EmotionRecognizer input frames of mono 22050 Hz audio, exactly as `architectures.MelSpec` says.

    Frame t covers samples [t * hop, t * hop + n_fft) (causal, no centring); periodic Hann; unnormalised |STFT|^2;
    Slaney mel; x = (clip(10 log10(max(S, 1e-10)), -100, 50) + 25) / 75.
    """
    n_fft, hop = MEL.n_fft, MEL.hop
    n_frames = 1 + (len(audio) - n_fft) // hop if len(audio) >= n_fft else 0
    if n_frames <= 0:
        return np.zeros((0, MEL.n_mels), dtype=np.float32)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    bank = mel_filterbank().T
    out = np.empty((n_frames, MEL.n_mels), dtype=np.float32)
    signal = audio.astype(np.float64)
    for first in range(0, n_frames, 512):  # chunks keep the frame matrix small
        idx = np.arange(n_fft)[None, :] + hop * np.arange(first, min(n_frames, first + 512))[:, None]
        power = np.abs(np.fft.rfft(signal[idx] * window, axis=1)) ** 2
        db = np.clip(10.0 * np.log10(np.maximum(power @ bank, 1e-10)), MEL.db_min, MEL.db_max)
        out[first : first + len(idx)] = (db - MEL.db_center) / MEL.db_scale
    return out


class StreamingLogMel:
    """`log_mel` over audio that arrives in pieces: feed() returns the frames completed by each piece.

    The frames over a whole stream are bit-identical to log_mel() of the concatenated samples, however the stream is
    chunked: each call runs log_mel itself on the samples of the frames it completes (the n_fft - hop samples a
    frame shares with the next are kept). Not thread-safe: one thread feeds.
    """

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames = 0
        """Frames produced so far."""
        self.samples = 0
        """Samples fed so far."""

    def feed(self, samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """(frames, 128) frames completed by `samples` (mono float at MEL.sample_rate, any length, may be 0)."""
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples += chunk.size
        self._pending = np.concatenate([self._pending, chunk]) if self._pending.size else chunk.copy()
        out = log_mel(self._pending)
        if len(out):
            self._pending = self._pending[len(out) * MEL.hop :].copy()
            self.frames += len(out)
        return out


def frame_end_seconds(n_frames: int) -> npt.NDArray[np.float64]:
    """Time (s) at which each frame's last sample has been heard: (t * hop + n_fft) / sample_rate."""
    return (np.arange(n_frames) * MEL.hop + MEL.n_fft) / MEL.sample_rate


def _mel_path(piece: SymbolicPiece, cache_dir: Path) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in piece.ref.pid)
    return cache_dir / CACHE_VERSION / f"{safe}.npy"


def piece_mels(pieces: list[SymbolicPiece], cache_dir: Path, progress: bool = False) -> list[F32]:
    """Each piece's log-mel frames (frames, 128): rendered once, then read from ``cache_dir/<CACHE_VERSION>``.

    Raises RenderError when rendering is needed and fluidsynth or the soundfont is missing.
    """
    from tqdm import tqdm

    missing = [p for p in pieces if not _mel_path(p, cache_dir).exists()]
    for first in tqdm(
        range(0, len(missing), RENDER_BATCH), desc="render", unit="batch", disable=not progress, leave=False
    ):
        batch = missing[first : first + RENDER_BATCH]
        for piece, audio in zip(batch, render_many(batch), strict=True):
            path = _mel_path(piece, cache_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, log_mel(audio).astype(np.float16))
    return [np.asarray(np.load(_mel_path(p, cache_dir)), dtype=np.float32) for p in pieces]
