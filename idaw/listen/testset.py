"""Labelled audio for testing what idaw hears: Bach chorales from music21's corpus, rendered with fluidsynth.

Every item is one chorale played at a random tempo, transposition and set of General MIDI instruments (one per
part), with or without a General MIDI drum part, then given a random level, reverb and noise. Its labels are exact:
the beats (every quarter note, the beat of these 3/4 and 4/4 chorales), the downbeats (bar starts; a pickup's start
is none), the meter and the tempo follow from the score and the rendered tempo (fermatas are not held, so the beats
are evenly spaced); keys and chords come from the source:

- split "eval": the 19 chorales whose Roman-numeral analyses (by Andrew Jones, proofread by Dmitri Tymoczko and
  Hamish Robb, in music21's corpus) line up with their scores (idaw.theory.evaluate): local keys and chords as the
  analyst wrote them;
- split "train": the corpus's other four-part Bach chorales in 3/4 or 4/4, leaving out any that shares its tune
  with an eval chorale (so no evaluated piece is trained on): one global key (music21's `analyze('key')`), no chords.

The splits are played by disjoint sets of instruments and drum kits, so a model trained on one cannot learn the
other's timbres. `python -m idaw.listen.testset --out DIR [--split eval|train] [--count N] [--seed N]` writes
NAME.flac (44.1 kHz mono, 16 bit) and NAME.json (the labels, `load_labels`) per item; an item whose files are there
with the same settings is not rendered again. The same (source, seed, split) always gives the same settings and
the same label file.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError, one_line, os_reason
from idaw.base.fluidsynth import SOUNDFONT as SOUNDFONT  # where the test set's callers look for it
from idaw.base.fluidsynth import fluidsynth_command
from idaw.base.output_file import discard_pending, replacing
from idaw.theory import harmony
from idaw.theory.keys import KeyLabel
from idaw.theory.notes import Notes

F64 = npt.NDArray[np.float64]

SPLITS: Final = ("eval", "train")
WEAK_CHORDS_SOURCE: Final = "idaw.theory.decode on the score (weak labels)"
SAMPLE_RATE: Final = 44100
LABEL_FORMAT: Final = 1
"""Bumped whenever the labels of an unchanged item would change: files of another format are rendered again."""
LEAD_IN_S: Final = 0.5
"""Silence before the first note."""
TAIL_S: Final = 1.5
"""Audio kept after the last note ends (release and reverb), the last FADE_S of it faded out."""
FADE_S: Final = 0.1
LEGATO: Final = 0.95
"""Each note sounds for this fraction of its written length."""
VOICE_VELOCITY: Final = 80
VOICES: Final = 4

PROGRAMS: Final[dict[str, tuple[int, ...]]] = {
    # Organs, choirs, bowed strings, and the programs realtime.nets renders its training audio with (piano, nylon
    # guitar, flute, harpsichord): everything a model may have been trained on.
    "train": (0, 6, 16, 19, 20, 24, 40, 41, 42, 48, 49, 52, 53, 73),
    # Electric pianos, vibraphone, steel and jazz guitars, brass, saxophones, double reeds, clarinet, synth pads.
    "eval": (2, 4, 5, 11, 25, 26, 56, 57, 58, 60, 61, 65, 66, 68, 70, 71, 88, 89),
}
"""General MIDI programs (0-based) each split's parts are played with; the sets are disjoint."""
DRUM_KITS: Final[dict[str, tuple[int, ...]]] = {"train": (0, 16, 24), "eval": (8, 25, 32, 40)}
"""FluidR3_GM drum kits (bank 128 presets) per split: Standard, Power, Electronic; Room, TR-808, Jazz, Brush."""

TEMPO_RANGE: Final = (60.0, 150.0)
TRANSPOSE_RANGE: Final = (-5, 6)
GAIN_RANGE_DB: Final = (-20.0, -3.0)
SNR_RANGE_DB: Final = (15.0, 40.0)
RT60_RANGE_S: Final = (0.3, 1.5)
REVERB_WET: Final = 0.3
PEAK_LIMIT: Final = 0.99
NOISE_COLOURS: Final = ("white", "pink")

KICK, SNARE, CLOSED_HAT, CRASH = 36, 38, 42, 49
"""General MIDI percussion keys."""
TUNE_INTERVALS: Final = 10
"""A train chorale whose melody opens with the same this many intervals as an eval chorale's shares its tune."""

MIR_EVAL_QUALITY: Final = {
    "major": "maj",
    "minor": "min",
    "diminished": "dim",
    "augmented": "aug",
    "dominant seventh": "7",
    "minor seventh": "min7",
    "major seventh": "maj7",
    "half-diminished seventh": "hdim7",
    "diminished seventh": "dim7",
}
"""idaw.theory.harmony's quality names → mir_eval's chord shorthands (its one home: idaw.listen.evaluate names
estimated chords with it, idaw.listen.train_chords reads labels back with SHORTHAND_QUALITY)."""
SHORTHAND_QUALITY: Final = {shorthand: quality for quality, shorthand in MIR_EVAL_QUALITY.items()}
"""mir_eval's chord shorthands → idaw.theory.harmony's quality names (MIR_EVAL_QUALITY read backwards)."""
_BASS_DEGREE: Final = {3: "b3", 4: "3", 6: "b5", 7: "5", 8: "#5", 9: "bb7", 10: "b7", 11: "7"}
"""A chord tone's interval above the root (semitones) → mir_eval's scale degree for a slash bass."""


class LabelError(IdawError):
    """A label file is missing, unreadable or not what `render_item` writes."""


class SourceError(IdawError):
    """A corpus piece cannot be an item of the split (see `item_labels`)."""


@dataclass(frozen=True)
class RenderSettings:
    """Everything random about one rendering, drawn by `draw_settings` from a seeded generator."""

    tempo_bpm: float
    """Quarter notes (beats) per minute."""
    programs: tuple[int, ...]
    """One General MIDI program per part, soprano first."""
    drums: bool
    drum_kit: int
    """The drum kit (bank 128 preset) the drum part is played with, when there is one."""
    gain_db: float
    """Peak level of the music before noise, dB relative to full scale."""
    snr_db: float | None
    """Signal-to-noise ratio of the added noise (None: no noise)."""
    noise_colour: str
    """'white' or 'pink', when there is noise."""
    reverb_s: float | None
    """RT60 of the added reverb in seconds (None: dry)."""
    transpose: int
    """Semitones the chorale is moved by (labels included)."""

    def as_json(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (what the label file holds)."""
        out = dataclasses.asdict(self)
        out["programs"] = list(self.programs)
        return out


def item_name(source: str) -> str:
    """File name stem of a source's item ('bach/bwv269' → 'bach_bwv269')."""
    return source.replace("/", "_")


def _generator(source: str, seed: int, split: str, stream: int) -> np.random.Generator:
    """A generator that depends on exactly (source, seed, split, stream): stream 0 draws the settings, stream 1 the
    reverb's and the noise's samples, so settings never depend on how much audio there was."""
    digest = hashlib.sha256(f"{split}\0{source}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little"), stream])


def draw_settings(source: str, seed: int, split: str) -> RenderSettings:
    """The settings of the item (source, seed, split); raises IdawError for an unknown split or a negative seed."""
    _check_split(split)
    if seed < 0:
        raise IdawError(f"seed {seed} is negative; use a whole number >= 0")
    rng = _generator(source, seed, split, 0)
    tempo = round(float(rng.uniform(*TEMPO_RANGE)), 2)
    transpose = int(rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1))
    programs = tuple(int(p) for p in rng.choice(PROGRAMS[split], size=VOICES))
    drums = bool(rng.random() < 0.5)
    kit = int(rng.choice(DRUM_KITS[split]))
    gain = round(float(rng.uniform(*GAIN_RANGE_DB)), 2)
    reverb = round(float(rng.uniform(*RT60_RANGE_S)), 2) if rng.random() < 0.5 else None
    noisy = bool(rng.random() < 0.5)
    colour = str(rng.choice(NOISE_COLOURS))
    snr = round(float(rng.uniform(*SNR_RANGE_DB)), 1)
    return RenderSettings(
        tempo_bpm=tempo,
        programs=programs,
        drums=drums,
        drum_kit=kit,
        gain_db=gain,
        snr_db=snr if noisy else None,
        noise_colour=colour,
        reverb_s=reverb,
        transpose=transpose,
    )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise IdawError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")


# --- sources -------------------------------------------------------------------------------------------------------


def _eval_numbers() -> dict[str, int]:
    """Eval sources → their Riemenschneider numbers (the analysed chorales that line up with their scores)."""
    from idaw.theory.evaluate import CHORALES, UNALIGNED

    return {name: number for number, name in sorted(CHORALES.items()) if number not in UNALIGNED}


@functools.lru_cache(maxsize=1)
def _train_candidates() -> tuple[str, ...]:
    """Four-part Bach chorales of music21's corpus in 3/4 or 4/4 only (from the corpus's metadata, no parsing), not
    among the analysed ones."""
    import music21

    from idaw.theory.evaluate import CHORALES

    analysed = set(CHORALES.values())
    found: set[str] = set()
    bundle = music21.corpus.corpora.CoreCorpus().metadataBundle
    entries: Any = bundle.search("bach/", field="sourcePath")  # iterable at run time, not in music21's types
    for entry in entries:
        path = str(entry.sourcePath)
        metadata = entry.metadata
        if not (path.startswith("bach/") and path.endswith(".mxl")) or metadata is None:
            continue
        name = path[: -len(".mxl")]
        meters = list(getattr(metadata, "timeSignatures", None) or [])
        if meters in (["3/4"], ["4/4"]) and getattr(metadata, "numberOfParts", 0) == VOICES and name not in analysed:
            found.add(name)
    return tuple(sorted(found))


SHARED_TUNES: Final = {
    "bach/bwv11.6": "bach/bwv248.12-2",
    "bach/bwv158.4": "bach/bwv277",
    "bach/bwv2.6": "bach/bwv153.1",
    "bach/bwv261": "bach/bwv33.6",
    "bach/bwv279": "bach/bwv277",
    "bach/bwv303": "bach/bwv302",
    "bach/bwv312": "bach/bwv311",
    "bach/bwv348": "bach/bwv347",
    "bach/bwv37.6": "bach/bwv347",
    "bach/bwv389": "bach/bwv17.7",
    "bach/bwv4.8": "bach/bwv277",
    "bach/bwv77.6": "bach/bwv153.1",
    "bach/bwv80.8": "bach/bwv302",
}
"""Train candidates that share their tune with an eval chorale (`shared_tune` over the whole corpus), left out of
the train list without parsing them; `render_item` checks every train item again, so a missing entry cannot leak."""


def chorale_items(split: str) -> list[str]:
    """Corpus names ('bach/bwv269') of the split's chorales: eval, the analysed chorales that line up with their
    scores, in Riemenschneider's order; train, sorted, the other chorales the corpus's metadata lists as four-part
    and in 3/4 or 4/4, less SHARED_TUNES. `item_labels` refuses the few of those whose parsed score has another
    number of parts or irregular bars (7 of 329); `build_testset` passes over them."""
    _check_split(split)
    if split == "eval":
        return list(_eval_numbers())
    return [name for name in _train_candidates() if name not in SHARED_TUNES]


def _tune(notes: Notes) -> tuple[int, ...]:
    """The opening melodic intervals of the top part (what identifies a chorale's tune in any key)."""
    melody = [n.pitch for n in notes.events if n.voice == 0]
    return tuple(b - a for a, b in itertools.pairwise(melody))[:TUNE_INTERVALS]


@functools.lru_cache(maxsize=1)
def _eval_tunes() -> dict[tuple[int, ...], str]:
    return {_tune(_parse(name)[1]): name for name in _eval_numbers()}


def shared_tune(source: str) -> str | None:
    """The eval chorale whose tune `source` shares (its melody opens with the same intervals), or None."""
    return _eval_tunes().get(_tune(_parse(source)[1]))


@functools.lru_cache(maxsize=4)
def _parse(source: str) -> tuple[Any, Notes]:
    """(music21 score, notes) of a corpus name; IdawError when the corpus has no such piece."""
    import music21

    from idaw.theory.notes import notes_from_score

    try:
        score = music21.corpus.parse(source)
    except (music21.corpus.CorpusException, music21.exceptions21.Music21Exception, OSError) as error:
        raise SourceError(f"cannot read {source!r} from music21's corpus: {one_line(str(error))}") from None
    if not isinstance(score, music21.stream.Score):
        raise SourceError(f"{source!r} in music21's corpus is not one score")
    return score, notes_from_score(score)


# --- labels in score time ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The metric grid of a score, in quarter notes from its start."""

    beats: list[float]
    downbeats: list[float]
    beat_length: float
    bar_length: float


def metric_grid(notes: Notes) -> Grid:
    """Beats (every beat from the first note to the end) and downbeats (bar starts from the first beat on; a
    pickup's start is none) of a score whose bars are regular: every bar line the meter predicts, counted from the
    end of the pickup, is a measure start. A bar split in two (a repeat sign) is fine; a bar of another length is
    not (IdawError)."""
    if notes.time_signature not in ("3/4", "4/4") or abs(notes.beat_length - 1.0) > 1e-9:
        raise SourceError(f"meter {notes.time_signature} is not 3/4 or 4/4")
    if not notes.measure_offsets or not notes.events:
        raise SourceError("the score has no measures or no notes")
    bounds = [*notes.measure_offsets, notes.duration]
    first_length = bounds[1] - bounds[0]
    pickup = first_length if first_length < notes.bar_length - 1e-9 else 0.0
    starts = set(round(o, 6) for o in notes.measure_offsets)
    downbeats: list[float] = []
    position = pickup
    while position < notes.duration - 1e-9:
        if round(position, 6) not in starts:
            raise SourceError(f"irregular bars: no bar line at quarter {position:g}, where the meter puts one")
        downbeats.append(round(position, 6))
        position += notes.bar_length
    first = min(n.offset for n in notes.events)
    phase = pickup % notes.beat_length
    beats: list[float] = []
    position = phase + math.ceil((first - phase) / notes.beat_length - 1e-9) * notes.beat_length
    while position < notes.duration - 1e-9:
        beats.append(round(position, 6))
        position += notes.beat_length
    # A first bar that opens with a rest: its bar line is before the first beat heard, so it is no downbeat either.
    downbeats = [d for d in downbeats if beats and d >= beats[0] - 1e-9]
    return Grid(beats, downbeats, notes.beat_length, notes.bar_length)


def chord_symbol(root: int, quality: str, inversion: int, key: KeyLabel) -> str:
    """mir_eval's name of a chord ('F#:min/b3', 'Bb:7'), its root spelled for `key`; 'X' (unknown, left out of
    mir_eval's scores) for a quality mir_eval has no shorthand for."""
    shorthand = MIR_EVAL_QUALITY.get(quality)
    if shorthand is None:
        return "X"
    name = f"{harmony.spell_pitch_class(root, key)}:{shorthand}"
    tones = harmony.CHORD_TYPES[quality]
    if 0 < inversion < len(tones):
        name += "/" + _BASS_DEGREE[tones[inversion]]
    return name


@dataclass(frozen=True)
class ScoreLabels:
    """Keys and chords of a source in score time (quarter notes), already transposed to how it sounds."""

    home_key: KeyLabel
    keys: list[tuple[float, KeyLabel]]
    """(offset, key) where the key changes, the first at the first beat."""
    chords: list[tuple[float, float, str]]
    """(start, end, mir_eval label), each lasting until the next one, the last until the end of the music."""
    chords_source: str | None


def _moved(key: KeyLabel, semitones: int) -> KeyLabel:
    return KeyLabel((key.tonic + semitones) % 12, key.minor)


def eval_labels(source: str, notes: Notes, transpose: int) -> ScoreLabels:
    """The analyst's local keys and chords of an eval chorale, moved by `transpose` semitones."""
    from idaw.theory.evaluate import analysis_path, read_analysis

    number = _eval_numbers()[source]
    truths = read_analysis(number, notes)
    if not truths:
        raise SourceError(f"the analysis of {source} holds no chords")
    keys: list[tuple[float, KeyLabel]] = []
    chords: list[tuple[float, float, str]] = []
    for i, truth in enumerate(truths):
        end = truths[i + 1].offset if i + 1 < len(truths) else notes.duration
        key = _moved(truth.key, transpose)
        if not keys or keys[-1][1] != key:
            keys.append((truth.offset, key))
        if end > truth.offset + 1e-9:  # two chords written at one time: the later one sounds
            chords.append(
                (truth.offset, end, chord_symbol((truth.root + transpose) % 12, truth.quality, truth.inversion, key))
            )
    credit = (
        f"{os.path.basename(analysis_path(number))} analysis by Andrew Jones, proofread by Dmitri Tymoczko and "
        "Hamish Robb (music21 corpus)"
    )
    return ScoreLabels(_moved(truths[-1].key, transpose), keys, chords, credit)


def train_labels(score: Any, notes: Notes, grid: Grid, transpose: int) -> ScoreLabels:
    """One global key (music21's `analyze('key')`) and weak chord labels: idaw's own symbolic analysis of the
    score at each beat (idaw.theory.decode; 0.80 of beats carry the analysts' full Roman numeral on the analysed
    chorales), moved by `transpose`."""
    from idaw.theory.cadences import phrase_ends
    from idaw.theory.decode import label_piece
    from idaw.theory.progressions import corpus_model

    key = _moved(KeyLabel.from_music21(score.analyze("key")), transpose)
    _keys, labels = label_piece(notes, grid.beats, corpus_model(), phrase_ends=phrase_ends(notes))
    chords: list[tuple[float, float, str]] = []
    for i, label in enumerate(labels):
        end = labels[i + 1].offset if i + 1 < len(labels) else notes.duration
        name = chord_symbol((label.root + transpose) % 12, label.quality, label.inversion, _moved(label.key, transpose))
        if chords and chords[-1][2] == name:
            chords[-1] = (chords[-1][0], end, name)
        else:
            chords.append((label.offset, end, name))
    return ScoreLabels(key, [(grid.beats[0], key)], chords, WEAK_CHORDS_SOURCE)


# --- rendering -----------------------------------------------------------------------------------------------------


def write_midi(notes: Notes, grid: Grid, settings: RenderSettings, path: Path) -> float:
    """Write the chorale (one instrument per part, LEGATO) and its drum part as a MIDI file; returns the time in
    seconds where the music ends (LEAD_IN_S before the first beat)."""
    import pretty_midi

    spb = 60.0 / settings.tempo_bpm

    def seconds(offset: float) -> float:
        return LEAD_IN_S + offset * spb

    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=settings.tempo_bpm)
    parts = [pretty_midi.Instrument(program=p, name=f"part {i + 1}") for i, p in enumerate(settings.programs)]
    for event in notes.events:
        start = seconds(event.offset)
        parts[event.voice].notes.append(
            pretty_midi.Note(
                velocity=VOICE_VELOCITY,
                pitch=event.pitch + settings.transpose,
                start=start,
                end=start + event.duration * LEGATO * spb,
            )
        )
    midi.instruments.extend(parts)
    if settings.drums:
        midi.instruments.append(_drum_part(grid, settings, seconds(0.0), spb))
    midi.write(str(path))
    return seconds(notes.duration)


def _drum_part(grid: Grid, settings: RenderSettings, zero: float, spb: float) -> Any:
    """A plain groove on the beats: kick on beat 1 (and 3 in 4/4), snare on the other beats of 3/4 and on 2 and 4
    of 4/4, closed hi-hat on every eighth, a crash on the first downbeat."""
    import pretty_midi

    drums = pretty_midi.Instrument(program=settings.drum_kit, is_drum=True, name="drums")
    per_bar = round(grid.bar_length / grid.beat_length)
    first_bar = grid.downbeats[0] if grid.downbeats else grid.beats[0]

    def hit(key: int, offset: float, velocity: int) -> None:
        start = zero + offset * spb
        drums.notes.append(pretty_midi.Note(velocity=velocity, pitch=key, start=start, end=start + 0.1))

    for beat in grid.beats:
        position = round((beat - first_bar) / grid.beat_length) % per_bar
        if position == 0 or (per_bar == 4 and position == 2):
            hit(KICK, beat, 100)
        else:
            hit(SNARE, beat, 90)
        hit(CLOSED_HAT, beat, 70)
        hit(CLOSED_HAT, beat + grid.beat_length / 2, 55)
    if grid.downbeats:
        hit(CRASH, grid.downbeats[0], 100)
    return drums


def fluidsynth_render(mid: Path, rate: int = SAMPLE_RATE) -> F64:
    """The MIDI file played by fluidsynth with FluidR3_GM, dry (its reverb and chorus off), as mono float samples.
    Raises IdawError when fluidsynth or the soundfont is missing or fluidsynth fails."""
    import soundfile as sf

    exe = shutil.which("fluidsynth")
    if exe is None or not SOUNDFONT.exists():
        raise IdawError(f"rendering needs fluidsynth and {SOUNDFONT} (Debian: fluidsynth, fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory(prefix="idaw-testset-") as tmp:
        wav = Path(tmp) / "render.wav"
        # Float samples: four parts and drums may sum past full scale, which 16-bit output would clip.
        command = fluidsynth_command(exe, mid, wav, SOUNDFONT, rate, gain=0.5, float_samples=True)
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not wav.exists():
            raise IdawError(f"fluidsynth failed: {one_line(done.stderr)[-300:]}")
        audio, got_rate = sf.read(wav, dtype="float64", always_2d=True)
    if got_rate != rate:
        raise IdawError(f"fluidsynth wrote {got_rate} Hz, expected {rate}")
    return np.asarray(audio.mean(axis=1), dtype=np.float64)


def reverb_response(rt60: float, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> F64:
    """An impulse response of exponentially decaying noise, 60 dB down after `rt60` seconds, of unit energy."""
    t = np.arange(round(rt60 * rate)) / rate
    response = rng.standard_normal(len(t)) * np.exp(-math.log(1000.0) * t / rt60)
    return np.asarray(response / np.sqrt(np.sum(response**2)), dtype=np.float64)


def coloured_noise(length: int, colour: str, rng: np.random.Generator) -> F64:
    """Gaussian noise of unit power: 'white' (flat spectrum) or 'pink' (power falling 3 dB per octave)."""
    noise = rng.standard_normal(length)
    if colour == "pink":
        spectrum = np.fft.rfft(noise)
        bins = np.arange(len(spectrum), dtype=np.float64)
        bins[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(bins), n=length)
    return np.asarray(noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12), dtype=np.float64)


def finish_audio(dry: F64, music: tuple[float, float], settings: RenderSettings, rng: np.random.Generator) -> F64:
    """The rendered audio cut to end TAIL_S after the music, with reverb, level and noise applied, peak ≤ PEAK_LIMIT.

    `music` is (start, end) of the notes in seconds: the noise's level is set against the signal's power there."""
    from scipy.signal import fftconvolve

    length = round((music[1] + TAIL_S) * SAMPLE_RATE)
    audio = np.zeros(length)
    audio[: min(length, len(dry))] = dry[:length]
    if settings.reverb_s is not None:
        wet = fftconvolve(audio, reverb_response(settings.reverb_s, rng))[:length]
        audio = (1.0 - REVERB_WET) * audio + REVERB_WET * wet
    fade = round(FADE_S * SAMPLE_RATE)
    audio[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.max(np.abs(audio)))
    if peak <= 0.0:
        raise IdawError("fluidsynth rendered silence")
    audio *= 10.0 ** (settings.gain_db / 20.0) / peak
    if settings.snr_db is not None:
        span = audio[round(music[0] * SAMPLE_RATE) : round(music[1] * SAMPLE_RATE)]
        power = float(np.mean(span**2))
        noise = coloured_noise(length, settings.noise_colour, rng)
        audio += noise * math.sqrt(power / 10.0 ** (settings.snr_db / 10.0))
    peak = float(np.max(np.abs(audio)))
    if peak > PEAK_LIMIT:
        audio *= PEAK_LIMIT / peak
    return audio


# --- items ---------------------------------------------------------------------------------------------------------


def _seconds(offset: float, tempo_bpm: float) -> float:
    """Seconds from the start of the audio at score time `offset` (quarter notes)."""
    return round(LEAD_IN_S + offset * 60.0 / tempo_bpm, 6)


def item_labels(source: str, seed: int, split: str) -> tuple[dict[str, Any], RenderSettings, Grid, Notes]:
    """The label file's content for (source, seed, split) and what rendering needs. Raises IdawError for a source
    that cannot be an item of the split (unknown, not four parts, irregular bars, a train chorale with an eval tune,
    a transposition out of MIDI's range)."""
    settings = draw_settings(source, seed, split)
    if split == "eval" and source not in _eval_numbers():
        raise SourceError(f"{source!r} is not an eval chorale; they are: {', '.join(_eval_numbers())}")
    score, notes = _parse(source)
    if notes.voices != VOICES:
        raise SourceError(f"{source} has {notes.voices} parts; the test set plays four-part chorales")
    if split == "train":
        if source in _eval_numbers():
            raise SourceError(f"{source} is an eval chorale and cannot be in the train split")
        tune_of = shared_tune(source)
        if tune_of is not None:
            raise SourceError(f"{source} shares its tune with eval chorale {tune_of}; it stays out of training")
    pitches = [n.pitch + settings.transpose for n in notes.events]
    if min(pitches) < 0 or max(pitches) > 127:
        raise SourceError(f"{source} moved by {settings.transpose} semitones leaves MIDI's pitch range")
    try:
        grid = metric_grid(notes)
    except SourceError as error:
        raise SourceError(f"{source}: {error}") from None
    if split == "eval":
        labels = eval_labels(source, notes, settings.transpose)
    else:
        labels = train_labels(score, notes, grid, settings.transpose)
    tempo = settings.tempo_bpm
    end = _seconds(notes.duration, tempo)
    content: dict[str, Any] = {
        "format": LABEL_FORMAT,
        "source": source,
        "split": split,
        "seed": seed,
        "settings": settings.as_json(),
        "sample_rate": SAMPLE_RATE,
        "duration_s": round(round((end + TAIL_S) * SAMPLE_RATE) / SAMPLE_RATE, 6),
        "music_start_s": _seconds(min(n.offset for n in notes.events), tempo),
        "music_end_s": end,
        "tempo_bpm": tempo,
        "meter": notes.time_signature,
        "beats": [_seconds(b, tempo) for b in grid.beats],
        "downbeats": [_seconds(d, tempo) for d in grid.downbeats],
        "key": labels.home_key.name,
        "key_mir_eval": labels.home_key.name,
        "keys": [[_seconds(at, tempo), key.name] for at, key in labels.keys],
        "chords": [[_seconds(s, tempo), _seconds(e, tempo), name] for s, e, name in labels.chords],
        "chords_source": labels.chords_source,
    }
    return content, settings, grid, notes


def _label_text(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1) + "\n"


def _up_to_date(json_path: Path, audio_path: Path, content: dict[str, Any]) -> bool:
    """True when both files are there and the label file holds exactly these labels (same format and settings)."""
    if not (json_path.is_file() and audio_path.is_file()):
        return False
    try:
        return bool(json.loads(json_path.read_text(encoding="utf-8")) == content)
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def render_item(source: str, out_dir: Path, seed: int, split: str) -> Path:
    """Render one chorale into `out_dir` as NAME.flac and NAME.json (NAME: `item_name`); returns the label file's
    path. Nothing is rendered when both files are there and the label file is the one this call would write.
    Raises IdawError (one line) for a source that cannot be an item, a missing fluidsynth or an unwritable folder."""
    content, settings, grid, notes = item_labels(source, seed, split)
    out_dir = Path(out_dir)
    json_path = out_dir / f"{item_name(source)}.json"
    audio_path = json_path.with_suffix(".flac")
    if _up_to_date(json_path, audio_path, content):
        return json_path
    import soundfile as sf

    _make_folder(out_dir)
    with tempfile.TemporaryDirectory(prefix="idaw-testset-") as tmp:
        mid = Path(tmp) / "item.mid"
        end = write_midi(notes, grid, settings, mid)
        dry = fluidsynth_render(mid)
    audio = finish_audio(dry, (content["music_start_s"], end), settings, _generator(source, seed, split, 1))
    with replacing(audio_path, "audio file") as part:
        sf.write(part, audio.astype(np.float32), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    with replacing(json_path, "label file") as part:
        part.write_text(_label_text(content), encoding="utf-8")
    return json_path


def _make_folder(folder: Path) -> None:
    """Create `folder` (and its parents) unless it is there; IdawError when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IdawError(f"cannot create folder {folder}: {os_reason(error)}") from None


def build_testset(
    out_dir: Path, split: str = "eval", count: int | None = None, seed: int = 0, progress: bool = True
) -> list[Path]:
    """Render the first `count` items of the split (all when None or more than there are) into `out_dir`, each with
    `seed`; returns their label files' paths. A train chorale that cannot be an item (`item_labels`) is passed
    over, the next one taking its place; an eval chorale that cannot is an error (IdawError)."""
    _check_split(split)
    if count is not None and count < 1:
        raise IdawError(f"count {count} is not a whole number >= 1")
    _make_folder(Path(out_dir))  # before the progress bar starts, so a bad folder is the only line printed
    sources = chorale_items(split)
    wanted = len(sources) if count is None else min(count, len(sources))
    from tqdm import tqdm

    done: list[Path] = []
    with tqdm(total=wanted, desc=f"rendering {split}", unit="item", disable=not progress) as bar:
        for source in sources:
            if len(done) == wanted:
                break
            try:
                done.append(render_item(source, out_dir, seed, split))
            except SourceError as error:
                if split == "eval":
                    raise
                bar.write(f"{source} left out: {error}")
                continue
            bar.update(1)
    return done


# --- reading labels ------------------------------------------------------------------------------------------------


def _times(value: Any, what: str, duration: float) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in value):
        raise LabelError(f"{what} is not a list of numbers")
    times = [float(t) for t in value]
    if any(not 0.0 <= t <= duration for t in times):
        raise LabelError(f"{what} has a time outside [0, duration_s]")
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise LabelError(f"{what} is not strictly increasing")
    return times


def validate_labels(labels: Any) -> dict[str, Any]:
    """`labels` when it is a label file's content as `render_item` writes it (types, ranges, order, consistency);
    raises LabelError naming the first problem."""
    from idaw.theory.keys import parse_key_name

    if not isinstance(labels, dict):
        raise LabelError("the labels are not a JSON object")
    required = {
        "format": int,
        "source": str,
        "split": str,
        "seed": int,
        "settings": dict,
        "sample_rate": int,
        "duration_s": float,
        "tempo_bpm": float,
        "meter": str,
        "beats": list,
        "downbeats": list,
        "key": str,
        "key_mir_eval": str,
        "keys": list,
        "chords": list,
    }
    for name, kind in required.items():
        value = labels.get(name)
        ok = isinstance(value, int | float) if kind is float else isinstance(value, kind)
        if not ok or isinstance(value, bool):
            raise LabelError(f"field {name!r} is missing or not a {kind.__name__}")
    if labels["format"] != LABEL_FORMAT:
        raise LabelError(f"label format {labels['format']} is not {LABEL_FORMAT}; render the item again")
    if labels["split"] not in SPLITS:
        raise LabelError(f"split {labels['split']!r} is not one of {', '.join(SPLITS)}")
    duration = float(labels["duration_s"])
    if not 0.0 < duration < 3600.0 or not 0.0 < float(labels["tempo_bpm"]) < 1000.0:
        raise LabelError("duration_s or tempo_bpm is out of range")
    if labels["meter"] not in ("3/4", "4/4"):
        raise LabelError(f"meter {labels['meter']!r} is not 3/4 or 4/4")
    beats = _times(labels["beats"], "beats", duration)
    downbeats = _times(labels["downbeats"], "downbeats", duration)
    if not beats or not set(downbeats) <= set(beats):
        raise LabelError("there are no beats, or a downbeat is not a beat")
    for name in ("key", "key_mir_eval"):
        if parse_key_name(labels[name]) is None:
            raise LabelError(f"{name} {labels[name]!r} names no key")
    for entry in labels["keys"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)):
            raise LabelError("keys is not a list of [time, key name] pairs")
        if parse_key_name(entry[1]) is None:
            raise LabelError(f"keys holds {entry[1]!r}, which names no key")
    _times([e[0] for e in labels["keys"]], "keys' times", duration)
    for entry in labels["chords"]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], str)):
            raise LabelError("chords is not a list of [start, end, label] triples")
        _times(entry[:2], "a chord's start and end", duration)
    _times([e[0] for e in labels["chords"]], "chords' starts", duration)
    return labels


def load_labels(json_path: Path) -> dict[str, Any]:
    """The labels of one item, read from its JSON file and checked (`validate_labels`); LabelError otherwise."""
    try:
        text = Path(json_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelError(f"cannot read label file {json_path}: {one_line(str(error))}") from None
    try:
        content = json.loads(text)
    except ValueError as error:
        raise LabelError(f"label file {json_path} is not JSON: {one_line(str(error))}") from None
    try:
        return validate_labels(content)
    except LabelError as error:
        raise LabelError(f"label file {json_path}: {error}") from None


# --- command line --------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error in one line (the full usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: the option's text as a whole number of at least `least`, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is not a whole number >= {least}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit code."""
    parser = _Parser(prog="python -m idaw.listen.testset", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder the items are written to")
    parser.add_argument("--split", choices=SPLITS, default="eval", help="which split (default: eval)")
    parser.add_argument(
        "--count", type=_whole_number(1), default=None, help="render only the first N items (default: all)"
    )
    parser.add_argument("--seed", type=_whole_number(0), default=0, help="seed of every item's settings (default: 0)")
    args = parser.parse_args(argv)
    try:
        paths = build_testset(args.out, args.split, args.count, args.seed, progress=True)
    except IdawError as error:
        print(f"{parser.prog}: error: {one_line(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        discard_pending()
        return 130
    print(f"{len(paths)} items in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
