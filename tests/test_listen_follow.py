"""The live follower (idaw/listen/follow.py) on a rendered band that changes key and tempo halfway (C major at 100
BPM, then E major at 120), fed as the sidecar gets the engine's stream: 2 s windows every 0.5 s.

Checked: nothing is claimed before 3 s; the tempo holds within 2 % of each half's (after 8 beats of the new one);
the reported beat lies within 30 ms of a played beat at p90 once the beat is locked; the key is each half's, the
new one within 6 s of the change (the issue's goal is 4 s: the follower does not reach it yet, see its README);
and silence, noise, NaN samples and a stream that starts again say what they should without raising.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from idaw.listen.audio import SAMPLE_RATE
from idaw.listen.follow import Follower, Heard
from tests.support.follow_music import FollowMusic, Half, render, sidecar_windows
from tests.support.needs import need_program

HOP = SAMPLE_RATE // 2
FIRST, SECOND = Half(0, 100.0, 12), Half(4, 120.0, 14)


def feed_all(follower: Follower, audio: np.ndarray, start: int = 0) -> list[Heard]:
    """Feed `audio` as the sidecar would get it; what is heard after each window."""
    return [follower.feed(audio[begin:end], start + begin) for begin, end in sidecar_windows(audio.size, SAMPLE_RATE)]


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> FollowMusic:
    need_program("fluidsynth", "fluidsynth")
    return render((FIRST, SECOND), SAMPLE_RATE, tmp_path_factory.mktemp("follow"))


@pytest.fixture(scope="module")
def heard(music: FollowMusic) -> list[Heard]:
    return feed_all(Follower(), music.audio)


def seconds(h: Heard) -> float:
    return h.upto / SAMPLE_RATE


def test_nothing_is_claimed_before_three_seconds(heard: list[Heard]) -> None:
    early = [h for h in heard if seconds(h) < 3.0]
    assert early and all(h.tempo_bpm is None and h.beat is None for h in early)


def test_the_tempo_follows_each_half(music: FollowMusic, heard: list[Heard]) -> None:
    settled_first = [h for h in heard if 6.0 <= seconds(h) <= music.change_s]
    settled_second = [h for h in heard if seconds(h) >= music.change_s + 8 * 60.0 / SECOND.tempo_bpm]
    for part, half in ((settled_first, FIRST), (settled_second, SECOND)):
        tempi = np.array([h.tempo_bpm for h in part], dtype=float)
        assert part and np.all(np.abs(tempi / half.tempo_bpm - 1.0) <= 0.02), (half, tempi)


def test_the_reported_beat_is_a_played_beat(music: FollowMusic, heard: list[Heard]) -> None:
    locked = [
        h
        for h in heard
        if 6.0 <= seconds(h) <= music.change_s or seconds(h) >= music.change_s + 6.0  # steady stretches
    ]
    errors = [np.min(np.abs(music.beats - h.beat / SAMPLE_RATE)) for h in locked if h.beat is not None]
    assert len(errors) == len(locked)
    assert np.percentile(errors, 90) <= 0.030, np.percentile(errors, [50, 90, 100])


def test_the_key_is_each_halfs(music: FollowMusic, heard: list[Heard]) -> None:
    first = [h.key.name if h.key else None for h in heard if 10.0 <= seconds(h) <= music.change_s]
    assert set(first) == {"C major"}
    second = [h for h in heard if seconds(h) > music.change_s]
    switched = next(seconds(h) for h in second if h.key is not None and h.key.tonic == 4)
    assert switched - music.change_s <= 6.0
    late = [h.key.name if h.key else None for h in second if seconds(h) >= music.change_s + 12.0]
    assert late and np.mean([name == "E major" for name in late]) >= 0.8


@pytest.mark.parametrize("kind", ["silence", "noise", "nan"])
def test_audio_without_music_is_heard_as_none(kind: str) -> None:
    rng = np.random.default_rng(0)
    audio = {
        "silence": np.zeros(12 * SAMPLE_RATE, np.float32),
        "noise": (0.1 * rng.standard_normal(12 * SAMPLE_RATE)).astype(np.float32),
        "nan": np.full(12 * SAMPLE_RATE, np.nan, np.float32),
    }[kind]
    last = feed_all(Follower(), audio)[-1]
    assert last.tempo_bpm is None and last.beat is None
    if kind != "noise":
        assert last.key is None


def test_a_stream_that_starts_again_is_followed_afresh(music: FollowMusic) -> None:
    follower = Follower()
    feed_all(follower, music.audio[: 10 * SAMPLE_RATE], start=50 * SAMPLE_RATE)
    assert follower.heard().tempo_bpm is not None
    again = follower.feed(music.audio[:HOP], 0)  # the engine restarted its stream
    assert again.tempo_bpm is None and again.upto == HOP


def test_a_gap_in_the_stream_keeps_the_beat_train(music: FollowMusic, tmp_path: Path) -> None:
    follower = Follower()
    audio = music.audio[: 20 * SAMPLE_RATE]
    heard = []
    for begin, end in sidecar_windows(audio.size, SAMPLE_RATE):
        if 12 * SAMPLE_RATE <= end < 13 * SAMPLE_RATE:
            continue  # two windows lost on the way
        heard.append(follower.feed(audio[begin:end], begin))
    last = heard[-1]
    assert last.upto == audio.size and last.beat is not None
    assert np.min(np.abs(music.beats - last.beat / SAMPLE_RATE)) <= 0.030


def test_a_window_claiming_a_far_index_starts_afresh_with_bounded_memory(music: FollowMusic) -> None:
    follower = Follower()
    feed_all(follower, music.audio[: 6 * SAMPLE_RATE])
    far = 2**64 - 1 - HOP  # what a hostile peer may claim (the protocol's largest index)
    heard = follower.feed(music.audio[:HOP], far)
    assert heard.upto == far + HOP and heard.tempo_bpm is None
    assert follower.feed(music.audio[HOP : 2 * HOP], far + HOP).upto == far + 2 * HOP
