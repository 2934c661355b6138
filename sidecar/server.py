"""The sidecar process's loop: one ROUTER socket, a describe handler, engine sessions, heartbeats, resync.

`SidecarServer(endpoint, handler).serve(stop)` runs until `stop` is set. It is single-threaded: the handler
runs on the loop (a describe blocks heartbeats for as long as the model takes); only the followers of engines that
send follow are built on a background thread (sidecar/follower_builds.py: the first one loads librosa and music21
for seconds), while the loop keeps the engine's windows (up to FOLLOW_BACKLOG) and answers them once it is built.
Rules (see PROTOCOL.md): engines register with hello; the newest snapshot number wins on resync; anything invalid is
rejected, counted by reason and, when its envelope was readable, answered with an error.

Nothing a client sends can stop the loop: each message is handled inside one boundary (`handle`) that turns
any failure, a bug in building a reply included, into a count (`internal`) and goes on; replies are built
within their schema limits (client text is never echoed unbounded); snapshot numbers stop at max_snapshot
instead of overflowing; and at most max_sessions engine sessions are remembered (a new one beyond that is
refused while the others are live).
"""

from __future__ import annotations

import collections
import functools
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from idaw.base import keyfiles
from idaw.base.protocol import (
    MAX_SESSIONS,
    MAX_SNAPSHOT,
    SCHEMA,
    Message,
    MessageError,
    ProtocolError,
    RejectCounter,
    decode,
    encode,
    is_local_endpoint,
    next_seq,
    printable_text,
    text_limit,
)
from sidecar import keys as curve
from sidecar.follower_builds import FollowerBuilds, warmed_follower

if TYPE_CHECKING:
    from idaw.listen.follow import Follower
from sidecar.handlers import AnalysisWindow, DescribeHandler

MAX_STREAM_INDEX = 2**64 - 1
"""The largest stream index a message can carry (uint64)."""
MAX_FOLLOWED = 4
"""Engine sessions followed at once: a follower costs about 50-100 ms of this one thread per window (two a second),
so more would starve the heartbeats; a follow beyond this is refused ('full')."""
FOLLOW_BACKLOG = 16
"""Audio windows kept per engine while its follower is being built (8 s of stream at the protocol's hop, as much as
the follower itself keeps), answered one per loop step once it is built; older ones are dropped."""
MAX_LOGGED_INTERNAL = 20
"""Internal errors written to stderr, one line each; later ones are only counted (a client must not fill the log)."""

ERROR_DETAIL_BYTES = text_limit("error", "detail")
HANDLER_NAME_BYTES = text_limit("welcome", "handler")
MAX_UPTIME_S = float(SCHEMA.raw["messages"]["status_reply"]["fields"]["uptime_s"]["max"])


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
    follower: Follower | None = None
    """The session's idaw.listen.follow.Follower while it asked to be followed (follow on: 1) and it is built."""
    build: int = 0
    """The number of the follower build (FollowerBuilds.request) under way for this session; 0: none."""
    follow_seq: int = 0
    """The seq of the follow that asked for that build (a failed build is answered as an error to it)."""
    backlog: collections.deque[AnalysisWindow] = field(default_factory=lambda: collections.deque(maxlen=FOLLOW_BACKLOG))
    """Windows not yet fed to the follower: they came while it was being built, or while older ones waited."""

    @property
    def followed(self) -> bool:
        """Whether the engine asked to be followed (its follower is built or being built)."""
        return self.follower is not None or self.build != 0


@dataclass
class Counters:
    """Valid messages by type, rejections by reason (`internal`: the sidecar failed), replies not sent."""

    received: collections.Counter[str] = field(default_factory=collections.Counter)
    rejected: RejectCounter = field(default_factory=RejectCounter)
    send_dropped: int = 0
    last_internal: str = ""
    """The newest internal error, one line (for logs and tests)."""


def require_curve_for(endpoint: str, keys: keyfiles.ServerKeys | None) -> None:
    """Raise ServerError when `endpoint` is malformed, or reachable beyond this machine and no CURVE keys are given
    (the whole endpoint is parsed: idaw/base/endpoint.py)."""
    from idaw.base.endpoint import EndpointError, parse_endpoint

    try:
        parse_endpoint(endpoint)
    except EndpointError as error:
        raise ServerError(str(error)) from None
    if keys is None and not is_local_endpoint(endpoint):
        raise ServerError(
            f"binding to {endpoint} needs CURVE keys (only loopback and ipc are allowed without): "
            "create them with `idaw sidecar --make-keys` and pass --curve"
        )


def _handler_failed(error: Exception, message: Message) -> MessageError:
    """The 'handler_failed' rejection of `message` for the handler's exception (its text is clipped when sent)."""
    return MessageError("handler_failed", f"{type(error).__name__}: {error}", message.seq, message.kind)


class SidecarServer:
    """The sidecar's socket and state. bind() first (or use serve(), which binds).

    Invariants (kept by _link/_unlink/_forget): every `peers` entry maps a connection to a remembered session
    whose `identity` is that connection, and every session with an `identity` has that `peers` entry.
    """

    def __init__(
        self,
        endpoint: str,
        handler: DescribeHandler,
        keys: keyfiles.ServerKeys | None = None,
        context: zmq.Context[Any] | None = None,
        build_follower: Callable[[], Follower] | None = None,
    ) -> None:
        """`build_follower`: makes an engine's follower, on a background thread (default: the shipped adapter's mood,
        sidecar.follower_builds.warmed_follower)."""
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
        """Newest snapshot number issued or adopted from a hello (reported in status)."""
        self._seq = 0
        self._failed: str | None = None  # set by send() when a reply could not be built for the current message
        self._logged = 0  # internal errors written to stderr so far
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] | None = None
        self._authenticator: Any = None
        timing = SCHEMA.timing
        self.heartbeat_s = timing["heartbeat_interval_ms"] / 1000.0
        self.timeout_s = timing["peer_timeout_ms"] / 1000.0
        self.builds = FollowerBuilds(build_follower or functools.partial(warmed_follower, SCHEMA.analysis["hop_s"]))

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
        """Answer messages and send heartbeats until `stop` is set (or the process `parent_pid` is gone).

        Returns only then: a failure of one step is counted (`internal`) and the loop goes on.
        """
        if self._socket is None:
            self.bind()
        next_beat = time.monotonic()
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + self.heartbeat_s
                    self.beat(now)
                    if parent_pid is not None and os.getppid() != parent_pid:
                        return
                self.step(max(0.0, min(next_beat - time.monotonic(), 0.1)))
            except Exception as error:  # not a message's fault (handle() never raises): count, breathe, go on
                self._note_internal(error, "the loop")
                stop.wait(0.01)

    def step(self, timeout_s: float) -> int:
        """Take up the followers built meanwhile and answer one waiting window of each followed engine, then handle
        every message that arrives within `timeout_s` (at once while windows wait; at most 256); returns how many
        messages were handled."""
        assert self._socket is not None, "bind() first"
        if self._tend_followers():
            timeout_s = 0.0
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
        """Validate and dispatch one received message ([identity, payload, ...]); never raises.

        Each message ends up counted exactly once: in `received` by type when handled, or in `rejected` by reason
        (`internal` when the handler or the building of a reply failed; the reply is dropped then).
        """
        message: Message | None = None
        self._failed = None
        try:
            identity = frames[0]
            if len(frames) != 2:
                self.counters.rejected["frames"] += 1
                return
            try:
                message = decode(frames[1], "sidecar")
                getattr(self, f"_on_{message.kind}")(identity, message)
            except MessageError as error:
                self._refuse(identity, error)
                return
            if self._failed is None:
                self.counters.received[message.kind] += 1  # valid and handled: received + rejected = all messages
                return
            failure = self._failed
        except Exception as error:  # a bug: the message is dropped, nothing else changes
            failure = self._note_internal(error, message.kind if message is not None else "a message")
        self.counters.rejected["internal"] += 1
        if message is not None:
            self._answer_internal(frames[0], message, failure)

    def _refuse(self, identity: bytes, error: MessageError) -> None:
        """Count a rejection and answer it with `error` when the envelope (seq) could be read."""
        self.counters.rejected.add(error)
        if error.seq is not None:
            self.send(identity, "error", re=error.seq, code=error.reason, detail=self._detail(error.detail))

    def _answer_internal(self, identity: bytes, message: Message, failure: str) -> None:
        """Tell the sender its message was dropped because the sidecar failed (the detail names no client text)."""
        self.send(
            identity,
            "error",
            re=message.seq,
            code="internal",
            detail=self._detail(f"the sidecar failed on this {message.kind} and dropped it ({failure})"),
        )

    @staticmethod
    def _detail(text: str) -> str:
        """`text` as an error detail: printable and within the schema's byte limit."""
        return printable_text(text, ERROR_DETAIL_BYTES)

    def _note_internal(self, error: BaseException, where: str) -> str:
        """Remember and (the first few times) log a failure of the sidecar itself; returns a one-line summary."""
        summary = printable_text(f"{type(error).__name__}: {error}", 160)
        self.counters.last_internal = f"{where}: {summary}"
        if self._logged < MAX_LOGGED_INTERNAL:
            self._logged += 1
            ending = "; further ones are only counted" if self._logged == MAX_LOGGED_INTERNAL else ""
            print(f"idaw sidecar: internal error in {where} (dropped): {summary}{ending}", file=sys.stderr, flush=True)
        return summary

    def send(self, identity: bytes, kind: str, **fields: Any) -> bool:
        """Queue one message for the peer `identity`; returns whether it was queued.

        Never raises: a message ZeroMQ cannot queue (the peer's queue is full, or the peer is gone) is counted in
        `dropped`; one that cannot be built (a bug) too, and it marks the message being handled as failed.
        """
        assert self._socket is not None
        self._seq = next_seq(self._seq)
        try:
            payload = encode(kind, self._seq, **fields)
        except ProtocolError as error:
            self.counters.send_dropped += 1
            self._failed = self._note_internal(error, f"building {kind}")
            return False
        try:
            self._socket.send_multipart([identity, payload], zmq.NOBLOCK)
            return True
        except zmq.Again:  # the peer does not read: its queue is full
            self.counters.send_dropped += 1
        except zmq.ZMQError as error:  # EHOSTUNREACH: the peer is gone
            self.counters.send_dropped += 1
            if error.errno != zmq.EHOSTUNREACH:
                self._failed = self._note_internal(error, f"sending {kind}")
        return False

    def beat(self, now: float) -> None:
        """Send heartbeats to the engines seen recently; forget the connections of those gone quiet."""
        for identity, session_id in list(self.peers.items()):
            state = self.sessions.get(session_id)
            if state is None or state.identity != identity or now - state.last_seen > self.timeout_s:
                self._unlink(identity)
                continue
            self.send(identity, "heartbeat", session=self.session, snapshot=state.snapshot)

    # ---- sessions and connections ------------------------------------------------------------------------

    def _unlink(self, identity: bytes) -> None:
        """Forget the connection `identity` (its session, if any, stays remembered without a connection)."""
        session_id = self.peers.pop(identity, None)
        state = self.sessions.get(session_id) if session_id is not None else None
        if state is not None and state.identity == identity:
            state.identity = None

    def _link(self, identity: bytes, state: EngineSession) -> None:
        """Make `identity` the one connection of `state` (and `state` the one session of `identity`)."""
        self._unlink(identity)
        if state.identity is not None:
            self._unlink(state.identity)
        state.identity = identity
        self.peers[identity] = state.session

    def _forget(self, state: EngineSession) -> None:
        """Forget a session and every mapping to it."""
        self._stop_following(state)
        for identity in [i for i, s in self.peers.items() if s == state.session]:
            del self.peers[identity]
        self.sessions.pop(state.session, None)

    def _live(self, state: EngineSession, now: float) -> bool:
        """Whether `state` was heard from within peer_timeout_ms (a connected engine beats every 200 ms)."""
        return now - state.last_seen <= self.timeout_s

    def _make_room(self, now: float) -> bool:
        """True when a new session may be remembered: below max_sessions, or after forgetting the session that has
        been quiet the longest. False when every remembered session is live."""
        if len(self.sessions) < MAX_SESSIONS:
            return True
        quiet = [s for s in self.sessions.values() if not self._live(s, now)]
        if not quiet:
            return False
        self._forget(min(quiet, key=lambda s: s.last_seen))
        return True

    # ---- message handlers (named _on_<type>) ------------------------------------------------------------

    def _engine(self, identity: bytes, message: Message) -> EngineSession:
        session_id = self.peers.get(identity)
        state = self.sessions.get(session_id) if session_id is not None else None
        if state is None or state.identity != identity:
            raise MessageError("hello_required", "send hello first", message.seq, message.kind)
        state.last_seen = time.monotonic()
        return state

    def _on_hello(self, identity: bytes, message: Message) -> None:
        f = message.fields
        now = time.monotonic()
        state = self.sessions.get(f["session"])
        if state is None:
            if not self._make_room(now):
                raise MessageError(
                    "full",
                    f"{MAX_SESSIONS} engine sessions are live; a new one is refused until one has been quiet for "
                    f"{SCHEMA.timing['peer_timeout_ms']} ms",
                    message.seq,
                    message.kind,
                )
            state = EngineSession(f["session"], f["name"], None, f["snapshot"], f["values"], f["snapshot"], now)
            self.sessions[state.session] = state
        self._link(identity, state)  # one connection per session, one session per connection
        state.name, state.held, state.last_seen = f["name"], f["snapshot"], now
        self.sessions.move_to_end(state.session)
        if f["snapshot"] >= state.snapshot:  # the newest snapshot wins: adopt the engine's
            state.snapshot, state.values = f["snapshot"], f["values"]
        self.snapshot = max(self.snapshot, f["snapshot"])
        self.send(
            identity,
            "welcome",
            re=message.seq,
            session=self.session,
            snapshot=state.snapshot,
            handler=printable_text(self.handler.name, HANDLER_NAME_BYTES),
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
        if state.build or state.backlog:  # the follower is being built, or older windows wait: in order, later
            state.backlog.append(state.window)
        elif state.follower is not None:
            self._send_heard(identity, state.follower, state.window)

    def _on_follow(self, identity: bytes, message: Message) -> None:
        """Acknowledged at once: the follower is built on the builds' thread (_tend_followers takes it up)."""
        state = self._engine(identity, message)
        if not message.fields["on"]:
            self._stop_following(state)
        elif not state.followed:  # a follow while already followed (or being built) changes nothing
            if sum(1 for s in self.sessions.values() if s.followed) >= MAX_FOLLOWED:
                raise MessageError(
                    "full", f"{MAX_FOLLOWED} engines are followed already; stop one first", message.seq, message.kind
                )
            state.build, state.follow_seq = self.builds.request(), message.seq
        self.send(identity, "ack", re=message.seq)

    def _stop_following(self, state: EngineSession) -> None:
        """Stop following `state`: its follower, waiting windows and any build under way (whose result is then
        dropped) are let go."""
        if state.build:
            self.builds.cancel(state.build)
        state.follower, state.build = None, 0
        state.backlog.clear()

    def _tend_followers(self) -> bool:
        """Give each finished build to its session (dropped when that stopped following or is gone; a failed one is
        logged and answered as an error to the follow), then feed one waiting window to each built follower.
        Returns whether windows still wait. A failure is noted as internal and the rest goes on."""
        for built in self.builds.finished():
            try:
                state = next((s for s in self.sessions.values() if s.build == built.number), None)
                if state is None:
                    continue  # follow off, bye or forgotten while it was built
                state.build = 0
                if built.error is None:
                    state.follower = built.follower
                    continue
                state.backlog.clear()
                failure = self._note_internal(built.error, "building a follower")
                if state.identity is not None:
                    detail = self._detail(f"the follower could not be built ({failure}); follow is off")
                    self.send(state.identity, "error", re=state.follow_seq, code="internal", detail=detail)
            except Exception as error:  # a bug: this build is lost, the others are taken up
                self._note_internal(error, "taking up a follower")
        waiting = False
        for state in self.sessions.values():
            if state.follower is None or not state.backlog:
                continue
            try:
                self._send_heard(state.identity, state.follower, state.backlog.popleft())
            except Exception as error:  # a bug: that window is dropped, as one that came in a message would be
                self._note_internal(error, "following a waiting window")
            waiting = waiting or bool(state.backlog)
        return waiting

    def _send_heard(self, identity: bytes | None, follower: Follower, window: AnalysisWindow) -> None:
        """Feed the window to the session's follower and send what it heard (indices at the window's rate) to
        `identity` (nothing is sent while the engine has no connection)."""
        from idaw.listen.audio import SAMPLE_RATE

        samples, start = window.samples, window.start
        if window.rate != SAMPLE_RATE:
            import soxr

            samples = soxr.resample(samples, window.rate, SAMPLE_RATE)
            start = round(start * SAMPLE_RATE / window.rate)
        heard = follower.feed(samples, start)
        if identity is None:
            return

        def at_window_rate(index: int) -> int:
            # A window near the end of the index range (what a peer may claim) cannot report past it.
            return min(round(index * window.rate / SAMPLE_RATE), MAX_STREAM_INDEX)

        tempo, beat = (heard.tempo_bpm, heard.beat) if heard.beat is not None else (None, None)
        self.send(
            identity,
            "heard",
            upto=at_window_rate(heard.upto),
            tempo_bpm=min(tempo, 300.0) if tempo is not None else 0.0,
            beat=at_window_rate(beat) if beat is not None and tempo is not None else 0,
            key_tonic=heard.key.tonic if heard.key is not None else 12,
            key_minor=int(heard.key.minor) if heard.key is not None else 0,
            emotion=heard.emotion or "",
            valence=heard.valence,
            arousal=heard.arousal,
        )

    def _on_bye(self, identity: bytes, message: Message) -> None:
        self._stop_following(self._engine(identity, message))  # it left: a new connection asks again
        self._unlink(identity)

    def _next_snapshot(self, targets: list[EngineSession], message: Message) -> int:
        """One more than the newest number an engine it goes to holds (1 for none); 'snapshot_limit' past the end.

        Only the engines it goes to count (not every number ever seen or issued): each of them gets a newer number
        than the one it holds, and an engine that went away holding the last number does not use up the numbers
        of the others.
        """
        newest = max((s.snapshot for s in targets), default=0)
        if newest >= MAX_SNAPSHOT:
            raise MessageError(
                "snapshot_limit",
                f"an engine holds snapshot {newest}, the last number ({MAX_SNAPSHOT}); nothing was sent",
                message.seq,
                message.kind,
            )
        return newest + 1

    def _on_describe(self, identity: bytes, message: Message) -> None:
        words, intensity = message.fields["words"], message.fields["intensity"]
        values, used = self._run_handler(words, intensity, message)
        targets = [s for s in self.sessions.values() if s.identity is not None]
        snapshot = 0
        if used:
            snapshot = self._next_snapshot(targets, message)
            self.snapshot = max(self.snapshot, snapshot)
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
            raise _handler_failed(error, message) from None

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
            raise _handler_failed(error, message) from None
        self.send(identity, "ack", re=message.seq)

    def _on_mood(self, identity: bytes, message: Message) -> None:
        # Imported here: the sentence model is loaded on the first mood request, not when the sidecar starts.
        from idaw.text.mood import mood

        try:
            valence, arousal, _ = mood(message.fields["text"])
        except Exception as error:  # the model missing or broken must not take the sidecar down
            raise _handler_failed(error, message) from None
        self.send(
            identity,
            "mood_read",
            re=message.seq,
            valence=min(1.0, max(-1.0, valence)),
            arousal=min(1.0, max(-1.0, arousal)),
        )

    def _on_status(self, identity: bytes, message: Message) -> None:
        self.send(identity, "status_reply", re=message.seq, **self.status())

    def status(self) -> dict[str, Any]:
        """The status_reply fields: session, uptime, handler, snapshot, sessions, counters, connected engines."""
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
            "uptime_s": min(round(now - self.started, 3), MAX_UPTIME_S),
            "handler": printable_text(self.handler.name, HANDLER_NAME_BYTES),
            "snapshot": self.snapshot,
            "sessions": len(self.sessions),
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
        """Close the socket (pending messages are dropped), stop the CURVE authenticator and the follower builds."""
        self.builds.close()
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
        self._stop_authenticator()
