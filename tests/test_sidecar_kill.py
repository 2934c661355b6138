"""Faults, for real: SIGKILL the sidecar subprocess 20 times while a live engine runs on the JACK dummy server.

The engine runs the core's native PortAudio callback on JACK (tests/support/sidecar_live_harness.py, the same stream
code as `idaw live`) with a SidecarLink. Each round: a describe is applied in the engine, the sidecar is killed at a
random moment, stays dead for a random while (and until the engine has called back CALLBACKS_WHILE_DEAD more
times), and is started again on the same endpoint. Checked: the engine keeps calling back and keeps the last
snapshot while the sidecar is gone, the callback stays within its budget (the engine's own per-block timing: p99
below half the block), and after every restart both sides agree on the snapshot (resynchronised) and the next
describe is applied. Every wait is for a count or a state, with a cap (STEP_CAP_S) that only a hang reaches;
nothing is asserted about how long a step took or how much the callback got done in a given time (xruns and the
step times are printed). A second, faster test does the same against a SIGSTOPped (hung) sidecar.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from realtime.sidecar_link.link import SidecarLink
from realtime.sidecar_link.process import SidecarProcess
from sidecar.client import SidecarClient, SidecarError
from tests.support.jack_server import start_for_test
from tests.support.repo import REPO
from tests.support.sidecar_helpers import paced_engine, wait_until

KILLS = 20
WORDS = (["warm"], ["bright"], ["warm", "bright"])


def engine_view(client: SidecarClient) -> dict[str, Any] | None:
    """The one engine the sidecar knows, or None (no sidecar, or no engine yet)."""
    try:
        engines = client.status(timeout=0.5)["engines"]
    except SidecarError:
        return None
    return engines[0] if len(engines) == 1 else None


CONTROL_S = 10.0
"""Seconds of the same live run without faults, before the kills: the machine's own xrun rate (printed)."""
CALLBACKS_WHILE_DEAD = 10
"""Callbacks the engine must make while the sidecar is dead, before it is started again (53 ms of audio)."""
STEP_CAP_S = 60.0
"""How long one step may wait (a state reached, callbacks made) before the test fails: a guard against a hang."""


def callbacks_reach(report_path: Path, count: int) -> bool:
    """True once the harness has counted `count` callbacks."""
    return callbacks_so_far(report_path) >= count


def holds(client: SidecarClient, snapshot: int) -> bool:
    """True when the sidecar reports that its engine holds `snapshot`."""
    return (engine_view(client) or {}).get("held") == snapshot


def resynchronised(client: SidecarClient, snapshot: int) -> bool:
    """True when a (new) sidecar knows the engine and both hold `snapshot`."""
    view = engine_view(client)
    return view is not None and view["held"] == view["snapshot"] == snapshot


def callbacks_so_far(report_path: Path) -> int:
    """The harness's count of callbacks (REPORT.json.progress; 0 before its first)."""
    try:
        return int(report_path.with_name(report_path.name + ".progress").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return 0


def kill_run(tmp_path: Path, seed: int) -> dict[str, Any]:
    """One live run: CONTROL_S without faults, then KILLS sidecar kills. Returns the harness report plus
    'rounds', 'snapshot', 'control' and 'faults' ((start, end) monotonic times) and 'jack_log'."""
    server = start_for_test(rate=48000, period=256)
    rng = random.Random(seed)
    sidecar = SidecarProcess()
    harness: subprocess.Popen[str] | None = None
    report_path = tmp_path / f"live-{seed}.json"
    rounds: list[dict[str, float]] = []
    snapshot = 0
    try:
        endpoint = sidecar.start()
        with open(tmp_path / "harness.err", "w") as errors:
            harness = subprocess.Popen(
                [sys.executable, "-m", "tests.support.sidecar_live_harness", endpoint, str(report_path)],
                cwd=REPO,
                env={**server.env(), "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        assert harness.stdout is not None
        assert harness.stdout.readline().startswith("READY"), (tmp_path / "harness.err").read_text()
        client = SidecarClient(endpoint, timeout=2.0)
        assert wait_until(lambda: engine_view(client) is not None, STEP_CAP_S, interval=0.05)
        control = (time.monotonic(), time.monotonic() + CONTROL_S)
        time.sleep(CONTROL_S)
        faults_start = time.monotonic()
        for round_index in range(KILLS + 1):
            began = time.monotonic()
            result = client.describe(WORDS[round_index % len(WORDS)], rng.uniform(0.2, 1.0))
            assert result.snapshot > snapshot and result.engines == 1
            snapshot = result.snapshot
            assert wait_until(partial(holds, client, snapshot), STEP_CAP_S, interval=0.01)
            applied_s = time.monotonic() - began
            if round_index == KILLS:
                break
            time.sleep(rng.uniform(0.0, 0.3))
            sidecar.kill()
            callbacks_at_kill = callbacks_so_far(report_path)
            time.sleep(rng.uniform(0.05, 1.5))  # sometimes shorter, sometimes longer than the 1 s peer timeout
            # The engine goes on without its sidecar: the callback keeps coming (counted by the harness).
            called_back = partial(callbacks_reach, report_path, callbacks_at_kill + CALLBACKS_WHILE_DEAD)
            assert wait_until(called_back, STEP_CAP_S, interval=0.01), (
                callbacks_at_kill,
                callbacks_so_far(report_path),
            )
            dead_callbacks = callbacks_so_far(report_path) - callbacks_at_kill
            restarted = time.monotonic()
            assert sidecar.start() == endpoint
            ready = time.monotonic()
            # Resynchronised: the new sidecar knows the engine and holds the engine's (last) snapshot.
            assert wait_until(partial(resynchronised, client, snapshot), STEP_CAP_S, interval=0.01), engine_view(client)
            rounds.append(
                {
                    "applied_s": applied_s,
                    "start_s": ready - restarted,
                    "resync_s": time.monotonic() - ready,
                    "dead_callbacks": dead_callbacks,
                }
            )
        faults = (faults_start, time.monotonic())
        client.close()
    finally:
        if harness is not None:
            harness.send_signal(signal.SIGTERM)
            harness.wait(20)
        sidecar.close()
        jack_log = server.log_tail(20)
        server.close()
    report: dict[str, Any] = json.loads(report_path.read_text())
    return {
        **report,
        "rounds": rounds,
        "snapshot": snapshot,
        "control": control,
        "faults": faults,
        "jack_log": jack_log,
    }


@pytest.mark.jack
@pytest.mark.slow
def test_twenty_sidecar_kills_during_a_live_jack_run(tmp_path: Path) -> None:
    report = kill_run(tmp_path, seed=20)
    rounds, link = report["rounds"], report["link"]
    (c0, c1), (f0, f1) = report["control"], report["faults"]
    control_xruns = sum(c0 <= t < c1 for t in report["xrun_times"])
    fault_xruns = sum(f0 <= t <= f1 for t in report["xrun_times"])
    print(
        f"\nkill test: {len(rounds)} kills in {f1 - f0:.1f} s; "
        f"sidecar start max {max(r['start_s'] for r in rounds):.3f} s, "
        f"then resync median {sorted(r['resync_s'] for r in rounds)[len(rounds) // 2]:.3f} s max "
        f"{max(r['resync_s'] for r in rounds):.3f} s, "
        f"describe->engine max {max(r['applied_s'] for r in rounds):.3f} s; timing {report['timing']}; xruns "
        f"{control_xruns} in {c1 - c0:.0f} s without faults, {fault_xruns} during the kills (reported, not "
        f"asserted); {report['loop_callbacks']} callbacks in {report['seconds']} s (a server cycle per "
        f"{report['block_frames']} frames would give {report['seconds'] * 48000 / report['block_frames']:.0f}; "
        f"reported, not asserted); longest callback gap {report['longest_gap_s']} s; link welcomes {link['welcomes']} "
        f"losses {link['losses']} rejected {link['rejected']} {link['events']}"
    )
    budget_us = 0.5 * 1e6 * report["block_frames"] / 48000
    assert len(rounds) == KILLS
    assert report["engine"]["applied_sequence"] == report["snapshot"]
    sequences = [s for _, s in report["applied"]]
    assert sequences == sorted(sequences), "the engine only ever moved to newer snapshots"
    # The callback kept running through every kill (each round waited for CALLBACKS_WHILE_DEAD callbacks while the
    # sidecar was dead), and every block the engine timed was a callback the harness counted.
    assert all(r["dead_callbacks"] >= CALLBACKS_WHILE_DEAD for r in rounds)
    assert report["timing"]["blocks"] >= report["loop_callbacks"] > 0, (report["timing"], report["loop_callbacks"])
    # Within budget by the engine's own per-block timing: the 99th percentile under half the block. Its maximum
    # (printed) is wall time and includes any moment the OS gave the core to another process.
    assert report["timing"]["p99_us"] < budget_us, report["timing"]
    # JACK xruns are printed above, not asserted: on shared VMs they follow the hypervisor's scheduling (the
    # dummy driver itself wakes late), so the test holds the engine to its own timing and completeness instead.
    assert link["welcomes"] >= KILLS + 1 and link["losses"] >= KILLS
    assert link["rejected"] == {} and link["events"].get("internal_errors", 0) == 0, link


def test_a_hung_sidecar_is_noticed_and_a_resumed_one_resyncs() -> None:
    """SIGSTOP keeps the TCP connection up: only the missing heartbeats tell the engine the sidecar is gone."""
    with SidecarProcess() as sidecar, paced_engine() as engine:
        link = SidecarLink(engine, sidecar.endpoint).start()
        try:
            with SidecarClient(sidecar.endpoint) as client:
                assert link.wait_connected(STEP_CAP_S)
                snapshot = client.describe(["warm"], 0.5).snapshot
                assert link.wait_snapshot(snapshot, STEP_CAP_S)
            assert sidecar.pid is not None
            os.kill(sidecar.pid, signal.SIGSTOP)
            try:
                assert wait_until(lambda: not link.stats().connected, STEP_CAP_S)
                blocks = engine.blocks()
                assert wait_until(lambda: engine.blocks() > blocks + 20, STEP_CAP_S) and engine.applied() == snapshot
            finally:
                os.kill(sidecar.pid, signal.SIGCONT)
            # Same sidecar back: its heartbeat, our hello.
            assert wait_until(lambda: link.stats().connected, STEP_CAP_S)
            with SidecarClient(sidecar.endpoint) as client:
                assert wait_until(lambda: (engine_view(client) or {}).get("held") == snapshot, STEP_CAP_S)
                newer = client.describe(["bright"], 0.5).snapshot
                assert newer > snapshot and link.wait_snapshot(newer, STEP_CAP_S)
        finally:
            link.stop()


def test_an_ipc_sidecar_comes_back_after_a_kill(tmp_path: Path) -> None:
    """ipc:// endpoints (a socket file) work too, also when a killed sidecar left its file behind."""
    endpoint = f"ipc://{tmp_path}/sidecar.ipc"
    sidecar = SidecarProcess(endpoint)
    try:
        with paced_engine() as engine:
            assert sidecar.start() == endpoint
            link = SidecarLink(engine, endpoint).start()
            try:
                assert link.wait_connected(STEP_CAP_S)
                first = link.stats().sidecar_session
                sidecar.kill()
                assert (tmp_path / "sidecar.ipc").exists()
                sidecar.start()
                assert link.wait_connected(STEP_CAP_S, newer_than=first)
                with SidecarClient(endpoint) as client:
                    snapshot = client.describe(["warm"], 0.4).snapshot
                assert link.wait_snapshot(snapshot, STEP_CAP_S)
            finally:
                link.stop()
    finally:
        sidecar.close()
