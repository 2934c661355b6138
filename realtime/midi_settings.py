"""What the MIDI generator is told: key and scale, tempo, channels, emotion, and which nets it runs.

The generator itself runs in the C++ core (plugin_cpp/core/include/idaw/midi_generator.h, docs/MIDI.md); this module
turns command-line options into its control snapshot and installs the exported nets. With `--emotion manual` (the
default) the emotion embedding comes from valence and arousal through the C++ core's map
(idaw_core.emotion_from_valence_arousal, plugin_cpp/core/include/idaw/emotion_map.h), the one the training labels
(realtime/nets/labels.py, ``emotion_dims`` with neutral musical cues) and the plugin use: dims 0-1 as given,
2 dominance 0, 3 intensity, 4-11 Plutchik intensities, 12-63 (latent) 0, as realtime/nets/README.md asks of any
non-audio front end. With `--emotion input` the EmotionRecognizer listens to the input audio and supplies the whole
embedding (realtime/emotion_input.py); it starts at zeros, as in training before the first frame is heard.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import idaw_core
from idaw.base.errors import IdawError
from idaw.theory.pitch_names import PITCH_NAMES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = REPO / "realtime" / "nets" / "weights"
"""Where `idaw train nets` ships the trained nets (<Name>.json, RTNeural format)."""
DEFAULT_TEMPO = 120.0
DEFAULT_KEY = "C:major"
EMOTION_SOURCES = ("manual", "input")
"""--emotion: 'manual' takes --valence/--arousal, 'input' the EmotionRecognizer on the input audio."""
MAX_MOOD_CHARACTERS = 500
"""--mood reads at most this much text (MiniLM reads 256 word pieces at most anyway)."""

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SCALES: tuple[str, ...] = tuple(str(name) for name, _ in idaw_core.MIDI_SCALES)
"""Scale names in the core's order (the index is what the control snapshot carries)."""
SCALE_MASKS: tuple[int, ...] = tuple(int(mask) for _, mask in idaw_core.MIDI_SCALES)
"""Pitch classes of each scale above its tonic, as a 12-bit mask (bit k = k semitones up)."""
NETS: tuple[str, ...] = tuple(str(name) for name, _, _ in idaw_core.MIDI_NETS)
"""The nets the generator runs, as their exported files are named (<name>.json)."""


@dataclass(frozen=True)
class MidiSettings:
    """One full control state of the generator (see idaw_core.Engine.set_midi_control)."""

    tempo_bpm: float = DEFAULT_TEMPO
    key_tonic: int = 0
    scale: int = 0
    melody_channel: int = 0
    """0-based (MIDI channel 1 is 0)."""
    chord_channel: int = 1
    bass_channel: int = 2
    drum_channel: int = 9
    """General MIDI percussion: channel 10."""
    theory: bool = True
    """Whether the theory layer filters the nets' choices (idaw/theory_layer.h)."""
    emotion: tuple[float, ...] = field(default_factory=lambda: tuple(emotion_from_valence_arousal(0.0, 0.0)))
    seed: int = 1
    emotion_source: str = "manual"
    """One of EMOTION_SOURCES; with 'input' `emotion` is only the starting point (zeros)."""
    mood: str | None = None
    """The words --mood read valence and arousal from (None when they were given as numbers)."""

    @property
    def track_names(self) -> dict[int, str]:
        """The name of each channel's track in a MIDI file ('melody + chords' where two share a channel)."""
        roles = (
            (self.melody_channel, "melody"),
            (self.chord_channel, "chords"),
            (self.bass_channel, "bass"),
            (self.drum_channel, "drums"),
        )
        names: dict[int, str] = {}
        for channel, role in roles:
            names[channel] = f"{names[channel]} + {role}" if channel in names else role
        return names

    @property
    def key_name(self) -> str:
        """The key as `--key` writes it, e.g. 'A:minor'."""
        return f"{PITCH_NAMES[self.key_tonic]}:{SCALES[self.scale]}"

    def describe(self) -> dict[str, Any]:
        """The settings as plain JSON values (for reports and logs)."""
        return {
            "tempo_bpm": self.tempo_bpm,
            "key": self.key_name,
            "melody_channel": self.melody_channel + 1,
            "chord_channel": self.chord_channel + 1,
            "bass_channel": self.bass_channel + 1,
            "drum_channel": self.drum_channel + 1,
            "theory": self.theory,
            "valence": self.emotion[0],
            "arousal": self.emotion[1],
            "emotion_source": self.emotion_source,
            "mood": self.mood,
            "seed": self.seed,
        }

    def emotion_text(self) -> str:
        """How the emotion was set, for a summary line: 'valence V, arousal A' and the --mood words that gave them."""
        numbers = f"valence {self.emotion[0]:+.2f}, arousal {self.emotion[1]:+.2f}"
        return f"mood '{self.mood}' ({numbers})" if self.mood is not None else numbers


def parse_key(text: str) -> tuple[int, int]:
    """(tonic pitch class, scale index) for 'C:major', 'F#:minor', 'Bb:dorian' or just 'Eb' (major); IdawError
    naming the accepted forms otherwise."""
    name, _, scale = text.strip().partition(":")
    scale = scale.strip().lower().replace("-", "_") or "major"
    letter = name[:1].upper()
    if letter not in PITCH_CLASSES or scale not in SCALES:
        raise IdawError(
            f"--key '{text}' is not a key; write TONIC:SCALE, e.g. C:major or F#:minor, with a scale "
            f"from: {', '.join(SCALES)}"
        )
    tonic = PITCH_CLASSES[letter]
    for accidental in name[1:]:
        if accidental in "#♯":
            tonic += 1
        elif accidental in "b♭":
            tonic -= 1
        else:
            raise IdawError(f"--key '{text}': '{name}' is not a note name (C, C#, Db, ... B)")
    return tonic % 12, SCALES.index(scale)


def emotion_from_valence_arousal(valence: float, arousal: float) -> npt.NDArray[np.float32]:
    """The 64-dim float32 emotion embedding for a (valence, arousal) point, each clamped to [-1, 1]: the core's map
    (see the module docstring)."""
    return idaw_core.emotion_from_valence_arousal(valence, arousal)


def add_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the options every MIDI-generating command shares (tempo, key, emotion, channels, nets, file); returns
    the group so a command can add its own."""
    group = parser.add_argument_group("MIDI generation")
    group.add_argument(
        "--midi-out", default=None, metavar="FILE", help="write the generated notes to this standard MIDI file"
    )
    group.add_argument(
        "--tempo",
        type=float,
        default=DEFAULT_TEMPO,
        metavar="BPM",
        help=f"tempo of the generated music, {idaw_core.MIDI_MIN_TEMPO:g}..{idaw_core.MIDI_MAX_TEMPO:g}"
        f" quarter notes per minute (default {DEFAULT_TEMPO:g})",
    )
    group.add_argument(
        "--key",
        default=DEFAULT_KEY,
        metavar="TONIC:SCALE",
        help=f"key the notes keep to, e.g. A:minor (default {DEFAULT_KEY}); scales: {', '.join(SCALES)}",
    )
    group.add_argument(
        "--emotion",
        choices=EMOTION_SOURCES,
        default="manual",
        help="where the emotion comes from: 'manual' (default) takes --valence/--arousal; 'input' runs the "
        "EmotionRecognizer (EmotionRecognizer.json in the --midi-models folder) on the input audio, off the "
        "audio thread, and follows what it hears",
    )
    group.add_argument(
        "--valence",
        type=float,
        default=0.0,
        metavar="V",
        help="emotion (--emotion manual): valence, -1 (negative) .. 1 (positive) (default 0)",
    )
    group.add_argument(
        "--arousal",
        type=float,
        default=0.0,
        metavar="A",
        help="emotion (--emotion manual): arousal, -1 (calm) .. 1 (excited) (default 0)",
    )
    group.add_argument(
        "--mood",
        default=None,
        metavar="TEXT",
        help='emotion (--emotion manual) from words instead of --valence/--arousal, e.g. "melancholic but hopeful" '
        f"(read by all-MiniLM-L6-v2 on Russell's circumplex; at most {MAX_MOOD_CHARACTERS} characters)",
    )
    group.add_argument(
        "--midi-channel",
        type=int,
        default=1,
        metavar="N",
        help="MIDI channel of the melody, 1..16 (default 1)",
    )
    group.add_argument(
        "--chord-channel",
        type=int,
        default=2,
        metavar="N",
        help="MIDI channel of the chords, 1..16 (default 2; the melody's channel works too: the chords then stay "
        "below the melody's range)",
    )
    group.add_argument(
        "--bass-channel", type=int, default=3, metavar="N", help="MIDI channel of the bass, 1..16 (default 3)"
    )
    group.add_argument(
        "--drum-channel",
        type=int,
        default=10,
        metavar="N",
        help="MIDI channel of the drums (General MIDI drum numbers), 1..16 (default 10, General MIDI percussion)",
    )
    group.add_argument(
        "--no-theory",
        dest="theory",
        action="store_false",
        help="let the nets' choices through unfiltered (the music-theory layer off: no cadence plan, no voice "
        "leading), to hear or measure what the layer does",
    )
    group.add_argument(
        "--midi-models",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with MelodyTransformer.json, HarmonyPredictor.json, DynamicsEngine.json and "
        f"GroovePredictor.json (default {DEFAULT_MODELS.relative_to(REPO)})",
    )
    group.add_argument(
        "--midi-seed",
        type=int,
        default=1,
        metavar="N",
        help="seed of the humanisation (velocity, timing and articulation spread) (default 1)",
    )
    return group


def settings_from_args(args: argparse.Namespace) -> MidiSettings:
    """The validated settings the options describe; IdawError for a value out of range."""
    lo, hi = float(idaw_core.MIDI_MIN_TEMPO), float(idaw_core.MIDI_MAX_TEMPO)
    if not (lo <= args.tempo <= hi):
        raise IdawError(f"--tempo {args.tempo:g} is out of range; allowed: {lo:g}..{hi:g} BPM")
    for name in ("valence", "arousal"):
        value = getattr(args, name)
        if not (-1.0 <= value <= 1.0):
            raise IdawError(f"--{name} {value:g} is out of range; allowed: -1..1")
    source = getattr(args, "emotion", "manual")
    if source not in EMOTION_SOURCES:
        raise IdawError(f"--emotion {source} is not a source; allowed: {', '.join(EMOTION_SOURCES)}")
    if source == "input" and (args.valence != 0.0 or args.arousal != 0.0):
        raise IdawError("--valence/--arousal set the emotion by hand; drop them with --emotion input")
    words = getattr(args, "mood", None)
    valence, arousal = args.valence, args.arousal
    if words is not None:
        words = " ".join(words.split())
        if source == "input":
            raise IdawError("--mood sets the emotion from words; drop it with --emotion input")
        if args.valence != 0.0 or args.arousal != 0.0:
            raise IdawError("--mood sets valence and arousal from words; drop --valence/--arousal with it")
        if not words:
            raise IdawError('--mood needs words, e.g. --mood "melancholic but hopeful"')
        if len(words) > MAX_MOOD_CHARACTERS:
            raise IdawError(f"--mood takes at most {MAX_MOOD_CHARACTERS} characters, got {len(words)}")
        from idaw.text.mood import mood

        valence, arousal, _ = mood(words)
    emotion = (
        np.zeros(int(idaw_core.EMOTION_DIMS), np.float32)
        if source == "input"
        else emotion_from_valence_arousal(valence, arousal)
    )
    channels = (
        ("--midi-channel", args.midi_channel),
        ("--chord-channel", args.chord_channel),
        ("--bass-channel", args.bass_channel),
        ("--drum-channel", args.drum_channel),
    )
    for flag, channel in channels:
        if not 1 <= channel <= 16:
            raise IdawError(f"{flag} {channel} is out of range; allowed: 1..16")
    tonic, scale = parse_key(args.key)
    return MidiSettings(
        tempo_bpm=float(args.tempo),
        key_tonic=tonic,
        scale=scale,
        melody_channel=args.midi_channel - 1,
        chord_channel=args.chord_channel - 1,
        bass_channel=args.bass_channel - 1,
        drum_channel=args.drum_channel - 1,
        theory=bool(args.theory),
        emotion=tuple(float(x) for x in emotion),
        seed=int(args.midi_seed) & 0xFFFFFFFFFFFFFFFF,
        emotion_source=source,
        mood=words,
    )


def nets_folder(directory: Path | None) -> Path:
    """The folder the nets come from (default DEFAULT_MODELS), after checking it holds all four; IdawError naming
    what is missing and how to get it otherwise."""
    folder = DEFAULT_MODELS if directory is None else directory
    missing = [name for name in NETS if not (folder / f"{name}.json").is_file()]
    if missing:
        hint = (
            "train them with `idaw train nets`, or write untrained ones for a test with "
            "`python -m realtime.nets.export_nets DIR` and pass --midi-models DIR"
        )
        raise IdawError(f"no {', '.join(f'{m}.json' for m in missing)} in {folder} ({hint})")
    return folder


def install_nets(engine: idaw_core.Engine, directory: Path | None) -> list[str]:
    """Loads <Name>.json of the four nets from `directory` (default DEFAULT_MODELS) into the engine's generator;
    returns the paths loaded. IdawError when the folder or a file is missing or not a valid model."""
    folder = nets_folder(directory)
    loaded = []
    for name in NETS:
        path = folder / f"{name}.json"
        try:
            engine.install_midi_net(name, str(path))
        except ValueError as error:
            raise IdawError(f"cannot use {path} as the {name}: {error}") from None
        loaded.append(str(path))
    return loaded


def push(
    engine: idaw_core.Engine,
    settings: MidiSettings,
    enabled: bool,
    sequence: int = 0,
    beat_anchor: int = 0,
    chord_plan: Sequence[int] = (),
    start_voicing: Sequence[int] = (),
    start_melody: int = -1,
) -> None:
    """Queue the settings (on or off) for the audio thread; IdawError if the engine's control queue is full.
    beat_anchor: the engine sample time of a heard beat the grid's beats lock to (0: none; see midi_generator.h).
    chord_plan: up to 16 chord classes that bar b of the grid plays as chord_plan[b % len] (-1: the nets choose).
    start_voicing (bass and three upper pitches) and start_melody: what sounded on the bar line before the grid this
    control starts, which its first bar leads from (midi_generator.h, MidiControl::start_bass)."""
    emotion = np.ascontiguousarray(settings.emotion, dtype=np.float32)
    if not engine.set_midi_control(
        enabled,
        settings.tempo_bpm,
        settings.key_tonic,
        settings.scale,
        settings.melody_channel,
        settings.chord_channel,
        emotion,
        settings.seed,
        sequence,
        bass_channel=settings.bass_channel,
        drum_channel=settings.drum_channel,
        theory=settings.theory,
        beat_anchor=beat_anchor,
        chord_plan=list(chord_plan),
        start_voicing=list(start_voicing),
        start_melody=start_melody,
    ):
        raise IdawError("the MIDI generator's control queue is full (is the audio running?)")


def in_key(pitch: int, key_tonic: int, scale: int) -> bool:
    """True when the generator may play a MIDI pitch in the key: the scale's pitch classes, plus a major or minor
    key's raised leading tone in minor (its dominant chords; the core's theory_key_mask)."""
    return bool((idaw_core.midi_key_mask(key_tonic, scale) >> (pitch % 12)) & 1)
