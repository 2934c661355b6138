"""Drums played from a Hydrogen drum kit (Debian: hydrogen-data): the kit's drumkit.xml names each instrument's
General MIDI note (midiOutNote), its volume, gain and pan, and its samples by velocity layer; render() places the
layer of each note's velocity at the note's start, scaled by velocity as Hydrogen does (applyVelocity), and lets it
ring out (drum samples are one-shots: the note's length does not matter).

A note the kit has no instrument for is played by the instrument of the nearest General MIDI number of the same
family (toms for toms, cymbals for cymbals; FAMILIES), or left out and counted when the family has none.

Written here because no library plays Hydrogen kits: the format is a small XML file, and a one-shot sampler is a
sum of scaled copies.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from idaw.base.errors import IdawError
from idaw.sketch.mixdown import pan_gains
from realtime.audio_io import resample
from realtime.midi_file import Note

KITS_FOLDER: Final = Path("/usr/share/hydrogen/data/drumkits")
"""Where Debian's hydrogen-data puts its kits."""
KIT_FOR_FEEL: Final = {"four-on-the-floor": "TR808EmulationKit", "boom-bap": "TR808EmulationKit"}
"""The genre table's drum feel -> the kit; every other feel plays GMRockKit (a sampled acoustic kit)."""
DEFAULT_KIT: Final = "GMRockKit"
FAMILIES: Final = {
    "kick": (35, 36),
    "snare": (37, 38, 39, 40),
    "tom": (41, 43, 45, 47, 48, 50),
    "hat": (42, 44, 46, 82),
    "cymbal": (49, 51, 52, 53, 55, 57, 59),
}
"""General MIDI percussion numbers by family: a missing note borrows the nearest one of its family."""
KIT_GAIN: Final = 0.5
"""The kit's level in its stem, as fluidsynth's gain for the others (room for the mix)."""
NAMESPACE: Final = "{http://www.hydrogen-music.org/drumkit}"


@dataclass(frozen=True)
class Layer:
    """One sample of an instrument, for velocities in [low, high] (0..1)."""

    low: float
    high: float
    gain: float
    samples: npt.NDArray[np.float32]
    """(frames, 2) at the kit's rate."""


@dataclass(frozen=True)
class Instrument:
    """One instrument of a kit."""

    name: str
    note: int
    gain: float
    """Its volume times its gain."""
    pan: float
    """-1 (left) .. 1 (right)."""
    by_velocity: bool
    layers: tuple[Layer, ...]

    def layer(self, velocity: float) -> Layer:
        """The layer for a velocity in 0..1: the one whose range holds it (the loudest above them all)."""
        for layer in self.layers:
            if layer.low <= velocity <= layer.high:
                return layer
        return max(self.layers, key=lambda lay: lay.high)


def kit_for(feel: str) -> str:
    """The kit that plays a genre's drum feel (KIT_FOR_FEEL)."""
    return KIT_FOR_FEEL.get(feel, DEFAULT_KIT)


def _text(element: ET.Element, tag: str, default: str) -> str:
    found = element.find(NAMESPACE + tag)
    return default if found is None or found.text is None else found.text.strip()


@lru_cache(maxsize=4)
def read_kit(name: str, rate: int, folder: Path = KITS_FOLDER) -> dict[int, Instrument]:
    """The kit `name` under `folder` with its samples at `rate`: {General MIDI note: instrument}. IdawError naming the
    kit and the package when it is missing or unreadable."""
    path = folder / name / "drumkit.xml"
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise IdawError(
            f"cannot read the Hydrogen drum kit {path} ({error}); Debian: apt install hydrogen-data"
        ) from None
    instruments: dict[int, Instrument] = {}
    for element in root.iter(NAMESPACE + "instrument"):
        note = int(_text(element, "midiOutNote", "-1"))
        if not 0 <= note <= 127 or _text(element, "isMuted", "false") == "true":
            continue
        layers = []
        for layer in element.iter(NAMESPACE + "layer"):
            try:
                audio, file_rate = sf.read(path.parent / _text(layer, "filename", ""), dtype="float32", always_2d=True)
            except (OSError, RuntimeError) as error:
                raise IdawError(f"cannot read a sample of the drum kit {name}: {error}") from None
            stereo = audio[:, :2] if audio.shape[1] >= 2 else np.repeat(audio[:, :1], 2, axis=1)
            layers.append(
                Layer(
                    float(_text(layer, "min", "0")),
                    float(_text(layer, "max", "1")),
                    float(_text(layer, "gain", "1")),
                    resample(np.ascontiguousarray(stereo), file_rate, rate),
                )
            )
        if layers:
            instruments[note] = Instrument(
                name=_text(element, "name", str(note)),
                note=note,
                gain=float(_text(element, "volume", "1")) * float(_text(element, "gain", "1")),
                pan=float(_text(element, "pan", "0")),
                by_velocity=_text(element, "applyVelocity", "true") == "true",
                layers=tuple(sorted(layers, key=lambda lay: lay.low)),
            )
    if not instruments:
        raise IdawError(f"the drum kit {name} has no instrument with a MIDI note")
    return instruments


def stand_in(note: int, kit: dict[int, Instrument]) -> Instrument | None:
    """The kit's instrument for `note`: its own, else the nearest one of the same family (FAMILIES), else None."""
    if note in kit:
        return kit[note]
    family = next((members for members in FAMILIES.values() if note in members), ())
    candidates = [n for n in family if n in kit]
    return kit[min(candidates, key=lambda n: abs(n - note))] if candidates else None


def render(notes: Iterable[Note], kit: dict[int, Instrument], frames: int) -> tuple[npt.NDArray[np.float32], int]:
    """(the notes played by the kit into (frames, 2) float32, how many notes had no instrument). Note times are
    sample frames at the kit's rate; a sample that runs past `frames` is cut there."""
    out = np.zeros((frames, 2), np.float32)
    missing = 0
    for note in notes:
        instrument = stand_in(note.pitch, kit)
        if instrument is None:
            missing += 1
            continue
        velocity = note.velocity / 127.0
        layer = instrument.layer(velocity)
        gain = instrument.gain * layer.gain * (velocity if instrument.by_velocity else 1.0)
        start = max(0, note.start)
        length = min(layer.samples.shape[0], frames - start)
        if length <= 0:
            continue
        pan = np.array(pan_gains(instrument.pan), np.float32) * np.float32(gain * KIT_GAIN)
        out[start : start + length] += layer.samples[:length] * pan
    return out, missing
