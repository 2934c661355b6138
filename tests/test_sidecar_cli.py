"""`idaw sidecar` as users and host commands run it: one-line errors, CURVE keys and their enforcement,
status/describe queries, clean SIGTERM, lazy imports, and the host-command hooks (live and offline)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import numpy.typing as npt
import pytest

from idaw.base.errors import IdawError
from idaw.base.keyfiles import load_client_keys
from realtime import params
from realtime.sidecar_link import host
from realtime.sidecar_link.process import SidecarProcess, SidecarStartError
from sidecar.client import SidecarClient, SidecarError
from tests.support.idaw_command import RunIdaw
from tests.support.repo import REPO
from tests.support.sidecar_helpers import HANG_CAP_S, paced_engine, wait_until


@pytest.fixture
def run_sidecar() -> RunIdaw:
    """Like run_idaw("sidecar", ...) but through `python -m sidecar` (the same command without importing every
    other idaw command, some of which load torch): each call starts in ~0.2 s instead of seconds."""

    def run(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("IDAW_DEBUG", None)
        return subprocess.run(
            [sys.executable, "-m", "sidecar", *map(str, args)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single stderr line of a failed run, checked to contain every needle."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_binding_beyond_loopback_needs_curve_keys(run_idaw: RunIdaw, run_sidecar: RunIdaw) -> None:
    one_line_error(run_idaw("sidecar", "--bind", "tcp://0.0.0.0:47999"), "needs CURVE keys", "--make-keys")
    for endpoint in ("tcp://*:47999", "tcp://192.168.0.1:47999", "tcp://eth0:47999"):
        one_line_error(run_sidecar("--bind", endpoint), "needs CURVE keys", "--make-keys")


def test_a_loopback_source_before_a_remote_destination_needs_curve_keys(run_sidecar: RunIdaw) -> None:
    """Issue 9 finding 2: the check read the address before the ';' of tcp://SOURCE;DESTINATION, while ZeroMQ binds
    the one after (here every interface), so the sidecar listened on 0.0.0.0 without CURVE."""
    for endpoint in ("tcp://127.0.0.1:47948;0.0.0.0:47949", "tcp://0.0.0.0:47948;127.0.0.1:47949"):
        one_line_error(run_sidecar("--handler", "fallback", "--bind", endpoint), "needs CURVE keys", "--make-keys")


def test_a_loopback_source_and_destination_is_served_on_loopback_without_keys() -> None:
    """libzmq accepts tcp://SOURCE;DESTINATION for bind too, and binds the destination: with both on loopback no
    keys are needed, and the sidecar listens on loopback only."""
    with SidecarProcess("tcp://127.0.0.1:*;127.0.0.1:*") as process:
        assert process.endpoint.startswith("tcp://127.0.0.1:"), process.endpoint
        with SidecarClient(process.endpoint, timeout=HANG_CAP_S) as client:
            assert client.status()["handler"] == "fallback-table"


@pytest.mark.parametrize(
    "args",
    [
        ["--bind", "not an endpoint"],
        ["--bind", "tcp://127.0.0.1"],
        ["--curve", "--bind", "localhost:47800"],
        ["--status", "--bind", "not an endpoint"],
        ["--describe", "warm", "--bind", "tcp://127.0.0.1:99999"],
    ],
)
def test_a_malformed_endpoint_is_named_not_blamed_on_keys(
    run_sidecar: RunIdaw, tmp_path: Path, args: list[str]
) -> None:
    """Issue 9: `--bind 'not an endpoint'` complained about CURVE keys; it must say the endpoint is not valid and
    what is allowed, before any key is looked for."""
    line = one_line_error(run_sidecar("--handler", "fallback", "--key-dir", tmp_path / "none", *args))
    endpoint = args[args.index("--bind") + 1]
    assert line == f"idaw sidecar: error: not a ZeroMQ endpoint: {endpoint} (write tcp://HOST:PORT or ipc://PATH)"


def test_host_sidecar_option_checks_the_whole_endpoint(tmp_path: Path) -> None:
    """--sidecar ENDPOINT of the host commands: a malformed endpoint is named as such, and a host name that only
    starts like a loopback address needs keys (issue 9 finding 3, on the Python side)."""
    base = params.build({})
    audio = np.zeros((48000, 2), dtype=np.float32)
    keys = ["--sidecar-keys", str(tmp_path / "none")]
    bad = host_args("--describe", "warm", "--sidecar", "not an endpoint", *keys)
    with pytest.raises(IdawError, match=r"^sidecar: not a ZeroMQ endpoint: not an endpoint \(write tcp://HOST"):
        host.offline_vector_from_args(bad, audio, 48000, base)
    remote = host_args("--describe", "warm", "--sidecar", "tcp://127.0.0.1.example.org:47800", *keys)
    with pytest.raises(IdawError, match=r"^sidecar: cannot read CURVE key .*none/client\.key_secret"):
        host.offline_vector_from_args(remote, audio, 48000, base)


def test_bad_handler_and_busy_port_are_one_line_errors(run_sidecar: RunIdaw) -> None:
    one_line_error(run_sidecar("--handler", "nonsense", "--bind", "tcp://127.0.0.1:*"), "package.module")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_sidecar("--handler", "fallback", "--bind", f"tcp://127.0.0.1:{port}")
        one_line_error(busy, "cannot bind")


def test_make_keys_writes_private_files_once(run_sidecar: RunIdaw, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    result = run_sidecar("--make-keys", "--key-dir", keys)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("server.key_secret", "client.key_secret"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert (keys / "authorized" / "client.key").read_text() == (keys / "client.key").read_text()
    one_line_error(run_sidecar("--make-keys", "--key-dir", keys), "already exist")
    assert run_sidecar("--make-keys", "--overwrite-keys", "--key-dir", keys).returncode == 0


def test_make_keys_refuses_a_file_or_a_shared_folder_in_one_line(run_sidecar: RunIdaw, tmp_path: Path) -> None:
    """Issue 9 finding 4 (CLI): --key-dir naming a file gave `internal error: NotADirectoryError`, and an existing
    folder was chmod-ed to 0700 (a shared 1777 one, or /tmp as root). Both are refused in one line, untouched."""
    file = tmp_path / "keys.txt"
    file.write_text("not a folder")
    one_line_error(run_sidecar("--make-keys", "--key-dir", file), f"key folder {file} is not a folder")
    one_line_error(run_sidecar("--make-keys", "--key-dir", file / "below"), "Not a directory")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    one_line_error(run_sidecar("--make-keys", "--key-dir", shared), "writable by other users (mode 1777)")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and list(shared.iterdir()) == []
    assert file.read_text() == "not a folder"


def test_curve_without_keys_or_with_loose_permissions_is_refused(run_sidecar: RunIdaw, tmp_path: Path) -> None:
    one_line_error(run_sidecar("--curve", "--key-dir", tmp_path / "none", "--bind", "tcp://127.0.0.1:*"), "--make-keys")
    keys = tmp_path / "keys"
    assert run_sidecar("--make-keys", "--key-dir", keys).returncode == 0
    os.chmod(keys / "server.key_secret", 0o644)
    one_line_error(run_sidecar("--curve", "--key-dir", keys, "--bind", "tcp://127.0.0.1:*"), "chmod 600")


def test_curve_admits_only_clients_with_the_keys(run_sidecar: RunIdaw, tmp_path: Path) -> None:
    keys, other = tmp_path / "keys", tmp_path / "other"
    for folder in (keys, other):
        assert run_sidecar("--make-keys", "--key-dir", folder).returncode == 0
    with SidecarProcess(extra_args=["--curve", "--key-dir", str(keys)]) as process:
        with SidecarClient(process.endpoint, load_client_keys(keys), timeout=HANG_CAP_S) as client:
            assert client.status()["handler"] == "fallback-table"
        for wrong in (None, load_client_keys(other)):
            with SidecarClient(process.endpoint, wrong, timeout=0.5) as client, pytest.raises(SidecarError) as caught:
                client.status()
            assert caught.value.code == "timeout"
        result = run_sidecar("--status", "--curve", "--key-dir", keys, "--bind", process.endpoint)
        assert result.returncode == 0 and json.loads(result.stdout)["engines"] == []


def test_queries_and_a_clean_stop(run_sidecar: RunIdaw) -> None:
    process = SidecarProcess()
    try:
        endpoint = process.start()
        status = run_sidecar("--status", "--bind", endpoint)
        assert status.returncode == 0 and json.loads(status.stdout)["handler"] == "fallback-table"
        described = run_sidecar("--describe", "warm", "--intensity", "0.5", "--bind", endpoint)
        answer = json.loads(described.stdout)
        assert answer["used"] == ["warm"] and answer["values"]["mid1_gain"] == pytest.approx(2.4)
        bad = run_sidecar("--describe", "warm", "--intensity", "3", "--bind", endpoint)
        one_line_error(bad, "intensity = 3 outside 0..1")
        assert process.stop(timeout=HANG_CAP_S) == 0  # SIGKILL (not 0) only after the cap
        assert "stopped" in process.log_path.read_text()
    finally:
        process.close()
    one_line_error(run_sidecar("--status", "--bind", endpoint), "no answer")


def test_sidecar_exits_with_its_parent(tmp_path: Path) -> None:
    code = (
        "import time; from realtime.sidecar_link.process import SidecarProcess; p = SidecarProcess(); p.start(); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(HANG_CAP_S)

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{child}/stat") as f:  # a zombie waiting for init to reap it counts as gone
            return f.read().split()[2] == "Z"

    assert wait_until(gone, HANG_CAP_S, interval=0.05)


def test_a_sidecar_that_cannot_start_is_reported() -> None:
    process = SidecarProcess(handler="nonsense")
    with pytest.raises(SidecarStartError, match=r"package\.module"):
        process.start()
    process.close()


def test_importing_the_command_stays_light() -> None:
    code = "import sys, sidecar.cli; print(sorted(m for m in ('zmq', 'msgpack', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def host_args(*argv: str, handler: str = "fallback") -> argparse.Namespace:
    """The host options parsed from `argv` with `--sidecar-handler handler` (none when `handler` is empty)."""
    parser = argparse.ArgumentParser()
    host.add_arguments(parser)
    return parser.parse_args([*argv, *(["--sidecar-handler", handler] if handler else [])])


def test_the_trained_model_is_the_default_handler_and_fallback_stays_selectable() -> None:
    from idaw.cli import build_parser
    from sidecar import cli

    sidecar_parser = argparse.ArgumentParser()
    cli.add_arguments(sidecar_parser)
    assert sidecar_parser.parse_args([]).handler == "semantic-eq"
    assert sidecar_parser.parse_args(["--handler", "fallback"]).handler == "fallback"
    assert host_args(handler="").sidecar_handler == "semantic-eq"
    for command in (["process", "in.wav", "-o", "out.wav"], ["live"], ["demo"]):
        assert build_parser().parse_args(command).sidecar_handler == "semantic-eq", command


def test_semantic_eq_answers_vocabulary_words_while_the_synonym_model_loads(run_sidecar: RunIdaw) -> None:
    with (
        SidecarProcess(handler="semantic-eq") as process,
        SidecarClient(process.endpoint, timeout=HANG_CAP_S) as client,
    ):
        assert client.status()["handler"] == "semantic-eq"
        warm = client.describe(["warm"], 0.7)
        assert warm.used == ["warm"] and warm.values["mid1_gain"] > 0
        # Right after start-up the synonym model (seconds to load) is not there yet: a word outside the
        # vocabulary is refused at once with 'still loading' instead of blocking the sidecar's one thread.
        with pytest.raises(SidecarError) as caught:
            client.describe(["velvety"], 0.7)
        assert caught.value.code == "handler_failed" and "still loading" in str(caught.value)
        assert client.describe(["bright"], 0.5).used == ["bright"]
        # Hosts (and `idaw sidecar --describe`) retry until it has loaded: the command gives up on its own after
        # replies.LOADING_WAIT_S, so its success says it got the answer in time; how long it took is not asserted.
        answer = run_sidecar("--describe", "velvety", "--bind", process.endpoint)
        assert answer.returncode == 0, answer.stderr
        used = json.loads(answer.stdout)["used"]
        assert used and "velvety" not in used, used
        nonsense = run_sidecar("--describe", "xqzv", "--bind", process.endpoint)
        one_line_error(nonsense, "closest known words")


def test_offline_hook_applies_the_description_over_the_host_settings() -> None:
    base = params.build({"drive": 6.0, "mid2_gain": 3.0})
    audio = np.random.default_rng(1).normal(0, 0.1, (48000 * 3, 2)).astype(np.float32)
    assert host.offline_vector_from_args(host_args(), audio, 48000, base) is base
    vector = host.offline_vector_from_args(host_args("--describe", "warm", "--intensity", "0.5"), audio, 48000, base)
    assert vector[params.INDEX["mid1_gain"]] == pytest.approx(2.4)
    assert vector[params.INDEX["drive"]] == 6.0 and vector[params.INDEX["mid2_gain"]] == 0.0
    with pytest.raises(IdawError, match="none of"):
        host.offline_vector_from_args(host_args("--describe", "crunchy"), audio, 48000, base)
    with pytest.raises(IdawError, match="no-sidecar"):
        host.offline_vector_from_args(host_args("--describe", "warm", "--no-sidecar"), audio, 48000, base)
    with pytest.raises(IdawError, match="intensity"):
        host.offline_vector_from_args(host_args("--describe", "warm", "--intensity", "nan"), audio, 48000, base)


def test_live_hook_starts_describes_and_stops_its_sidecar() -> None:
    base = params.build({"output_gain": -6.0})
    with paced_engine(base) as engine:
        assert host.attach_from_args(host_args("--no-sidecar"), engine, base, "t") is None
        attached = host.attach_from_args(host_args("--describe", "bright"), engine, base, "idaw live")
        assert attached is not None
        try:
            process = attached.process
            assert process is not None and process.running
            assert wait_until(lambda: engine.applied() >= 1, HANG_CAP_S)
            assert engine.pushes[-1][1][params.INDEX["high_gain"]] == pytest.approx(0.7 * 4.0)
            again = attached.describe(["warm"], 0.3)
            assert wait_until(lambda: engine.applied() == again.snapshot, HANG_CAP_S)
            attached.set_base(params.build({"output_gain": -3.0}))
            assert wait_until(lambda: engine.pushes[-1][1][params.INDEX["output_gain"]] == -3.0, HANG_CAP_S)
            assert engine.pushes[-1][1][params.INDEX["mid1_gain"]] == pytest.approx(0.3 * 4.8)
            assert attached.summary().startswith("sidecar connected: snapshot")
        finally:
            attached.close()
        assert not process.running


class _CountingModel:
    """A stand-in for SemanticEqHandler that records its fits: a describe fits unless (words, window) was fitted
    before; the answer's mid1_gain tells which window it was adapted to (the window's samples are that number).

    `fits` lists (words, window tag, thread name) for every fit, in order; a fit waits until `gate` is open (it is
    open unless a test closes it, to hold a background fit while it checks that the caller did not wait)."""

    def __init__(self, vocabulary: tuple[str, ...] = ("warm", "bright")) -> None:
        self.vocabulary = vocabulary
        self.fitted: set[tuple[tuple[str, ...], float]] = set()
        self.fits: list[tuple[tuple[str, ...], float, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def unknown_words(self, words: list[str]) -> list[str]:
        return [w for w in words if w not in self.vocabulary]

    def fits_on(self, thread: str) -> list[tuple[tuple[str, ...], float]]:
        """The (words, tag) fits made on the thread named `thread`, in order."""
        return [(words, tag) for words, tag, name in self.fits if name == thread]

    def describe(
        self, words: list[str], intensity: float, audio: npt.NDArray[np.float32] | None, rate: int
    ) -> SimpleNamespace:
        """SemanticEqHandler's answer shape: `eq` (the snapshot's values in order) and `words_used`."""
        from idaw.base.protocol import SCHEMA, flat_values

        tag = float(audio[0]) if audio is not None else 0.0
        if (tuple(words), tag) not in self.fitted:
            assert self.gate.wait(HANG_CAP_S), "a fit waited for the gate past the hang cap"
            self.fits.append((tuple(words), tag, threading.current_thread().name))
            self.fitted.add((tuple(words), tag))
        values = {**flat_values(), "mid1_gain": tag}
        return SimpleNamespace(eq=[values[n] for n in SCHEMA.snapshot_params], words_used=tuple(words))


def test_repeated_words_are_answered_from_the_last_fit_while_the_new_window_is_fitted() -> None:
    """Which fits ran, and on which thread, is counted (nothing is timed): a request that must wait for a fit makes
    it on the caller's thread; one answered from the last fit makes none there, and returns while the background fit
    of the new window is held at the model's gate, so it cannot have waited for it."""
    from sidecar.handlers import MAX_STALE_S, AnalysisWindow, SemanticEqAdapter

    def window(tag: float, received: float) -> AnalysisWindow:
        return AnalysisWindow(np.full(16, tag, dtype=np.float32), 16000, int(tag * 8000), received)

    model = _CountingModel()
    adapter = SemanticEqAdapter(model)
    caller = threading.current_thread().name
    now = time.monotonic()

    def ask(words: list[str], w: AnalysisWindow) -> float:
        return adapter.describe(words, 0.7, w).values["mid1_gain"]

    assert ask(["warm"], window(1, now)) == 1.0  # the first time: the caller fits
    assert model.fits_on(caller) == [(("warm",), 1.0)]
    # A newer window: the last fit's answer, no fit on the caller's thread; the new window's fit is queued behind,
    # and held at the gate until the answer is back.
    model.gate.clear()
    assert ask(["warm"], window(2, now + 0.5)) == 1.0 and adapter.stale_answers == 1
    assert model.fits_on(caller) == [(("warm",), 1.0)] and (("warm",), 2.0) not in model.fitted
    model.gate.set()
    assert wait_until(lambda: (("warm",), 2.0) in model.fitted and not adapter._pending, HANG_CAP_S)
    background = [name for words, tag, name in model.fits if (words, tag) == (("warm",), 2.0)]
    assert len(background) == 1 and background[0] != caller, model.fits
    # Asked again: adapted to window 2, from the background's fit (no new fit anywhere).
    fits = len(model.fits)
    assert ask(["warm"], window(2, now + 0.5)) == 2.0 and len(model.fits) == fits
    # The last fit is too old, new words, words outside the vocabulary (never fitted in the background): each is
    # fitted on the caller's thread before the answer.
    assert ask(["warm"], window(3, now + 0.5 + MAX_STALE_S + 0.1)) == 3.0  # the last fit is too old
    assert ask(["bright"], window(4, now + 4.0)) == 4.0  # new words
    assert ask(["velvety"], window(5, now + 4.5)) == 5.0  # outside the vocabulary
    assert ask(["velvety"], window(6, now + 5.0)) == 6.0
    assert model.fits_on(caller)[1:] == [(("warm",), 3.0), (("bright",), 4.0), (("velvety",), 5.0), (("velvety",), 6.0)]
    assert adapter.stale_answers == 1 and len(model.fits) == fits + 4
