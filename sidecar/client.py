"""Requests to a sidecar (describe, feedback, status) from any process: `SidecarClient`, for `idaw sidecar
--status/--describe`, tools and tests (engine hosts send their requests over their link instead).

One client per thread (ZeroMQ sockets are not thread-safe). Replies are matched to requests by `re`;
late replies to requests that timed out are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import zmq

from idaw.base import keyfiles
from idaw.base.protocol import SCHEMA, Message, MessageError, ProtocolError, decode, encode, next_seq
from idaw.base.protocol.replies import Described, RequestError
from sidecar import keys as curve

__all__ = ["Described", "SidecarClient", "SidecarError"]


class SidecarError(RequestError):
    """A request of a SidecarClient failed: `code` is 'timeout' (no sidecar answered) or the protocol reason the
    sidecar gave."""


class SidecarClient:
    """A DEALER connected to a sidecar; request() and the helpers block for at most `timeout` seconds."""

    def __init__(
        self,
        endpoint: str | None = None,
        keys: keyfiles.ClientKeys | None = None,
        timeout: float = 2.0,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        self.endpoint = endpoint or SCHEMA.default_endpoint
        self.timeout = timeout
        self._seq = 0
        self.rejected = 0
        """Replies that failed validation (dropped)."""
        self._socket: zmq.Socket[bytes] = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, SCHEMA.limits["zmq_max_message_bytes"])
        self._socket.setsockopt(zmq.RECONNECT_IVL, SCHEMA.timing["reconnect_interval_ms"])
        if keys is not None:
            curve.apply_client(self._socket, keys)
        self._socket.connect(self.endpoint)

    def send_raw(self, frames: Sequence[bytes]) -> None:
        """Send `frames` exactly as given (tests use this to send what a broken peer would)."""
        self._socket.send_multipart(list(frames))

    def request(self, kind: str, timeout: float | None = None, **fields: Any) -> Message:
        """Send a `kind` request and return the reply; raises SidecarError on timeout or an error reply."""
        self._seq = seq = next_seq(self._seq)
        try:
            payload = encode(kind, seq, **fields)
        except ProtocolError as error:  # e.g. an intensity of 2: refused here, with the reason the sidecar would give
            raise SidecarError(error.reason, str(error)) from None
        self._socket.send(payload)
        total = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        while (left := deadline - time.monotonic()) > 0:
            if not self._socket.poll(int(left * 1000) + 1):
                break
            try:
                reply = decode(self._socket.recv(), "client")
            except MessageError:
                self.rejected += 1
                continue
            if reply.fields.get("re") != seq:
                continue  # a heartbeat, or the late answer to an earlier request
            if reply.kind == "error":
                raise SidecarError(reply.fields["code"], f"sidecar refused {kind}: {reply.fields['detail']}")
            return reply
        raise SidecarError("timeout", f"no answer from the sidecar at {self.endpoint} within {total:g} s")

    def describe(self, words: Sequence[str], intensity: float, timeout: float | None = None) -> Described:
        """Ask for the EQ that `words` describe at `intensity` (0..1); the sidecar also sends it to its engines."""
        f = self.request("describe", timeout, words=list(words), intensity=float(intensity)).fields
        return Described(f["snapshot"], f["values"], f["used"], f["engines"])

    def feedback(self, snapshot: int, rating: float, words: Sequence[str] = ()) -> None:
        """Rate snapshot number `snapshot` from -1 (worse) to 1 (better)."""
        self.request("feedback", words=list(words), snapshot=snapshot, rating=float(rating))

    def mood(self, text: str, timeout: float | None = None) -> tuple[float, float]:
        """(valence, arousal), each -1..1, that `text` describes (the sidecar's reading of `--mood`)."""
        f = self.request("mood", timeout, text=text).fields
        return float(f["valence"]), float(f["arousal"])

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """The sidecar's status_reply fields (session, uptime_s, handler, snapshot, received, rejected, engines)."""
        return self.request("status", timeout).fields

    def close(self) -> None:
        """Close the socket."""
        self._socket.close(0)

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
