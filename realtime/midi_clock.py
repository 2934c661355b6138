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

The estimate can be too early: when the server stalls (the JACK dummy driver wakes late and restarts its timeline,
a VM is descheduled), every later callback comes later than before, and until the window restarts the map still
predicts the old times. Sent by the map alone, an event would then go out before the previous cycle's start and land
a whole period early (seen: 437 frames early at period 256). So a send is also gated on what was observed
(`earliest_ns`): an event of the block starting at b goes out only once the engine's callback of the block before
it (b - block) has been seen, and a quarter block after that callback began. JACK starts a client with no inputs
(rtmidi's) at the start of each cycle, before the engine's callback, so by then the previous cycle's MIDI has been
taken: the event cannot land before b. An event is therefore never sent before its due time minus one period, and
sending it a period late still lands it within one period of its time.
"""

from __future__ import annotations

from collections import deque

SEND_BEFORE_BLOCK = 0.25
"""Send this fraction of a block before the callback of the block that holds the event."""
RESTART_AFTER = 3
"""Consecutive callbacks later than the estimate by over half a block that restart the window."""
GATE_AFTER_CALLBACK = 0.25
"""An event of block b goes out at the earliest this fraction of a block after the callback of block b - 1 began."""


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
        self.block_ns = 0
        """Steady-clock ns at which the callback of the latest block seen began."""
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
        self.block_ns = int(steady_ns)
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

    def block_of(self, sample_time: int) -> int:
        """Sample time at which the block holding `sample_time` starts (blocks as the latest one seen; needs ready)."""
        block = self.block_frames
        return self.block_start + ((int(sample_time) - self.block_start) // block) * block

    def send_ns(self, sample_time: int) -> float:
        """When to hand an event due at `sample_time` to a JACK MIDI port that writes at cycle starts, by the map (see
        the module docstring; needs ready)."""
        return self.wall_ns(self.block_of(sample_time) - SEND_BEFORE_BLOCK * self.block_frames)

    def earliest_ns(self, sample_time: int) -> float | None:
        """The earliest steady-clock ns at which an event due at `sample_time` may be handed to the port, from the
        callbacks seen so far: None while the callback of the block before its block has not been seen, else a
        quarter block after that callback began (or any time, once its own block has begun). Needs ready."""
        start = self.block_of(sample_time)
        if self.block_start >= start:
            return 0.0
        if self.block_start + self.block_frames < start:
            return None
        return self.block_ns + GATE_AFTER_CALLBACK * self.block_frames * 1e9 / self.rate
