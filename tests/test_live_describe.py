"""`idaw live` with its own sidecar (the default semantic-EQ handler) on a real dummy JACK server: a `describe warm
0.7` sent to the endpoint live prints changes the sound toward SAFE's median warm curve, from a block after the
request on.

How it measures: a player client feeds seeded pink noise to idaw's inputs and a recorder client records idaw's
outputs and (through a tee) the fed input in the same JACK cycle, with each cycle's frame time (as in
tests/test_live_jack.py). idaw runs with the default (flat) chain, whose output is bit-identical to its input,
so every block before the change equals the fed block and the first block that does not is where the new
parameters reached the audio. Once live has attached its sidecar, the test first asks for a word outside the
vocabulary at intensity 0, retrying while the sidecar answers "still loading": when that is answered every
model is loaded, and the flat EQ it sends must leave the output bit-identical (checked with the rest of the
blocks before the request). Then it sends `warm 0.7`, taking the JACK frame time just before sending and just
after the answer arrives (ZeroMQ, from this process), which places both on the recording's block grid. The
first `warm` is a word set the sidecar has not fitted yet: the answer waits for the audio encoder and the fit.

Order asserted, not latency: the first changed block comes after the request, and every block from it on
differs from the input. How many blocks after the answer it comes (one or two when nothing is late: the sidecar
sends the engine its `params` before the `described` answer, the link thread pushes them into the engine's queue,
and the next callback applies them) is printed, not asserted: it waits on the link thread, which a loaded machine
may wake late. The EQ then ramps for 50 ms (engine.cpp kFilterRampSeconds), so the spectrum is
compared only from SETTLE_BLOCKS after the onset.
"""

from __future__ import annotations

import gc
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import welch

import idaw_core
from idaw.base.protocol.replies import describe_retrying
from realtime import params
from sidecar.client import SidecarClient
from sidecar.semantic_eq import median_curves
from tests.support.jack_clients import PlayRecord, active_blocks
from tests.support.jack_server import JackServer
from tests.support.live import Live

pytestmark = [pytest.mark.jack, pytest.mark.slow]

RATE = 48000
PERIOD = 256
SIGNAL_SECONDS = 3.0
BEFORE_S = 1.0
"""Audio through the unchanged chain (and analysis windows to the sidecar) between the models having loaded and
the request."""
WARM_UP_WORD = "velvety"
"""Outside the semantic-EQ vocabulary: answering it means the synonym model has loaded."""
AFTER_S = 2.0
"""Audio after the answer, for the spectrum."""
ONSET_BLOCKS = 8
"""On a quiet machine the first changed block comes at most this many blocks after the block in which the answer
arrived (printed as answer_to_change_blocks; not asserted: it waits on a thread a loaded machine may wake late)."""
SETTLE_BLOCKS = 20
"""Blocks after the onset before the spectrum is compared (covers the 50 ms EQ ramp: 9.4 blocks)."""
START_TIMEOUT_S = 30.0
"""The existing ready timeout of the live tests; the sidecar (default handler) must be attached within it."""
ATTEMPTS = 3
"""A run whose checks fail with a JACK xrun after the models loaded is repeated, up to this many in all."""
CLIENT, PLAYER, RECORDER = "idaw-describe-test", "idaw-describe-player", "idaw-describe-recorder"
BAND_CENTRES = 1000.0 * 2.0 ** (np.arange(-15, 13) / 3.0)


def pink_noise(seconds: float = SIGNAL_SECONDS, rate: int = RATE) -> npt.NDArray[np.float32]:
    """Seeded stereo pink noise, peak 0.5."""
    n = int(seconds * rate)
    rng = np.random.default_rng(5)
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, (2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[:, 1:] /= np.sqrt(f[1:])
    spectrum[:, 0] = 0.0
    x = np.fft.irfft(spectrum, n, axis=1).T
    return np.ascontiguousarray(0.5 * x / np.abs(x).max(), dtype=np.float32)


def band_levels(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Long-term power (dB) of the mono mix in each 1/3-octave band of BAND_CENTRES."""
    f, p = welch(audio.mean(axis=1), fs=RATE, nperseg=8192)
    return np.array(
        [10 * np.log10(p[(f >= c * 2 ** (-1 / 6)) & (f < c * 2 ** (1 / 6))].sum() + 1e-30) for c in BAND_CENTRES]
    )


def sidecars_of(server: JackServer) -> list[int]:
    """Pids of live sidecar processes started for clients of `server` (they inherit its JACK_DEFAULT_SERVER)."""
    marker = f"JACK_DEFAULT_SERVER={server.name}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if b"sidecar" not in command or b"--ready-file" not in command:
                continue
            if marker in (proc / "environ").read_bytes().split(b"\0") and (proc / "stat").read_text().split()[2] != "Z":
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile
            continue
    return pids


def live_describe_run(server: JackServer, tmp: Path) -> dict[str, Any]:
    """One run: idaw live with its sidecar, a describe after BEFORE_S; returns the recording and the timings."""
    rig = PlayRecord(server, pink_noise(), max_seconds=60, player=PLAYER, recorder=RECORDER)
    report_path = tmp / "report.json"
    live: Live | None = None
    gc.collect()
    gc.disable()  # a collection in a JACK callback of the rig would make it late
    try:
        rig.start()
        launched = time.monotonic()
        live = Live(
            server,
            tmp,
            "--input-device",
            PLAYER,
            "--output-device",
            RECORDER,
            "--client-name",
            CLIENT,
            "--duration",
            "45",
            "--report",
            str(report_path),
            sidecar=True,
        )
        live.wait_for_output("Ctrl-C to stop", timeout=START_TIMEOUT_S)
        live.wait_for_output("sidecar at", timeout=START_TIMEOUT_S)
        attached_s = time.monotonic() - launched
        found = re.search(r"sidecar at (\S+): type", live.stdout)
        assert found, live.stdout
        endpoint = found.group(1)
        sidecars_running = sidecars_of(server)
        with SidecarClient(endpoint, timeout=5.0) as client:
            # Once this answers, every model is loaded (a word outside the vocabulary needs the synonym model);
            # at intensity 0 the EQ is flat, and the output stays bit-identical to the input.
            began = time.monotonic()
            flat = describe_retrying(client, [WARM_UP_WORD], 0.0)
            frame_loaded, loaded_s = rig.recorder.frame_time, time.monotonic() - began
            time.sleep(BEFORE_S)
            frame_sent, sent = rig.recorder.frame_time, time.monotonic()
            answer = describe_retrying(client, ["warm"], 0.7)
            frame_answered, answered = rig.recorder.frame_time, time.monotonic()
        time.sleep(AFTER_S)
        live.proc.send_signal(signal.SIGTERM)
        status = live.wait(timeout=20)
        assert status == 0, f"idaw live failed ({status}): {live.stderr}"
        sidecars_left = sidecars_of(server)
        time.sleep(0.05)
    finally:
        gc.enable()
        if live is not None:
            live.kill()
        rig.close()
    out, fed = rig.recording()
    return {
        "rig": rig,
        "out": out,
        "fed": fed,
        "answer": answer,
        "frame_loaded": frame_loaded,
        "frame_sent": frame_sent,
        "frame_answered": frame_answered,
        "reply_ms": 1e3 * (answered - sent),
        "flat": flat,
        "models_loaded_after_attach_s": loaded_s,
        "attached_s": attached_s,
        "sidecars_running": sidecars_running,
        "sidecars_left": sidecars_left,
        "report": json.loads(report_path.read_text()),
    }


def block_at(frame_times: npt.NDArray[np.int64], cycles: int, frame: int) -> int:
    """Index of the recorded cycle during which JACK's frame time was `frame`."""
    return int(np.searchsorted(frame_times[:cycles], frame, side="right")) - 1


def xruns_in_run(run: dict[str, Any]) -> list[int]:
    """Cycles, from the models having loaded on, in which the recorder saw a JACK xrun (idaw closing its stream
    may cost one at the end, after the last active block)."""
    rig, out = run["rig"], run["out"]
    _, last, _ = active_blocks(out, PERIOD)
    loaded = block_at(rig.frame_times, min(rig.cycles, rig.max_cycles), run["frame_loaded"])
    return [k for k in rig.xrun_cycles if loaded <= k < last]


def check_describe_run(run: dict[str, Any]) -> dict[str, Any]:
    """Every check of one run (assertions); returns the figures to print."""
    rig, out, fed = run["rig"], run["out"], run["fed"]
    first, last, _ = active_blocks(out, PERIOD)
    assert first > 0, f"no output from idaw recorded (first block {first})"
    cycles = min(rig.cycles, rig.max_cycles)
    loaded = block_at(rig.frame_times, cycles, run["frame_loaded"])
    sent = block_at(rig.frame_times, cycles, run["frame_sent"])
    answered = block_at(rig.frame_times, cycles, run["frame_answered"])
    assert first <= loaded < sent <= answered < last, (first, loaded, sent, answered, last)
    # From the models having loaded on, idaw's output has every block (a missing one would differ from the fed
    # input for another reason than the describe).
    silent = np.flatnonzero(~np.any(out[loaded * PERIOD : (last + 1) * PERIOD].reshape(-1, PERIOD, 2), axis=(1, 2)))
    assert not silent.size, f"silent blocks {silent[:5].tolist()} after block {loaded}"
    blocks_out = out[: (last + 1) * PERIOD].reshape(-1, PERIOD, 2)
    blocks_fed = fed[: (last + 1) * PERIOD].reshape(-1, PERIOD, 2)
    differs = np.flatnonzero(np.any(blocks_out[loaded:] != blocks_fed[loaded:], axis=(1, 2))) + loaded
    assert differs.size, "the output never changed after the describe"
    onset = int(differs[0])

    answer = run["answer"]
    assert answer.used == ["warm"] and answer.engines == 1, answer
    assert run["flat"].snapshot and "velvety" not in run["flat"].used, run["flat"]
    # Nothing changed before the request: the chain, flat EQ included, is bit-identical up to the request.
    assert onset > sent, f"the output changed at block {onset}, before the request (block {sent})"
    # Once changed, it stays changed: every block from the onset on differs from the input.
    assert np.array_equal(differs, np.arange(onset, last + 1)), "the output went back to the input after the onset"

    # Toward warm: after the ramp, the output's spectrum differs from the input's by SAFE's median warm shape and
    # by the EQ the sidecar answered with.
    begin, end = (onset + SETTLE_BLOCKS) * PERIOD, last * PERIOD
    assert end - begin >= RATE, "less than a second of audio after the change"
    level_in, level_out = band_levels(fed[begin:end]), band_levels(out[begin:end])
    change = level_out - level_in
    warm = median_curves.load().curve("warm", BAND_CENTRES)
    applied = params.build(dict(answer.values))
    expected = idaw_core.eq_response_db(applied, float(RATE), BAND_CENTRES)
    correlation = float(np.corrcoef(change, warm)[0, 1])
    matches_eq = float(np.corrcoef(change, expected)[0, 1])
    assert correlation >= 0.8, f"change vs SAFE's median warm: r = {correlation:.3f}"
    assert matches_eq >= 0.95, f"change vs the EQ the sidecar sent: r = {matches_eq:.3f}"
    assert float(np.max(np.abs(change))) > 1.0, "the change is too small to hear"

    # live started its own sidecar and stopped it.
    assert len(run["sidecars_running"]) == 1 and run["sidecars_left"] == [], run
    report = run["report"]
    assert report["status"] == "ok" and report["sidecar"]["snapshot"] == answer.snapshot, report["sidecar"]
    return {
        "sidecar_attached_after_launch_s": round(run["attached_s"], 2),
        "models_loaded_after_attach_s": round(run["models_loaded_after_attach_s"], 2),
        "request_to_answer_ms": round(run["reply_ms"], 1),
        "blocks": {"models_loaded": loaded, "request": sent, "answer": answered, "first_changed": onset},
        "answer_to_change_blocks": onset - answered,
        "request_to_change_ms": round(1e3 * (onset - sent) * PERIOD / RATE, 1),
        "correlation_with_safe_median_warm": round(correlation, 3),
        "correlation_with_sent_eq": round(matches_eq, 3),
        "xruns_reported_by_idaw": report["xruns"],
    }


def test_describe_in_live_changes_the_sound_toward_warm_after_the_request(
    jack_server: JackServer, tmp_path: Path
) -> None:
    """How many blocks after the answer the change starts (ONSET_BLOCKS at most on a quiet machine) is printed, not
    asserted: it waits on the sidecar link's thread, which a loaded machine may wake late. A run with a JACK xrun
    after the models loaded may fail the checks through no fault of idaw's (a late client's cycle is skipped);
    only such a run is repeated, up to ATTEMPTS in all."""
    spoiled: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        attempt_dir = tmp_path / f"attempt{attempt}"
        attempt_dir.mkdir()
        run = live_describe_run(jack_server, attempt_dir)
        xruns = xruns_in_run(run)
        try:
            figures = check_describe_run(run)
        except AssertionError as failure:
            if not xruns:
                raise  # nothing excuses it
            spoiled.append(f"attempt {attempt}: {str(failure).splitlines()[0]} with JACK xruns at cycles {xruns}")
            continue
        break
    else:
        pytest.fail("an xrun spoiled every attempt: " + "; ".join(spoiled))
    print(json.dumps({**figures, "xruns_after_models_loaded": xruns, "spoiled_attempts": spoiled}))
