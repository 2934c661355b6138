"""Followers built off the sidecar's loop: the first one imports librosa and music21 and (in a fresh install) waits
for numba to compile librosa's kernels, seconds to tens of seconds that would otherwise hold up every engine's
heartbeats and replies.

`FollowerBuilds(build)` runs `build()` on one daemon thread, one request after another. The loop asks with
request() (a number naming the build), may withdraw it with cancel(), and collects what finished with finished();
it decides itself whether a result is still wanted (a build cannot be interrupted, so a withdrawn one that already
started still finishes and is then dropped). Requests waiting are at most the ones the loop has not withdrawn, so
they stay as few as the engines it follows.

`new_follower(hop_s)` is the sidecar's build: a follower with the shipped adapter's mood; `warmed_follower(hop_s)`
runs a throwaway one over a few seconds of a synthetic band first, so the kernels compile here rather than on the
loop at the first window.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from idaw.listen.follow import Follower

WARM_UP_S = 4.0
"""Audio the throwaway follower hears: past idaw.listen.follow.MIN_HEARD_S, so tempo, beat and mood all run once."""


@dataclass(frozen=True)
class Built:
    """One finished build: `follower`, or None and the `error` the build raised."""

    number: int
    follower: Follower | None
    error: Exception | None = None


class FollowerBuilds:
    """Builds followers with `build` on one background thread (started at the first request); see the module."""

    def __init__(self, build: Callable[[], Follower]) -> None:
        self._build = build
        self._lock = threading.Condition()
        self._waiting: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._done: list[Built] = []
        self._count = 0
        self._closed = False
        self._building = False
        self._thread: threading.Thread | None = None

    def request(self) -> int:
        """Queue one build; returns its number (as finished() will name it)."""
        with self._lock:
            self._count += 1
            self._waiting[self._count] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="idaw-follower-build", daemon=True)
                self._thread.start()
            self._lock.notify()
            return self._count

    def cancel(self, number: int) -> None:
        """Withdraw build `number` if it has not started (one that has is left to finish; its result is dropped by
        whoever collects it)."""
        with self._lock:
            self._waiting.pop(number, None)

    def finished(self) -> list[Built]:
        """The builds that finished since the last call, oldest first (never blocks)."""
        with self._lock:
            done, self._done = self._done, []
            return done

    def waiting(self) -> int:
        """How many requests wait for the thread (the one it is building not counted)."""
        with self._lock:
            return len(self._waiting)

    def idle(self) -> bool:
        """True when nothing waits, nothing is being built and every finished build has been collected."""
        with self._lock:
            return not self._waiting and not self._building and not self._done

    def close(self) -> None:
        """Stop the thread after the build it is running, if any (it is not waited for: a build cannot be cut)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                number, _ = self._waiting.popitem(last=False)
                self._building = True
            try:
                built = Built(number, self._build())
            except Exception as error:  # a missing package or model: the loop tells the engine, the thread goes on
                built = Built(number, None, error)
            with self._lock:
                self._done.append(built)
                self._building = False


def new_follower(hop_s: float) -> Follower:
    """A follower of one engine's stream, with the shipped adapter's mood asked every `hop_s` (imported here:
    librosa and music21 load only when an engine asks to be followed)."""
    from idaw.listen.follow import Follower, adapter_mood

    return Follower(adapter_mood(hop_s))


_warmed = threading.Event()


def warmed_follower(hop_s: float) -> Follower:
    """new_follower(hop_s); the first call in a process has a throwaway follower hear WARM_UP_S of a synthetic band
    (a tone and clicks on the beat) first: librosa compiles its numba kernels on first use, and that use is then
    here, not on the loop at the engine's first window."""
    if not _warmed.is_set():
        from idaw.listen.audio import SAMPLE_RATE

        time = np.arange(int(WARM_UP_S * SAMPLE_RATE)) / SAMPLE_RATE
        band = 0.2 * np.sin(2 * math.pi * 220.0 * time) + 0.5 * (np.mod(time, 0.5) < 0.01)
        new_follower(hop_s).feed(band.astype(np.float32), 0)
        _warmed.set()
    return new_follower(hop_s)
