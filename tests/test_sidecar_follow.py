"""The sidecar's follower over real ZeroMQ sockets (a real `idaw sidecar` process): an engine that sends `follow`
gets a `heard` message for each audio window, with the tempo, beat, key and mood the follower heard in what it
streamed; `follow` off stops them; engines that never asked get none; a follow before hello, or beyond MAX_FOLLOWED
engines, is refused with its reason, and the sidecar goes on.

The follower is built on a background thread (sidecar/follower_builds.py). With a build held open by the test (a
real SidecarServer on a thread, its builder gated): `follow` is acknowledged at once, another engine's heartbeats go
on meanwhile, a second follow starts no second build, the windows that came meanwhile are answered in order once it
is built; a follow off or a bye during the build drops its result; a build that fails is logged in one line and
answered as an error to the follow, and the sidecar goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from idaw.base.protocol import SCHEMA, Message
from idaw.listen.audio import SAMPLE_RATE
from idaw.listen.follow import Follower
from realtime.sidecar_link.process import SidecarProcess
from sidecar.follower_builds import new_follower
from sidecar.server import MAX_FOLLOWED, SidecarServer
from tests.support.follow_music import FollowMusic, Half, render
from tests.support.needs import need_program
from tests.support.sidecar_helpers import HANG_CAP_S, server_thread, wait_until
from tests.support.sidecar_peer import Peer

HOP, WINDOW = SAMPLE_RATE // 2, 2 * SAMPLE_RATE
FOLLOW_WAIT_S = 60.0
"""The first heard message waits for the follower's imports (librosa, music21) and their first calls."""


class GatedBuild:
    """The sidecar's follower build (new_follower) held until `gate` is set, the first `failures` calls raising then:
    a build as slow as the test wants, or a failed one."""

    def __init__(self, failures: int = 0) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = 0
        self.failures = failures

    def __call__(self) -> Follower:
        self.calls += 1
        self.started.set()
        if not self.gate.wait(HANG_CAP_S):
            raise TimeoutError("the test never opened the gate")
        if self.calls <= self.failures:
            raise RuntimeError("no adapter weights (test fault)")
        return new_follower(SCHEMA.analysis["hop_s"])


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
        peer.wait("ack", re=peer.send("follow", on=1))
        windows = int(16.0 * SAMPLE_RATE / HOP)
        stream(peer, music.audio, 1)  # kept while the follower is built, answered when it is
        heard: list[Message] = [peer.wait("heard", timeout=FOLLOW_WAIT_S, beating=11)]
        bystander.wait("welcome", re=bystander.hello(session=12))
        stream(peer, music.audio, windows - 1, first=1)
        stream(bystander, music.audio, 4)
        heard += [peer.wait("heard", timeout=FOLLOW_WAIT_S) for _ in range(windows - 1)]
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


def open_engine(server: SidecarServer, session: int) -> Peer:
    """A peer that has said hello as engine `session`."""
    peer = Peer(server.endpoint)
    peer.wait("welcome", re=peer.hello(session=session))
    return peer


def test_heartbeats_go_on_while_a_follower_is_built(music: FollowMusic) -> None:
    build = GatedBuild()
    with server_thread(build_follower=build) as server:
        peer, other = open_engine(server, 21), open_engine(server, 22)
        try:
            peer.wait("ack", re=peer.send("follow", on=1))  # acknowledged at once (the build is held)
            assert build.started.wait(HANG_CAP_S)
            peer.wait("ack", re=peer.send("follow", on=1))  # asked again while it is built: no second build
            assert server.builds.waiting() == 0 and build.calls == 1
            stream(peer, music.audio, 4)
            for _ in range(5):  # the other engine's heartbeats are answered, the sidecar's own go on
                peer.send("heartbeat", session=21, snapshot=0)  # (both stay connected: engines beat)
                other.send("heartbeat", session=22, snapshot=0)
                other.wait("heartbeat", session=server.session)
                assert other.reply_to(other.send("status")).kind == "status_reply"
            # A status sent after the windows is answered after they were handled: none was followed yet.
            assert peer.reply_to(peer.send("status")).fields["received"]["audio"] == 4
            assert "heard" not in peer.kinds() and build.calls == 1
            build.gate.set()
            heard = [peer.wait("heard", timeout=FOLLOW_WAIT_S, beating=21) for _ in range(4)]
            assert [m.fields["upto"] for m in heard] == [(n + 1) * HOP for n in range(4)]  # each window, in order
            stream(peer, music.audio, 1, first=4)
            assert peer.wait("heard", beating=21).fields["upto"] == 5 * HOP
            assert build.calls == 1 and "heard" not in other.kinds()
        finally:
            build.gate.set()
            peer.close()
            other.close()


@pytest.mark.parametrize("leave", ["follow off", "bye"])
def test_a_build_is_dropped_when_the_engine_stops_or_leaves_meanwhile(music: FollowMusic, leave: str) -> None:
    build = GatedBuild()
    with server_thread(build_follower=build) as server:
        peer = open_engine(server, 31)
        try:
            peer.wait("ack", re=peer.send("follow", on=1))
            assert build.started.wait(HANG_CAP_S)
            if leave == "bye":
                peer.send("bye", session=31)
                peer.wait("welcome", re=peer.hello(session=31))  # back, without asking to be followed
            else:
                peer.wait("ack", re=peer.send("follow", on=0))
            build.gate.set()
            assert wait_until(server.builds.idle, HANG_CAP_S)  # built, and taken up by the loop
            stream(peer, music.audio, 3)
            assert peer.reply_to(peer.send("status")).fields["received"]["audio"] == 3
            assert "heard" not in peer.kinds()  # the build's result was dropped
            peer.wait("ack", re=peer.send("follow", on=1))  # asked again: a new build, followed as before
            stream(peer, music.audio, 1, first=3)
            assert peer.wait("heard", timeout=FOLLOW_WAIT_S, beating=31).fields["upto"] == 4 * HOP
            assert build.calls == 2
        finally:
            build.gate.set()
            peer.close()


def test_a_failed_build_is_one_logged_line_and_an_error_to_the_follow(
    music: FollowMusic, capsys: pytest.CaptureFixture[str]
) -> None:
    build = GatedBuild(failures=1)
    build.gate.set()
    with server_thread(build_follower=build) as server:
        peer = open_engine(server, 41)
        try:
            asked = peer.send("follow", on=1)
            peer.wait("ack", re=asked)
            error = peer.wait("error", re=asked, beating=41)
            assert error.fields["code"] == "internal" and "no adapter weights (test fault)" in error.fields["detail"]
            assert "follow is off" in error.fields["detail"]
            stream(peer, music.audio, 1)
            assert peer.reply_to(peer.send("status")).fields["rejected"] == {}
            assert "heard" not in peer.kinds()
            peer.wait("ack", re=peer.send("follow", on=1))  # the sidecar goes on: asked again, it follows
            stream(peer, music.audio, 1, first=1)
            assert peer.wait("heard", timeout=FOLLOW_WAIT_S, beating=41).fields["upto"] == 2 * HOP
        finally:
            peer.close()
    logged = [line for line in capsys.readouterr().err.splitlines() if "follower" in line]
    assert len(logged) == 1 and "no adapter weights (test fault)" in logged[0], logged
