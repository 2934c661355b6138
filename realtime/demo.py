"""`idaw demo`: make the built-in clip warm through the sidecar's semantic EQ; write before/after WAVs and a PNG.

By default the demo starts a sidecar (the trained semantic-EQ model), asks it for "warm" at intensity 0.7 on the
clip, exactly as `idaw process --describe warm` does, and renders the clip with the EQ it returns. The PNG
shows the input and output long-term spectra, the EQ curve the engine applied, the measured change, and
SAFE-DB's median curve for each described word that has one (sidecar/semantic_eq/weights/
safe_median_curves.json, shipped, so no data is needed; read by idaw/base/safe_curves.py, a file path and not an
import of the sidecar). `--describe WORD...` / `--intensity` ask for
something else; explicit chain options (--eq, --drive, ...) render that chain without a sidecar (unless
--describe is given too); `--no-sidecar` renders DEFAULT_PRESET, a fixed warm setting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from idaw.base import output_file
from idaw.base.errors import IdawError, path_error
from realtime import params
from realtime.audio_io import write_audio
from realtime.offline import render_array
from realtime.options import add_chain_arguments, chain_from_args
from realtime.sidecar_link import host as sidecar_host
from realtime.synth import demo_clip

F64 = npt.NDArray[np.float64]
DEMO_RATE = 48000
DEFAULT_WORDS = ("warm",)
"""What the demo asks the sidecar for when no --describe is given."""
# A "warm" setting near SAFE-DB's median for the word: +4.8 dB around 320 Hz, a gentle treble cut.
DEFAULT_PRESET: dict[str, float] = {
    "mid1_gain": 4.8,
    "mid1_freq": 320.0,
    "mid1_q": 0.8,
    "high_gain": -1.5,
    "high_freq": 8200.0,
}
"""What --no-sidecar renders (without explicit chain options)."""
CURVE_FREQS = np.geomspace(20.0, 20000.0, 512)
"""Where the PNG draws the EQ and SAFE median curves."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `idaw demo`."""
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the results")
    add_chain_arguments(parser)
    sidecar_host.add_arguments(parser)


def _explicit_chain(args: argparse.Namespace) -> bool:
    """Whether any chain option was given on the command line."""
    return bool(args.eq) or any(
        getattr(args, n) is not None for n in ("drive", "crunch", "mix", "input_gain", "output_gain")
    )


def choose_vector(
    args: argparse.Namespace, clip: npt.NDArray[np.float32], rate: int
) -> tuple[npt.NDArray[np.float32], list[str], str]:
    """(engine vector to render, words whose SAFE median curve to draw, one line saying where it came from).

    Raises IdawError (one line) when the sidecar cannot be started or knows none of the words.
    """
    explicit = _explicit_chain(args)
    vector = chain_from_args(args) if explicit else params.build(DEFAULT_PRESET)
    if args.no_sidecar and args.describe:
        raise IdawError("--describe needs the sidecar; drop --no-sidecar")
    words = list(args.describe) if args.describe else ([] if explicit or args.no_sidecar else list(DEFAULT_WORDS))
    if not words:
        how = "the chain options" if explicit else "the built-in warm preset (--no-sidecar)"
        return vector, [] if explicit else list(DEFAULT_WORDS), f"rendered with {how}"
    base = vector if explicit else params.defaults()
    try:
        result = sidecar_host.describe_offline(
            clip, rate, words, args.intensity, base, args.sidecar, args.sidecar_handler, args.sidecar_keys
        )
    except IdawError as error:
        hint = "" if args.describe else " (--no-sidecar renders a built-in warm preset instead)"
        raise IdawError(f"{error}{hint}") from None
    line = (
        f"described {' '.join(words)!r} at intensity {args.intensity:g} (handler {args.sidecar_handler}; "
        f"used {', '.join(result.used)})"
    )
    return result.vector, words, line


def run(args: argparse.Namespace) -> int:
    """Render the demo; returns the exit code."""
    make_output_folder(args.out)  # a bad --out fails before the sidecar starts
    clip = demo_clip(DEMO_RATE)
    vector, words, how = choose_vector(args, clip, DEMO_RATE)
    processed = render_array(clip, DEMO_RATE, vector)
    write_audio(args.out / "before.wav", clip, DEMO_RATE)
    write_audio(args.out / "after.wav", processed, DEMO_RATE)
    picture = args.out / "spectrum.png"
    references = safe_references(words)
    with output_file.replacing(picture, "picture") as part:  # complete or absent, like the WAVs
        plot_comparison(clip, processed, DEMO_RATE, vector, part, references, title=how)
    print(f"idaw demo: {how}", file=sys.stderr)
    print(f"wrote {args.out / 'before.wav'}, {args.out / 'after.wav'} and {picture}", file=sys.stderr)
    return 0


def make_output_folder(folder: Path) -> None:
    """Create `folder` (and its parents) if needed and check that files can be written in it; raises IdawError
    naming the folder and the problem (a file of that name, a parent that is a file, no permission, ...)."""
    try:
        if folder.exists() and not folder.is_dir():
            raise IdawError(f"cannot use {folder} as the output folder: it is a file")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise path_error("create folder", folder, error) from None
    output_file.check_writable(folder / "before.wav")


def safe_references(words: Sequence[str]) -> dict[str, F64]:
    """Label -> SAFE-DB median curve (dB at CURVE_FREQS, full settings) for each of `words` the shipped file has.

    Returns {} when the shipped file cannot be read (the picture then goes without them).
    """
    from idaw.base import safe_curves

    try:
        shipped = safe_curves.load()
    except IdawError as error:
        print(f"idaw demo: warning: {error}", file=sys.stderr)
        return {}
    out: dict[str, F64] = {}
    for word in dict.fromkeys(" ".join(words).lower().split()):
        if word in shipped.curves:
            label = f"SAFE-DB median '{word}' ({shipped.counts[word]} settings)"
            out[label] = shipped.curve(word, CURVE_FREQS)
    return out


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
    references: Mapping[str, F64] | None = None,
    title: str | None = None,
) -> None:
    """Write a PNG: input and output spectra on top; below, the applied EQ curve, the measured change and each
    `references` curve (label -> dB at CURVE_FREQS, e.g. SAFE-DB's median for the word); `title` above all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import idaw_core

    freqs, level_in = average_spectrum_db(before, rate)
    _, level_out = average_spectrum_db(after, rate)
    keep = (freqs >= 20) & (freqs <= 20000)
    curve = idaw_core.eq_response_db(vector, float(rate), CURVE_FREQS)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, constrained_layout=True)
    top.semilogx(freqs[keep], level_in[keep], label="input", color="tab:blue", linewidth=1.2)
    top.semilogx(freqs[keep], level_out[keep], label="output", color="tab:orange", linewidth=1.2)
    top.set_ylabel("level (dB)")
    top.set_title("Long-term average spectrum" + (f": {title}" if title else ""))
    top.legend(loc="lower left")
    top.grid(True, which="both", alpha=0.3)
    bottom.semilogx(CURVE_FREQS, curve, label="applied EQ curve (engine coefficients)", color="black", linewidth=2)
    bottom.semilogx(
        freqs[keep],
        (level_out - level_in)[keep],
        label="measured change (output - input)",
        color="tab:green",
        linewidth=1,
        alpha=0.8,
    )
    for (label, reference), colour in zip(
        (references or {}).items(), ("tab:red", "tab:purple", "tab:brown"), strict=False
    ):
        bottom.semilogx(CURVE_FREQS, reference, label=label, color=colour, linewidth=1.6, linestyle="--")
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_xlabel("frequency (Hz)")
    bottom.set_ylabel("gain (dB)")
    bottom.set_ylim(-15, 15)
    bottom.legend(loc="lower left")
    bottom.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110, format="png")  # PNG whatever the name ends with (e.g. a part file's .part)
    plt.close(fig)
