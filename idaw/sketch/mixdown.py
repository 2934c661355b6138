"""The song sketch's last stages: the stems rendered with fluidsynth (General MIDI soundfont), mixed through the core
(per stem: level, EQ and compressor in the engine's chain, then a pan), and mastered through the core (a bus EQ and
compressor in the engine, then realtime.master: loudness to -14 LUFS by BS.1770 with pyloudnorm, true peak under
-1 dBTP by the core's TruePeakLimiter).

The mix settings are a table (STEM_MIX), nudged by the genre's production words (PRODUCTION): a starting point a
producer would set before listening, not a mix engineer's decisions.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from idaw.base import params
from idaw.base.errors import IdawError
from idaw.base.fluidsynth import SOUNDFONT, fluidsynth_command
from realtime import master, offline

F32 = npt.NDArray[np.float32]

FLUIDSYNTH_GAIN: Final = 0.5
"""fluidsynth's master gain for each stem (float output: nothing clips before the mix)."""
TAIL_S: Final = 2.0
"""Seconds kept after the last bar: reverb and release tails."""


@dataclass(frozen=True)
class StemMix:
    """One stem's place in the mix: engine parameters (names of the one parameter table) and a pan."""

    engine: Mapping[str, float]
    pan: float
    """-1 (left) .. 1 (right); constant power (pan_gains)."""


STEM_MIX: Final = {
    "drums": StemMix(
        {
            "output_gain": -2.0,
            "low_gain": 2.0,
            "low_freq": 90.0,
            "mid3_gain": 2.0,
            "mid3_freq": 5000.0,
            "comp_threshold": -18.0,
            "comp_ratio": 4.0,
            "comp_attack": 5.0,
            "comp_release": 80.0,
            "comp_makeup": 3.0,
        },
        0.0,
    ),
    "bass": StemMix(
        {
            "output_gain": -3.0,
            "low_gain": 2.0,
            "low_freq": 100.0,
            "high_gain": -4.0,
            "high_freq": 3000.0,
            "comp_threshold": -20.0,
            "comp_ratio": 4.0,
            "comp_attack": 10.0,
            "comp_release": 120.0,
            "comp_makeup": 3.0,
        },
        0.0,
    ),
    "harmony": StemMix(
        {
            "output_gain": -7.0,
            "low_gain": -4.0,
            "low_freq": 220.0,
            "comp_threshold": -22.0,
            "comp_ratio": 2.0,
            "comp_attack": 20.0,
            "comp_release": 200.0,
        },
        -0.35,
    ),
    "melody": StemMix(
        {
            "output_gain": -4.0,
            "low_gain": -3.0,
            "low_freq": 180.0,
            "mid3_gain": 2.0,
            "mid3_freq": 3000.0,
            "comp_threshold": -20.0,
            "comp_ratio": 3.0,
            "comp_attack": 10.0,
            "comp_release": 150.0,
            "comp_makeup": 2.0,
        },
        0.25,
    ),
}
"""Per stem: the engine's settings (gain, EQ, compressor) and the pan."""

BUS: Final = {
    "comp_threshold": -14.0,
    "comp_ratio": 2.0,
    "comp_knee": 6.0,
    "comp_attack": 30.0,
    "comp_release": 200.0,
    "low_gain": 1.0,
    "low_freq": 60.0,
    "high_gain": 1.0,
    "high_freq": 10000.0,
}
"""The master bus in the engine, before the limiter: a gentle glue compressor and a slight smile EQ."""

PRODUCTION: Final = {
    "bright": {"high_gain": 2.5},
    "warm": {"low_gain": 2.0, "high_gain": -1.0},
    "punchy": {"comp_attack": 40.0},
    "compressed": {"comp_ratio": 3.0, "comp_threshold": -18.0},
    "loud": {"comp_ratio": 3.0},
    "lo-fi": {"high_gain": -6.0, "high_freq": 6000.0},
    "vintage": {"high_gain": -3.0},
    "dark": {"high_gain": -2.0},
}
"""A production word of the genre table -> bus settings it changes (others change nothing)."""


def pan_gains(pan: float) -> tuple[float, float]:
    """(left, right) gains of the constant-power pan law, scaled so the centre is unity: sqrt(2) * (cos, sin) of
    (pan + 1) * pi / 4. Left + right power is the same at every position."""
    angle = (min(1.0, max(-1.0, pan)) + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(angle), math.sqrt(2.0) * math.sin(angle)


def engine_vector(settings: Mapping[str, float]) -> F32:
    """The engine's parameter vector: the table's defaults with `settings` (names of the one parameter table)."""
    vector = params.defaults()
    for name, value in settings.items():
        vector[params.INDEX[name]] = value
    return vector


def bus_settings(production: Sequence[str]) -> dict[str, float]:
    """BUS changed by the genre's production words (PRODUCTION)."""
    settings = dict(BUS)
    for word in production:
        settings.update(PRODUCTION.get(word, {}))
    return settings


def render_stems(midi_files: Mapping[str, Path], frames: int, rate: int) -> dict[str, F32]:
    """Each stem's MIDI file played by fluidsynth (with its reverb and chorus) into (frames, 2) float32. Two at a
    time (the machine's cores); IdawError naming what is missing or what failed."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise IdawError("fluidsynth is not installed (Debian: apt install fluidsynth fluid-soundfont-gm)")
    if not SOUNDFONT.is_file():
        raise IdawError(f"the General MIDI soundfont {SOUNDFONT} is missing (Debian: apt install fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory(prefix="idaw-sketch-") as scratch:

        def one(name: str) -> F32:
            wav = Path(scratch) / f"{name}.wav"
            command = fluidsynth_command(exe, midi_files[name], wav, SOUNDFONT, rate, FLUIDSYNTH_GAIN, False, True)
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not wav.is_file():
                why = (done.stderr or done.stdout).strip().splitlines()
                raise IdawError(f"fluidsynth failed on the {name} stem: {why[-1] if why else 'no output'}")
            audio, _ = sf.read(wav, dtype="float32", always_2d=True)
            out = np.zeros((frames, 2), np.float32)
            n = min(frames, audio.shape[0])
            out[:n] = audio[:n, :2] if audio.shape[1] >= 2 else np.repeat(audio[:n, :1], 2, axis=1)
            return out

        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip(midi_files, pool.map(one, midi_files), strict=True))


def mix(stems: Mapping[str, F32], rate: int) -> F32:
    """The stems through the engine (STEM_MIX) and panned, summed into one (frames, 2) float32."""
    out: F32 | None = None
    for name, audio in stems.items():
        setting = STEM_MIX[name]
        processed = offline.render(audio, rate, engine_vector(setting.engine)).audio
        left, right = pan_gains(setting.pan)
        processed = processed * np.array([left, right], np.float32)
        out = processed if out is None else out + processed
    assert out is not None
    return out.astype(np.float32)


def master_mix(audio: F32, rate: int, production: Sequence[str]) -> master.MasterResult:
    """The mix through the bus (engine: EQ and compressor) and realtime.master (-14 LUFS, -1 dBTP). The bus sees the
    mix at -20 LUFS so its threshold means the same for every song."""
    loudness = offline.integrated_loudness(audio, rate)
    if loudness is None:
        raise IdawError("the mix is silent: the generator played nothing")
    level = master.scaled(audio, -20.0 - loudness)
    bussed = offline.render(level, rate, engine_vector(bus_settings(production)), engine_rate=None).audio
    return master.master(bussed, rate)
