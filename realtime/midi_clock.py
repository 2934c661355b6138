"""Maps the engine's sample clock to the steady clock, so MIDI events can be sent when their sample is due.

The engine publishes, for its latest block, the sample time it started at and the steady-clock time its callback
began (idaw_core.Engine.block_clock(); CLOCK_MONOTONIC, as idaw_core.steady_ns()). A callback can only start late,
never early, so over a short window the smallest (callback time - sample time / rate) is the best estimate of when
the audio hardware (or JACK) clock reached sample 0; wall(s) = that offset + s / rate. When the last few callbacks
all come later than the estimate by more than half a block (an xrun skipped cycles, or the clocks drifted) the
window restarts from them.

When to send (`send_ns`): a JACK MIDI client that sends with no timestamp (rtmidi) has its message written at the
start of the next JACK cycle it processes. An event due at sample s lies in the block starting at b <= s; sending it
a quarter block before b's callback lands it at b (error s - b, less than one block early); sending up to a block
and a quarter later still lands it at b + block (less than one block late). Lateness is what a busy machine adds, so
the target sits early in that window.
"""

from __future__ import annotations

from collections import deque

SEND_BEFORE_BLOCK = 0.25
"""Send this fraction of a block before the callback of the block that holds the event."""
RESTART_AFTER = 3
"""Consecutive callbacks later than the estimate by over half a block that restart the window."""


class ClockMap:
    """Sample time -> steady-clock ns, from the engine's block clock. Not thread-safe: one thread observes and
    asks."""

    def __init__(self, sample_rate: float, window: int = 64) -> None:
        self.rate = float(sample_rate)
        self.window = window
        self._offsets: deque[float] = deque(maxlen=window)
        self._late_run = 0
        self._last_block = -1
        self.block_frames = 0
        """Frames of the latest block seen (0 before any)."""
        self.block_start = 0
        """Sample time at which the latest block seen began."""
        self.restarts = 0
        """How often the window restarted (see the module docstring)."""

    @property
    def ready(self) -> bool:
        """True once a block has been seen."""
        return bool(self._offsets)

    def observe(self, sample_time: int, steady_ns: int, frames: int, blocks: int) -> None:
        """Takes one reading of Engine.block_clock(); readings of a block already seen are ignored."""
        if blocks <= 0 or blocks == self._last_block or frames <= 0:
            return
        self._last_block = blocks
        self.block_frames = int(frames)
        self.block_start = int(sample_time)
        offset = float(steady_ns) - float(sample_time) * 1e9 / self.rate
        if self._offsets:
            best = min(self._offsets)
            if offset > best + 0.5 * frames * 1e9 / self.rate:
                self._late_run += 1
                if self._late_run >= RESTART_AFTER:
                    recent = list(self._offsets)[-(RESTART_AFTER - 1) :]
                    self._offsets.clear()
                    self._offsets.extend(recent)
                    self._late_run = 0
                    self.restarts += 1
            else:
                self._late_run = 0
        self._offsets.append(offset)

    def wall_ns(self, sample_time: float) -> float:
        """Steady-clock ns at which the engine's clock reaches `sample_time` (needs ready)."""
        return min(self._offsets) + float(sample_time) * 1e9 / self.rate

    def sample_at(self, steady_ns: float) -> int:
        """The engine sample due at a steady-clock time (needs ready)."""
        return int((float(steady_ns) - min(self._offsets)) * self.rate / 1e9)

    def send_ns(self, sample_time: int) -> float:
        """When to hand an event due at `sample_time` to a JACK MIDI port that writes at cycle starts (see the module
        docstring; needs ready)."""
        block = self.block_frames
        start = self.block_start + ((int(sample_time) - self.block_start) // block) * block
        return self.wall_ns(start - SEND_BEFORE_BLOCK * block)
