"""The sidecar process's loop: one ROUTER socket, a describe handler, engine sessions, heartbeats, resync.

`SidecarServer(endpoint, handler).serve(stop)` runs until `stop` is set. It is single-threaded: the handler
runs on the loop (a describe blocks heartbeats for as long as the model takes). Rules (see PROTOCOL.md):
engines register with hello; the newest snapshot number wins on resync; anything invalid is rejected,
counted by reason and, when its envelope was readable, answered with an error.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from sidecar import keys as curve
from sidecar.handlers import AnalysisWindow, DescribeHandler
from sidecar.protocol import SCHEMA, Message, MessageError, RejectCounter, decode, encode, is_local_endpoint

MAX_SESSIONS = 64
"""Engine sessions remembered for resync (the least recently seen is forgotten first)."""


class ServerError(RuntimeError):
    """The sidecar cannot start (bad endpoint, port in use, missing CURVE keys); the message is one line."""


@dataclass
class EngineSession:
    """What the sidecar knows about one engine session (survives the engine's reconnects)."""

    session: int
    name: str
    identity: bytes | None
    snapshot: int
    values: dict[str, float]
    held: int
    last_seen: float
    windows: int = 0
    window: AnalysisWindow | None = None
    last_resend: float = 0.0


@dataclass
class Counters:
    """Valid messages by type, rejections by reason, replies ZeroMQ could not queue."""

    received: collections.Counter[str] = field(default_factory=collections.Counter)
    rejected: RejectCounter = field(default_factory=RejectCounter)
    send_dropped: int = 0


def require_curve_for(endpoint: str, keys: curve.ServerKeys | None) -> None:
    """Raise ServerError when `endpoint` is reachable beyond this machine and no CURVE keys are given."""
    if keys is None and not is_local_endpoint(endpoint):
        raise ServerError(
            f"binding to {endpoint} needs CURVE keys (only loopback and ipc are allowed without): "
            "create them with `idaw sidecar --make-keys` and pass --curve"
        )


class SidecarServer:
    """The sidecar's socket and state. bind() first (or use serve(), which binds)."""

    def __init__(
        self,
        endpoint: str,
        handler: DescribeHandler,
        keys: curve.ServerKeys | None = None,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        require_curve_for(endpoint, keys)
        self.endpoint = endpoint
        self.handler = handler
        self.keys = keys
        self.session = secrets.randbits(63) | 1
        self.started = time.monotonic()
        self.counters = Counters()
        self.sessions: collections.OrderedDict[int, EngineSession] = collections.OrderedDict()
        self.peers: dict[bytes, int] = {}
        self.snapshot = 0
        self._seq = 0
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] | None = None
        self._authenticator: Any = None
        timing = SCHEMA.timing
        self.heartbeat_s = timing["heartbeat_interval_ms"] / 1000.0
        self.timeout_s = timing["peer_timeout_ms"] / 1000.0

    def bind(self) -> str:
        """Bind the ROUTER socket; returns the endpoint actually bound (the port filled in for tcp://...:*)."""
        socket = self._context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 64)
        socket.setsockopt(zmq.RCVHWM, 1000)
        socket.setsockopt(zmq.MAXMSGSIZE, SCHEMA.limits["zmq_max_message_bytes"])
        socket.setsockopt(
            zmq.ROUTER_MANDATORY, 1
        )  # a full or vanished peer raises (counted) instead of dropping silently
        if self.keys is not None:
            self._authenticator = curve.apply_server(socket, self.keys)
        try:
            socket.bind(self.endpoint)
        except zmq.ZMQError as error:
            socket.close(0)
            self._stop_authenticator()
            raise ServerError(f"cannot bind {self.endpoint}: {error}") from None
        self._socket = socket
        bound = socket.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = bound.decode() if isinstance(bound, bytes) else str(bound)
        return self.endpoint

    def serve(self, stop: threading.Event, parent_pid: int | None = None) -> None:
        """Answer messages and send heartbeats until `stop` is set (or the process `parent_pid` is gone)."""
        if self._socket is None:
            self.bind()
        next_beat = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self.beat(now)
                next_beat = now + self.heartbeat_s
                if parent_pid is not None and os.getppid() != parent_pid:
                    return
            self.step(max(0.0, min(next_beat - time.monotonic(), 0.1)))

    def step(self, timeout_s: float) -> int:
        """Handle every message that arrives within `timeout_s` (at most 256); returns how many were handled."""
        assert self._socket is not None, "bind() first"
        if not self._socket.poll(int(timeout_s * 1000), zmq.POLLIN):
            return 0
        handled = 0
        while handled < 256:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            handled += 1
            self.handle(frames)
        return handled

    def handle(self, frames: list[bytes]) -> None:
        """Validate and dispatch one received message ([identity, payload]); never raises for a peer's error."""
        identity = frames[0]
        if len(frames) != 2:
            self.counters.rejected["frames"] += 1
            return
        try:
            message = decode(frames[1], "sidecar")
            getattr(self, f"_on_{message.kind}")(identity, message)
            self.counters.received[message.kind] += 1  # valid and handled: received + rejected = all messages
        except MessageError as error:
            self.counters.rejected.add(error)
            if error.seq is not None:
                self.send(identity, "error", re=error.seq, code=error.reason, detail=error.detail[:200])

    def send(self, identity: bytes, kind: str, **fields: Any) -> None:
        """Queue one message for the peer `identity` (dropped, and counted, when its queue is full)."""
        assert self._socket is not None
        self._seq += 1
        try:
            self._socket.send_multipart([identity, encode(kind, self._seq, **fields)], zmq.NOBLOCK)
        except zmq.Again:  # the peer does not read: its queue is full
            self.counters.send_dropped += 1
        except zmq.ZMQError as error:  # EHOSTUNREACH: the peer is gone
            if error.errno != zmq.EHOSTUNREACH:
                raise
            self.counters.send_dropped += 1

    def beat(self, now: float) -> None:
        """Send heartbeats to the engines seen recently; forget the connections of those gone quiet."""
        for identity, session_id in list(self.peers.items()):
            state = self.sessions[session_id]
            if now - state.last_seen > self.timeout_s:
                del self.peers[identity]
                state.identity = None
                continue
            self.send(identity, "heartbeat", session=self.session, snapshot=state.snapshot)

    # ---- message handlers (named _on_<type>) ------------------------------------------------------------

    def _engine(self, identity: bytes, message: Message) -> EngineSession:
        session_id = self.peers.get(identity)
        if session_id is None or session_id not in self.sessions:
            raise MessageError("hello_required", "send hello first", message.seq, message.kind)
        state = self.sessions[session_id]
        state.last_seen = time.monotonic()
        return state

    def _on_hello(self, identity: bytes, message: Message) -> None:
        f = message.fields
        now = time.monotonic()
        state = self.sessions.get(f["session"])
        for other, session_id in list(self.peers.items()):  # one connection per session, one session per connection
            if session_id == f["session"] or other == identity:
                del self.peers[other]
        if state is None:
            state = EngineSession(f["session"], f["name"], identity, f["snapshot"], f["values"], f["snapshot"], now)
            self.sessions[state.session] = state
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        state.identity, state.name, state.held, state.last_seen = identity, f["name"], f["snapshot"], now
        self.sessions.move_to_end(state.session)
        self.peers[identity] = state.session
        if f["snapshot"] >= state.snapshot:  # the newest snapshot wins: adopt the engine's
            state.snapshot, state.values = f["snapshot"], f["values"]
        self.snapshot = max(self.snapshot, f["snapshot"])
        self.send(
            identity,
            "welcome",
            re=message.seq,
            session=self.session,
            snapshot=state.snapshot,
            handler=self.handler.name[:64],
        )
        if state.snapshot > f["snapshot"]:  # ours is newer (the engine missed it): send it again
            self._send_params(state, [])

    def _on_heartbeat(self, identity: bytes, message: Message) -> None:
        state = self._engine(identity, message)
        if message.fields["session"] != state.session:
            raise MessageError("hello_required", "session changed", message.seq, message.kind)
        state.held = message.fields["snapshot"]
        if state.held > state.snapshot:  # it holds a snapshot we never saw: its hello will tell us the values
            raise MessageError("hello_required", "engine holds a newer snapshot", message.seq, message.kind)
        if state.held < state.snapshot and state.last_seen - state.last_resend > self.heartbeat_s:
            self._send_params(state, [])  # a params message was lost: full snapshots make this a plain resend

    def _on_audio(self, identity: bytes, message: Message) -> None:
        state = self._engine(identity, message)
        f = message.fields
        state.window = AnalysisWindow(f["samples"], f["rate"], f["start"], state.last_seen)
        state.windows += 1

    def _on_bye(self, identity: bytes, message: Message) -> None:
        state = self._engine(identity, message)
        self.peers.pop(identity, None)
        state.identity = None

    def _on_describe(self, identity: bytes, message: Message) -> None:
        words, intensity = message.fields["words"], message.fields["intensity"]
        result = self._run_handler(words, intensity, message)
        values, used = result
        targets = [s for s in self.sessions.values() if s.identity is not None]
        snapshot = 0
        if used:
            self.snapshot = snapshot = max([self.snapshot, *(s.snapshot for s in targets)]) + 1
            for state in targets:
                state.snapshot, state.values = snapshot, values
                self._send_params(state, used)
        self.send(
            identity,
            "described",
            re=message.seq,
            snapshot=snapshot,
            values=values,
            used=used,
            engines=len(targets) if used else 0,
        )

    def _run_handler(self, words: list[str], intensity: float, message: Message) -> tuple[dict[str, float], list[str]]:
        """The handler's (values, used) checked against the protocol; MessageError('handler_failed') otherwise."""
        newest = max(
            (s.window for s in self.sessions.values() if s.window is not None), key=lambda w: w.received, default=None
        )
        spec = SCHEMA.messages["described"].fields
        try:
            result = self.handler.describe(words, intensity, newest)
            return spec["values"](dict(result.values)), spec["used"](list(result.used))
        except MessageError as error:
            raise MessageError(
                "handler_failed", f"handler returned {error.detail}", message.seq, message.kind
            ) from None
        except Exception as error:  # a broken model must not take the sidecar down
            raise MessageError(
                "handler_failed", f"{type(error).__name__}: {error}"[:200], message.seq, message.kind
            ) from None

    def _send_params(self, state: EngineSession, words: list[str]) -> None:
        if state.identity is None:
            return
        state.last_resend = time.monotonic()
        self.send(state.identity, "params", snapshot=state.snapshot, values=state.values, words=words)

    def _on_feedback(self, identity: bytes, message: Message) -> None:
        f = message.fields
        try:
            self.handler.feedback(f["words"], f["snapshot"], f["rating"])
        except Exception as error:
            raise MessageError(
                "handler_failed", f"{type(error).__name__}: {error}"[:200], message.seq, message.kind
            ) from None
        self.send(identity, "ack", re=message.seq)

    def _on_status(self, identity: bytes, message: Message) -> None:
        self.send(identity, "status_reply", re=message.seq, **self.status())

    def status(self) -> dict[str, Any]:
        """The status_reply fields: session, uptime, handler, snapshot, counters and connected engines."""
        now = time.monotonic()
        engines = [
            {
                "session": s.session,
                "name": s.name,
                "snapshot": s.snapshot,
                "held": s.held,
                "windows": s.windows,
                "seen_ms": int((now - s.last_seen) * 1000),
            }
            for s in self.sessions.values()
            if s.identity is not None
        ][-16:]
        return {
            "session": self.session,
            "uptime_s": round(now - self.started, 3),
            "handler": self.handler.name[:64],
            "snapshot": self.snapshot,
            "received": dict(self.counters.received),
            "rejected": dict(self.counters.rejected),
            "dropped": self.counters.send_dropped,
            "engines": engines,
        }

    def _stop_authenticator(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def close(self) -> None:
        """Close the socket (pending messages are dropped) and stop the CURVE authenticator."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
        self._stop_authenticator()
