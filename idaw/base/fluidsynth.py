"""Rendering MIDI with fluidsynth: the General MIDI soundfont every renderer uses and the command line that plays a
file into a WAV (the listening test set, the MIDI nets' audio features and the semantic EQ's corpus).

Each caller runs the command and says in its own words what is missing or what failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

SOUNDFONT: Final = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
"""FluidR3_GM (Debian: fluid-soundfont-gm)."""


def fluidsynth_command(
    exe: str,
    mid: Path,
    wav: Path,
    soundfont: Path,
    rate: int,
    gain: float,
    dry: bool = True,
    float_samples: bool = False,
) -> list[str]:
    """The fluidsynth command line (program `exe`) that renders `mid` to `wav` at `rate` Hz with `soundfont` at
    `gain`: without its reverb and chorus when `dry`, as float samples when `float_samples` (else 16-bit)."""
    effects = ["-R", "0", "-C", "0"] if dry else []
    samples = ["-O", "float"] if float_samples else []
    return [
        exe,
        "-ni",
        "-q",
        *effects,
        "-g",
        f"{gain:g}",
        *samples,
        "-r",
        str(rate),
        "-F",
        str(wav),
        str(soundfont),
        str(mid),
    ]
