"""The song sketch stage by stage, as far as it is built: the structure (idaw/sketch/structure.py) for 50 prompts
and 2 seeds, and the master (realtime/master.py) of a 3-minute band; the stems, rendering and mixing are next.

Reported: the sentence model's load (once per process), the structure's time per prompt (median, p99), how the
prompts were read (genres chosen, how many fell back to the default genre, major/minor), and the master's time for
180 s of stereo at 48 kHz (a band rendered with fluidsynth, looped) against its real time. The issue's budget is
60 s for a 3-minute song, all stages together. Run alone with `python -m benchmarks.bench_sketch [--quick] [--out F]`.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from idaw.sketch.structure import make_structure
from idaw.text.embedding import sentence_model
from realtime.master import master
from tests.support.follow_music import Half, render

PROMPTS = (
    "upbeat indie rock song about summer",
    "sad piano ballad about losing someone",
    "dark brooding trap beat",
    "sleepy lo-fi beats to study to",
    "energetic club track for the weekend",
    "twelve bar blues about my dog",
    "swinging jazz standard with a walking bass",
    "a tender love ballad",
    "furious heavy guitars",
    "triumphant victory anthem",
    "chill sunday morning jazz",
    "aggressive workout music",
    "romantic dinner for two",
    "nostalgic road trip with the windows down",
    "melancholic but hopeful",
    "happy birthday party song",
    "calm meditation music",
    "angry punk song about the government",
    "dreamy synth pop at night",
    "a folk song about the sea",
    "gospel choir praising the morning",
    "motown groove with horns",
    "deep house for a sunset",
    "boom bap hip hop with a dusty sample",
    "country song about a pickup truck",
    "bluesy slow jam about heartbreak",
    "bright cheerful pop for a commercial",
    "lonely rainy day acoustic song",
    "euphoric festival anthem with a big drop",
    "relaxed coffee shop background music",
    "tense thriller chase scene",
    "a lullaby for a baby",
    "garage rock with fuzzy guitars",
    "smooth r&b slow dance",
    "bebop with fast saxophone lines",
    "anxious late night thoughts",
    "sunny beach party",
    "gloomy winter evening",
    "a happy song",
    "a sad song",
    "epic rock ballad with a guitar solo",
    "minimal techno for the club",
    "study music for concentration",
    "campfire singalong",
    "rap battle beat",
    "soulful ballad with electric piano",
    "upbeat synth-pop about first love",
    "tired after a long day",
    "celebration of a wedding",
    "rainy lo-fi afternoon",
)
"""50 prompts, from plain genre names to moods alone."""
SEEDS = (0, 1)


def band(seconds: float) -> np.ndarray:
    """The fluidsynth band (tests/support/follow_music.py) looped to `seconds`, stereo at 48 kHz."""
    with tempfile.TemporaryDirectory(prefix="idaw-bench-sketch-") as folder:
        music = render((Half(0, 120.0, 8), Half(7, 140.0, 8)), 48000, Path(folder), level=0.5)
    mono = np.resize(music.audio.astype(np.float32), round(seconds * 48000))
    return np.ascontiguousarray(np.stack([mono, 0.8 * mono], axis=1))


def run(quick: bool = False) -> common.Json:
    """{model_load_s, structure: {...}, master: {...}}."""
    start = time.perf_counter()
    sentence_model()
    model_load_s = time.perf_counter() - start
    prompts = PROMPTS[:10] if quick else PROMPTS
    times_ns: list[int] = []
    genres: collections.Counter[str] = collections.Counter()
    defaults = minor = 0
    for prompt in prompts:
        for seed in SEEDS:
            begin = time.perf_counter_ns()
            structure = make_structure(prompt, 180.0, seed=seed)
            times_ns.append(time.perf_counter_ns() - begin)
            genres[structure.genre] += 1
            defaults += structure.genre_from == "default"
            minor += structure.key.endswith("minor")
    seconds = 60.0 if quick else 180.0
    audio = band(seconds)
    master_ns = common.interleaved_times_ns(
        [common.Alternative("master", lambda: master(audio, 48000, -14.0, -1.0))], 1 if quick else 3, warmup=0
    )["master"]
    return {
        "model_load_s": round(model_load_s, 3),
        "structure": {
            "sketches": len(times_ns),
            "times": common.summarize_ns(times_ns),
            "genres": dict(genres.most_common()),
            "default_genre": defaults,
            "minor_keys": minor,
        },
        "master": {
            "audio_seconds": seconds,
            "times": common.summarize_ns(master_ns),
            "x_realtime": common.realtime_factor(master_ns, seconds),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
