"""`idaw live` on a private dummy JACK server (48 kHz, period 256): callback cost, xruns and lost blocks,
without and with --stress-python (a busy Python thread and forced gc.collect() in idaw's own process).

For each run, a player client feeds noise into idaw and an observer client records idaw's output every cycle,
counting JACK xruns with an xrun callback (tests/jack_server.PlayRecord). PortAudio silences idaw's ports when
its stream is not running, so the server cycles idaw ran in are the recorded non-zero blocks; they are
compared with the callbacks the bridge counted. Callback timing, over-budget blocks and the bridge's xruns
come from idaw's --report. Run alone with `python -m benchmarks.bench_live_jack [--quick] [--out FILE]`;
needs jackd (Debian jackd2) and the JACK-Client package.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from realtime import params
from tests.jack_server import JackServer, PlayRecord, active_blocks

PERIOD = 256
"""JACK period (frames) of the dummy server."""
SECONDS, QUICK_SECONDS = 20.0, 5.0
"""How long idaw runs in each configuration."""
PLAYER, OBSERVER, CLIENT = "idaw-bench-player", "idaw-bench-observer", "idaw-bench"
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


def silent_blocks(out: np.ndarray[Any, np.dtype[np.float32]], period: int, first: int, last: int) -> int:
    """All-zero period blocks of `out` between blocks `first` and `last` (a callback that wrote nothing)."""
    if first < 0:
        return 0
    blocks = out[first * period : (last + 1) * period].reshape(-1, period, out.shape[1])
    return int(np.count_nonzero(~np.any(blocks != 0, axis=(1, 2))))


def measure(server: JackServer, seconds: float, stress: bool, work: Path) -> common.Json:
    """One run of idaw live between player and observer; returns its timing, xrun and block figures."""
    report_path = work / f"report-{int(stress)}.json"
    rig = PlayRecord(server, common.noise(server.rate * 4), max_seconds=seconds + 20, player=PLAYER,
                     recorder=OBSERVER)
    command = [sys.executable, "-m", "realtime.cli", "live", "--input-device", PLAYER, "--output-device", OBSERVER,
               "--client-name", CLIENT, "--duration", f"{seconds:g}", "--report", str(report_path),
               *chain_args(common.FULL_CHAIN), *(["--stress-python"] if stress else [])]
    gc.collect()
    gc.disable()  # the observer's callbacks run Python here: no collection of this heap may delay them
    try:
        rig.start()
        mark = server.log_size()
        result = subprocess.run(command, cwd=REPO, env=server.env(), capture_output=True, text=True,
                                timeout=seconds + 120, check=False)
        time.sleep(0.05)
    finally:
        gc.enable()
        rig.close()
    if result.returncode != 0:
        raise RuntimeError(f"idaw live failed ({result.returncode}): {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    out, _ = rig.recording()
    first, last, _ = active_blocks(out, server.period)
    steps = np.diff(rig.frame_times[first : last + 1]) if first >= 0 else np.zeros(0, np.int64)
    missed = int(np.sum(steps // server.period - 1)) if steps.size else 0
    server_cycles = (last - first + 1) + missed if first >= 0 else 0
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
            "observer_jack_callback": sum(1 for k in rig.xrun_cycles if first <= k <= last + 1),
            "observer_jack_callback_whole_run": rig.xruns,
            "jackd_blamed": server.xrun_culprits(mark),
        },
        "blocks": {
            "processed": report["callbacks"],
            "server_cycles": server_cycles,
            "equal": report["callbacks"] == server_cycles,
            "observer_missed_cycles": missed,
            "silent_blocks_inside_run": silent_blocks(out, server.period, first, last),
        },
        "stress": report["stress_python"],
    }


def run(quick: bool = False) -> common.Json:
    """The benchmark's JSON: config, then one `measure` result without and one with --stress-python."""
    seconds = QUICK_SECONDS if quick else SECONDS
    with tempfile.TemporaryDirectory(prefix="idaw-bench-live-") as tmp, \
            JackServer(rate=common.RATE, period=PERIOD, name=f"idaw_bench_{os.getpid()}") as server:
        results = {name: measure(server, seconds, stress, Path(tmp))
                   for name, stress in (("plain", False), ("stress_python", True))}
    return {
        "benchmark": "live_jack",
        "config": {"rate_hz": common.RATE, "period": PERIOD, "seconds_per_run": seconds,
                   "driver": "jackd -R -d dummy", "params": common.FULL_CHAIN},
        "notes": {
            "callback_us": "the engine's own per-callback timing (histogram bins about 4.4% wide; max exact)",
            "xruns.bridge": "callbacks PortAudio flagged with an under/overflow (idaw's bridge counters)",
            "xruns.observer_jack_callback": "xruns the observer's JACK xrun callback saw while idaw ran",
            "blocks": "bridge callbacks vs server cycles between idaw's first and last output block",
        },
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return common.bench_main(__doc__.splitlines()[0] if __doc__ else "", run, argv)


if __name__ == "__main__":
    sys.exit(main())
