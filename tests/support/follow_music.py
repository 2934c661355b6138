"""Music that changes key and tempo halfway, rendered with fluidsynth: the input the live-follow tests play.

Each half is a band (piano chords on every beat, a bass on beats 1 and 3, an arpeggio in eighths, drums: kick on 1
and 3, snare on 2 and 4, closed hi-hat in eighths) playing I-IV-V-I and vi-ii-V-I in its key, one chord a bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from idaw.base.protocol import SCHEMA
from idaw.listen.testset import fluidsynth_render

MAJOR_TRIADS = {1: (0, 4, 7), 2: (2, 5, 9), 4: (5, 9, 12), 5: (7, 11, 14), 6: (9, 12, 16)}
"""Scale degree -> the triad's semitones above the major key's tonic."""
PROGRESSION = (1, 4, 5, 1, 6, 2, 5, 1)
KICK, SNARE, CLOSED_HAT = 36, 38, 42


def sidecar_windows(samples: int, rate: int) -> Iterator[tuple[int, int]]:
    """(begin, end) of each analysis window a sidecar gets from a stream of `samples` samples at `rate`: the newest
    window_s seconds every hop_s (the protocol's `analysis` figures), the first ones shorter."""
    hop, window = round(float(SCHEMA.analysis["hop_s"]) * rate), round(float(SCHEMA.analysis["window_s"]) * rate)
    for end in range(hop, samples + 1, hop):
        yield max(0, end - window), end


@dataclass(frozen=True)
class Half:
    """One half of the music: its key's tonic (pitch class, major), tempo and length in bars."""

    tonic: int
    tempo_bpm: float
    bars: int


@dataclass(frozen=True)
class FollowMusic:
    """The rendered audio (mono float32), its rate, and where its beats and the change are (seconds)."""

    audio: npt.NDArray[np.float32]
    rate: int
    beats: npt.NDArray[np.float64]
    change_s: float
    halves: tuple[Half, Half]


def render(halves: tuple[Half, Half], rate: int, folder: Path, level: float = 0.5) -> FollowMusic:
    """Render the two halves back to back (peak `level`); `folder` holds the MIDI file."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=halves[0].tempo_bpm)
    piano = pretty_midi.Instrument(program=0, name="chords")
    bass = pretty_midi.Instrument(program=33, name="bass")
    lead = pretty_midi.Instrument(program=11, name="arpeggio")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    beats: list[float] = []
    time = 0.5
    change = 0.0
    for number, half in enumerate(halves):
        if number == 1:
            change = time
        spb = 60.0 / half.tempo_bpm
        for bar in range(half.bars):
            triad = MAJOR_TRIADS[PROGRESSION[bar % len(PROGRESSION)]]
            root = 48 + half.tonic + triad[0]
            for beat in range(4):
                t = time + beat * spb
                beats.append(t)
                for interval in triad:
                    piano.notes.append(pretty_midi.Note(70, 60 + half.tonic + interval, t, t + 0.9 * spb))
                if beat in (0, 2):
                    bass.notes.append(pretty_midi.Note(90, root - 12, t, t + 1.8 * spb))
                drums.notes.append(pretty_midi.Note(100, KICK if beat in (0, 2) else SNARE, t, t + 0.1))
                for eighth in range(2):
                    u = t + eighth * spb / 2
                    drums.notes.append(pretty_midi.Note(60, CLOSED_HAT, u, u + 0.05))
                    pitch = 72 + half.tonic + triad[(2 * beat + eighth) % 3]
                    lead.notes.append(pretty_midi.Note(60, pitch, u, u + 0.45 * spb))
            time += 4 * spb
    midi.instruments += [piano, bass, lead, drums]
    path = folder / "follow.mid"
    midi.write(str(path))
    audio = fluidsynth_render(path, rate)
    audio = audio[: int((time + 0.5) * rate)]
    audio *= level / max(float(np.abs(audio).max()), 1e-9)
    return FollowMusic(audio.astype(np.float32), rate, np.asarray(beats), change, halves)
