"""A live engine on JACK with a SidecarLink, as `idaw live` runs it, for the sidecar kill test.

    python -m tests.support.sidecar_live_harness ENDPOINT REPORT.json [CLIENT_NAME]    (from the repository root)

Uses realtime.live_stream exactly as `idaw live` does (PortAudio, JACK, the core's native callback), adds the
sidecar link, prints READY once audio runs, watches the engine every 10 ms until SIGTERM and then writes a JSON
report: engine timing and counters, bridge counters (xruns) with the time.monotonic() of each xrun (the
clock is system-wide, so the test can line them up with its kills), link stats, the longest stretch without
a callback, and every change of the applied snapshot. While it runs, REPORT.json.progress holds the number of
callbacks so far (replaced at every change), so the test can wait for the engine's own progress. (Once `idaw
live` calls realtime.sidecar_link.host.attach_from_args, the kill test can run `idaw live --sidecar ENDPOINT
--report ...` instead.)
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import idaw_core
from realtime import live_stream, params
from realtime.sidecar_link.link import SidecarLink

RATE = 48000


def main(endpoint: str, report_path: Path, client_name: str = "idaw-sidecar-kill") -> int:
    """Run until SIGTERM; returns the exit code."""
    sd = live_stream.load_portaudio(client_name)
    in_dev, out_dev = live_stream.choose_devices(sd, None, None, None)
    live_stream.check_settings(sd, in_dev, out_dev, RATE, 2)
    engine = idaw_core.Engine()
    engine.prepare(float(RATE), 2048, 2)
    base = params.defaults()
    engine.set_parameters_now(base)
    engine.set_budget_fraction(0.5)
    bridge = idaw_core.PortAudioBridge(engine, 2, 2)
    stream = live_stream.open_native_stream(sd, bridge, in_dev, out_dev, RATE, 0, 2)
    stream.start()
    block_frames = live_stream.wait_first_block(bridge, RATE)
    link = SidecarLink(engine, endpoint, base, name="kill-test live").start()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    print(f"READY {block_frames}", flush=True)

    engine.timing_window()
    applied: list[tuple[float, int]] = []
    xrun_times: list[float] = []
    last_callbacks, last_change, longest_gap, xruns = 0, time.monotonic(), 0.0, 0
    started = time.monotonic()
    callbacks_at_start = int(bridge.counters()["callbacks"])
    progress = report_path.with_name(report_path.name + ".progress")
    progress_tmp = progress.with_name(progress.name + ".tmp")
    while not stop[0]:
        time.sleep(0.01)
        now = time.monotonic()
        counters = bridge.counters()
        xrun_times += [now] * (int(counters["xruns"]) - xruns)
        xruns = int(counters["xruns"])
        callbacks = int(counters["callbacks"])
        if callbacks != last_callbacks:
            longest_gap = max(longest_gap, now - last_change)
            last_callbacks, last_change = callbacks, now
            progress_tmp.write_text(str(callbacks), encoding="utf-8")
            progress_tmp.replace(progress)  # atomic: a reader sees the old count or the new one
        sequence = int(engine.counters()["applied_sequence"])
        if not applied or applied[-1][1] != sequence:
            applied.append((round(now - started, 4), sequence))
    link.stop()
    stats = dataclasses.asdict(link.stats())
    live_stream.close_within(stream, 3.0)
    report: dict[str, Any] = {
        "block_frames": block_frames,
        "seconds": round(time.monotonic() - started, 3),
        "timing": engine.timing_summary(),
        "engine": engine.counters(),
        "bridge": bridge.counters(),
        "link": stats,
        "longest_gap_s": round(longest_gap, 4),
        "loop_callbacks": last_callbacks - callbacks_at_start,
        "applied": applied,
        "xrun_times": xrun_times,
        "started": started,
    }
    report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:4]))
