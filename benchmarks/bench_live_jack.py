"""`idaw live` on a private dummy JACK server (48 kHz, period 256): callback cost, xruns and lost blocks,
without and with --stress-python (a busy Python thread and forced gc.collect() in idaw's own process).

For each run, jackd2's C example client jack_simple_client feeds a sine into idaw and jack_rec (also C) records
idaw's output to a WAV file; an observer client counts JACK xruns with an xrun callback. No Python runs in any
JACK process callback. PortAudio silences idaw's ports when its stream is not running, so the cycles idaw ran
in are the recorded non-zero blocks; their number is compared with the callbacks the bridge counted. Callback
timing, over-budget blocks and the bridge's xruns come from idaw's --report. Run alone with
`python -m benchmarks.bench_live_jack [--quick] [--out FILE]`; needs jackd2 and the JACK-Client package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from benchmarks import common
from realtime import params
from tests.support.jack_clients import active_blocks
from tests.support.jack_server import JACKD_PACKAGE, JackServer

PERIOD = 256
"""JACK period (frames) of the dummy server."""
SECONDS, QUICK_SECONDS = 20.0, 5.0
"""How long idaw runs in each configuration."""
OBSERVER, CLIENT = "idaw-bench-observer", "idaw-bench"
C_PLAYER, C_RECORDER = "jack_simple_client", "jackrec"
"""jackd2's example clients (C): a sine player and `jack_rec`, a recorder to a WAV file. No Python runs in any
JACK process callback, so the figures are idaw's and the server's, not the harness's."""
REPO = Path(__file__).resolve().parents[1]
_FLAGS = {"input_gain", "drive", "crunch", "mix", "output_gain"}


def chain_args(settings: dict[str, float]) -> list[str]:
    """`idaw live` options for a parameter dict: EQ values through --eq, the rest through their own flags."""
    eq = [f"{name}={value:g}" for name, value in settings.items() if name in params.EQ_PARAM_NAMES]
    args = ["--eq", ",".join(eq)] if eq else []
    for name, value in settings.items():
        if name in _FLAGS:
            args += ["--" + name.replace("_", "-"), f"{value:g}"]
    return args


def silent_blocks(out: npt.NDArray[np.float32], period: int, first: int, last: int) -> int:
    """All-zero period blocks of `out` between blocks `first` and `last` (a callback that wrote nothing)."""
    if first < 0:
        return 0
    blocks = out[first * period : (last + 1) * period].reshape(-1, period, out.shape[1])
    return int(np.count_nonzero(~np.any(blocks != 0, axis=(1, 2))))


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"'{name}' not found; install the Debian package {JACKD_PACKAGE}")
    return path


def _wait_for_ports(observer: Any, client: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until `client` has registered its ports (raises if its process exits or 10 s pass)."""
    deadline = time.monotonic() + 10
    while not observer.get_ports(f"{client}:"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{client} did not start (status {process.poll()})")
        time.sleep(0.05)


def measure(server: JackServer, seconds: float, stress: bool, work: Path) -> common.Json:
    """One run of idaw live from the C player to the C recorder; returns its timing, xrun and block figures."""
    import jack

    report_path, wav_path = work / f"report-{int(stress)}.json", work / f"idaw-out-{int(stress)}.wav"
    observer = jack.Client(OBSERVER, no_start_server=True, servername=server.name)
    xruns: list[float] = []
    observer.set_xrun_callback(xruns.append)  # notification thread, not real time: no Python per cycle anywhere
    observer.activate()
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        helpers.append(
            subprocess.Popen(
                [_program(C_PLAYER)],
                env=server.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_for_ports(observer, C_PLAYER, helpers[0])
        # jack_rec records the dummy capture ports; idaw's outputs are added to them (silence) when it starts.
        helpers.append(
            subprocess.Popen(
                [
                    _program("jack_rec"),
                    "-f",
                    str(wav_path),
                    "-d",
                    str(int(seconds + 300)),
                    "-b",
                    "32",
                    "system:capture_1",
                    "system:capture_2",
                ],
                env=server.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
        _wait_for_ports(observer, C_RECORDER, helpers[1])
        mark = server.log_size()
        xruns.clear()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "idaw.cli",
                "live",
                "--no-sidecar",
                "--input-device",
                C_PLAYER,
                "--output-device",
                C_RECORDER,
                "--client-name",
                CLIENT,
                "--duration",
                f"{seconds:g}",
                "--report",
                str(report_path),
                *chain_args(common.FULL_CHAIN),
                *(["--stress-python"] if stress else []),
            ],
            cwd=REPO,
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
        time.sleep(0.5)  # silence after idaw's last block reaches the file
        observer_xruns = len(xruns)
        helpers[1].send_signal(signal.SIGINT)
        recorder_said = helpers[1].communicate(timeout=30)[0].decode(errors="replace")
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.terminate()
                helper.wait(10)
        observer.deactivate()
        observer.close()
    if result.returncode != 0:
        raise RuntimeError(f"idaw live failed ({result.returncode}): {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    out, _ = sf.read(wav_path, dtype="float32", always_2d=True)
    first, last, _ = active_blocks(out, server.period)
    recorded = last - first + 1 if first >= 0 else 0
    timing = report["timing"]
    return {
        "stress_python": stress,
        "seconds": report["seconds"],
        "block_size": report["block_size"],
        "block_us": round(1e6 * report["block_size"] / server.rate, 3),
        "callback_us": {k: round(float(timing[f"{k}_us"]), 3) for k in ("p50", "p99", "max")},
        "callback_pct_of_block": {k: timing[f"{k}_pct"] for k in ("p50", "p99", "max")},
        "over_budget_blocks": timing["over_budget"],
        "budget_fraction": report["budget_fraction"],
        "xruns": {
            "bridge": report["xruns"],
            "observer_jack_callback": observer_xruns,
            "jackd_blamed": server.xrun_culprits(mark),
            "jackd_driver_woke_late": server.late_wakeups(mark),
        },
        "blocks": {
            "processed": report["callbacks"],
            "server_cycles": recorded,
            "equal": report["callbacks"] == recorded,
            "cycles_skipped_by_xruns": server.skipped_cycles(mark),
            "silent_blocks_inside_run": silent_blocks(out, server.period, first, last),
            "recording_ends_after_idaw": 0 <= last < out.shape[0] // server.period - 1,
            "recorder_overruns": "overrun" in recorder_said.lower(),
        },
        "stress": report["stress_python"],
    }


def run(quick: bool = False) -> common.Json:
    """The benchmark's JSON: config, then one `measure` result without and one with --stress-python."""
    seconds = QUICK_SECONDS if quick else SECONDS
    with (
        tempfile.TemporaryDirectory(prefix="idaw-bench-live-") as tmp,
        JackServer(rate=common.RATE, period=PERIOD, name=f"idaw_bench_{os.getpid()}") as server,
    ):
        results = {
            name: measure(server, seconds, stress, Path(tmp))
            for name, stress in (("plain", False), ("stress_python", True))
        }
    return {
        "benchmark": "live_jack",
        "config": {
            "rate_hz": common.RATE,
            "period": PERIOD,
            "seconds_per_run": seconds,
            "driver": "jackd -R -d dummy",
            "params": common.FULL_CHAIN,
            "clients": f"{C_PLAYER} (sine) -> idaw live -> jack_rec (WAV); observer: xrun callback only",
        },
        "notes": {
            "callback_us": "the engine's own per-callback timing (histogram bins about 4.4% wide; max exact)",
            "xruns.bridge": "callbacks PortAudio flagged with an under/overflow (idaw's bridge counters)",
            "xruns.observer_jack_callback": "xruns the observer's xrun callback saw from idaw's launch to its exit",
            "xruns.jackd_driver_woke_late": "jackd's own timer thread woke too late (the machine stalled the server)",
            "blocks": "bridge callbacks vs the cycles jack_rec recorded from idaw's first to its last output block "
            "(cycles the server ran the graph in; after an xrun jackd skips the graph for a cycle, counted "
            "in cycles_skipped_by_xruns)",
        },
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
