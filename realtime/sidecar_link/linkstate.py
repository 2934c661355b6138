"""The state SidecarLink shares between its thread and its callers, behind one lock."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from idaw.base.protocol import printable_text, values_of

LAST_ERROR_BYTES = 256
"""The longest `last_error` kept (an error's text may quote what a peer sent)."""

PUSH_HISTORY = 4096
"""How many snapshot push times are remembered (for latency measurements)."""


@dataclass(frozen=True)
class LinkStats:
    """A copy of a link's state: connection, the snapshot the engine holds, counters."""

    connected: bool
    sidecar_session: int
    """Session id of the sidecar that welcomed us last (0: never)."""
    snapshot: int
    """Number of the newest snapshot pushed to the engine (0: none from a sidecar)."""
    values: dict[str, float]
    """The snapshot parameters the engine holds."""
    welcomes: int
    """Welcomes received (each connection or reconnection to a sidecar)."""
    losses: int
    """Times the sidecar was found gone (disconnect, or heartbeats missing)."""
    received: dict[str, int]
    rejected: dict[str, int]
    events: dict[str, int] = field(default_factory=dict)
    """send_dropped, windows_sent, push_refused, internal_errors."""
    analysis_samples: int = 0
    last_error: str = ""


class LinkState:
    """Shared, locked state of one link. Methods named after what happened; `stats()` copies it all."""

    def __init__(self, base: npt.NDArray[np.float32]) -> None:
        self._cond = threading.Condition()
        self.base = base
        self.values = values_of(base)
        self.snapshot = 0
        self._pending: tuple[int, dict[str, float]] | None = None
        self._base_dirty = False
        self.connected = False
        self.sidecar_session = 0
        self.last_heard = 0.0
        self.welcomes = 0
        self.losses = 0
        self.received: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.events: collections.Counter[str] = collections.Counter()
        self.analysis_samples = 0
        self.last_error = ""
        self.pushed_at: collections.OrderedDict[int, float] = collections.OrderedDict()

    def held(self) -> tuple[int, dict[str, float]]:
        """(snapshot number, values) the engine holds."""
        with self._cond:
            return self.snapshot, dict(self.values)

    def set_base(self, base: npt.NDArray[np.float32]) -> None:
        """The host changed its own parameters: push them with the current snapshot values."""
        with self._cond:
            self.base = base
            self._base_dirty = True

    def offer(self, snapshot: int, values: dict[str, float]) -> bool:
        """A snapshot arrived; False (stale) unless it is newer than the one held or pending."""
        with self._cond:
            newest = self._pending[0] if self._pending else self.snapshot
            if snapshot <= newest:
                return False
            self._pending = (snapshot, values)
            return True

    def pending(self) -> tuple[int, dict[str, float], npt.NDArray[np.float32]] | None:
        """(snapshot, values, base) to push now, or None when the engine is up to date."""
        with self._cond:
            if self._pending is not None:
                return self._pending[0], self._pending[1], self.base
            if self._base_dirty:
                return self.snapshot, self.values, self.base
            return None

    def pushed(self, snapshot: int, values: dict[str, float]) -> None:
        """The engine accepted (snapshot, values) merged onto the base."""
        with self._cond:
            if self._pending is not None and self._pending[0] == snapshot:
                self._pending = None
            self._base_dirty = False
            if snapshot != self.snapshot:
                self.pushed_at[snapshot] = time.monotonic()
                while len(self.pushed_at) > PUSH_HISTORY:
                    self.pushed_at.popitem(last=False)
            self.snapshot, self.values = snapshot, values
            self._cond.notify_all()

    def welcomed(self, session: int) -> None:
        """A sidecar answered our hello."""
        with self._cond:
            self.connected, self.sidecar_session = True, session
            self.last_heard = time.monotonic()
            self.welcomes += 1
            self._cond.notify_all()

    def lost(self) -> None:
        """The sidecar disconnected or went quiet."""
        with self._cond:
            if self.connected:
                self.losses += 1
            self.connected = False
            self._cond.notify_all()

    def heard(self, kind: str) -> None:
        """A valid message of type `kind` arrived from the sidecar."""
        with self._cond:
            self.received[kind] += 1
            self.last_heard = time.monotonic()

    def reject(self, reason: str) -> None:
        """A message from the sidecar was rejected for `reason`."""
        with self._cond:
            self.rejected[reason] += 1

    def count(self, event: str) -> None:
        """Count one event (send_dropped, windows_sent, push_refused)."""
        with self._cond:
            self.events[event] += 1

    def note_internal_error(self, error: Exception) -> None:
        """A bug in one step of the link thread (the thread goes on)."""
        with self._cond:
            self.events["internal_errors"] += 1
            self.last_error = printable_text(f"{type(error).__name__}: {error}", LAST_ERROR_BYTES)

    def analysed(self, total: int) -> None:
        """Total analysis samples drained from the engine so far."""
        with self._cond:
            self.analysis_samples = total

    def push_time(self, snapshot: int) -> float | None:
        """time.monotonic() when `snapshot` was pushed to the engine, if remembered."""
        with self._cond:
            return self.pushed_at.get(snapshot)

    def stats(self) -> LinkStats:
        """A consistent copy of everything."""
        with self._cond:
            return LinkStats(
                connected=self.connected,
                sidecar_session=self.sidecar_session,
                snapshot=self.snapshot,
                values=dict(self.values),
                welcomes=self.welcomes,
                losses=self.losses,
                received=dict(self.received),
                rejected=dict(self.rejected),
                events=dict(self.events),
                analysis_samples=self.analysis_samples,
                last_error=self.last_error,
            )

    def wait(self, predicate: Callable[[LinkState], bool], timeout: float) -> bool:
        """Block until predicate(self) holds (checked on every change); False after `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)
