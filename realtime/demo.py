"""`idaw demo`: render the built-in clip through the chain; write before/after WAVs and a spectrum PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from realtime import params
from realtime.audio_io import write_audio
from realtime.offline import render_array
from realtime.options import add_chain_arguments, chain_from_args
from realtime.synth import demo_clip

DEMO_RATE = 48000
# A "warm" setting near SAFE-DB's median for the word: +4.8 dB around 320 Hz, a gentle treble cut.
DEFAULT_PRESET: dict[str, float] = {
    "mid1_gain": 4.8,
    "mid1_freq": 320.0,
    "mid1_q": 0.8,
    "high_gain": -1.5,
    "high_freq": 8200.0,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `idaw demo`."""
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the results")
    add_chain_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Render the demo; returns the exit code."""
    uses_defaults = not args.eq and all(
        getattr(args, n) is None for n in ("drive", "crunch", "mix", "input_gain", "output_gain")
    )
    vector = params.build(DEFAULT_PRESET) if uses_defaults else chain_from_args(args)
    clip = demo_clip(DEMO_RATE)
    processed = render_array(clip, DEMO_RATE, vector)
    args.out.mkdir(parents=True, exist_ok=True)
    write_audio(args.out / "before.wav", clip, DEMO_RATE)
    write_audio(args.out / "after.wav", processed, DEMO_RATE)
    picture = args.out / "spectrum.png"
    plot_comparison(clip, processed, DEMO_RATE, vector, picture)
    print(f"wrote {args.out / 'before.wav'}, {args.out / 'after.wav'} and {picture}", file=sys.stderr)
    return 0


def average_spectrum_db(
    audio: npt.NDArray[np.float32], rate: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Long-term average spectrum (Welch, mono mix) as (frequencies in Hz, level in dB)."""
    from scipy.signal import welch

    freqs, power = welch(audio.mean(axis=1), fs=rate, nperseg=8192)
    return freqs, 10 * np.log10(power + 1e-20)


def plot_comparison(
    before: npt.NDArray[np.float32],
    after: npt.NDArray[np.float32],
    rate: int,
    vector: npt.NDArray[np.float32],
    path: Path,
) -> None:
    """Write a PNG: input and output spectra on top, the EQ curve and the measured change below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freqs, level_in = average_spectrum_db(before, rate)
    _, level_out = average_spectrum_db(after, rate)
    keep = (freqs >= 20) & (freqs <= 20000)
    curve_freqs = np.geomspace(20, 20000, 512)
    import idaw_core

    curve = idaw_core.eq_response_db(vector, float(rate), curve_freqs)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, constrained_layout=True)
    top.semilogx(freqs[keep], level_in[keep], label="input", color="tab:blue", linewidth=1.2)
    top.semilogx(freqs[keep], level_out[keep], label="output", color="tab:orange", linewidth=1.2)
    top.set_ylabel("level (dB)")
    top.set_title("Long-term average spectrum")
    top.legend(loc="lower left")
    top.grid(True, which="both", alpha=0.3)
    bottom.semilogx(curve_freqs, curve, label="EQ curve (engine coefficients)", color="black", linewidth=2)
    bottom.semilogx(
        freqs[keep],
        (level_out - level_in)[keep],
        label="measured change (output - input)",
        color="tab:green",
        linewidth=1,
        alpha=0.8,
    )
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_xlabel("frequency (Hz)")
    bottom.set_ylabel("gain (dB)")
    bottom.set_ylim(-15, 15)
    bottom.legend(loc="lower left")
    bottom.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
