"""The plugin's sidecar settings against a real Python sidecar: the intensity parameter (descriptions are sent with
it, and sent again when it moves), and the endpoint the user sets (saved in the state, applied by reconnecting),
with CURVE required beyond loopback.

The plugin runs in the test host with an audio thread paced like a sound card and, where the editor's test hooks
are needed (IDAW_EDITOR_DESCRIBE types words into the text box and presses Send; IDAW_EDITOR_ENDPOINT types an
endpoint and presses Connect), its editor open under Xvfb. Under LD_PRELOAD=libidaw_rtcheck.so the audio thread
must stay free of allocations and locks throughout.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from idaw.base import keyfiles
from idaw.base.protocol import SCHEMA, is_local_endpoint
from sidecar import keys as curve
from sidecar.handlers import AnalysisWindow, DescribeResult, FallbackTableHandler
from sidecar.server import SidecarServer
from tests.support.endpoints import free_endpoint
from tests.support.needs import need
from tests.support.plugin import PluginBuild, open_editor
from tests.support.plugin_live import HOST_CAP_S, STEP_CAP_S, LiveHost, live_host
from tests.support.sidecar_helpers import server_thread, wait_until

EQ = SCHEMA.snapshot_params
GAINS = [name for name in EQ if name.endswith("_gain")]


def described(words: list[str], intensity: float) -> dict[str, float]:
    """What the sidecar's default handler answers for `words` at `intensity`."""
    return dict(FallbackTableHandler().describe(words, intensity, None).values)


def holds_description(host: LiveHost, words: list[str], intensity: float) -> Callable[[], bool]:
    """A predicate: the plugin holds intensity `intensity` and the EQ the handler gives for `words` at it."""

    def check() -> bool:
        if not host.lines or "values" not in host.lines[-1]:
            return False
        held = host.lines[-1]["values"]
        if held["intensity"] != pytest.approx(intensity, abs=1e-6):
            return False
        expected = described(words, held["intensity"])  # the value the plugin sent: its float32 parameter
        return all(held[n] == pytest.approx(expected[n], rel=1e-6, abs=1e-6) for n in EQ)

    return check


QUIET_REPORTS = 5
"""Reports (one per 100 ms of the host's own loop) during which nothing may be sent while nothing moves."""


class RecordingHandler(FallbackTableHandler):
    """The sidecar's default handler, recording the intensity of every describe request in the order received."""

    def __init__(self) -> None:
        super().__init__()
        self.intensities: list[float] = []

    def describe(self, words: Sequence[str], intensity: float, window: AnalysisWindow | None) -> DescribeResult:
        """Records `intensity`, then answers as FallbackTableHandler does."""
        self.intensities.append(intensity)
        return super().describe(words, intensity, window)


def is_in_order_within(received: list[float], sent: list[float]) -> bool:
    """True when `received` is `sent` with some values left out (each as float32, the parameter's precision)."""
    remaining = iter(sent)
    return all(any(r == pytest.approx(s, abs=1e-6) for s in remaining) for r in received)


def test_intensity_is_sent_and_resent_when_it_moves(build: PluginBuild, xvfb: str) -> None:
    """The editor's words go out at the intensity parameter's value and again, coalesced, when it moves: in order,
    always ending on the latest value, never while nothing moves. Each step waits for what it checks (a count of
    requests, the plugin's reports), never for a fixed time."""
    endpoint = free_endpoint()
    env = {"DISPLAY": xvfb, "IDAW_EDITOR_DESCRIBE": "warm"}
    handler = RecordingHandler()
    with (
        server_thread(handler, endpoint=endpoint) as server,
        live_host(build, endpoint, HOST_CAP_S, "--commands", "--editor", env=env) as host,
    ):

        def describes() -> int:
            return int(server.status()["received"].get("describe", 0))

        def command(line: str) -> None:
            assert host.proc.stdin is not None
            host.proc.stdin.write(line + "\n")
            host.proc.stdin.flush()

        # The text box sends its words at the parameter's default intensity.
        assert wait_until(holds_description(host, ["warm"], 0.7), STEP_CAP_S, 0.02), host.lines[-1:]
        assert describes() == 1
        assert host.values()["mid1_gain"] == pytest.approx(0.7 * 4.8, rel=1e-6)

        # Intensity 0: the same words again, now flat (every gain 0; the handler keeps its frequencies).
        host.set("intensity=0")
        assert wait_until(holds_description(host, ["warm"], 0.0), STEP_CAP_S, 0.02), host.lines[-1:]
        assert all(host.values()[g] == 0.0 for g in GAINS)
        assert describes() == 2

        # A sweep of 12 values, one command each: what goes out is the sweep in order with values left out (the
        # link sends at most one request per 100 ms of its own clock), and always its last value. How many go out
        # depends on how fast this machine delivers the commands, so the count is not checked here.
        sweep = [step / 20 for step in range(1, 13)]
        before = len(handler.intensities)
        for value in sweep:
            host.set(f"intensity={value}")
            time.sleep(0.025)  # pacing, like a knob being turned; nothing below depends on it
        assert wait_until(holds_description(host, ["warm"], 0.6), STEP_CAP_S, 0.02), host.lines[-1:]
        sent = handler.intensities[before:]
        assert 1 <= len(sent) <= len(sweep) and sent[-1] == pytest.approx(0.6, abs=1e-6), sent
        assert is_in_order_within(sent, sweep), sent

        # Four values in one automation step (one command line, applied in one go on the message thread): the link
        # sees at most one of the values before the last, and after a request waits 100 ms of its own clock, by which
        # time the step is long over: one or two requests, the last one the latest value.
        before = len(handler.intensities)
        step = [0.1, 0.2, 0.9, 0.25]
        command("set " + " ".join(f"intensity={v}" for v in step))
        assert wait_until(holds_description(host, ["warm"], 0.25), STEP_CAP_S, 0.02), host.lines[-1:]
        sent = handler.intensities[before:]
        assert 1 <= len(sent) <= 2 and sent[-1] == pytest.approx(0.25, abs=1e-6), sent
        assert is_in_order_within(sent, step), sent

        # Nothing moves: nothing is sent while the host reports QUIET_REPORTS more times.
        before, reports = describes(), len(host.lines)
        assert wait_until(lambda: len(host.lines) >= reports + QUIET_REPORTS, STEP_CAP_S, 0.02)
        assert describes() == before
        command("quit")
        summary = host.finish()
    assert summary["rtcheck"]["control_violations"] == 2
    assert summary["rtcheck"]["violations"] == 0, summary["rtcheck"]["last_violation"]


# ---- Endpoint and CURVE -------------------------------------------------------------------------------------------


def non_loopback_address() -> str:
    """This machine's address on its default route (skip without one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the outgoing interface
            address = str(s.getsockname()[0])
        except OSError:
            address = "127.0.0.1"
    need(not ipaddress.ip_address(address).is_loopback, "this machine has no non-loopback address")
    return address


def free_port() -> int:
    """A TCP port nobody listens on yet (on any address)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


@contextmanager
def curve_sidecar(key_dir: Path) -> Iterator[tuple[SidecarServer, str]]:
    """A Python sidecar bound to every interface with CURVE (as `idaw sidecar --bind tcp://0.0.0.0:PORT --curve`);
    yields it and the non-loopback endpoint the plugin is to use."""
    address, port = non_loopback_address(), free_port()
    server = SidecarServer(f"tcp://0.0.0.0:{port}", FallbackTableHandler(), keyfiles.load_server_keys(key_dir))
    server.bind()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        endpoint = f"tcp://{address}:{port}"
        assert not is_local_endpoint(endpoint)
        yield server, endpoint
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture()
def key_dir(tmp_path: Path) -> Path:
    """Server and client keys as `idaw sidecar --make-keys --key-dir DIR` writes them."""
    folder = tmp_path / "sidecar keys"
    curve.make_keys(folder)
    return folder


@pytest.mark.parametrize("how", ["state", "editor"])
def test_curve_endpoint_connects_and_applies_parameters(
    build: PluginBuild, xvfb: str, tmp_path: Path, key_dir: Path, how: str
) -> None:
    """Beyond loopback with the keys --make-keys wrote: the plugin connects (restored from a saved state, or typed
    into the editor while the audio runs) and takes up the sidecar's parameters. The state keeps the paths only."""
    with curve_sidecar(key_dir) as (server, endpoint):
        if how == "state":
            args, env = ["--sidecar-endpoint", endpoint, "--sidecar-keys", str(key_dir)], {}
        else:
            args, env = [], {"IDAW_EDITOR_ENDPOINT": endpoint, "IDAW_EDITOR_KEYS": str(key_dir)}
        report = open_editor(build, xvfb, tmp_path / "curve.png", *args, env={**env, "IDAW_EDITOR_DESCRIBE": "warm"})
        status = server.status()
    info = report["editor"]
    assert info["sidecar_status"].startswith("sidecar: connected (fallback-table)"), info["sidecar_status"]
    assert info["describe_status"] == "snapshot 1 from: warm", info["describe_status"]
    assert info["sidecar_endpoint_used"] == endpoint
    # The plugin introduced itself over CURVE and left (it said bye when the editor closed).
    assert status["received"].get("hello", 0) >= 1 and status["received"].get("bye", 0) == 1, status["received"]
    expected = described(["warm"], report["values"]["intensity"])
    assert {n: report["values"][n] for n in EQ} == pytest.approx(expected, rel=1e-6, abs=1e-6)
    # Saved: the endpoint and the key folder's path; never key material.
    assert report["sidecar_endpoint"] == endpoint and report["sidecar_keys"] == str(key_dir)
    state = report["state_xml"]
    for name in ("client.key_secret", "server.key"):
        for line in (key_dir / name).read_text().splitlines():
            if "-key" in line:
                assert line.split("=", 1)[1].strip().strip('"') not in state


def make_unsafe(key_dir: Path) -> Path:
    """A copy of the keys whose secret file every user can read."""
    unsafe = key_dir.parent / "unsafe keys"
    shutil.copytree(key_dir, unsafe)
    os.chmod(unsafe / "client.key_secret", 0o644)
    return unsafe


@pytest.mark.parametrize("case", ["no keys", "secret readable by others"])
def test_non_loopback_endpoint_without_keys_is_refused(
    build: PluginBuild, xvfb: str, tmp_path: Path, key_dir: Path, case: str
) -> None:
    """No usable keys: the link refuses with one line in the editor (red), and never reaches the sidecar."""
    if case == "no keys":
        keys = tmp_path / "empty"
        keys.mkdir()
        expected = f"cannot read CURVE key {keys}/client.key_secret; create keys with: idaw sidecar --make-keys"
    else:
        keys = make_unsafe(key_dir)
        secret = keys / "client.key_secret"
        expected = f"{secret} is readable by other users; run: chmod 600 {secret}"
    with curve_sidecar(key_dir) as (server, endpoint):
        report = open_editor(
            build, xvfb, tmp_path / "refused.png", "--sidecar-endpoint", endpoint, "--sidecar-keys", str(keys), env={}
        )
        time.sleep(0.2)
        status = server.status()
    info = report["editor"]
    assert info["sidecar_status"] == f"sidecar: refusing {endpoint} without CURVE keys: {expected}"
    assert "\n" not in info["sidecar_status"]
    assert status["engines"] == [] and sum(status["received"].values()) == 0
    assert info["showing"] is True  # the editor still works


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("localhost:47800", "not a ZeroMQ endpoint: localhost:47800 (write tcp://HOST:PORT or ipc://PATH)"),
        ("tcp://127.0.0.1", "not a ZeroMQ endpoint: tcp://127.0.0.1 (write tcp://HOST:PORT or ipc://PATH)"),
    ],
)
def test_bad_endpoint_is_one_clear_line(
    build: PluginBuild, xvfb: str, tmp_path: Path, endpoint: str, expected: str
) -> None:
    """A mistyped endpoint typed into the editor: one line saying so; the audio thread goes on."""
    report = open_editor(build, xvfb, tmp_path / "typo.png", env={"IDAW_EDITOR_ENDPOINT": endpoint})
    info = report["editor"]
    assert info["sidecar_status"] == f"sidecar: {expected}"
    assert info["cpu_status"].startswith("audio thread: ") and "load" in info["cpu_status"]
    assert report["sidecar_endpoint"] == endpoint  # kept in the state, to be corrected
