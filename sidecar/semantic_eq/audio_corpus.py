"""Source audio for the audio encoder: pink noise, music21 corpus pieces rendered with FluidR3_GM, and recorded
drum and instrument samples from Debian's hydrogen-data and lmms-common packages.

Every clip is mono float32 at 44.1 kHz, scaled to -24 dBFS RMS, with a `group` (piece or sample file) and a
split ('train', 'val' or 'test') decided by group, so no held-out clip shares a piece or a sample file with
training. Corpus pieces get GM programs and octave shifts from ARRANGEMENTS plus a seeded random program set.
Renders are cached under ~/.cache/idaw/semantic_eq/clips, never in the repository.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from idaw.base.fluidsynth import SOUNDFONT, fluidsynth_command
from sidecar.semantic_eq.labelled import cache_dir

F32 = npt.NDArray[np.float32]
RATE = 44100
LEVEL_DB = -24.0
DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")
LMMS_FOLDERS = ("instruments", "stringsnpads", "basses", "bassloops", "beats", "drums", "latin", "misc")
ARRANGEMENTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("piano", (0, 0, 0, 0), (0, 0, 0, 0)),
    ("organ", (19, 19, 19, 19), (0, 0, 0, 0)),
    ("strings", (40, 41, 42, 43), (0, 0, 0, -12)),
    ("brass", (56, 56, 57, 58), (0, 0, 0, -12)),
    ("winds", (73, 68, 71, 70), (12, 0, 0, 0)),
    ("guitars", (24, 25, 25, 33), (0, 0, 0, -12)),
    ("epiano-bass", (4, 4, 4, 32), (0, 0, 0, -12)),
    ("choir", (52, 52, 52, 52), (0, 0, 0, 0)),
    ("bells", (9, 11, 8, 0), (12, 12, 0, 0)),
    ("synth", (81, 89, 50, 38), (0, 0, 0, -12)),
    ("sax-cello", (65, 66, 42, 43), (0, 0, 0, -12)),
    ("harp-flute", (46, 73, 46, 46), (12, 12, 0, 0)),
)
"""(name, GM program per part, transposition per part in semitones) for corpus renders."""
MELODIC_PROGRAMS = (
    0,
    1,
    2,
    4,
    5,
    6,
    7,
    8,
    11,
    12,
    16,
    19,
    21,
    24,
    25,
    26,
    27,
    29,
    32,
    33,
    35,
    40,
    41,
    42,
    45,
    46,
    48,
    52,
    56,
    57,
    58,
    60,
    61,
    64,
    65,
    66,
    68,
    69,
    70,
    71,
    73,
    74,
    79,
    80,
    81,
    88,
    89,
    95,
)
"""GM programs random arrangements draw from (no percussion, no sound effects)."""


@dataclass(frozen=True)
class Clip:
    """One source clip: name, kind ('pink' | 'corpus' | 'drums' | 'samples'), group, split and audio."""

    name: str
    kind: str
    group: str
    split: str
    audio: F32


def _scaled(x: F32) -> F32:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    out: F32 = (x * (10.0 ** (LEVEL_DB / 20.0) / rms)).astype(np.float32) if rms > 0 else x
    return out


def group_split(group: str, seed: int, test_fraction: float = 0.25, val_fraction: float = 0.15) -> str:
    """'test', 'val' or 'train' for a group, from a seeded hash (test groups do not depend on val_fraction)."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    u = int.from_bytes(digest[:4], "big") / 2**32
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def pink_noise(seconds: float, seed: int) -> F32:
    """Pink (1/f power) Gaussian noise at RATE, scaled to the corpus level."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0.0
    return _scaled(np.fft.irfft(spec, n).astype(np.float32))


def _render_midi(midi: Path, out: Path) -> F32:
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None or not SOUNDFONT.exists():
        raise RuntimeError("fluidsynth and fluid-soundfont-gm are needed to render corpus pieces")
    subprocess.run(
        fluidsynth_command(fluidsynth, midi, out, SOUNDFONT, RATE, gain=0.5, dry=False),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    audio, _ = sf.read(out, dtype="float32", always_2d=True)
    mono: F32 = audio.mean(axis=1)
    return mono


def corpus_clip(path: str, arrangement: int, seconds: float) -> F32:
    """A music21 corpus piece with one arrangement's programs and octaves, rendered (cached) and cropped."""
    import mido
    from music21 import corpus

    if arrangement < len(ARRANGEMENTS):
        name, programs, shifts = ARRANGEMENTS[arrangement]
    else:  # a seeded random ensemble from the melodic GM programs, the lowest part an octave down
        rng = np.random.default_rng(arrangement)
        programs = tuple(int(p) for p in rng.choice(MELODIC_PROGRAMS, size=4))
        shifts = (12 * int(rng.integers(0, 2)), 0, 0, -12 * int(rng.integers(0, 2)))
        name = "random-" + "-".join(map(str, programs)) + "-" + "-".join(map(str, shifts))
    key = hashlib.sha256(f"{path}|{name}|{seconds}".encode()).hexdigest()[:16]
    cached = cache_dir() / "clips" / f"corpus-{key}.npy"
    if cached.exists():
        out: F32 = np.load(cached)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        midi_path = Path(tmp) / "piece.mid"
        corpus.parse(path).write("midi", fp=str(midi_path))
        midi = mido.MidiFile(str(midi_path))
        part = 0
        for track in midi.tracks:
            if not any(m.type == "note_on" for m in track):
                continue
            channel = (part % 8) + (1 if part % 8 >= 9 else 0)
            for message in track:
                if hasattr(message, "channel"):
                    message.channel = channel
                if message.type == "program_change":
                    message.program = programs[part % len(programs)]
                if message.type in ("note_on", "note_off"):
                    message.note = int(np.clip(message.note + shifts[part % len(shifts)], 0, 127))
            part += 1
        midi.save(str(midi_path))
        audio = _render_midi(midi_path, Path(tmp) / "piece.wav")
    start = min(RATE, max(0, audio.shape[0] - round(seconds * RATE)))
    clip = _scaled(audio[start : start + round(seconds * RATE)])
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.save(cached, clip)
    return clip


def _read_mono(path: Path) -> F32:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    out: F32 = soxr.resample(mono, rate, RATE).astype(np.float32) if rate != RATE else mono
    return out


def sequence_clip(files: list[Path], seconds: float, seed: int) -> F32:
    """`seconds` of audio made by placing the sample files one after another (seeded order and gaps)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * RATE)
    out = np.zeros(total, dtype=np.float32)
    position = 0
    sounds = [_read_mono(f) for f in files]
    while position < total and sounds:
        sound = sounds[int(rng.integers(len(sounds)))]
        end = min(total, position + sound.shape[0])
        out[position:end] += sound[: end - position] * float(rng.uniform(0.5, 1.0))
        position += int(min(sound.shape[0], RATE * rng.uniform(0.12, 0.6)))
    return _scaled(out)


def _readable(path: Path) -> bool:
    try:
        return bool(sf.info(str(path)).frames > 0)
    except (sf.LibsndfileError, RuntimeError, OSError):  # a few packaged files are malformed
        return False


def sample_files() -> dict[str, list[Path]]:
    """Group name -> readable sample files: one group per lmms file, two per hydrogen kit (halves of its samples)."""
    groups: dict[str, list[Path]] = {}
    for folder in LMMS_FOLDERS:
        for f in sorted((LMMS / folder).glob("*.ogg")):
            if _readable(f):
                groups[f"lmms/{folder}/{f.stem}"] = [f]
    for kit in sorted(DRUMKITS.glob("*")) if DRUMKITS.exists() else []:
        files = sorted(p for p in kit.iterdir() if p.suffix.lower() in (".wav", ".flac") and _readable(p))
        for half in (0, 1):
            if files[half::2]:
                groups[f"hydrogen/{kit.name}/{half}"] = files[half::2]
    return groups


def build_clips(
    pieces: int,
    sample_groups: int | None,
    pink: int,
    seconds: float,
    seed: int,
    test_fraction: float = 0.25,
    log: bool = True,
) -> list[Clip]:
    """Pink noise, `pieces` corpus renders and clips from `sample_groups` sample groups (None: all), split by group.

    Pink-noise clips cycle train, train, val, test; corpus pieces are Bach chorales in a seeded order.
    """
    from music21 import corpus

    pink_split = ("train", "train", "val", "test")
    clips = [
        Clip(f"pink-{i}", "pink", f"pink-{i}", pink_split[i % 4], pink_noise(seconds, seed + i)) for i in range(pink)
    ]
    paths = sorted(str(p) for p in corpus.getComposer("bach"))
    order = np.random.default_rng(seed).permutation(len(paths))[:pieces]
    if log and pieces:
        print(f"semantic-eq: rendering {pieces} corpus pieces with fluidsynth (cached) ...", flush=True)
    for n, index in enumerate(order):
        group = Path(paths[index]).name
        split = group_split(group, seed, test_fraction)
        arrangement = n if n < len(ARRANGEMENTS) else 1000 * seed + n
        clips.append(
            Clip(f"corpus-{group}-{n}", "corpus", group, split, corpus_clip(paths[index], arrangement, seconds))
        )
    groups = sample_files()
    names = sorted(groups)
    if sample_groups is not None:
        names = [names[i] for i in np.linspace(0, len(names) - 1, sample_groups).round().astype(int)] if names else []
    for k, name in enumerate(names):
        kind = "drums" if name.startswith("hydrogen") or "/drums/" in name or "/beats/" in name else "samples"
        split = group_split(name, seed, test_fraction)
        clips.append(Clip(name, kind, name, split, sequence_clip(groups[name], seconds, seed + k)))
    return clips
