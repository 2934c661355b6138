"""Mastering limiters side by side: idaw's true-peak limiter (idaw_core.TruePeakLimiter) against pedalboard's
Limiter (JUCE's dsp::Limiter, a sample-peak limiter), and the whole `idaw master` stage (its loudness search).

The input is a band rendered with fluidsynth (tests/support/follow_music.py: piano, bass, arpeggio, drums), looped
to 60 s (20 s with --quick), stereo at 48 kHz, turned up so that its true peak is 8 dB over a -1 dBTP ceiling.
Each alternative runs on the same audio, interleaved round by round. Reported: speed (multiples of real time,
median and p99), the ratio of times (idaw over pedalboard, paired per round), and what each lets out: true peak at
4x (BS.1770-4) and 8x against the ceiling, sample peak, and integrated loudness (pyloudnorm). Run alone with
`python -m benchmarks.bench_master [--quick] [--out F]`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyloudnorm

from benchmarks import common
from realtime.master import limit, master
from tests.support.follow_music import Half, render
from tests.support.levels import peak_db

RATE = 48000
CEILING_DBTP = -1.0
OVER_DB = 8.0
"""How far the input's true peak lies above the ceiling."""
F32 = npt.NDArray[np.float32]


def band(seconds: float) -> F32:
    """The band, stereo (the right channel later and quieter), looped to `seconds`, true peak OVER_DB over the
    ceiling."""
    with tempfile.TemporaryDirectory(prefix="idaw-bench-master-") as folder:
        music = render((Half(0, 120.0, 8), Half(7, 140.0, 8)), RATE, Path(folder), level=0.5)
    mono = np.resize(music.audio.astype(np.float32), round(seconds * RATE))
    right = np.concatenate([np.zeros(24, np.float32), 0.8 * mono[:-24]])
    stereo = np.ascontiguousarray(np.stack([mono, right], axis=1))
    gain = 10.0 ** ((CEILING_DBTP + OVER_DB - peak_db(stereo, 4)) / 20.0)
    return (stereo * np.float32(gain)).astype(np.float32)


def measured(audio: F32) -> common.Json:
    """What came out: true peak at 4x and 8x, sample peak, its excess over the ceiling, loudness."""
    true_peak = peak_db(audio, 4)
    return {
        "true_peak_dbtp_4x": round(true_peak, 3),
        "true_peak_dbtp_8x": round(peak_db(audio, 8), 3),
        "sample_peak_dbfs": round(peak_db(audio, 1), 3),
        "over_ceiling_db": round(max(0.0, true_peak - CEILING_DBTP), 3),
        "loudness_lufs": round(float(pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64))), 2),
    }


def run(quick: bool = False) -> common.Json:
    """{audio_seconds, ceiling_dbtp, input, results: {name: {x_realtime, output}}, ratios}."""
    import pedalboard

    seconds = 20.0 if quick else 60.0
    repetitions = 3 if quick else 9
    audio = band(seconds)
    juce_limiter = pedalboard.Limiter(threshold_db=CEILING_DBTP, release_ms=100.0)
    outputs: dict[str, F32] = {}

    def idaw_limiter() -> None:
        outputs["idaw_true_peak_limiter"] = limit(audio, RATE, CEILING_DBTP)[0]

    def pedalboard_limiter() -> None:
        juce_limiter.reset()
        planar = np.ascontiguousarray(audio.T)
        outputs["pedalboard_limiter"] = np.ascontiguousarray(juce_limiter(planar, RATE).T)

    def idaw_master() -> None:
        outputs["idaw_master_minus_14_lufs"] = master(audio, RATE, -14.0, CEILING_DBTP).audio

    alternatives = [
        common.Alternative("idaw_true_peak_limiter", idaw_limiter),
        common.Alternative("pedalboard_limiter", pedalboard_limiter),
        common.Alternative("idaw_master_minus_14_lufs", idaw_master),
    ]
    times = common.interleaved_times_ns(alternatives, repetitions, warmup=1)
    return {
        "audio_seconds": seconds,
        "ceiling_dbtp": CEILING_DBTP,
        "input": measured(audio),
        "results": {
            name: {
                "x_realtime": common.realtime_factor(samples, seconds),
                "times": common.summarize_ns(samples),
                "output": measured(outputs[name]),
            }
            for name, samples in times.items()
        },
        "ratios": {
            "idaw_limiter_over_pedalboard_time": common.paired_ratio(
                times["idaw_true_peak_limiter"], times["pedalboard_limiter"]
            ),
            "idaw_master_over_idaw_limiter_time": common.paired_ratio(
                times["idaw_master_minus_14_lufs"], times["idaw_true_peak_limiter"]
            ),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
