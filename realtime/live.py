"""`idaw live`: process an input device through the engine in real time, with a native audio callback.

PortAudio (through python-sounddevice) calls `idaw_portaudio_callback` from the C++ core directly, with the
core's PortAudioBridge as user data: no Python runs per block, so the interpreter (GIL, garbage collector)
cannot delay the audio. The Python side only starts the stream, sleeps, prints --stats and shuts down.
Device selection, PortAudio start-up and JACK naming live in realtime/live_stream.py.

A run is a _LiveSession started in steps (PortAudio, engine, MIDI, stream, signal handlers, audio, sidecar, input
followers); each step enters its own stop into an ExitStack, so a failure at any step closes everything started
before it, in reverse order.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn, TypeVar

import numpy as np
import numpy.typing as npt

import idaw_core
from idaw.base import output_file
from idaw.base.errors import DeviceError, IdawError, path_error
from realtime import devices, live_stream, midi_live, options, params
from realtime.sidecar_link import host as sidecar_host

DEFAULT_RATE = 48000
MAX_BLOCK = 2048
"""Engine block size; the engine splits larger callbacks itself."""
TICK_SECONDS = 0.05
"""How often the control loop wakes up (signals, --duration, --stats, a dead stream)."""
STOP_TIMEOUT_SECONDS = 3.0
"""How long stopping and closing the stream may take before idaw gives up on PortAudio and exits."""
EXIT_STREAM_LOST = DeviceError.exit_code
BUDGET_FRACTION = 0.5
"""A block whose processing takes longer than this share of its duration counts as over budget."""


@dataclass
class _Stress:
    """The --stress-python load: a busy pure-Python thread that churns objects and forces gc.collect()."""

    stop: threading.Event = field(default_factory=threading.Event)
    iterations: int = 0
    collections: int = 0
    max_collect_ms: float = 0.0
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="idaw-stress-python", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        keep: list[object] = []
        while not self.stop.is_set():
            for i in range(2000):  # reference cycles, so collections have real work to do
                node: list[object] = [i, str(i)]
                node.append(node)
                keep.append(node)
            self.iterations += 1
            if self.iterations % 20 == 0:
                began = time.perf_counter()
                gc.collect()
                self.max_collect_ms = max(self.max_collect_ms, (time.perf_counter() - began) * 1e3)
                self.collections += 1
            if len(keep) > 200_000:
                keep = []

    def finish(self) -> dict[str, Any]:
        """Stop the thread; returns what it did (iterations, collections, longest collection in ms)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(2.0)
        return {
            "iterations": self.iterations,
            "gc_collections": self.collections,
            "max_gc_collect_ms": round(self.max_collect_ms, 3),
        }


def _start_describe_prompt(host: sidecar_host.HostSidecar) -> None:
    """When stdin is a terminal, read 'WORD [WORD...] [INTENSITY]' lines and send them as describe requests.

    Runs on its own daemon thread, which is the only one that talks to the sidecar's request socket.
    """
    if not sys.stdin.isatty():
        return

    def loop() -> None:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            intensity = 0.7
            try:
                intensity = float(parts[-1])
                parts = parts[:-1]
            except ValueError:
                pass
            try:
                result = host.describe(parts, intensity)
                print(
                    f"describe {' '.join(parts)} at {intensity:g}: used {', '.join(result.used) or 'nothing'}",
                    flush=True,
                )
            except IdawError as error:
                print(f"describe: {error}", flush=True)

    threading.Thread(target=loop, name="idaw-describe-prompt", daemon=True).start()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw live`."""
    io = parser.add_argument_group("audio device")
    io.add_argument(
        "--device",
        default=None,
        metavar="DEV",
        help="input and output device: index, host API ('jack', 'alsa': its default device) or part of a device "
        "name, as `idaw devices` lists them (default: the JACK server's system ports when JACK runs, else the "
        "system default)",
    )
    io.add_argument("--input-device", default=None, metavar="DEV", help="input device (overrides --device)")
    io.add_argument("--output-device", default=None, metavar="DEV", help="output device (overrides --device)")
    io.add_argument(
        "--rate",
        type=int,
        default=DEFAULT_RATE,
        metavar="HZ",
        help=f"sample rate (default {DEFAULT_RATE}; JACK streams run at the server's rate)",
    )
    io.add_argument(
        "--blocksize",
        type=int,
        default=0,
        metavar="N",
        help="frames per callback; 0 (default) takes the host's period, adding no latency",
    )
    io.add_argument(
        "--channels",
        type=int,
        default=2,
        metavar="N",
        help=f"input and output channels, 1..{idaw_core.MAX_CHANNELS} (default 2)",
    )
    io.add_argument(
        "--client-name",
        default=live_stream.DEFAULT_CLIENT_NAME,
        metavar="NAME",
        help=f"JACK client name (default {live_stream.DEFAULT_CLIENT_NAME})",
    )
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: run until Ctrl-C or SIGTERM)",
    )
    run_group.add_argument(
        "--stats", action="store_true", help="print callback timing, over-budget blocks, xruns and blocks once a second"
    )
    run_group.add_argument("--report", default=None, metavar="FILE", help="write a JSON summary here at exit")
    run_group.add_argument(
        "--stress-python",
        action="store_true",
        help="diagnostics: keep a busy pure-Python thread and forced gc.collect() running "
        "in this process, to show the native callback does not depend on the interpreter",
    )
    options.add_chain_arguments(parser)
    sidecar_host.add_arguments(parser)
    midi_live.add_arguments(parser)


def _check_args(args: argparse.Namespace) -> None:
    """Raise IdawError for option values that are wrong whatever the device."""
    if not 8000 <= args.rate <= 384000:
        raise IdawError(f"--rate {args.rate} is out of range; allowed: 8000..384000 Hz")
    if not 1 <= args.channels <= idaw_core.MAX_CHANNELS:
        raise IdawError(f"--channels {args.channels} is out of range; allowed: 1..{idaw_core.MAX_CHANNELS}")
    if not 0 <= args.blocksize <= 65536:
        raise IdawError(f"--blocksize {args.blocksize} is out of range; allowed: 0 (host period) or 1..65536")
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise IdawError(f"--duration {args.duration:g} must be a positive number of seconds")
    name = args.client_name
    if not name or ":" in name or len(name.encode()) > 63:
        raise IdawError(f"--client-name '{name}' is not a valid JACK client name (1..63 bytes, no ':')")


def _timing_fields(summary: Mapping[str, Any], block_seconds: float) -> dict[str, Any]:
    """A timing summary with each time also given as a percentage of the block duration."""
    out = dict(summary)
    for key in ("p50", "p99", "max"):
        us = float(summary[f"{key}_us"])
        out[f"{key}_pct"] = round(100.0 * us * 1e-6 / block_seconds, 4) if block_seconds > 0 else None
    return out


def stats_line(
    elapsed: float,
    window: idaw_core.TimingSummary,
    bridge: idaw_core.BridgeCounters,
    block_seconds: float,
    reduction_db: float | None = None,
) -> str:
    """One --stats line: timing of the last window (µs and % of the block) and running totals, then the
    compressor's gain reduction now when `reduction_db` is given (the compressor is on)."""
    t = _timing_fields(window, block_seconds)

    def part(key: str) -> str:
        pct = t[f"{key}_pct"]
        return f"{key} {t[f'{key}_us']:.1f} µs ({pct:.2f}%)" if pct is not None else f"{key} -"

    line = (
        f"[{elapsed:7.1f} s] callback {part('p50')}, {part('p99')}, {part('max')} | "
        f"over-budget {window['over_budget']} | xruns {bridge['xruns']} | blocks {bridge['callbacks']}"
    )
    return line if reduction_db is None else f"{line} | compressor -{reduction_db:.1f} dB"


def _install_stop_handlers(stop: list[bool]) -> Callable[[], None]:
    """SIGINT/SIGTERM set stop[0]; returns a function that restores the previous handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop[0] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def _write_report(path: str | None, report: dict[str, Any]) -> None:
    """Write `report` as JSON to `path` (nothing when None), complete or not at all; IdawError when it cannot."""
    if path is None:
        return
    text = json.dumps(report, indent=2) + "\n"
    with output_file.replacing(path, "report") as part:
        try:
            part.write_text(text, encoding="utf-8")
        except OSError as error:
            raise path_error("write report", path, error) from None


def _fatal_exit(message: str, report_path: str | None, report: dict[str, Any], code: int) -> NoReturn:
    """Print one error line, write the report if possible, and leave at once (PortAudio is stuck)."""
    print(f"idaw live: error: {message}", file=sys.stderr, flush=True)
    try:
        _write_report(report_path, report)
    except IdawError as error:
        print(f"idaw live: error: {error}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def run(args: argparse.Namespace) -> int:
    """Run `idaw live`; returns the exit code (0 after --duration, Ctrl-C or SIGTERM). Bad input raises
    IdawError; a stream that dies (e.g. the JACK server quit) ends the process with exit code 3."""
    _check_args(args)
    vector = options.chain_from_args(args)
    for path, what in ((args.midi_out, "MIDI file"), (args.midi_log, "MIDI log")):
        if path is not None:  # files written at the end: a bad path fails now, not after the run
            output_file.check_writable(path, what)
    _write_report(args.report, {"status": "starting"})  # an unwritable path fails now, not after the run
    try:
        return _stream(args, vector)
    except IdawError as error:
        _write_report(args.report, {"status": "error", "error": str(error)})
        raise


def _stream(args: argparse.Namespace, vector: npt.NDArray[np.float32]) -> int:
    """Open, run and close the stream (see run()); returns 0. Whatever fails on the way closes what was started."""
    with contextlib.ExitStack() as stack:
        session = _LiveSession(args, vector, stack)
        session.open_devices()
        session.prepare_engine()
        session.start_midi()
        session.open_stream()
        session.catch_stop_signals()
        session.start_audio()
        session.attach_sidecar()
        session.follow_the_input()
        return session.finish(session.run_until_stopped())


_Result = TypeVar("_Result")


def _stop_once(stack: contextlib.ExitStack, stop: Callable[[], _Result]) -> Callable[[], _Result | None]:
    """Enter `stop` into `stack` and return a function that runs it: whichever comes first, the session's ordered
    shutdown or the stack unwinding after a failure, runs it, once (a stop that raised is not tried again); later
    calls return None."""
    done = False

    def once() -> _Result | None:
        nonlocal done
        if done:
            return None
        done = True
        return stop()

    stack.callback(once)
    return once


def _nothing_to_stop() -> None:
    """The stop of a resource this run does not have (no sidecar, no MIDI)."""


class _LiveSession:
    """One `idaw live` run, started in steps. Each step that starts something enters its stop into `stack` as it
    succeeds, so a failure at any later step (bad input, a refused device or sidecar, Ctrl-C while starting) closes
    everything started before it, in reverse order, as the stack unwinds. A run that gets to finish() stops them
    itself in the order shutdown needs (MIDI first: all notes off before anything else can go wrong), and the stack
    then has nothing left to do."""

    def __init__(self, args: argparse.Namespace, vector: npt.NDArray[np.float32], stack: contextlib.ExitStack) -> None:
        self.args = args
        self.vector = vector
        self.stack = stack
        self.stop_requested = [False]
        """Set by SIGINT/SIGTERM once catch_stop_signals() ran."""
        self.stress = _Stress() if args.stress_python else None
        self.midi: midi_live.LiveMidi | None = None
        self.host: sidecar_host.HostSidecar | None = None
        self.stream_closed: bool | None = None
        """None while no stream is open; then whether it closed (False: PortAudio hung, and may hang again)."""
        self.block_frames = 0
        self.started = 0.0
        self.close_midi: Callable[[], dict[str, Any] | None] = _nothing_to_stop
        self.close_host: Callable[[], None] = _nothing_to_stop
        self.restore_signals: Callable[[], None] = _nothing_to_stop
        self.close_stream: Callable[[], bool | None] = _nothing_to_stop
        self.release_portaudio: Callable[[], None] = _nothing_to_stop

    def open_devices(self) -> None:
        """Initialise PortAudio (on JACK: open its client) and choose and check the devices."""
        args = self.args
        self.sd = live_stream.load_portaudio(args.client_name)
        self.release_portaudio = _stop_once(self.stack, self._release_portaudio)
        self.in_dev, self.out_dev = live_stream.choose_devices(
            self.sd, args.device, args.input_device, args.output_device
        )
        live_stream.check_settings(self.sd, self.in_dev, self.out_dev, args.rate, args.channels)

    def _release_portaudio(self) -> None:
        """Terminate PortAudio (closing its JACK client), unless a stream would not close: PortAudio hangs then."""
        if self.stream_closed is not False:
            devices.release_portaudio()

    def prepare_engine(self) -> None:
        """Create the engine for the rate and channels, with the chain's parameters."""
        self.engine = idaw_core.Engine()
        self.engine.prepare(float(self.args.rate), MAX_BLOCK, self.args.channels)
        self.engine.set_parameters_now(self.vector)
        self.engine.set_budget_fraction(BUDGET_FRACTION)

    def start_midi(self) -> None:
        """With --midi: install the nets, open the MIDI port and start sending (midi_live.start)."""
        self.midi = midi_live.start(self.args, self.engine)
        if self.midi is not None:
            self.close_midi = _stop_once(self.stack, self.midi.close)

    def open_stream(self) -> None:
        """Open the duplex stream whose callback is the core's, through a PortAudioBridge (not started yet)."""
        args = self.args
        self.bridge = idaw_core.PortAudioBridge(self.engine, args.channels, args.channels)
        self.stream = live_stream.open_native_stream(
            self.sd, self.bridge, self.in_dev, self.out_dev, args.rate, args.blocksize, args.channels
        )
        self.stream_closed = False
        self.close_stream = _stop_once(self.stack, self._close_stream)
        self.info = live_stream.describe(self.sd, self.stream, self.in_dev, self.out_dev, args.channels)

    def _close_stream(self) -> bool:
        """Stop and close the stream within STOP_TIMEOUT_SECONDS; returns whether it closed."""
        self.stream_closed = live_stream.close_within(self.stream, STOP_TIMEOUT_SECONDS)
        if self.stream_closed:  # PortAudio calls into the bridge no more: it may go with the session
            self.stream._idaw_keepalive = None
        return self.stream_closed

    def catch_stop_signals(self) -> None:
        """From here SIGINT and SIGTERM stop the run (stop_requested) instead of interrupting it."""
        self.restore_signals = _stop_once(self.stack, _install_stop_handlers(self.stop_requested))

    def start_audio(self) -> None:
        """Start the stream, wait for its first block and print the ready line."""
        live_stream.start_stream(self.sd, self.stream)
        self.started = time.monotonic()
        self.block_frames = live_stream.wait_first_block(self.bridge, self.args.rate)
        print(live_stream.ready_line(self.info, self.args.rate, self.block_frames), flush=True)

    def attach_sidecar(self) -> None:
        """Connect the sidecar (unless --no-sidecar); its link becomes the engine's one parameter producer. The audio
        already flows, so the sidecar gets analysis windows from the start."""
        self.host = sidecar_host.attach_from_args(self.args, self.engine, self.vector, "idaw live")
        if self.host is not None:
            self.close_host = _stop_once(self.stack, self.host.close)

    def follow_the_input(self) -> None:
        """Start what follows the running audio: --emotion input, the describe prompt, --stress-python; then freeze
        what was allocated so far out of the collector's reach."""
        host = self.host
        midi_live.listen(self.midi, host.link.windows if host is not None else None)  # stopped by close_midi
        midi_live.follow(self.midi, host.link if host is not None else None)  # stopped by close_midi
        if host is not None:
            print(
                f"sidecar at {host.endpoint}: type words and an intensity (e.g. 'warm 0.7') and Enter, or send "
                f"`idaw sidecar --bind {host.endpoint} --describe WORD`",
                flush=True,
            )
            _start_describe_prompt(host)
        if self.stress is not None:
            self.stress.start()
            self.stack.callback(self.stress.finish)
        gc.freeze()  # everything allocated so far is permanent: the collector never walks it again
        self.stack.callback(gc.unfreeze)

    def run_until_stopped(self) -> str:
        """Wake every TICK_SECONDS, printing --stats lines, until Ctrl-C/SIGTERM, --duration or a dead stream;
        returns the run's status: "ok", or why the stream stopped."""
        args = self.args
        block_seconds = self.block_frames / args.rate if self.block_frames else 0.0
        deadline = self.started + args.duration if args.duration is not None else math.inf
        next_stats = self.started + 1.0
        while not self.stop_requested[0]:
            time.sleep(TICK_SECONDS)
            now = time.monotonic()
            if not self.stream.active:
                return "stream stopped unexpectedly (JACK server gone or device lost)"
            if now >= deadline:
                break
            if args.stats and now >= next_stats:
                next_stats += 1.0
                block_seconds = self._print_stats(now, block_seconds)
        return "ok"

    def _print_stats(self, now: float, block_seconds: float) -> float:
        """Print one --stats line; returns the block duration it used (the last callback's, if known)."""
        window = self.engine.timing_window()
        counters = self.bridge.counters()
        block_seconds = counters["last_callback_frames"] / self.args.rate or block_seconds
        compressing = self.vector[params.INDEX["comp_ratio"]] > 1.0
        reduction = self.engine.counters()["compressor_reduction_db"] if compressing else None
        line = stats_line(now - self.started, window, counters, block_seconds, reduction)
        print(line + (f" | {self.host.summary()}" if self.host is not None else ""), flush=True)
        return block_seconds

    def finish(self, status: str) -> int:
        """Stop everything in order, write the report and print the summary; returns 0. A stream that died or does
        not close ends the process here (_fatal_exit, EXIT_STREAM_LOST)."""
        elapsed = time.monotonic() - self.started
        midi_report = self.close_midi()  # all notes off before anything else can go wrong
        self.restore_signals()
        self.close_host()  # the engine keeps the last parameters it got
        if status != "ok":  # PortAudio may hang in stop/close or at exit once the server is gone: leave at once
            report = self.final_report(status, elapsed, midi_report)
            self.close_stream()
            _fatal_exit(
                f"the audio stream stopped unexpectedly after {elapsed:.1f} s (JACK server gone or device lost)",
                self.args.report,
                report,
                EXIT_STREAM_LOST,
            )
        if not self.close_stream():
            _fatal_exit(
                f"the audio stream did not stop within {STOP_TIMEOUT_SECONDS:g} s (JACK server gone?)",
                self.args.report,
                self.final_report(status, elapsed, midi_report),
                EXIT_STREAM_LOST,
            )
        report = self.final_report(status, elapsed, midi_report)
        self.release_portaudio()
        gc.unfreeze()
        _write_report(self.args.report, report)
        self._print_summary(elapsed, report)
        return 0

    def final_report(self, status: str, elapsed: float, midi_report: dict[str, Any] | None) -> dict[str, Any]:
        """The --report of a run that got to its end: what was opened, timing, counters, sidecar and MIDI."""
        args = self.args
        counters = self.bridge.counters()
        frames_seen = int(counters["last_callback_frames"]) or self.block_frames
        summary = self.engine.timing_summary()
        return {
            "status": status,
            **self.info,
            "requested_blocksize": args.blocksize,
            "channels": args.channels,
            "parameters": {s.name: float(v) for s, v in zip(params.SPECS, self.vector, strict=True)},
            "seconds": round(elapsed, 3),
            "callbacks": counters["callbacks"],
            "frames": counters["frames"],
            "xruns": counters["xruns"],
            "block_size": frames_seen,
            "block_ms": round(1e3 * frames_seen / args.rate, 4),
            "budget_fraction": BUDGET_FRACTION,
            "timing": _timing_fields(summary, frames_seen / args.rate if frames_seen else 0.0),
            "bridge": counters,
            "engine": self.engine.counters(),
            "stress_python": self.stress.finish() if self.stress is not None else None,
            "sidecar": dataclasses.asdict(self.host.link.stats()) if self.host is not None else None,
            "midi": midi_report,
        }

    @staticmethod
    def _print_summary(elapsed: float, report: dict[str, Any]) -> None:
        """The last line of a run that stopped cleanly."""
        timing = report["timing"]
        print(
            f"idaw live: stopped after {elapsed:.1f} s: {report['callbacks']} blocks of {report['block_size']} "
            f"frames, callback p99 {timing['p99_us']:.1f} µs, max {timing['max_us']:.1f} µs, "
            f"{report['xruns']} xruns",
            flush=True,
        )
