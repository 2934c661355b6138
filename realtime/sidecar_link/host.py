"""Sidecar wiring for the host commands: what `idaw live`, `idaw process` and `idaw demo` call.

live:    `host = attach_from_args(args, engine, base, "idaw live")` after engine.prepare() and before the stream
         starts (None with --no-sidecar); `host.describe(words, intensity)` from the UI thread;
         `host.set_base(vector)` for the host's own parameter changes (never engine.push_parameters: the link
         is the engine's one parameter producer); `host.close()` after the stream stops.
process / demo: `vector = offline_vector_from_args(args, audio, rate, vector)` before rendering (a no-op
         without --describe).
Each starts its own sidecar subprocess on a free loopback port (stopped by close()), unless --sidecar
ENDPOINT names a running one. Requests go over the engine's link (SidecarLink.describe, .status), retried while
the sidecar's synonym model loads (idaw.base.protocol.replies.describe_retrying).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from idaw.base.defaults import DEFAULT_HANDLER
from idaw.base.errors import IdawError
from idaw.base.protocol.replies import Described, RequestError, describe_retrying

CONNECT_TIMEOUT_S = 10.0
"""How long a host waits for its sidecar's welcome."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sidecar options (--describe, --intensity, --sidecar, --no-sidecar, --sidecar-handler, --sidecar-keys)."""
    group = parser.add_argument_group("sidecar (semantic EQ)")
    group.add_argument(
        "--describe",
        nargs="+",
        default=None,
        metavar="WORD",
        help="set the EQ from descriptive words, e.g. --describe warm, or 'warm and a bit airy' (the fallback "
        "handler knows only warm and bright)",
    )
    group.add_argument(
        "--intensity", type=float, default=0.7, help="how strongly to apply --describe, 0..1 (default 0.7)"
    )
    group.add_argument(
        "--sidecar",
        default=None,
        metavar="ENDPOINT",
        help="use the sidecar running at ENDPOINT instead of starting one",
    )
    group.add_argument("--no-sidecar", action="store_true", help="run without a sidecar")
    group.add_argument(
        "--sidecar-handler",
        default=DEFAULT_HANDLER,
        metavar="SPEC",
        help="describe handler of a started sidecar: 'semantic-eq' (the trained model), 'fallback' (SAFE-DB "
        f"table, no ML) or 'package.module:factory' (default {DEFAULT_HANDLER})",
    )
    group.add_argument(
        "--sidecar-keys",
        type=Path,
        default=None,
        metavar="DIR",
        help="CURVE key directory for a --sidecar ENDPOINT beyond loopback",
    )


@dataclass(frozen=True)
class OfflineDescribe:
    """Result of describe_offline: the engine vector to render with, and what the sidecar said."""

    vector: npt.NDArray[np.float32]
    values: dict[str, float]
    used: list[str]
    snapshot: int


class HostSidecar:
    """A sidecar (started here, or a running one) and the SidecarLink of one engine. Use start()/close() or `with`."""

    def __init__(
        self,
        engine: Any,
        base: npt.ArrayLike,
        endpoint: str | None = None,
        handler: str = DEFAULT_HANDLER,
        key_dir: Path | None = None,
        name: str = "idaw",
    ) -> None:
        self.engine = engine
        self.base = np.asarray(base, dtype=np.float32)
        self.endpoint = endpoint
        self.handler = handler
        self.key_dir = key_dir
        self.name = name
        self.process: Any = None
        self.link: Any = None
        self._keys: Any = None

    def start(self, timeout: float = CONNECT_TIMEOUT_S) -> HostSidecar:
        """Start the sidecar (if none was named) and the link; wait for the welcome. Raises IdawError."""
        from idaw.base import keyfiles
        from idaw.base.endpoint import EndpointError, parse_endpoint
        from realtime.sidecar_link.link import SidecarLink
        from realtime.sidecar_link.process import SidecarProcess, SidecarStartError

        try:
            if self.endpoint is not None and not parse_endpoint(self.endpoint).loopback:
                self._keys = keyfiles.load_client_keys(self.key_dir or keyfiles.default_key_dir())
            if self.endpoint is None:
                self.process = SidecarProcess("tcp://127.0.0.1:*", handler=self.handler)
                self.endpoint = self.process.start()
            self.link = SidecarLink(self.engine, self.endpoint, self.base, name=self.name, keys=self._keys).start()
            if not self.link.wait_connected(timeout):
                reason = self.link.stats().last_error
                raise IdawError(reason or f"sidecar at {self.endpoint} did not answer within {timeout:g} s")
        except (EndpointError, keyfiles.KeysError, SidecarStartError) as error:
            self.close()
            raise IdawError(f"sidecar: {error}") from None
        except BaseException:  # IdawError, Ctrl-C's KeyboardInterrupt: `with` never reaches __exit__ from here
            self.close()
            raise
        return self

    def describe(self, words: Sequence[str], intensity: float, wait: float = 2.0) -> Described:
        """Ask for `words` at `intensity` over the link; waits up to `wait` s until the engine got it.

        Any thread. Retries for up to LOADING_WAIT_S (idaw.base.protocol.replies) while the sidecar's synonym
        model loads. Raises IdawError when the link is not started, or the sidecar does not answer or refuses.
        """
        if self.link is None:
            raise IdawError("the sidecar is not started")
        try:
            result = describe_retrying(self.link, words, intensity)
        except RequestError as error:
            raise IdawError(str(error)) from None
        if result.snapshot:
            self.link.wait_snapshot(result.snapshot, wait)
        return result

    def set_base(self, vector: npt.ArrayLike) -> None:
        """The host's own parameter change: pushed by the link together with the sidecar's EQ."""
        self.base = np.asarray(vector, dtype=np.float32)
        if self.link is not None:
            self.link.set_base(self.base)

    def summary(self) -> str:
        """One line for a status display: connection, snapshot, windows sent, rejections."""
        if self.link is None:
            return "sidecar: off"
        s = self.link.stats()
        state = "connected" if s.connected else "gone (keeping last parameters)"
        rejected = sum(s.rejected.values())
        return (
            f"sidecar {state}: snapshot {s.snapshot}, {s.events.get('windows_sent', 0)} windows sent, "
            f"{s.welcomes} welcomes, {rejected} rejected"
        )

    def close(self) -> None:
        """Stop the link (the engine keeps its parameters) and the sidecar if it was started here."""
        if self.link is not None:
            self.link.stop()
        if self.process is not None:
            self.process.close()
            self.process = None

    def __enter__(self) -> HostSidecar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def attach_from_args(args: argparse.Namespace, engine: Any, base: npt.ArrayLike, name: str) -> HostSidecar | None:
    """For `idaw live`: a started HostSidecar per the add_arguments options (None with --no-sidecar).

    Applies --describe once connected. Raises IdawError (one line) when the sidecar cannot be reached.
    """
    if args.no_sidecar:
        if args.describe:
            raise IdawError("--describe needs the sidecar; drop --no-sidecar")
        return None
    if args.describe:
        _check_intensity(args.intensity)  # before anything starts
    host = HostSidecar(engine, base, args.sidecar, args.sidecar_handler, args.sidecar_keys, name).start()
    if args.describe:
        try:
            host.describe(args.describe, args.intensity)
        except BaseException:  # the caller never gets the host: close the sidecar it started here
            host.close()
            raise
    return host


def _check_intensity(intensity: float) -> None:
    if not 0.0 <= intensity <= 1.0:  # also rejects NaN
        raise IdawError(f"intensity {intensity:g} is out of range; allowed: 0..1")


class _FileAnalysis:
    """Engine stand-in for describe_offline: serves one analysis window once armed, records what is pushed."""

    def __init__(self, mono: npt.NDArray[np.float32], rate: int) -> None:
        self.sample_rate = float(rate)
        self._mono = mono
        self.armed = False
        self.pushed: list[tuple[int, npt.NDArray[np.float32]]] = []

    def read_analysis(self, out: npt.NDArray[np.float32]) -> int:
        if not self.armed:
            return 0
        count = min(out.size, self._mono.size)
        out[:count] = self._mono[:count]
        self._mono = self._mono[count:]
        return count

    def push_parameters(self, values: npt.NDArray[np.float32], sequence: int = 0) -> bool:
        self.pushed.append((sequence, values.copy()))
        return True

    def set_analysis_enabled(self, on: bool) -> None:
        pass


def loudest_window(audio: npt.ArrayLike, rate: int, seconds: float = 2.0) -> npt.NDArray[np.float32]:
    """The mono mix of the `seconds`-long stretch of `audio` with the highest RMS (all of it when shorter)."""
    data = np.asarray(audio, dtype=np.float32)
    mono = data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)
    length = int(seconds * rate)
    if mono.size <= length:
        return np.ascontiguousarray(mono)
    energy = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    starts = np.arange(0, mono.size - length + 1, max(1, length // 4))
    best = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    return np.ascontiguousarray(mono[best : best + length])


def describe_offline(
    audio: npt.ArrayLike,
    rate: int,
    words: Sequence[str],
    intensity: float,
    base: npt.ArrayLike,
    endpoint: str | None = None,
    handler: str = DEFAULT_HANDLER,
    key_dir: Path | None = None,
) -> OfflineDescribe:
    """The vector to render `audio` with: `base` with the EQ the sidecar derives from `words` and the audio.

    Sends the loudest 2 s of `audio` as the analysis window, then the describe request. Raises IdawError when
    no word is known to the handler or the sidecar cannot be reached.
    """
    from idaw.base.protocol import SCHEMA

    _check_intensity(intensity)
    window = loudest_window(audio, rate, SCHEMA.analysis["window_s"])
    source = _FileAnalysis(window, rate)
    with HostSidecar(source, base, endpoint, handler, key_dir, "idaw offline") as host:
        source.armed = True
        if window.size >= SCHEMA.analysis["hop_s"] * rate:  # shorter audio makes no window: describe without
            _wait_for_window(host)
        result = host.describe(words, intensity, wait=5.0)
    if not result.snapshot:
        raise IdawError(f"none of {' '.join(words)!r} is known to the sidecar's handler")
    if not source.pushed or source.pushed[-1][0] != result.snapshot:
        raise IdawError("the sidecar's snapshot did not arrive")
    return OfflineDescribe(source.pushed[-1][1], dict(result.values), list(result.used), result.snapshot)


def _wait_for_window(host: HostSidecar, timeout: float = 5.0) -> None:
    """Wait until the sidecar holds our analysis window (asked over the link, which sent the window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            engines = host.link.status(timeout=1.0)["engines"]
        except RequestError:
            continue
        if any(e["session"] == host.link.session and e["windows"] > 0 for e in engines):
            return
        time.sleep(0.01)
    raise IdawError("the sidecar did not receive the analysis audio")


def offline_vector_from_args(
    args: argparse.Namespace, audio: npt.ArrayLike, rate: int, vector: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """For `idaw process` / `idaw demo`: `vector` with the --describe EQ applied (unchanged without --describe)."""
    if not args.describe:
        return vector
    if args.no_sidecar:
        raise IdawError("--describe needs the sidecar; drop --no-sidecar")
    result = describe_offline(
        audio, rate, args.describe, args.intensity, vector, args.sidecar, args.sidecar_handler, args.sidecar_keys
    )
    return result.vector
