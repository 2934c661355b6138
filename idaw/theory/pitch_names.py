"""The names idaw gives the twelve pitch classes in reports, chord labels and plots (one home: the listening
evaluation, its report, the melody descriptors and the MIDI nets' chord classes all read them here).

Sharps for C#, F#, flats for Eb, Ab, Bb: the spelling most common in the keys idaw meets, one name per pitch class
(the key names, which spell by key, are idaw.theory.keys' MAJOR_TONICS and MINOR_TONICS). This module imports
nothing, so the engine's side (realtime) reads it without loading music21.
"""

from __future__ import annotations

from typing import Final

PITCH_NAMES: Final = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch class 0 (C) .. 11 (B) -> its name."""
