"""10,000 fuzzed messages at each side (a real sidecar subprocess; a real link with a running engine): every one
is rejected and counted by reason, neither side crashes or changes state, and both work normally afterwards."""

from __future__ import annotations

import collections
import time

import pytest
import zmq
from sidecar_fuzz import fuzz
from sidecar_helpers import paced_engine, wait_until
from test_sidecar_link import FakeSidecar

from sidecar.client import SidecarClient
from sidecar.handlers import FallbackTableHandler
from sidecar.link import SidecarLink
from sidecar.process import SidecarProcess
from sidecar.protocol import SCHEMA

COUNT = 10_000


def test_fuzzer_covers_every_category() -> None:
    categories = collections.Counter(c for c, _ in fuzz("engine", 3000, seed=1))
    assert len(categories) >= 20, categories
    assert all(n > 50 for n in categories.values()), categories


@pytest.mark.slow
def test_ten_thousand_fuzzed_messages_to_the_sidecar() -> None:
    with SidecarProcess() as process:
        sent: collections.Counter[str] = collections.Counter()
        socket = zmq.Context.instance().socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 100_000)
        socket.connect(process.endpoint)
        began = time.monotonic()
        try:
            for category, frames in fuzz("engine", COUNT, seed=2024, stateful="hello_required"):
                socket.send_multipart(frames)
                sent[category] += 1
            with SidecarClient(process.endpoint, timeout=5.0) as client:
                assert wait_until(lambda: sum(client.status()["rejected"].values()) >= COUNT, 60, interval=0.2), (
                    client.status()["rejected"]
                )
        finally:
            socket.close(0)
        seconds = time.monotonic() - began
        with SidecarClient(process.endpoint, timeout=5.0) as client:
            status = client.status()
            assert process.running, process.log_tail()
            assert sum(status["rejected"].values()) == COUNT, status["rejected"]
            assert set(status["received"]) <= {"status"}, status["received"]  # nothing fuzzed got through
            assert set(status["rejected"]) <= set(SCHEMA.reasons)
            assert status["engines"] == []
            # ... and it still does its job.
            assert client.describe(["warm"], 0.7).used == ["warm"]
        assert "Traceback" not in process.log_path.read_text()
    print(f"\nsidecar rejections by reason ({seconds:.1f} s): {dict(status['rejected'])}\nsent: {dict(sent)}")


@pytest.mark.slow
def test_ten_thousand_fuzzed_messages_to_the_engine_link() -> None:
    fake = FakeSidecar()
    try:
        with paced_engine() as engine, SidecarLink(engine, fake.endpoint) as link:
            fake.accept()
            assert link.wait_connected(5)
            values = FallbackTableHandler().describe(["warm"], 1.0, None).values
            fake.send("params", snapshot=1000, values=values, words=["warm"])
            assert link.wait_snapshot(1000, 3)
            pushes = len(engine.pushes)
            began = time.monotonic()
            for _, frames in fuzz("sidecar", COUNT, seed=7, stateful="stale", held=1000):
                fake.socket.send_multipart([fake.peer, *frames])  # blocks while the link's queue is full
            assert wait_until(lambda: sum(link.stats().rejected.values()) >= COUNT, 60, interval=0.05), (
                link.stats().rejected
            )
            stats = link.stats()
            assert sum(stats.rejected.values()) == COUNT, stats.rejected
            assert set(stats.rejected) <= set(SCHEMA.reasons)
            assert stats.events.get("internal_errors", 0) == 0, stats.last_error
            assert len(engine.pushes) == pushes and engine.applied() == 1000  # the engine never noticed
            assert stats.values["mid1_gain"] == 4.8
            # ... and the link still takes a real snapshot.
            fake.send("params", snapshot=1001, values=values, words=["warm"])
            assert link.wait_snapshot(1001, 3)
            assert wait_until(lambda: engine.applied() == 1001, 3)
            print(f"\nlink rejections by reason ({time.monotonic() - began:.1f} s): {stats.rejected}")
    finally:
        fake.close()
