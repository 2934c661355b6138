"""The built plugin decides CURVE from the whole endpoint (plugin_cpp/plugin/source/zmq_endpoint.h): a host name
that only starts like a loopback address, or a loopback source before a remote destination, needs keys (issue 9
finding 3: such an endpoint in a project file made the plugin stream its analysis audio unencrypted to another
host); a loopback-only tcp://SOURCE;DESTINATION connects without keys. Run in the test host with the editor open
under Xvfb, as tests/test_plugin_sidecar_settings.py runs its endpoint tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.endpoints import free_endpoint
from tests.support.plugin import PluginBuild, open_editor
from tests.support.sidecar_helpers import server_thread


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://127.0.0.1.example.org:47800", "tcp://127.0.0.1:0;192.0.2.1:47800", "tcp://lo:47800"],
    ids=["host name starting with 127.", "loopback source, remote destination", "interface name"],
)
def test_an_endpoint_that_only_looks_local_needs_keys(
    build: PluginBuild, xvfb: str, tmp_path: Path, endpoint: str
) -> None:
    """No keys in the key folder: the link refuses (one line, the status's last_error) instead of connecting."""
    keys = tmp_path / "no keys"
    keys.mkdir()
    report = open_editor(
        build, xvfb, tmp_path / "refused.png", "--sidecar-endpoint", endpoint, "--sidecar-keys", str(keys), env={}
    )
    secret = keys / "client.key_secret"
    expected = f"cannot read CURVE key {secret}; create keys with: idaw sidecar --make-keys"
    assert report["editor"]["sidecar_status"] == f"sidecar: refusing {endpoint} without CURVE keys: {expected}"
    assert report["sidecar_endpoint"] == endpoint  # kept in the state, to be corrected


def test_a_loopback_source_and_destination_connects_without_keys(build: PluginBuild, xvfb: str, tmp_path: Path) -> None:
    """tcp://127.0.0.1:0;127.0.0.1:PORT (connect from any loopback port to the sidecar): every address is loopback,
    so no keys are needed, and libzmq connects to the destination."""
    destination = free_endpoint()
    endpoint = "tcp://127.0.0.1:0;" + destination.removeprefix("tcp://")
    with server_thread(endpoint=destination) as server:
        report = open_editor(
            build,
            xvfb,
            tmp_path / "connected.png",
            "--sidecar-endpoint",
            endpoint,
            "--sidecar-keys",
            str(tmp_path / "no keys"),
            env={"IDAW_EDITOR_DESCRIBE": "warm"},
        )
        status = server.status()
    info = report["editor"]
    assert info["sidecar_status"].startswith("sidecar: connected (fallback-table)"), info["sidecar_status"]
    assert info["describe_status"] == "snapshot 1 from: warm", info["describe_status"]
    assert status["received"].get("hello", 0) >= 1, status["received"]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (
            "tcp://127.0.0.1:47800;",
            "not a ZeroMQ endpoint: tcp://127.0.0.1:47800; (write tcp://HOST:PORT or ipc://PATH)",
        ),
        ("tcp://127.0.0.1:70000", "not a ZeroMQ endpoint: tcp://127.0.0.1:70000 (write tcp://HOST:PORT or ipc://PATH)"),
        # Valid for bind only: the parser lets it through (loopback), libzmq's connect refuses it.
        ("tcp://127.0.0.1:*", "cannot connect to tcp://127.0.0.1:*: Invalid argument"),
    ],
)
def test_a_malformed_endpoint_is_named_before_any_key_is_looked_for(
    build: PluginBuild, xvfb: str, tmp_path: Path, endpoint: str, expected: str
) -> None:
    """A malformed endpoint reads as a typo (not as missing keys); one libzmq itself refuses, as libzmq's error."""
    report = open_editor(build, xvfb, tmp_path / "typo.png", "--sidecar-endpoint", endpoint, env={})
    assert report["editor"]["sidecar_status"] == f"sidecar: {expected}"
