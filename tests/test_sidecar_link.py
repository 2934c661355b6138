"""The sidecar and the engine link over real ZeroMQ sockets (loopback TCP, ephemeral ports), with a real engine
processed in real-time pacing: describe to applied parameters, analysis windows, resync, loss, error replies."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from idaw.base.protocol import MAX_SNAPSHOT, SCHEMA, decode, encode, flat_values, merge_values
from idaw.base.protocol.replies import STILL_LOADING, RequestError, describe_retrying, still_loading
from realtime import params
from realtime.sidecar_link.link import SidecarLink
from sidecar.client import SidecarClient, SidecarError
from sidecar.handlers import DescribeResult, FallbackTableHandler, StillLoadingError
from tests.support.sidecar_helpers import (
    HANG_CAP_S,
    BareSidecar,
    RecordingHandler,
    SidecarServerThread,
    paced_engine,
    server_thread,
    wait_until,
)


def test_describe_reaches_the_engine_and_keeps_the_host_settings() -> None:
    base = params.build({"drive": 6.0, "output_gain": -3.0, "low_gain": 2.0})
    with (
        server_thread() as server,
        paced_engine(base) as engine,
        SidecarLink(engine, server.endpoint, base, name="test") as link,
        SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client,
    ):
        assert link.wait_connected(HANG_CAP_S)
        result = client.describe(["warm"], 0.7)
        assert result.used == ["warm"] and result.engines == 1 and result.snapshot >= 1
        assert wait_until(lambda: engine.applied() == result.snapshot, HANG_CAP_S)
        sequence, vector = engine.pushes[-1]
        assert sequence == result.snapshot
        expected = merge_values(base, FallbackTableHandler().describe(["warm"], 0.7, None).values)
        np.testing.assert_allclose(vector, expected)
        assert vector[params.INDEX["drive"]] == 6.0 and vector[params.INDEX["output_gain"]] == -3.0
        assert vector[params.INDEX["low_gain"]] == 0.0  # the EQ is the sidecar's: full snapshot, not a delta
        status = client.status()
        assert status["engines"][0]["name"] == "test"
        assert wait_until(lambda: client.status()["engines"][0]["held"] == result.snapshot, HANG_CAP_S)


def test_unknown_words_change_nothing() -> None:
    with (
        server_thread() as server,
        paced_engine() as engine,
        SidecarLink(engine, server.endpoint) as link,
        SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client,
    ):
        assert link.wait_connected(HANG_CAP_S)
        result = client.describe(["crunchy"], 1.0)
        assert (result.snapshot, result.used, result.engines) == (0, [], 0)
        time.sleep(0.1)
        assert engine.pushes == [] and engine.applied() == 0


def test_analysis_windows_reach_the_handler() -> None:
    handler = RecordingHandler()
    with (
        server_thread(handler) as server,
        paced_engine(freq=1000.0) as engine,
        SidecarLink(engine, server.endpoint) as link,
        SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client,
    ):
        assert link.wait_connected(HANG_CAP_S)
        assert wait_until(lambda: link.stats().events.get("windows_sent", 0) >= 3, HANG_CAP_S)
        client.describe(["bright"], 0.5)
    window = handler.windows[-1]
    rate = int(SCHEMA.analysis["rate"])
    assert window is not None and window.rate == rate
    assert rate // 2 <= window.samples.size <= 2 * rate
    spectrum = np.abs(np.fft.rfft(window.samples * np.hanning(window.samples.size)))
    peak = np.fft.rfftfreq(window.samples.size, 1 / window.rate)[np.argmax(spectrum)]
    assert peak == pytest.approx(1000, abs=2)


def test_engine_keeps_parameters_without_sidecar_and_resyncs_after_restart() -> None:
    with paced_engine() as engine:
        first = SidecarServerThread()
        endpoint = first.server.endpoint
        link = SidecarLink(engine, endpoint).start()
        try:
            with SidecarClient(endpoint, timeout=HANG_CAP_S) as client:
                assert link.wait_connected(HANG_CAP_S)
                snapshot = client.describe(["warm"], 0.9).snapshot
                assert wait_until(lambda: engine.applied() == snapshot, HANG_CAP_S)
            old_session = link.stats().sidecar_session
            first.stop()
            # The sidecar is gone: the link notices, the engine runs on with the last snapshot.
            assert wait_until(lambda: not link.stats().connected, HANG_CAP_S)
            blocks = engine.blocks()
            link.set_base(params.build({"drive": 3.0}))  # the host's own change still goes through
            assert wait_until(lambda: engine.pushes[-1][1][params.INDEX["drive"]] == 3.0, HANG_CAP_S)
            assert wait_until(lambda: engine.blocks() > blocks + 20, HANG_CAP_S)
            assert engine.applied() == snapshot
            assert engine.pushes[-1][1][params.INDEX["mid1_gain"]] == pytest.approx(0.9 * 4.8)
            # A new sidecar on the same endpoint knows nothing: it adopts what the engine holds.
            with server_thread(endpoint=endpoint) as second, SidecarClient(endpoint, timeout=HANG_CAP_S) as client:
                assert link.wait_connected(HANG_CAP_S, newer_than=old_session)
                engines = client.status()["engines"]
                assert [(e["snapshot"], e["held"]) for e in engines] == [(snapshot, snapshot)]
                assert second.sessions[link.session].values["mid1_gain"] == pytest.approx(0.9 * 4.8)
                newer = client.describe(["bright"], 0.5).snapshot
                assert newer > snapshot
                assert wait_until(lambda: engine.applied() == newer, HANG_CAP_S)
        finally:
            link.stop()
            first.stop()


class RawEngine:
    """A hand-driven engine-side DEALER, for protocol situations the link never creates by itself."""

    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.seq = 0

    def send(self, kind: str, **fields: Any) -> int:
        self.seq += 1
        self.socket.send(encode(kind, self.seq, **fields))
        return self.seq

    def receive(self, kind: str, timeout: float = HANG_CAP_S) -> Any:
        deadline = time.monotonic() + timeout
        while self.socket.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            message = decode(self.socket.recv(), "engine")
            if message.kind == kind:
                return message
        raise AssertionError(f"no {kind} within {timeout} s")

    def close(self) -> None:
        self.socket.close(0)


def test_sidecar_resends_a_snapshot_the_engine_missed() -> None:
    with server_thread() as server, SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client:
        raw = RawEngine(server.endpoint)
        try:
            raw.send("hello", session=42, name="raw", rate=16000, snapshot=0, values=flat_values())
            raw.receive("welcome")
            snapshot = client.describe(["warm"], 1.0).snapshot
            assert raw.receive("params").fields["snapshot"] == snapshot
            # Pretend that params was lost: a heartbeat saying we still hold 0 gets it again ...
            time.sleep(SCHEMA.timing["heartbeat_interval_ms"] / 1000 + 0.05)
            raw.send("heartbeat", session=42, snapshot=0)
            assert raw.receive("params").fields["snapshot"] == snapshot
            # ... and so does a new hello from the same session (the newest snapshot wins).
            raw.send("hello", session=42, name="raw", rate=16000, snapshot=0, values=flat_values())
            assert raw.receive("welcome").fields["snapshot"] == snapshot
            resent = raw.receive("params")
            assert resent.fields["snapshot"] == snapshot and resent.fields["values"]["mid1_gain"] == 4.8
        finally:
            raw.close()


def test_engine_messages_need_hello_and_errors_are_answered_and_counted() -> None:
    with server_thread() as server, SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client:
        raw = RawEngine(server.endpoint)
        try:
            raw.send("heartbeat", session=1, snapshot=0)
            error = raw.receive("error")
            assert error.fields["code"] == "hello_required" and error.fields["re"] == raw.seq
            raw.socket.send(msgpack.packb({"v": 99, "type": "status", "seq": 7}))
            assert raw.receive("error").fields["code"] == "version"
            describe = {"v": SCHEMA.version, "type": "describe", "seq": 8, "words": ["warm"], "intensity": 2.0}
            raw.socket.send(msgpack.packb(describe))
            assert raw.receive("error").fields["code"] == "out_of_range"
            with pytest.raises(SidecarError) as caught:  # the client refuses to send it in the first place
                client.describe(["warm"], 2.0)
            assert caught.value.code == "out_of_range"
            raw.socket.send_multipart([b"a", b"b"])
            raw.socket.send(b"\xff\xfe")
            assert wait_until(lambda: sum(client.status()["rejected"].values()) == 5, HANG_CAP_S)
            assert client.status()["rejected"] == {
                "hello_required": 1,
                "version": 1,
                "out_of_range": 1,
                "frames": 1,
                "undecodable": 1,
            }
        finally:
            raw.close()


class BrokenHandler(FallbackTableHandler):
    name = "broken"

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def describe(self, words: Any, intensity: float, window: Any) -> DescribeResult:
        if self.mode == "raise":
            raise RuntimeError("model exploded")
        return DescribeResult({**flat_values(), "mid2_gain": 99.0}, ["warm"])


@pytest.mark.parametrize("mode", ["raise", "out_of_range"])
def test_a_failing_handler_changes_nothing(mode: str) -> None:
    with (
        server_thread(BrokenHandler(mode)) as server,
        paced_engine() as engine,
        SidecarLink(engine, server.endpoint) as link,
        SidecarClient(server.endpoint, timeout=HANG_CAP_S) as client,
    ):
        assert link.wait_connected(HANG_CAP_S)
        with pytest.raises(SidecarError) as caught:
            client.describe(["warm"], 0.5)
        assert caught.value.code == "handler_failed"
        client.feedback(1, 0.5, ["warm"])  # the sidecar is still answering
        assert client.status()["rejected"] == {"handler_failed": 1}
        assert engine.pushes == []


def test_link_applies_only_newer_snapshots() -> None:
    fake = BareSidecar()
    try:
        with paced_engine() as engine, SidecarLink(engine, fake.endpoint) as link:
            fake.accept()
            assert link.wait_connected(HANG_CAP_S)
            values = FallbackTableHandler().describe(["warm"], 1.0, None).values
            fake.send("params", snapshot=5, values=values, words=["warm"])
            assert link.wait_snapshot(5, HANG_CAP_S)
            fake.send("params", snapshot=3, values=flat_values(), words=[])
            fake.send("params", snapshot=5, values=flat_values(), words=[])
            assert wait_until(lambda: link.stats().rejected.get("stale") == 2, HANG_CAP_S)
            assert wait_until(lambda: engine.applied() == 5, HANG_CAP_S)
            assert link.stats().values["mid1_gain"] == 4.8
    finally:
        fake.close()


def test_link_notices_a_silent_sidecar_by_missing_heartbeats() -> None:
    """The link gives up on a sidecar that stays silent for peer_timeout_ms, and not before: every look at it that
    ends before the sidecar's last message plus the timeout finds it connected (it heard that message after it was
    sent, so it cannot have timed out yet). When it gives up after that is not asserted (a busy machine may run its
    check late); that it does, within a cap that only catches a hang, is."""
    fake = BareSidecar()  # answers hello, then never sends anything: like a hung process, the TCP link stays up
    timeout = SCHEMA.timing["peer_timeout_ms"] / 1000
    try:
        with paced_engine() as engine, SidecarLink(engine, fake.endpoint) as link:
            assert fake.socket.poll(int(HANG_CAP_S * 1000))  # the hello is there: accept() answers it at once
            silent_from = time.monotonic()  # the welcome, the fake's last message, is sent after this
            fake.accept()
            assert link.wait_connected(HANG_CAP_S)
            cap = time.monotonic() + HANG_CAP_S
            while True:
                connected = link.stats().connected
                looked = time.monotonic()
                if looked < silent_from + timeout:
                    assert connected, f"the link gave up {looked - silent_from:.3f} s after the last message"
                if not connected or looked > cap:
                    break
                time.sleep(0.01)
            assert not connected, "the link never noticed the silent sidecar"
            assert link.stats().losses == 1
    finally:
        fake.close()


def raw_params(snapshot: int, values: Mapping[str, float]) -> bytes:
    """A params message packed as given (encode() would refuse a snapshot number past the end)."""
    message = {"v": SCHEMA.version, "type": "params", "seq": 50, "snapshot": snapshot, "values": values, "words": []}
    return bytes(msgpack.packb(message))


def test_link_never_takes_a_snapshot_number_past_the_end() -> None:
    """Snapshot numbers end at max_snapshot (2^53-1): the link refuses larger ones (out_of_range), so a sidecar
    cannot make it hold a number after which every snapshot would be stale. It takes the last number, nothing after
    it, and a message of thousands of frames or a flood of errors changes nothing."""
    fake = BareSidecar()
    try:
        with paced_engine() as engine, SidecarLink(engine, fake.endpoint) as link:
            fake.accept()
            assert link.wait_connected(HANG_CAP_S)
            values = FallbackTableHandler().describe(["warm"], 1.0, None).values
            for number in (2**64 - 1, 2**63, MAX_SNAPSHOT + 1):
                fake.send_raw(raw_params(number, values))
            fake.socket.send_multipart([fake.peer, *([b"\x80"] * 5000)])
            for _ in range(50):
                fake.send("error", re=1, code="internal", detail="\U0001f600" * 64)
            assert wait_until(lambda: sum(link.stats().rejected.values()) == 4, HANG_CAP_S), link.stats().rejected
            assert link.stats().rejected == {"out_of_range": 3, "frames": 1}
            assert link.stats().snapshot == 0 and engine.pushes == []
            fake.send("params", snapshot=MAX_SNAPSHOT, values=values, words=["warm"])
            assert link.wait_snapshot(MAX_SNAPSHOT, HANG_CAP_S)
            assert wait_until(lambda: engine.applied() == MAX_SNAPSHOT, HANG_CAP_S)
            fake.send_raw(raw_params(MAX_SNAPSHOT + 1, flat_values()))
            fake.send("params", snapshot=MAX_SNAPSHOT, values=flat_values(), words=[])
            assert wait_until(lambda: link.stats().rejected == {"out_of_range": 4, "frames": 1, "stale": 1}, HANG_CAP_S)
            stats = link.stats()
            assert stats.snapshot == MAX_SNAPSHOT and stats.values["mid1_gain"] == 4.8
            assert stats.events.get("internal_errors", 0) == 0, stats.last_error
            assert stats.received.get("error") == 50 and stats.connected
    finally:
        fake.close()


class LoadingHandler(FallbackTableHandler):
    """The fallback handler, refusing the first `loading` requests the way the semantic EQ does while its synonym
    model loads (StillLoadingError, whose text holds replies.STILL_LOADING)."""

    def __init__(self, loading: int) -> None:
        super().__init__()
        self.loading = loading
        self.calls = 0

    def describe(self, words: Any, intensity: float, window: Any) -> DescribeResult:
        self.calls += 1
        if self.calls <= self.loading:
            raise StillLoadingError(f"the synonym model is {STILL_LOADING}")
        return super().describe(words, intensity, window)


def test_requests_go_out_on_the_link_and_their_replies_come_back_to_it() -> None:
    base = params.build({"drive": 6.0})
    with (
        server_thread() as server,
        paced_engine(base) as engine,
        SidecarLink(engine, server.endpoint, base, name="linked") as link,
    ):
        assert link.wait_connected(HANG_CAP_S)
        result = link.describe(["warm"], 0.7)
        assert result.used == ["warm"] and result.engines == 1 and result.snapshot >= 1
        assert wait_until(lambda: engine.applied() == result.snapshot, HANG_CAP_S)
        expected = merge_values(base, FallbackTableHandler().describe(["warm"], 0.7, None).values)
        np.testing.assert_allclose(engine.pushes[-1][1], expected)
        status = link.status()
        # One connection only: the engine that asked is the one the sidecar knows, and it got the reply.
        assert [(e["session"], e["name"]) for e in status["engines"]] == [(link.session, "linked")]
        assert status["received"]["describe"] == 1
        # A request the protocol forbids is refused here with the sidecar's reason, and never sent.
        with pytest.raises(RequestError) as caught:
            link.describe(["warm"], 2.0)
        assert caught.value.code == "out_of_range"
        assert link.status()["received"]["describe"] == 1
        assert link.stats().rejected == {}
    with pytest.raises(RequestError) as caught:
        link.describe(["warm"], 0.5)
    assert caught.value.code == "unreachable"


def test_an_error_reply_to_a_link_request_is_raised_and_changes_nothing() -> None:
    with (
        server_thread(BrokenHandler("raise")) as server,
        paced_engine() as engine,
        SidecarLink(engine, server.endpoint) as link,
    ):
        assert link.wait_connected(HANG_CAP_S)
        with pytest.raises(RequestError) as caught:
            link.describe(["warm"], 0.5)
        assert caught.value.code == "handler_failed"
        assert str(caught.value) == "sidecar refused describe: RuntimeError: model exploded"
        assert link.status()["rejected"] == {"handler_failed": 1}  # the link still talks to it
        assert engine.pushes == []


def test_a_link_request_without_a_sidecar_is_not_sent() -> None:
    # A port held by a socket that does not listen: every connect is refused, so no sidecar is ever there.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with paced_engine() as engine, SidecarLink(engine, f"tcp://127.0.0.1:{port}") as link:
            with pytest.raises(RequestError) as caught:
                link.describe(["warm"], 0.5)
            assert caught.value.code == "unreachable"
            assert link.stats().connected is False


def test_describe_is_retried_while_the_sidecar_says_it_is_still_loading() -> None:
    handler = LoadingHandler(loading=3)
    with (
        server_thread(handler) as server,
        paced_engine() as engine,
        SidecarLink(engine, server.endpoint) as link,
    ):
        assert link.wait_connected(HANG_CAP_S)
        result = describe_retrying(link, ["bright"], 0.5)
        assert result.used == ["bright"] and handler.calls == 4
        handler.calls, handler.loading = 0, 10**6  # never loads: the retries end, with the sidecar's refusal
        with pytest.raises(RequestError) as caught:
            describe_retrying(link, ["bright"], 0.5, wait=0.5)
        assert still_loading(caught.value) and handler.calls >= 2
