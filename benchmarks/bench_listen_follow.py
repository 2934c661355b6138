"""Live follow's key (issue 12, part 5): the key the live follower (idaw.listen.follow) reports after each analysis
window, against the human analysts' local keys, beside the key a user would type on the command line (the piece's
home key, held for the whole piece), on the test set's evaluation audio in one run.

The audio is the test set's evaluation split (idaw.listen.testset: Bach chorales with human Roman-numeral analyses,
rendered with fluidsynth), fed as the sidecar gets the engine's stream: 2 s windows every 0.5 s. Scored on every
window from 3 s after the music starts: mir_eval's weighted key score against the analysts' key at the window's end
(the local key, with the chorales' modulations) and against the home key; key changes per minute, the follower's
and the analysts'; and, for each analysed modulation the follower ever reports, the seconds until it does.

Beside the chorales, BANDS: the band of the live follow test (tests/support/follow_music.py: piano chords, bass,
arpeggio and drums playing I-IV-V-I vi-ii-V-I, rendered with fluidsynth) in other keys, tempi and levels, each
changing key and tempo halfway: per band the share of windows in the first half (from 10 s) that report its key,
the seconds from the change until the new key is first reported (null: never), and the share of windows from 12 s
after the change that report it.

`--quick` scores the first 6 items and 2 bands. Run alone with
`python -m benchmarks.bench_listen_follow [--quick] [--out F]`.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mir_eval
import numpy as np

from benchmarks import common
from idaw.listen.audio import SAMPLE_RATE, read_recording
from idaw.listen.follow import Follower
from idaw.listen.testset import build_testset, load_labels
from idaw.theory.keys import KeyLabel
from tests.support.follow_music import Half, render, sidecar_windows

TESTSET = Path("out/listen_testset")
QUICK_ITEMS = 6
SETTLE_S = 3.0
"""Windows scored from this long after the music starts (the follower claims nothing before)."""
BANDS = (
    ((0, 100.0), (4, 120.0), 0.5),
    ((0, 100.0), (4, 120.0), 0.9),
    ((7, 90.0), (10, 130.0), 0.5),
    ((2, 110.0), (9, 100.0), 0.4),
    ((9, 125.0), (0, 95.0), 0.6),
    ((5, 100.0), (7, 112.0), 0.7),
)
"""((first tonic, BPM), (second tonic, BPM), peak level) of each band; all in major keys. The first is the live
follow test's."""
QUICK_BANDS = 2


def _key_at(keys: list[list[Any]], t: float) -> str:
    current = str(keys[0][1])
    for start, name in keys:
        if start <= t:
            current = str(name)
    return current


def _follow(audio: np.ndarray) -> tuple[list[tuple[float, str | None]], list[float]]:
    """(window end in seconds, key name or None) per window, and the seconds each window took."""
    follower, heard, seconds = Follower(), [], []
    for begin, end in sidecar_windows(audio.size, SAMPLE_RATE):
        started = time.perf_counter()
        result = follower.feed(audio[begin:end], begin)
        seconds.append(time.perf_counter() - started)
        heard.append((end / SAMPLE_RATE, result.key.name if result.key else None))
    return heard, seconds


def _modulation_lags(keys: list[list[Any]], heard: list[tuple[float, str | None]]) -> list[float]:
    """Per analysed modulation (after the first key): seconds until the follower reports the new key, for those it
    reports before the next one."""
    lags = []
    for number, (start, name) in enumerate(keys[1:], start=1):
        end = float(keys[number + 1][0]) if number + 1 < len(keys) else float("inf")
        first = next((t for t, key in heard if start < t <= end and key == name), None)
        if first is not None:
            lags.append(first - start)
    return lags


def _score(estimates: Sequence[str | None], references: Sequence[str]) -> float:
    return float(
        np.mean(
            [
                0.0 if e is None else mir_eval.key.weighted_score(r, e)
                for e, r in zip(estimates, references, strict=True)
            ]
        )
    )


def bands(count: int) -> list[common.Json]:
    """The follower on the first `count` BANDS (see the module comment)."""
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for (first, first_bpm), (second, second_bpm), level in BANDS[:count]:
            music = render(
                (Half(first, first_bpm, 12), Half(second, second_bpm, 14)), SAMPLE_RATE, Path(folder), level=level
            )
            heard, _ = _follow(music.audio)
            old, new = KeyLabel(first, False).name, KeyLabel(second, False).name
            before = [k for t, k in heard if 10.0 <= t <= music.change_s]
            late = [k for t, k in heard if t >= music.change_s + 12.0]
            found = next((t for t, k in heard if t > music.change_s and k == new), None)
            out.append(
                {
                    "from": f"{old} at {first_bpm:g} BPM",
                    "to": f"{new} at {second_bpm:g} BPM",
                    "level": level,
                    "first_half_in_key": round(float(np.mean([k == old for k in before])), 3),
                    "new_key_after_s": None if found is None else round(found - music.change_s, 2),
                    "late_in_new_key": round(float(np.mean([k == new for k in late])), 3),
                }
            )
    return out


def run(quick: bool = False) -> common.Json:
    """{per alternative: weighted score against local and home keys, changes per minute}, the follower's modulation
    lags and seconds per window, per item figures."""
    items = build_testset(TESTSET, split="eval", count=QUICK_ITEMS if quick else None, progress=False)
    local_ref: list[str] = []
    home_ref: list[str] = []
    followed: list[str | None] = []
    lags: list[float] = []
    window_s: list[float] = []
    changes = {"follower": 0, "analysts": 0}
    minutes = 0.0
    per_item = []
    for labels_path in items:
        labels = load_labels(labels_path)
        heard, seconds = _follow(read_recording(labels_path.with_suffix(".flac")).samples)
        window_s += seconds
        keys, home = labels["keys"], str(labels["key"])
        scored = [(t, k) for t, k in heard if labels["music_start_s"] + SETTLE_S <= t <= labels["music_end_s"]]
        local = [_key_at(keys, t) for t, _ in scored]
        local_ref += local
        home_ref += [home] * len(scored)
        followed += [k for _, k in scored]
        changes["follower"] += sum(a[1] != b[1] for a, b in itertools.pairwise(scored) if a[1] and b[1])
        changes["analysts"] += len(keys) - 1
        minutes += (labels["music_end_s"] - labels["music_start_s"]) / 60.0
        item_lags = _modulation_lags(keys, heard)
        lags += item_lags
        per_item.append(
            {
                "item": labels_path.stem,
                "follower_local": round(_score([k for _, k in scored], local), 3),
                "home_key_local": round(_score([home] * len(scored), local), 3),
                "modulations": len(keys) - 1,
                "modulations_heard": len(item_lags),
            }
        )
    alternatives: dict[str, list[str | None]] = {"follower": followed, "home_key_held": list(home_ref)}
    scores = {
        name: {
            "weighted_vs_local_key": round(_score(estimates, local_ref), 3),
            "weighted_vs_home_key": round(_score(estimates, home_ref), 3),
        }
        for name, estimates in alternatives.items()
    }
    scores["follower"]["key_changes_per_minute"] = round(changes["follower"] / minutes, 2)
    scores["home_key_held"]["key_changes_per_minute"] = 0.0
    return {
        "scores": scores,
        "analysts_key_changes_per_minute": round(changes["analysts"] / minutes, 2),
        "modulation_lag_s": {
            "median_s": round(float(np.median(lags)), 2) if lags else None,
            "p90_s": round(float(np.percentile(lags, 90)), 2) if lags else None,
            "heard": len(lags),
            "analysed": changes["analysts"],
        },
        "seconds_per_window": {
            "median_s": round(float(np.median(window_s)), 4),
            "p99_s": round(float(np.percentile(window_s, 99)), 4),
        },
        "follower_over_home_key_local_score": round(
            scores["follower"]["weighted_vs_local_key"] / max(scores["home_key_held"]["weighted_vs_local_key"], 1e-9),
            3,
        ),
        "windows": len(local_ref),
        "bands": bands(QUICK_BANDS if quick else len(BANDS)),
        "items": per_item,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
