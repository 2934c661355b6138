"""Cadences: the harmonic close at each phrase end, typed as textbooks do.

- PAC perfect authentic: V(7) or viio(7) → I, both root position... (V and I in root position, the melody on the
  tonic at the arrival);
- IAC imperfect authentic: V or viio → I otherwise (an inversion, or the melody not on the tonic);
- HC half: the phrase ends on V;
- PC plagal: IV or iv → I;
- DC deceptive: V → vi (VI in minor).

Phrase ends are the score's fermatas where it has them (chorales), otherwise the ends of the melody's phrases
(idaw.theory.melody). Hand-written: music21 names chords but finds no cadences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idaw.theory.harmony import ChordLabel
from idaw.theory.keys import KeyLabel
from idaw.theory.melody import melody_line, phrase_bounds
from idaw.theory.notes import Notes

CADENCE_NAMES = {
    "PAC": "perfect authentic cadence",
    "IAC": "imperfect authentic cadence",
    "HC": "half cadence",
    "PC": "plagal cadence",
    "DC": "deceptive cadence",
}

_DOMINANT_QUALITIES = ("major", "dominant seventh")
_LEADING_QUALITIES = ("diminished", "diminished seventh", "half-diminished seventh")


@dataclass(frozen=True)
class Cadence:
    """A cadence arriving at `offset` in `key`."""

    offset: float
    type: str
    key: KeyLabel


def cadence_type(
    key: KeyLabel,
    before: tuple[int, str, int],
    at: tuple[int, str, int],
    key_before: KeyLabel | None = None,
    melody_on_tonic: bool | None = None,
) -> str | None:
    """The cadence two chords (root, quality, inversion) make when a phrase ends on the second, in `key` (the key
    of the arrival); None for none. Without the melody (`melody_on_tonic` None) an authentic cadence in root
    position counts as perfect."""
    before_root, before_quality, before_inversion = before
    at_root, at_quality, at_inversion = at
    before_degree = (before_root - key.tonic) % 12
    at_degree = (at_root - key.tonic) % 12
    dominant = before_degree == 7 and before_quality in _DOMINANT_QUALITIES
    leading = before_degree == 11 and before_quality in _LEADING_QUALITIES
    tonic_quality = "minor" if key.minor else "major"
    # A minor piece may end on a major tonic (Picardy third).
    arrives_on_tonic = at_degree == 0 and at_quality in (tonic_quality, "major")
    if arrives_on_tonic and (dominant or leading):
        perfect = dominant and before_inversion == 0 and at_inversion == 0 and melody_on_tonic is not False
        return "PAC" if perfect else "IAC"
    if at_degree == 7 and at_quality in _DOMINANT_QUALITIES:
        return "HC"
    if arrives_on_tonic and before_degree == 5 and before_quality in ("major", "minor"):
        return "PC"
    submediant = 8 if key.minor else 9
    if dominant and at_degree == submediant and at_quality in ("major", "minor"):
        return "DC"
    return None


def phrase_ends(notes: Notes) -> list[float]:
    """Offsets where phrases end: the score's fermatas where it has them, else the onset of the last note of each
    of the melody's phrases (idaw.theory.melody's phrase rules: rests, held notes, a length limit)."""
    if notes.fermatas:
        return list(notes.fermatas)
    line = melody_line(notes)
    return [line[last].offset for _, last in phrase_bounds(notes, line)]


def find_cadences(changes: Sequence[ChordLabel], notes: Notes, ends: Sequence[float] | None = None) -> list[Cadence]:
    """The cadences at the phrase ends (`ends`, or `phrase_ends(notes)`), from the harmony changes."""
    ends = phrase_ends(notes) if ends is None else ends
    found: list[Cadence] = []
    for end in ends:
        # The chord sounding at the phrase end, and the last different one before it.
        index = max((i for i, c in enumerate(changes) if c.offset <= end + 1e-6), default=None)
        if index is None or index == 0:
            continue
        at, before = changes[index], changes[index - 1]
        melody = max(
            (n.pitch for n in notes.events if n.offset <= end + 1e-6 < n.end + 1e-6 and n.end > end), default=None
        )
        melody_on_tonic = None if melody is None else (melody - at.key.tonic) % 12 == 0
        kind = cadence_type(
            at.key,
            (before.root, before.quality, before.inversion),
            (at.root, at.quality, at.inversion),
            before.key,
            melody_on_tonic,
        )
        if kind is not None and not (found and found[-1].offset == at.offset):
            found.append(Cadence(at.offset, kind, at.key))
    return found
