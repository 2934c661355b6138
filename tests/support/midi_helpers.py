"""Shared by the MIDI tests: the four generator nets as RTNeural JSON with seeded random weights (through the
project's exporter, the shapes of realtime/nets/architectures.py), and reading MIDI files back with two libraries.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mido
import pretty_midi

GENERATOR_NETS = ("MelodyTransformer", "HarmonyPredictor", "DynamicsEngine", "GroovePredictor")
_exported: dict[int, Path] = {}
_keep: list[tempfile.TemporaryDirectory[str]] = []


def generator_nets(seed: int = 0) -> Path:
    """A folder with <Name>.json for the four nets the generator runs, exported once per seed and process (kept until
    the process exits)."""
    if seed not in _exported:
        import torch

        from export.rtneural import save_rtneural
        from realtime.nets.architectures import NETS

        folder = tempfile.TemporaryDirectory(prefix="idaw-midi-nets-")
        _keep.append(folder)
        for name in GENERATOR_NETS:
            torch.manual_seed(seed)
            save_rtneural(NETS[name][0]().eval(), Path(folder.name) / f"{name}.json")
        _exported[seed] = Path(folder.name)
    return _exported[seed]


def mido_notes(path: Path) -> list[tuple[int, int, int, float, float]]:
    """(channel, pitch, velocity, start s, end s) of every note in a file, paired from mido's messages."""
    notes, sounding, now = [], {}, 0.0
    for message in mido.MidiFile(str(path)):  # iterating a MidiFile yields times in seconds, tempo applied
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            sounding[(message.channel, message.note)] = (now, message.velocity)
        elif message.type in ("note_off", "note_on"):
            start, velocity = sounding.pop((message.channel, message.note))
            notes.append((message.channel, message.note, velocity, start, now))
    assert not sounding, f"unended notes in {path}: {sounding}"
    return sorted(notes, key=lambda n: (n[3], n[0], n[1]))


def pretty_notes(path: Path) -> list[tuple[int, int, int, float, float]]:
    """The same through pretty_midi. pretty_midi keeps no channel numbers (it makes one instrument per channel, in
    order of appearance), so each instrument's channel is taken from mido's first note of the same pitch and time."""
    pm = pretty_midi.PrettyMIDI(str(path))
    first_channel: dict[tuple[int, float], int] = {}
    for channel, pitch, _, start, _ in mido_notes(path):
        first_channel.setdefault((pitch, round(start, 6)), channel)
    notes = []
    for instrument in pm.instruments:
        assert instrument.notes
        head = min(instrument.notes, key=lambda n: (n.start, n.pitch))
        channel = first_channel[(head.pitch, round(float(head.start), 6))]
        assert instrument.is_drum == (channel == 9)  # General MIDI percussion, as pretty_midi reads it
        notes += [(channel, n.pitch, n.velocity, float(n.start), float(n.end)) for n in instrument.notes]
    return sorted(notes, key=lambda n: (n[3], n[0], n[1]))
