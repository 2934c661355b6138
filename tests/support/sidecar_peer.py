"""A raw sidecar peer for tests: a DEALER that sends any map it is given and checks every message the sidecar sends
back against the protocol (decode), as a real engine would."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import zmq

from idaw.base.protocol import SCHEMA, Message, decode, flat_values
from tests.support.sidecar_helpers import HANG_CAP_S


class Peer:
    """A raw DEALER: sends any map it is given, receives the sidecar's messages (each must pass the protocol)."""

    def __init__(self, endpoint: str, receive_queue: int = 1000) -> None:
        """`receive_queue`: how many messages ZeroMQ holds for this peer before it stops reading the socket."""
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, receive_queue)
        self.socket.connect(endpoint)
        self.seq = 0
        self.inbox: list[Message] = []

    def send(self, kind: str, seq: int | None = None, **fields: Any) -> int:
        """Send a message of type `kind` with `fields` as given (no checks); returns its seq."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.socket.send(msgpack.packb({"v": SCHEMA.version, "type": kind, "seq": seq, **fields}, use_bin_type=True))
        return seq

    def hello(self, session: int, snapshot: int = 0, **extra: Any) -> int:
        fields = {"session": session, "name": "hostile", "rate": 16000, "snapshot": snapshot, "values": flat_values()}
        return self.send("hello", **{**fields, **extra})

    def pump(self) -> None:
        """Move what has arrived into the inbox (decode raises if the sidecar sent anything invalid)."""
        while self.socket.poll(0):
            self.inbox.append(decode(self.socket.recv(), "engine"))

    def wait(self, kind: str, timeout: float = HANG_CAP_S, beating: int | None = None, **match: Any) -> Message:
        """The first message of `kind` (whose fields include `match`) that arrives, removed from the inbox.

        `beating`: the peer's session, whose heartbeat it sends every heartbeat interval meanwhile, as an engine does
        (the sidecar lets go of a connection that has been silent for peer_timeout_ms)."""
        deadline = time.monotonic() + timeout
        interval = SCHEMA.timing["heartbeat_interval_ms"] / 1000.0
        next_beat = 0.0
        while True:
            self.pump()
            for message in self.inbox:
                if message.kind == kind and all(message.fields.get(k) == v for k, v in match.items()):
                    self.inbox.remove(message)
                    return message
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                raise AssertionError(f"no {kind} {match} within {timeout} s; got {[m.kind for m in self.inbox]}")
            if beating is not None and now >= next_beat:
                self.send("heartbeat", session=beating, snapshot=0)
                next_beat = now + interval
            self.socket.poll(int(min(left, interval if beating is not None else left) * 1000) + 1)

    def reply_to(self, seq: int, timeout: float = HANG_CAP_S) -> Message:
        """The reply (any type) whose `re` is `seq`."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            for message in self.inbox:
                if message.fields.get("re") == seq and message.kind != "heartbeat":
                    self.inbox.remove(message)
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to seq {seq} within {timeout} s; got {[m.kind for m in self.inbox]}")
            self.socket.poll(int(left * 1000) + 1)

    def kinds(self) -> list[str]:
        self.pump()
        return [m.kind for m in self.inbox]

    def close(self) -> None:
        self.socket.close(0)
