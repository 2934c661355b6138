"""Keys: names, music21's key profiles as evidence, and the distance between keys.

The key profiles are music21's (`music21.analysis.discrete`, Temperley–Kostka–Payne weights by default). music21
finds one key for a stream well, but its windowed analysis labels each window on its own, so a passing chromatic
chord flips the key for a window and back; idaw.theory.decode uses the profiles as one kind of evidence for a key
that changes where the harmony turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import music21
import numpy as np
import numpy.typing as npt

MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
"""How each tonic is spelled in a key name (the spelling with fewer accidentals in its key signature)."""


@dataclass(frozen=True)
class KeyLabel:
    """A key as a tonic pitch class and a mode; index = tonic + 12 for minor."""

    tonic: int
    minor: bool

    @property
    def index(self) -> int:
        """0–11 major keys C..B, 12–23 minor keys c..b."""
        return self.tonic + (12 if self.minor else 0)

    @property
    def name(self) -> str:
        """'Bb major', 'F# minor'."""
        return f"{(MINOR_TONICS if self.minor else MAJOR_TONICS)[self.tonic]} {'minor' if self.minor else 'major'}"

    def to_music21(self) -> music21.key.Key:
        """The same key as a music21 Key (flats written '-', minor tonics lower case, as music21 wants)."""
        tonic = (MINOR_TONICS if self.minor else MAJOR_TONICS)[self.tonic].replace("b", "-")
        return music21.key.Key(tonic.lower() if self.minor else tonic)

    @staticmethod
    def from_index(index: int) -> KeyLabel:
        """The key with index 0–23 (see `index`)."""
        return KeyLabel(index % 12, index >= 12)

    @staticmethod
    def from_music21(key: music21.key.Key) -> KeyLabel:
        """The label of a music21 Key (any mode other than minor counts as major)."""
        return KeyLabel(key.tonic.pitchClass, key.mode == "minor")


def parse_key_name(text: str) -> KeyLabel | None:
    """The key named by `text` ('A minor', 'Bb major', 'f#', 'Eb'), or None when it names none."""
    words = text.strip().split()
    if not words or len(words) > 2:
        return None
    tonic, mode = words[0], (words[1].lower() if len(words) == 2 else "")
    if mode not in ("", "major", "minor"):
        return None
    if not mode:
        mode = "minor" if tonic[:1].islower() else "major"
    try:
        pitch = music21.pitch.Pitch(tonic[:1].upper() + tonic[1:].replace("b", "-"))
    except music21.pitch.PitchException:
        return None
    return KeyLabel(pitch.pitchClass, mode == "minor")


def key_profiles(method: type[music21.analysis.discrete.KeyWeightKeyAnalysis] | None = None) -> npt.NDArray[np.float64]:
    """24 × 12 profiles (rows: C..B major, then c..b minor), each normalised to zero mean and unit norm."""
    analysis = (method or music21.analysis.discrete.TemperleyKostkaPayne)()
    major = np.asarray(analysis.getWeights("major"), dtype=np.float64)
    minor = np.asarray(analysis.getWeights("minor"), dtype=np.float64)
    rows = [np.roll(major, t) for t in range(12)] + [np.roll(minor, t) for t in range(12)]
    profiles = np.array(rows)
    profiles -= profiles.mean(axis=1, keepdims=True)
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    return profiles


def key_correlations(weights: npt.NDArray[np.float64], profiles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Correlation of a pitch-class weight vector with each of the 24 key profiles (0 where nothing sounds)."""
    centred = weights - weights.mean()
    norm = float(np.linalg.norm(centred))
    if norm == 0.0:
        return np.zeros(len(profiles))
    result: npt.NDArray[np.float64] = profiles @ (centred / norm)
    return result


def key_distance(a: int, b: int) -> int:
    """Steps between two keys (indices 0–23) on the circle of fifths, a relative major/minor counting as 0 steps
    plus one for the change of mode: 0 for the same key, 1 for relative or dominant/subdominant keys, ..."""
    if a == b:
        return 0

    # Put each key at its key signature's place on the circle (C major and A minor both at 0).
    def position(index: int) -> int:
        tonic = index % 12
        relative_major = (tonic + 3) % 12 if index >= 12 else tonic
        return (relative_major * 7) % 12

    steps = abs(position(a) - position(b))
    steps = min(steps, 12 - steps)
    return steps + (1 if (a >= 12) != (b >= 12) else 0)
