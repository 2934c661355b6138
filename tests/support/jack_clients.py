"""JACK clients for testing a device-like client (e.g. `idaw live`): `PlayRecord` feeds a known signal to it and
records its output and that input in the same cycles; `active_blocks` finds the blocks in which a PortAudio
stream ran (PortAudio silences a stream's ports while it is not running).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tests.support.jack_server import JackServer


class PlayRecord:
    """JACK clients for testing a device-like client (e.g. `idaw live`) sample by sample.

    The player feeds `signal` (frames, channels), looping, on ports out_0.. from activation on. The recorder
    records every cycle, with the cycle's frame time: its ports in_0.. are for the outputs of the client under
    test, and its ports tee_0.. are wired to the player, so the input the client got is recorded in the very
    same cycle as its output. The recorder also counts JACK xruns and cycles whose size was not the period.
    With `signal` None there is no player (nor tee): feed the client under test from elsewhere, e.g. a C client.
    """

    def __init__(
        self,
        server: JackServer,
        signal: np.ndarray[Any, np.dtype[np.float32]] | None,
        max_seconds: float,
        player: str = "idaw-test-player",
        recorder: str = "idaw-test-recorder",
        channels: int = 2,
    ) -> None:
        import jack

        self.period = server.period
        self.channels = channels if signal is None else signal.shape[1]
        frames = 0 if signal is None else signal.shape[0]
        loop = max(1, -(-frames // self.period)) * self.period  # a whole number of periods, zero-padded
        self._signal = np.zeros((self.channels, loop), np.float32)
        if signal is not None:
            self._signal[:, :frames] = signal.T
        self.max_cycles = int(max_seconds * server.rate / self.period) + 1
        recorded = 2 * self.channels if signal is not None else self.channels
        # np.ones, not np.zeros: every page is touched now, so the audio thread never takes a page fault
        self._rec = np.ones((recorded, self.max_cycles * self.period), np.float32)
        self.frame_times = np.ones(self.max_cycles, np.int64)
        self.cycles = 0
        self.played = 0
        self.xrun_cycles: list[int] = []
        self.odd_blocks = 0
        self.settled = 0
        self.recorder = jack.Client(recorder, no_start_server=True, servername=server.name)
        self.player = jack.Client(player, no_start_server=True, servername=server.name) if signal is not None else None
        self._outs = [self.player.outports.register(f"out_{c}") for c in range(self.channels)] if self.player else []
        self._ins = [self.recorder.inports.register(f"in_{c}") for c in range(self.channels)]
        self._tees = [self.recorder.inports.register(f"tee_{c}") for c in range(self.channels)] if self.player else []
        if self.player is not None:
            self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.recorder.set_xrun_callback(self._xrun)

    def _play(self, frames: int) -> None:
        start = (self.played * self.period) % self._signal.shape[1]
        for c, port in enumerate(self._outs):
            port.get_array()[:] = self._signal[c, start : start + frames]
        self.played += 1

    def _record(self, frames: int) -> None:
        k = self.cycles
        if frames != self.period:
            self.odd_blocks += 1
        if k < self.max_cycles:
            begin = k * self.period
            for c, port in enumerate(self._ins + self._tees):
                self._rec[c, begin : begin + frames] = port.get_array()
            self.frame_times[k] = self.recorder.last_frame_time
        self.cycles = k + 1

    def _xrun(self, delay_us: float) -> None:
        self.xrun_cycles.append(self.cycles)

    @property
    def xruns(self) -> int:
        """JACK xruns reported since the clients settled (start() returned)."""
        return sum(1 for k in self.xrun_cycles if k >= self.settled)

    def start(self, settle_seconds: float = 0.1) -> PlayRecord:
        """Activate both clients, wire player -> tee and let the graph settle; returns self.

        Activating a client can cost the server one xrun and repeat a frame time; cycles and xruns from before
        the end of `settle_seconds` are not counted (see `settled`).
        """
        if self.player is not None:
            self.player.activate()
        self.recorder.activate()
        for out, tee in zip(self._outs, self._tees, strict=True):
            self.recorder.connect(out, tee)
        time.sleep(settle_seconds)
        self.settled = self.cycles
        return self

    @property
    def looped_signal(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """What the player loops, (frames, channels): the signal zero-padded to whole periods."""
        return self._signal.T

    @property
    def overflowed(self) -> bool:
        """True when the recording ran out of room (cycles after max_seconds were not kept)."""
        return self.cycles > self.max_cycles

    def recording(self) -> tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.float32]]]:
        """(output of the client under test, input the player fed), each (frames, channels), for the kept
        cycles."""
        n = min(self.cycles, self.max_cycles) * self.period
        out = np.ascontiguousarray(self._rec[: self.channels, :n].T)
        fed = np.ascontiguousarray(self._rec[self.channels :, :n].T)  # (n, 0) without a player
        return out, fed

    def connections(self) -> dict[str, list[str]]:
        """Every recorder and player port with the ports it is connected to."""
        ports = self._ins + self._tees + self._outs
        return {p.name: sorted(q.name for q in self.recorder.get_all_connections(p)) for p in ports}

    def close(self) -> None:
        """Deactivate and close both clients (safe to call twice, also after the server died)."""
        for client in (self.player, self.recorder):
            if client is None:
                continue
            try:
                client.deactivate()
                client.close()
            except Exception:
                pass


def active_blocks(out: np.ndarray[Any, np.dtype[np.float32]], period: int) -> tuple[int, int, bool]:
    """(first, last, contiguous): indices of the first and last period-sized blocks of `out` (frames, channels)
    holding any non-zero sample, and whether every block between them does; (-1, -1, False) if none does."""
    blocks = out[: out.shape[0] // period * period].reshape(-1, period, out.shape[1])
    nonzero = np.flatnonzero(np.any(blocks != 0, axis=(1, 2)))
    if nonzero.size == 0:
        return -1, -1, False
    first, last = int(nonzero[0]), int(nonzero[-1])
    return first, last, nonzero.size == last - first + 1
