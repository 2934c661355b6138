"""The sidecar's follower over real ZeroMQ sockets (a real `idaw sidecar` process): an engine that sends `follow`
gets a `heard` message for each audio window, with the tempo, beat, key and mood the follower heard in what it
streamed; `follow` off stops them; engines that never asked get none; a follow before hello, or beyond MAX_FOLLOWED
engines, is refused with its reason, and the sidecar goes on.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from idaw.base.protocol import Message
from idaw.listen.audio import SAMPLE_RATE
from realtime.sidecar_link.process import SidecarProcess
from sidecar.server import MAX_FOLLOWED
from tests.support.follow_music import FollowMusic, Half, render
from tests.support.needs import need_program
from tests.support.sidecar_peer import Peer

HOP, WINDOW = SAMPLE_RATE // 2, 2 * SAMPLE_RATE
FOLLOW_WAIT_S = 60.0
"""The first heard message waits for the follower's imports (librosa, music21) and their first calls."""


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> FollowMusic:
    need_program("fluidsynth", "fluidsynth")
    return render((Half(9, 110.0, 8), Half(9, 110.0, 1)), SAMPLE_RATE, tmp_path_factory.mktemp("sidecar-follow"))


@pytest.fixture
def sidecar() -> Iterator[SidecarProcess]:
    with SidecarProcess() as process:
        yield process


def stream(peer: Peer, audio: np.ndarray, windows: int, first: int = 0) -> None:
    """Send `windows` windows as an engine does: the newest WINDOW samples every HOP, with their stream index."""
    for n in range(first, first + windows):
        end = (n + 1) * HOP
        start = max(0, end - WINDOW)
        peer.send("audio", rate=SAMPLE_RATE, start=start, samples=audio[start:end].tobytes())


def test_a_followed_engine_hears_tempo_beats_and_key(sidecar: SidecarProcess, music: FollowMusic) -> None:
    peer, bystander = Peer(sidecar.endpoint), Peer(sidecar.endpoint)
    try:
        peer.wait("welcome", re=peer.hello(session=11))
        bystander.wait("welcome", re=bystander.hello(session=12))
        peer.wait("ack", re=peer.send("follow", on=1))
        windows = int(16.0 * SAMPLE_RATE / HOP)
        stream(peer, music.audio, windows)
        stream(bystander, music.audio, 4)
        heard: list[Message] = [peer.wait("heard", timeout=FOLLOW_WAIT_S) for _ in range(windows)]
        last = heard[-1].fields
        assert [m.fields["upto"] for m in heard] == [(n + 1) * HOP for n in range(windows)]
        assert last["tempo_bpm"] == pytest.approx(110.0, rel=0.02)
        assert last["beat"] <= last["upto"]
        assert np.min(np.abs(music.beats - last["beat"] / SAMPLE_RATE)) <= 0.030
        assert (last["key_tonic"], last["key_minor"]) == (9, 0)  # A major
        assert heard[0].fields["tempo_bpm"] == 0.0 and heard[0].fields["key_tonic"] in range(13)
        assert last["emotion"] in ("bright", "calm", "tense", "dark", "busy")
        peer.wait("ack", re=peer.send("follow", on=0))
        stream(peer, music.audio, 2, first=windows)
        assert "error" not in peer.kinds() and "heard" not in bystander.kinds()
        status = peer.reply_to(peer.send("status")).fields
        assert status["received"]["follow"] == 2 and status["rejected"] == {}
        assert "heard" not in peer.kinds()
    finally:
        peer.close()
        bystander.close()


def test_follow_is_refused_before_hello_and_beyond_the_limit(sidecar: SidecarProcess) -> None:
    stranger = Peer(sidecar.endpoint)
    peers = [Peer(sidecar.endpoint) for _ in range(MAX_FOLLOWED + 1)]
    try:
        refused = stranger.reply_to(stranger.send("follow", on=1))
        assert (refused.kind, refused.fields["code"]) == ("error", "hello_required")
        for number, peer in enumerate(peers, start=1):
            peer.wait("welcome", re=peer.hello(session=100 + number))
        for peer in peers[:-1]:
            reply = peer.reply_to(peer.send("follow", on=1))
            assert reply.kind == "ack", reply.fields
        last = peers[-1].reply_to(peers[-1].send("follow", on=1))
        assert (last.kind, last.fields["code"]) == ("error", "full")
        assert peers[0].reply_to(peers[0].send("follow", on=0)).kind == "ack"  # one stops: room again
        assert peers[-1].reply_to(peers[-1].send("follow", on=1)).kind == "ack"
        bad = peers[-1].reply_to(peers[-1].send("follow", on=2))
        assert (bad.kind, bad.fields["code"]) == ("error", "out_of_range")
        assert sidecar.running
    finally:
        stranger.close()
        for peer in peers:
            peer.close()
