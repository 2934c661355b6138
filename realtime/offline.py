"""`idaw process`: render an audio file through the engine, and `render_array`, the one offline render path.

The progress bar (tqdm, on stderr) is shown only when stderr is a terminal, the file is longer than
PROGRESS_MIN_SECONDS and --no-progress is not given; it is removed when rendering ends. The one-line
summary goes to stdout.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

import idaw_core
from idaw.base import output_file
from idaw.base.errors import IdawError
from realtime import audio_io, midi_offline, options, params
from realtime.sidecar_link import host as sidecar_host

DEFAULT_BLOCK_SIZE = 256
MAX_BLOCK_SIZE = 65536
MIN_RATE, MAX_RATE = 8000, 384000
PROGRESS_MIN_SECONDS = 10.0
"""Files at most this long render without a progress bar."""


@dataclass(frozen=True)
class RenderResult:
    """What one offline render produced."""

    audio: npt.NDArray[np.float32]
    """Processed audio at the input's rate, same shape as the input."""
    engine_rate: int
    limited_frames: int
    """Frames (at the engine rate) the safety limiter turned down."""
    nonfinite_samples: int
    """NaN/Inf input samples the engine replaced by silence."""
    compressor_peak_db: float
    """The compressor's largest gain reduction (dB, at a chunk's end; 0 while it was off)."""
    seconds: float
    """Wall-clock time spent resampling and rendering."""


def render(
    audio: npt.ArrayLike,
    rate: int,
    params_vector: npt.ArrayLike,
    block_size: int = DEFAULT_BLOCK_SIZE,
    engine_rate: int | None = None,
    progress: bool = False,
    midi: midi_offline.OfflineMidi | None = None,
) -> RenderResult:
    """Render `audio` (frames, channels) or (frames,) at `rate` with a fresh engine; returns a RenderResult.

    The engine runs at `engine_rate` (default: `rate`, no resampling); otherwise the audio is resampled
    there and back with soxr, and the result trimmed or padded to the input's exact length. The input is
    never modified. Raises IdawError for a bad block size, rate, channel count or parameter vector. With `midi`,
    the engine's MIDI generator runs during the render and `midi` writes its notes (see realtime/midi_offline.py).
    """
    source = np.asarray(audio, dtype=np.float32)
    mono = source.ndim == 1
    frames_in = np.ascontiguousarray(source[:, np.newaxis] if mono else source)
    if frames_in.ndim != 2:
        raise IdawError(f"audio must have shape (frames, channels), got {source.shape}")
    channels = frames_in.shape[1]
    if not 1 <= channels <= idaw_core.MAX_CHANNELS:
        raise IdawError(f"{channels} channels; idaw processes 1..{idaw_core.MAX_CHANNELS}")
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise IdawError(f"block size {block_size} is out of range; allowed: 1..{MAX_BLOCK_SIZE}")
    target_rate = int(rate if engine_rate is None else engine_rate)
    for what, value in (("sample rate", rate), ("engine rate", target_rate)):
        if not MIN_RATE <= value <= MAX_RATE:
            raise IdawError(f"{what} {value:g} Hz is out of range; allowed: {MIN_RATE}..{MAX_RATE} Hz")
    vector = _checked_vector(params_vector)

    start = time.perf_counter()
    work = audio_io.resample(frames_in, rate, target_rate)  # always a fresh C-contiguous copy
    engine = idaw_core.Engine()
    engine.prepare(float(target_rate), block_size, channels)
    engine.set_parameters_now(vector)
    if midi is not None:
        midi.attach(engine)
    chunk = max(1, target_rate // block_size) * block_size  # ~1 s, whole blocks: same split as one call
    if midi is not None:
        chunk = midi.chunk_frames(target_rate, chunk)  # --emotion input: short pieces, the emotion set between
    show = progress and work.shape[0] > PROGRESS_MIN_SECONDS * target_rate
    with tqdm(
        total=work.shape[0], unit="frame", unit_scale=True, leave=False, disable=not show, file=sys.stderr
    ) as bar:
        for begin in range(0, work.shape[0], chunk):
            if midi is not None:
                midi.before(engine)
            engine.render(work[begin : begin + chunk], block_size)
            if midi is not None:
                midi.collect(engine)
            bar.update(min(chunk, work.shape[0] - begin))
    if midi is not None:
        midi.finish(engine, work.shape[0])
    out = _fit_length(audio_io.resample(work, target_rate, rate), frames_in.shape[0])
    if target_rate != rate:
        # Resampling back can build inter-sample peaks above full scale: a neutral engine at the file's
        # rate is the same safety stage again (same rule: it acts only on samples beyond ±1.0).
        guard = idaw_core.Engine()
        guard.prepare(float(rate), block_size, channels)
        guard.render(out, block_size)
    seconds = time.perf_counter() - start

    counters = engine.counters()
    return RenderResult(
        audio=out[:, 0].copy() if mono else out,
        engine_rate=target_rate,
        limited_frames=int(counters["limited_samples"]),
        nonfinite_samples=int(counters["nonfinite_samples"]),
        compressor_peak_db=float(counters["compressor_peak_reduction_db"]),
        seconds=seconds,
    )


def render_array(
    audio: npt.ArrayLike,
    rate: int,
    params_vector: npt.ArrayLike,
    block_size: int = DEFAULT_BLOCK_SIZE,
    engine_rate: int | None = None,
) -> npt.NDArray[np.float32]:
    """The processed copy of `audio` (float32, same shape and rate as the input); see `render`."""
    return render(audio, rate, params_vector, block_size, engine_rate).audio


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw process`."""
    parser.add_argument("input", help="audio file to process (WAV, FLAC, or anything libsndfile reads)")
    parser.add_argument("-o", "--output", required=True, help="where to write the result (.wav or .flac)")
    options.add_chain_arguments(parser)
    parser.add_argument(
        "--rate",
        type=int,
        default=None,
        metavar="HZ",
        help="engine sample rate; the audio is resampled there and back (default: the file's own rate)",
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK_SIZE,
        metavar="N",
        help=f"engine block size in frames, 1..{MAX_BLOCK_SIZE} (default {DEFAULT_BLOCK_SIZE})",
    )
    parser.add_argument(
        "--subtype",
        default=None,
        help="output sample format, e.g. PCM_16, PCM_24, FLOAT (default: FLOAT for WAV, PCM_24 for FLAC)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help=f"never show the progress bar (shown on a terminal for files over {PROGRESS_MIN_SECONDS:g} s)",
    )
    parser.add_argument(
        "--no-level-match",
        action="store_true",
        help="with --describe, keep the level change the words make (default: the output is turned to the "
        "integrated loudness, ITU-R BS.1770, of the same command without --describe)",
    )
    sidecar_host.add_arguments(parser)
    midi_offline.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run `idaw process`; returns the exit code (errors are raised as IdawError)."""
    vector = options.chain_from_args(args)
    audio_io.check_output(args.output, args.subtype)  # fail on a bad output path before any work
    if args.midi_out is not None:
        output_file.check_writable(args.midi_out, "MIDI file")
    midi = midi_offline.from_args(args)
    audio, rate = audio_io.read_audio(args.input)
    undescribed = vector
    vector = sidecar_host.offline_vector_from_args(args, audio, rate, vector)  # --describe: the sidecar's EQ
    match_db = None
    if args.describe and not args.no_level_match:
        vector, match_db = level_matched(audio, rate, undescribed, vector, args.block_size, args.rate)
    result = render(
        audio,
        rate,
        vector,
        args.block_size,
        args.rate,
        progress=not args.no_progress and sys.stderr.isatty(),
        midi=midi,
    )
    _, subtype = audio_io.write_audio(args.output, result.audio, rate, args.subtype)
    print(summary_line(args.output, result, rate, subtype))
    if match_db is not None:
        print(f"level matched to the same command without --describe: output gain {match_db:+.2f} dB (BS.1770)")
    if midi is not None:
        print(midi.summary_line())
    return 0


LEVEL_DEAD_BAND_LU = 0.05
"""A loudness change below this is left alone (so a flat EQ, intensity 0, stays bit-identical)."""


def integrated_loudness(audio: npt.NDArray[np.float32], rate: int) -> float | None:
    """ITU-R BS.1770-4 integrated loudness (LUFS, pyloudnorm) of `audio`; None for audio too short (under 0.4 s)
    or too quiet to gate."""
    import pyloudnorm

    if audio.shape[0] < round(0.4 * rate):
        return None
    loudness = float(pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64)))
    return loudness if math.isfinite(loudness) else None


def level_matched(
    audio: npt.NDArray[np.float32],
    rate: int,
    before: npt.NDArray[np.float32],
    after: npt.NDArray[np.float32],
    block_size: int = DEFAULT_BLOCK_SIZE,
    engine_rate: int | None = None,
) -> tuple[npt.NDArray[np.float32], float | None]:
    """(`after` with its output gain moved so that rendering `audio` with it is as loud as with `before`, the
    change in dB): both are rendered once and measured (integrated_loudness). The change is None (and `after` comes
    back as it is) when the two vectors are equal, when the audio cannot be measured, or when the loudness moved by
    less than LEVEL_DEAD_BAND_LU; it is limited to the output gain's range."""
    if np.array_equal(before, after):
        return after, None
    loud_before = integrated_loudness(render_array(audio, rate, before, block_size, engine_rate), rate)
    loud_after = integrated_loudness(render_array(audio, rate, after, block_size, engine_rate), rate)
    if loud_before is None or loud_after is None or abs(loud_after - loud_before) < LEVEL_DEAD_BAND_LU:
        return after, None
    gain = params.INDEX["output_gain"]
    spec = params.SPECS[gain]
    matched = np.array(after, dtype=np.float32, copy=True)
    matched[gain] = np.float32(np.clip(after[gain] - (loud_after - loud_before), spec.minimum, spec.maximum))
    return matched, float(matched[gain] - after[gain])


def summary_line(path: str, result: RenderResult, rate: int, subtype: str) -> str:
    """One line: what was written, how long, how fast, how loud, how much the compressor and the limiter worked."""
    frames, channels = result.audio.shape[0], (1 if result.audio.ndim == 1 else result.audio.shape[1])
    duration = frames / rate
    speed = duration / result.seconds if result.seconds > 0 else math.inf
    peak = float(np.max(np.abs(result.audio))) if result.audio.size else 0.0
    peak_text = f"{20 * math.log10(peak):.1f} dBFS" if peak > 0 else "silent"
    engine_frames = max(1, round(frames * result.engine_rate / rate))
    limiter = (
        f"limiter on {result.limited_frames} frames ({100 * result.limited_frames / engine_frames:.3g}%)"
        if result.limited_frames
        else "limiter idle"
    )
    if result.compressor_peak_db > 0:
        limiter = f"compressor up to {result.compressor_peak_db:.1f} dB of reduction, {limiter}"
    engine = f" (engine at {result.engine_rate} Hz)" if result.engine_rate != rate else ""
    extra = f", {result.nonfinite_samples} NaN/Inf input samples silenced" if result.nonfinite_samples else ""
    if peak > 1.0:  # only possible after resampling back from another engine rate
        extra += ", over 0 dBFS after resampling" + (" (clipped)" if subtype.startswith("PCM") else "")
    return (
        f"wrote {path}: {duration:.2f} s, {channels} ch, {rate} Hz {subtype}{engine}; "
        f"{speed:.0f}x real time, peak {peak_text}, {limiter}{extra}"
    )


def _checked_vector(params_vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """`params_vector` as a contiguous float32 vector; raises IdawError naming the first bad value."""
    vector = np.ascontiguousarray(params_vector, dtype=np.float32)
    if vector.shape != (idaw_core.NUM_PARAMS,):
        raise IdawError(f"expected {idaw_core.NUM_PARAMS} parameter values, got shape {vector.shape}")
    bad = int(idaw_core.check_parameters(vector))
    if bad >= 0:
        spec = params.SPECS[bad]
        raise IdawError(f"{spec.name} = {vector[bad]:g} is out of range; allowed: {spec.describe_range()}")
    return vector


def _fit_length(audio: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float32]:
    """`audio` trimmed, or padded with silence, to exactly `frames` frames."""
    if audio.shape[0] >= frames:
        return np.ascontiguousarray(audio[:frames])
    pad = np.zeros((frames - audio.shape[0], audio.shape[1]), dtype=np.float32)
    return np.concatenate([audio, pad])
