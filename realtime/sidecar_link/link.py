"""The engine side of the sidecar protocol: `SidecarLink`, a non-audio thread in the host process.

It drains the engine's analysis ring, decimates to the protocol's analysis rate (22.05 kHz) mono and sends
overlapping windows; it receives parameter snapshots, validates them and hands them to
`engine.push_parameters` (it must be the only thread that pushes: the engine's queue has one producer, so
hosts change their own settings with `set_base`);
it sends heartbeats, notices the sidecar going away (socket events, or heartbeats missing for
peer_timeout_ms) and sends hello again when one comes back. Without a sidecar the engine simply keeps the
last parameters it was given. Requests (describe, status) from any thread go out on the same connection and wait
for their reply (`describe`, `status`), as the plugin sends them: a host needs no second socket.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import zmq

from idaw.base import keyfiles
from idaw.base.protocol import SCHEMA, Message, MessageError, ProtocolError, decode, encode, merge_values, next_seq
from idaw.base.protocol.replies import Described, RequestError
from realtime.sidecar_link.analysis import WindowMaker
from realtime.sidecar_link.linkstate import LinkState, LinkStats

PUMP_INTERVAL_S = 0.02
"""How often the link drains the analysis ring and retries a snapshot the engine's queue refused."""
REQUEST_TIMEOUT_S = 2.0
"""How long a request waits for its reply unless told otherwise."""
REPLY_KINDS = frozenset(("described", "ack", "status_reply", "error"))
"""Message types that answer a request (their `re` is the request's seq)."""


class EngineLike(Protocol):
    """What the link needs from an engine (idaw_core.Engine has all of it)."""

    @property
    def sample_rate(self) -> float:
        """Engine sample rate in Hz."""
        ...

    def push_parameters(self, values: npt.NDArray[np.float32], sequence: int = 0) -> bool:
        """Queue a full snapshot for the audio thread; False when refused (queue full or out of range)."""
        ...

    def read_analysis(self, out: npt.NDArray[np.float32]) -> int:
        """Pop mono analysis samples into `out`; returns how many were written."""
        ...

    def set_analysis_enabled(self, on: bool) -> None:
        """Turn the audio thread's analysis copy on or off."""
        ...


@dataclass
class _Request:
    """One request: made on a caller's thread, sent and answered on the link thread."""

    kind: str
    fields: dict[str, Any]
    deadline: float
    """time.monotonic() after which the caller no longer waits: it is not sent, or its reply is not awaited."""
    done: threading.Event = field(default_factory=threading.Event)
    reply: Message | None = None
    error: RequestError | None = None

    def finish(self, reply: Message | None = None, error: RequestError | None = None) -> None:
        """Hand the reply (or the error) to the waiting caller."""
        self.reply, self.error = reply, error
        self.done.set()


class SidecarLink:
    """Connects one engine to a sidecar. start() it after the engine is prepared; stop() (or `with`) ends it.

    `base` is the full parameter vector the host set up (its drive, gains, mix, ...); sidecar snapshots replace
    only the protocol's snapshot_params in it. Every public method is safe to call from any thread.
    """

    def __init__(
        self,
        engine: EngineLike,
        endpoint: str | None = None,
        base: npt.ArrayLike | None = None,
        *,
        name: str = "idaw",
        keys: keyfiles.ClientKeys | None = None,
        context: zmq.Context[Any] | None = None,
        on_params: Callable[[int, dict[str, float]], None] | None = None,
        on_heard: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.endpoint = endpoint or SCHEMA.default_endpoint
        self.name = name[:64]
        self.keys = keys
        self.session = secrets.randbits(63) | 1
        self.on_params = on_params
        self.on_heard = on_heard
        """Called on the link thread with the fields of each heard message (see set_follow); must return quickly."""
        self._follow: bool | None = None  # None: never asked (nothing is sent)
        self._follow_sent = True
        self._follow_seq = -1
        self.follow_refused: str | None = None
        """The sidecar's reason when it refused to follow (e.g. too many engines followed), else None."""
        vector = np.array([p.default for p in SCHEMA.parameters] if base is None else base, dtype=np.float32)
        self.state = LinkState(check_vector(vector))
        self.windows = WindowMaker(round(engine.sample_rate))
        self._context = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._hello_at = -math.inf
        timing = SCHEMA.timing
        self.heartbeat_s = timing["heartbeat_interval_ms"] / 1000.0
        self.timeout_s = timing["peer_timeout_ms"] / 1000.0
        self._outbox: collections.deque[_Request] = collections.deque()
        """Requests from callers, not sent yet (appended on any thread, taken on the link thread)."""
        self._waiting: dict[int, _Request] = {}
        """Sent requests by seq, until answered or past their deadline (link thread only)."""
        self._wake_lock = threading.Lock()
        self._wake: tuple[int, int] | None = None
        """A pipe (read, write) that wakes the link thread for a request (open while the link runs)."""

    # ---- control (any thread) -----------------------------------------------------------------------------

    def start(self) -> SidecarLink:
        """Enable the engine's analysis copy and start the link thread; returns self."""
        if self._thread is None:
            self.engine.set_analysis_enabled(True)
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self._wake = (read, write)
            self._thread = threading.Thread(target=self._run, name="idaw-sidecar-link", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Say bye to the sidecar, stop the thread and the analysis copy. The engine keeps its parameters."""
        self._stop.set()
        if self._thread is not None:
            self._wake_up()
            self._thread.join(timeout)
            if not self._thread.is_alive():  # the thread polls the pipe while it runs: closed only once it is gone
                with self._wake_lock:
                    for descriptor in self._wake or ():
                        os.close(descriptor)
                    self._wake = None
            self._thread = None
        self.engine.set_analysis_enabled(False)

    def __enter__(self) -> SidecarLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_base(self, vector: npt.ArrayLike) -> None:
        """Replace the host's parameter vector; the link pushes it (with the current sidecar EQ) within ~20 ms.

        Raises ValueError for a wrong shape or an out-of-range or non-finite value.
        """
        self.state.set_base(check_vector(np.array(vector, dtype=np.float32)))

    def stats(self) -> LinkStats:
        """A consistent copy of the link's state and counters."""
        return self.state.stats()

    def wait_connected(self, timeout: float, newer_than: int = 0) -> bool:
        """Block until welcomed by a sidecar whose session differs from `newer_than` (0: any); False on timeout."""
        return self.state.wait(lambda s: s.connected and s.sidecar_session not in (0, newer_than), timeout)

    def push_time(self, snapshot: int) -> float | None:
        """time.monotonic() when snapshot number `snapshot` was pushed to the engine (None: not, or forgotten)."""
        return self.state.push_time(snapshot)

    def wait_snapshot(self, snapshot: int, timeout: float) -> bool:
        """Block until a snapshot numbered at least `snapshot` was pushed to the engine; False on timeout."""
        return self.state.wait(lambda s: s.snapshot >= snapshot, timeout)

    def request(self, kind: str, timeout: float | None = None, **fields: Any) -> Message:
        """Send a `kind` request (describe, feedback, status) on the link's connection; returns the reply.

        Any thread; blocks for at most `timeout` s (default REQUEST_TIMEOUT_S). Raises RequestError: 'timeout'
        when no reply came, 'unreachable' when no sidecar is connected (nothing was sent), the reason when the
        request is invalid (nothing was sent) or the sidecar answered with an error.
        """
        total = REQUEST_TIMEOUT_S if timeout is None else timeout
        request = _Request(kind, fields, time.monotonic() + total)
        with self._wake_lock:
            if self._wake is None or self._stop.is_set():
                raise RequestError("unreachable", f"{kind} not sent: the link to {self.endpoint} is not running")
            self._outbox.append(request)
        self._wake_up()
        if not request.done.wait(total):
            raise RequestError("timeout", f"no answer from the sidecar at {self.endpoint} within {total:g} s")
        if request.error is not None:
            raise request.error
        assert request.reply is not None
        return request.reply

    def describe(self, words: Sequence[str], intensity: float, timeout: float | None = None) -> Described:
        """Ask for the EQ that `words` describe at `intensity` (0..1); the sidecar sends it to its engines (this one
        included, as a params message) and answers with what it sent. Raises RequestError (see request)."""
        f = self.request("describe", timeout, words=list(words), intensity=float(intensity)).fields
        return Described(f["snapshot"], f["values"], f["used"], f["engines"])

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """The sidecar's status_reply fields (session, uptime_s, handler, snapshot, received, rejected, engines)."""
        return self.request("status", timeout).fields

    def set_follow(self, on: bool) -> None:
        """Ask the sidecar to follow this engine's audio (key, tempo, beats, mood: heard messages to on_heard) or
        to stop; sent at once when connected, and again after each welcome (a restarted sidecar forgets). Any
        thread."""
        self._follow = on
        self._follow_sent = False
        self._wake_up()

    def _wake_up(self) -> None:
        """Make the link thread's poll return now (a request waits, or the link stops)."""
        with self._wake_lock:
            if self._wake is not None:
                with contextlib.suppress(BlockingIOError):  # a full pipe holds wake-ups already: it wakes anyway
                    os.write(self._wake[1], b"\0")

    # ---- the link thread ----------------------------------------------------------------------------------

    def _socket(self) -> zmq.Socket[bytes]:
        socket: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        for option, value in (
            (zmq.LINGER, 0),
            (zmq.IMMEDIATE, 1),  # queue nothing for a sidecar that is not there (no stale windows on reconnect)
            (zmq.SNDHWM, 16),
            (zmq.RCVHWM, 256),
            (zmq.MAXMSGSIZE, SCHEMA.limits["zmq_max_message_bytes"]),
            (zmq.RECONNECT_IVL, SCHEMA.timing["reconnect_interval_ms"]),
            (zmq.RECONNECT_IVL_MAX, SCHEMA.timing["reconnect_interval_max_ms"]),
        ):
            socket.setsockopt(option, value)
        for name, key in self.keys.socket_options() if self.keys is not None else ():  # a CURVE client
            socket.setsockopt(getattr(zmq, name), key)
        return socket

    def _run(self) -> None:
        socket = self._socket()
        monitor = socket.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        try:
            socket.connect(self.endpoint)
        except zmq.ZMQError as error:  # a malformed endpoint: the link stays disconnected and says why
            self.state.note_internal_error(ValueError(f"cannot connect to {self.endpoint}: {error}"))
            socket.disable_monitor()
            monitor.close(0)
            socket.close(0)
            return
        assert self._wake is not None
        wake = self._wake[0]
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        next_beat = next_pump = time.monotonic()
        try:
            while not self._stop.is_set():
                wait = max(0.0, min(next_beat, next_pump) - time.monotonic())
                ready = dict(poller.poll(int(wait * 1000) + 1))
                try:
                    if wake in ready:
                        _drain(wake)
                    if monitor in ready:
                        self._on_socket_events(socket, monitor)
                    if socket in ready:
                        self._receive(socket)
                    self._send_requests(socket)
                    self._send_follow(socket)
                    now = time.monotonic()
                    if now >= next_pump:
                        next_pump = now + PUMP_INTERVAL_S
                        self._pump(socket)
                        self._forget_late_requests(now)
                    if now >= next_beat:
                        next_beat = now + self.heartbeat_s
                        self._beat(socket, now)
                except Exception as error:  # the link must outlive any bug in one step; the engine never notices
                    self.state.note_internal_error(error)
                    time.sleep(PUMP_INTERVAL_S)
            if self.state.connected:
                self._send(socket, "bye", session=self.session)
        finally:
            self._fail_requests(RequestError("unreachable", f"the link to {self.endpoint} stopped"))
            socket.disable_monitor()
            monitor.close(0)
            socket.close(0)

    def _send(self, socket: zmq.Socket[bytes], kind: str, **fields: Any) -> bool:
        """Send one message without blocking; False (and counted) when ZeroMQ has no connection or room."""
        self._seq = next_seq(self._seq)
        try:
            socket.send(encode(kind, self._seq, **fields), zmq.NOBLOCK)
            return True
        except zmq.Again:
            self.state.count("send_dropped")
            return False

    def _send_follow(self, socket: zmq.Socket[bytes]) -> None:
        """Tell the sidecar whether to follow, when that changed or the sidecar is new."""
        if self._follow is None or self._follow_sent or not self.state.connected:
            return
        if self._send(socket, "follow", on=int(self._follow)):
            self._follow_sent = True
            self._follow_seq = self._seq

    def _send_requests(self, socket: zmq.Socket[bytes]) -> None:
        """Send the requests callers queued (those still awaited), each with the next seq of this link."""
        while self._outbox:
            request = self._outbox.popleft()
            if time.monotonic() > request.deadline:
                continue  # its caller gave up: sending it now would change the EQ after the caller was told no
            self._seq = seq = next_seq(self._seq)
            try:
                payload = encode(request.kind, seq, **request.fields)
            except ProtocolError as error:  # e.g. an intensity of 2: refused here, as the sidecar would refuse it
                request.finish(error=RequestError(error.reason, str(error)))
                continue
            try:
                socket.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                request.finish(error=RequestError("unreachable", f"no sidecar connected at {self.endpoint}"))
                continue
            self._waiting[seq] = request

    def _forget_late_requests(self, now: float) -> None:
        """Drop the sent requests whose callers stopped waiting (their replies, if any, are then ignored)."""
        for seq in [seq for seq, request in self._waiting.items() if now > request.deadline]:
            self._waiting.pop(seq).finish(error=RequestError("timeout", "no answer in time"))

    def _fail_requests(self, error: RequestError) -> None:
        """Answer every request not answered yet with `error` (the link stops)."""
        while self._outbox:
            self._outbox.popleft().finish(error=error)
        for request in self._waiting.values():
            request.finish(error=error)
        self._waiting.clear()

    def _hello(self, socket: zmq.Socket[bytes]) -> None:
        snapshot, values = self.state.held()
        if self._send(
            socket,
            "hello",
            session=self.session,
            name=self.name,
            rate=self.windows.rate,
            snapshot=snapshot,
            values=values,
        ):
            self._hello_at = time.monotonic()

    def _on_socket_events(self, socket: zmq.Socket[bytes], monitor: zmq.Socket[bytes]) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while monitor.poll(0):
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_CONNECTED:
                self._hello(socket)  # a (new) sidecar: introduce ourselves at once
            elif event == zmq.EVENT_DISCONNECTED:
                self.state.lost()

    def _receive(self, socket: zmq.Socket[bytes]) -> None:
        for _ in range(256):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 1:
                self.state.reject("frames")
                continue
            try:
                self._dispatch(socket, decode(frames[0], "engine"))
            except MessageError as error:
                self.state.reject(error.reason)

    def _dispatch(self, socket: zmq.Socket[bytes], message: Message) -> None:
        f = message.fields
        self.state.heard(message.kind)
        request = self._waiting.pop(f["re"], None) if message.kind in REPLY_KINDS else None
        if request is not None:
            if message.kind == "error":
                request.finish(error=RequestError(f["code"], f"sidecar refused {request.kind}: {f['detail']}"))
            else:
                request.finish(reply=message)
        elif message.kind == "welcome":
            self.state.welcomed(f["session"])
            self._follow_sent = self._follow is None  # a (new) sidecar: tell it again
        elif message.kind == "heartbeat":
            if not self.state.connected or f["session"] != self.state.sidecar_session:
                self._hello(socket)  # a sidecar we have not introduced ourselves to (it restarted)
        elif message.kind == "params":
            if not self.state.offer(f["snapshot"], f["values"]):
                raise MessageError("stale", f"snapshot {f['snapshot']} is not newer than the one held")
            self._push()
        elif message.kind == "heard":
            if self.on_heard is not None:
                self.on_heard(dict(f))
        elif message.kind == "error" and f["code"] == "hello_required":
            self._hello(socket)
        elif message.kind == "error" and f["re"] == self._follow_seq:
            self.follow_refused = f"{f['code']}: {f['detail']}"

    def _push(self) -> None:
        """Push the pending snapshot (or base change) to the engine; left pending when its queue is full."""
        pending = self.state.pending()
        if pending is None:
            return
        snapshot, values, base = pending
        if self.engine.push_parameters(merge_values(base, values), snapshot):
            self.state.pushed(snapshot, values)
            if self.on_params is not None:
                self.on_params(snapshot, dict(values))
        else:
            self.state.count("push_refused")

    def _pump(self, socket: zmq.Socket[bytes]) -> None:
        self._push()
        window = self.windows.pump(self.engine)
        self.state.analysed(self.windows.total_in)
        if window is not None and self.state.connected:
            start, samples = window
            if self._send(socket, "audio", rate=self.windows.rate, start=start, samples=samples):
                self.state.count("windows_sent")

    def _beat(self, socket: zmq.Socket[bytes], now: float) -> None:
        if self.state.connected and now - self.state.last_heard > self.timeout_s:
            self.state.lost()
        if self.state.connected:
            self._send(socket, "heartbeat", session=self.session, snapshot=self.state.snapshot)
        elif now - self._hello_at >= self.heartbeat_s:  # not welcomed yet: ask again, once per interval
            self._hello(socket)


def _drain(descriptor: int) -> None:
    """Read everything waiting in the non-blocking pipe `descriptor`."""
    with contextlib.suppress(BlockingIOError):
        while os.read(descriptor, 4096):
            pass


def check_vector(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """`vector` if it is a full, finite, in-range engine parameter vector; raises ValueError naming the culprit."""
    specs = SCHEMA.parameters
    if vector.shape != (len(specs),):
        raise ValueError(f"expected {len(specs)} parameter values, got shape {vector.shape}")
    for value, spec in zip(vector, specs, strict=True):
        if not np.float32(spec.minimum) <= value <= np.float32(spec.maximum):
            raise ValueError(f"{spec.name} = {value:g} is outside {spec.minimum:g}..{spec.maximum:g}")
    return vector


__all__ = ["EngineLike", "LinkStats", "SidecarLink", "check_vector"]
