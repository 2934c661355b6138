"""`idaw master`: bring a mix to a loudness target (ITU-R BS.1770 integrated loudness, pyloudnorm) with its true
peak under a ceiling, through the core's look-ahead true-peak limiter (idaw_core.TruePeakLimiter).

The gain that reaches the target is found by measuring: the input is turned up or down to the target, limited,
measured again, and the gain corrected by what the limiter took away, until the output is within
LOUDNESS_TOLERANCE_LU of the target (a few rounds: the loudness rises monotonically with the gain). The limiter
aims TRUE_PEAK_MARGIN_DB below the ceiling, because its 12-tap detector and a longer meter can read a peak a few
hundredths of a dB apart; the result is then measured with true_peak_dbtp (scipy's polyphase resampler, 4x, as
BS.1770-4 Annex 2 prescribes) and, should it still be over, turned down by the difference. Libraries used:
pyloudnorm for loudness, scipy for the meter's oversampling; the limiter is the core's (plugin_cpp/core).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import idaw_core
from idaw.base.errors import IdawError, check_in_range
from realtime import audio_io
from realtime.offline import integrated_loudness

DEFAULT_TARGET_LUFS = -14.0
"""The loudness streaming services normalise to."""
DEFAULT_CEILING_DBTP = -1.0
"""The true-peak ceiling commonly asked of masters (lossy encoders add overshoot above it)."""
TARGET_RANGE_LUFS = (-40.0, -5.0)
CEILING_RANGE_DBTP = (-20.0, 0.0)
LOOKAHEAD_RANGE_MS = (0.1, 50.0)
RELEASE_RANGE_MS = (1.0, 5000.0)
LOUDNESS_TOLERANCE_LU = 0.05
"""How close to the target the gain search stops."""
MAX_ROUNDS = 8
"""Gain-search rounds at most (three or four suffice for music)."""
METER_CHUNK = 1 << 16
"""Frames the true-peak meter oversamples at a time."""
METER_MARGIN = 64
"""Frames of context on each side of a piece (scipy's filter needs 10)."""
MAX_GAIN_DB = 60.0
"""The gain before the limiter stays within +-this (a target far beyond what the ceiling allows would otherwise
send the search toward absurd gains)."""
REACHED_LU = 0.5
"""A master further than this from its target did not reach it (the summary says so)."""
TRUE_PEAK_MARGIN_DB = 0.1
"""How far below the ceiling the limiter aims (see the module docstring)."""


@dataclass(frozen=True)
class MasterResult:
    """What mastering did, measured."""

    audio: npt.NDArray[np.float32]
    """The master: (frames, channels) float32, as long as the input."""
    loudness_in: float
    """Integrated loudness of the input (LUFS)."""
    loudness_out: float
    """Integrated loudness of the master (LUFS)."""
    true_peak_in: float
    """True peak of the input (dBTP)."""
    true_peak_out: float
    """True peak of the master (dBTP)."""
    gain_db: float
    """The gain before the limiter."""
    limiter_peak_db: float
    """The limiter's largest gain reduction (dB)."""
    rounds: int
    """Gain-search rounds it took."""
    reached: bool
    """Whether the loudness is within REACHED_LU of the target (a target too loud for the ceiling is not: the
    limiter can only flatten the peaks so far, and the gain stops at MAX_GAIN_DB)."""


def true_peak_dbtp(audio: npt.ArrayLike, rate: int) -> float:
    """True peak (dBTP) of `audio` (frames, channels) or (frames,): the largest magnitude of the samples and of
    the signal oversampled 4x (BS.1770-4 Annex 2; scipy's resample_poly, a Kaiser-windowed polyphase FIR, as the
    interpolator). -inf for silence. Measured in pieces of METER_CHUNK frames, each with METER_MARGIN frames of its
    neighbours on both sides and only its own part of the result kept: the same peaks as the whole signal at once
    (the filter reaches 10 frames either side), in float32 and without a 4x copy of the whole file."""
    from scipy.signal import resample_poly

    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    frames = data.shape[0]
    if frames == 0:
        return -math.inf
    peak = float(np.max(np.abs(data)))
    if frames > 1:
        for start in range(0, frames, METER_CHUNK):
            begin, end = max(0, start - METER_MARGIN), min(frames, start + METER_CHUNK + METER_MARGIN)
            up = resample_poly(data[begin:end], 4, 1, axis=0)
            own = up[4 * (start - begin) : 4 * (min(frames, start + METER_CHUNK) - begin)]
            peak = max(peak, float(np.max(np.abs(own))))
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf


def limit(
    audio: npt.NDArray[np.float32],
    rate: int,
    ceiling_dbtp: float,
    lookahead_ms: float = 2.0,
    release_ms: float = 100.0,
) -> tuple[npt.NDArray[np.float32], float]:
    """(`audio` (frames, channels) through a fresh TruePeakLimiter, time-aligned and as long as the input, the
    limiter's largest gain reduction in dB): the input is followed by `latency` frames of silence, so its end comes
    out, and the first `latency` output frames (the delay line's initial zeros) are dropped."""
    frames, channels = audio.shape
    limiter = idaw_core.TruePeakLimiter(rate, channels, ceiling_dbtp, lookahead_ms, release_ms)
    planar = np.zeros((channels, frames + limiter.latency), dtype=np.float32)
    planar[:, :frames] = audio.T
    limiter.process(planar)
    return np.ascontiguousarray(planar[:, limiter.latency :].T), float(limiter.peak_reduction_db)


def master(
    audio: npt.ArrayLike,
    rate: int,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    lookahead_ms: float = 2.0,
    release_ms: float = 100.0,
) -> MasterResult:
    """Master `audio` (frames, channels) or (frames,) at `rate`: loudness to `target_lufs`, true peak at most
    `ceiling_dbtp`. Raises IdawError for settings out of range, for non-finite samples, and for audio too short
    (under 0.4 s) or too quiet (below BS.1770's -70 LUFS gate) to measure."""
    check_in_range("target loudness", target_lufs, TARGET_RANGE_LUFS, "LUFS")
    check_in_range("true-peak ceiling", ceiling_dbtp, CEILING_RANGE_DBTP, "dBTP")
    check_in_range("look-ahead", lookahead_ms, LOOKAHEAD_RANGE_MS, "ms")
    check_in_range("release", release_ms, RELEASE_RANGE_MS, "ms")
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1 or data.shape[1] > idaw_core.MAX_CHANNELS:
        raise IdawError(f"audio must be (frames, 1..{idaw_core.MAX_CHANNELS} channels), got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise IdawError("audio holds NaN or infinite samples; mastering needs finite audio")
    loudness_in = integrated_loudness(data, rate)
    if loudness_in is None:
        raise IdawError("too short or too quiet to master: BS.1770 loudness needs 0.4 s or more above -70 LUFS")
    aim = ceiling_dbtp - TRUE_PEAK_MARGIN_DB
    gain_db = target_lufs - loudness_in
    tried: list[tuple[float, float]] = []  # (gain, loudness) of each round
    best: tuple[float, npt.NDArray[np.float32], float, float] | None = None  # (gain, master, reduction, loudness)
    for _ in range(MAX_ROUNDS):
        limited, reduction = limit(scaled(data, gain_db), rate, aim, lookahead_ms, release_ms)
        measured = integrated_loudness(limited, rate)
        if measured is None:  # cannot happen for audio that measured above: the gain only moved it toward the target
            raise IdawError("the master became too quiet to measure; lower the ceiling's distance to the target")
        tried.append((gain_db, measured))
        if best is None or abs(measured - target_lufs) < abs(best[3] - target_lufs):
            best = (gain_db, limited, reduction, measured)
        if abs(measured - target_lufs) <= LOUDNESS_TOLERANCE_LU:
            break
        step = (target_lufs - measured) / loudness_slope(tried)
        gain_db = min(MAX_GAIN_DB, max(-MAX_GAIN_DB, gain_db + step))
        if gain_db == tried[-1][0]:  # at the bound: more gain changes nothing
            break
    # Under heavy limiting the loudness stops rising with the gain (the release keeps pulling the quiet parts down),
    # so a target beyond reach ends on the round closest to it, not the last.
    assert best is not None
    gain_db, out, reduction, loudness_out = best
    true_peak_out = true_peak_dbtp(out, rate)
    if true_peak_out > ceiling_dbtp:  # the meters disagreed by more than the margin: turn it down by the rest
        out = scaled(out, ceiling_dbtp - true_peak_out - 1e-3)
        true_peak_out = true_peak_dbtp(out, rate)
        loudness_out = integrated_loudness(out, rate) or loudness_out
    return MasterResult(
        audio=out,
        loudness_in=loudness_in,
        loudness_out=loudness_out,
        true_peak_in=true_peak_dbtp(data, rate),
        true_peak_out=true_peak_out,
        gain_db=gain_db,
        limiter_peak_db=reduction,
        rounds=len(tried),
        reached=abs(loudness_out - target_lufs) <= REACHED_LU,
    )


def loudness_slope(tried: list[tuple[float, float]]) -> float:
    """LU of loudness per dB of gain, from the last two rounds (1 before there are two): the secant step of the
    gain search. Under heavy limiting each dB of gain adds well under 1 LU; the slope is held within 0.05..1 (the
    loudness never rises faster than the gain, and a flat secant must not throw the gain far away)."""
    if len(tried) < 2:
        return 1.0
    (g0, l0), (g1, l1) = tried[-2], tried[-1]
    if g1 == g0:
        return 1.0
    return min(1.0, max(0.05, (l1 - l0) / (g1 - g0)))


def scaled(audio: npt.NDArray[np.float32], gain_db: float) -> npt.NDArray[np.float32]:
    """`audio` times a gain in dB, as float32."""
    return (audio * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw master`."""
    parser.add_argument("input", help="the mix to master (WAV, FLAC, or anything libsndfile reads)")
    parser.add_argument("-o", "--output", required=True, help="where to write the master (.wav or .flac)")
    parser.add_argument(
        "--lufs",
        type=float,
        default=DEFAULT_TARGET_LUFS,
        metavar="LUFS",
        help=f"integrated loudness target, ITU-R BS.1770 ({TARGET_RANGE_LUFS[0]:g}..{TARGET_RANGE_LUFS[1]:g}; "
        f"default {DEFAULT_TARGET_LUFS:g})",
    )
    parser.add_argument(
        "--ceiling",
        type=float,
        default=DEFAULT_CEILING_DBTP,
        metavar="DBTP",
        help=f"true-peak ceiling ({CEILING_RANGE_DBTP[0]:g}..{CEILING_RANGE_DBTP[1]:g}; "
        f"default {DEFAULT_CEILING_DBTP:g})",
    )
    parser.add_argument(
        "--lookahead",
        type=float,
        default=2.0,
        metavar="MS",
        help="limiter look-ahead: how long its gain takes to fall before a peak (0.1..50; default 2)",
    )
    parser.add_argument(
        "--release",
        type=float,
        default=100.0,
        metavar="MS",
        help="limiter release time constant (1..5000; default 100)",
    )
    parser.add_argument(
        "--subtype",
        default=None,
        help="output sample format, e.g. PCM_16, PCM_24, FLOAT (default: FLOAT for WAV, PCM_24 for FLAC)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `idaw master`; returns the exit code (errors are raised as IdawError)."""
    audio_io.check_output(args.output, args.subtype)  # fail on a bad output path before any work
    audio, rate = audio_io.read_audio(args.input)
    result = master(audio, rate, args.lufs, args.ceiling, args.lookahead, args.release)
    _, subtype = audio_io.write_audio(args.output, result.audio, rate, args.subtype)
    print(summary_line(args.output, result, rate, subtype, args.lufs, args.ceiling))
    return 0


def summary_line(path: str, result: MasterResult, rate: int, subtype: str, target: float, ceiling: float) -> str:
    """One line: what was written and what mastering did to its loudness and peaks."""
    frames, channels = result.audio.shape
    limiter = (
        f"limiter up to {result.limiter_peak_db:.1f} dB of reduction" if result.limiter_peak_db > 0 else "limiter idle"
    )
    missed = "" if result.reached else ", not reached: the ceiling leaves no room for more loudness"
    return (
        f"wrote {path}: {frames / rate:.2f} s, {channels} ch, {rate} Hz {subtype}; "
        f"loudness {result.loudness_in:.1f} -> {result.loudness_out:.1f} LUFS (target {target:g}{missed}), "
        f"true peak {result.true_peak_in:.1f} -> {result.true_peak_out:.1f} dBTP (ceiling {ceiling:g}), "
        f"gain {result.gain_db:+.1f} dB, {limiter}"
    )
