"""idaw/base/endpoint.py: ZeroMQ endpoints parsed whole, against the table the plugin's parser is tested on too
(tests/data/zmq_endpoints.json, plugin_cpp/tests/test_zmq_endpoint.cpp), and against what libzmq itself does with
each tcp endpoint: every endpoint called loopback binds to a loopback address only, and every one called malformed
is refused by libzmq too (except the few the table marks libzmq_binds, where libzmq would use another port)."""

from __future__ import annotations

import errno
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import zmq

from idaw.base import protocol
from idaw.base.endpoint import Endpoint, EndpointError, is_loopback_endpoint, not_an_endpoint, parse_endpoint
from sidecar.server import ServerError, require_curve_for

TABLE_PATH = Path(__file__).with_name("data") / "zmq_endpoints.json"
TABLE: list[dict[str, Any]] = json.loads(TABLE_PATH.read_text(encoding="utf-8"))["endpoints"]


def parsed(text: str) -> Endpoint | None:
    """parse_endpoint(text), or None when it says the endpoint is malformed."""
    try:
        return parse_endpoint(text)
    except EndpointError:
        return None


def test_the_table_covers_every_kind_of_case() -> None:
    """The shared table is the contract: it must hold each kind (a truncated or emptied file would pass vacuously)."""
    kinds = {(row["valid"], row["loopback"]) for row in TABLE}
    assert kinds == {(True, True), (True, False), (False, False)}
    assert len(TABLE) >= 80 and len({row["endpoint"] for row in TABLE}) == len(TABLE)
    for finding in ("tcp://127.0.0.1:47948;0.0.0.0:47949", "tcp://127.0.0.1.example.org:47800"):
        assert any(row["endpoint"] == finding and row["valid"] and not row["loopback"] for row in TABLE)


@pytest.mark.parametrize("row", TABLE, ids=[repr(row["endpoint"]) for row in TABLE])
def test_endpoint_table(row: dict[str, Any]) -> None:
    endpoint = parsed(row["endpoint"])
    assert (endpoint is not None) == row["valid"], row["why"]
    assert is_loopback_endpoint(row["endpoint"]) == row["loopback"], row["why"]
    assert protocol.is_local_endpoint(row["endpoint"]) == row["loopback"]  # the old name delegates
    if endpoint is not None:
        assert endpoint.loopback == row["loopback"] and endpoint.text == row["endpoint"]
        assert row["endpoint"].startswith(endpoint.transport + "://")


def test_tcp_hosts_are_every_address_in_the_endpoint() -> None:
    assert parse_endpoint("tcp://127.0.0.1:1;[::1]:2").hosts == ("127.0.0.1", "::1")
    assert parse_endpoint("tcp://127.0.0.1:47948;0.0.0.0:47949").hosts == ("127.0.0.1", "0.0.0.0")
    assert parse_endpoint("ipc:///tmp/x").hosts == ()


def test_malformed_endpoints_get_one_line_naming_them_and_what_to_write() -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint("not an endpoint")
    assert str(caught.value) == "not a ZeroMQ endpoint: not an endpoint (write tcp://HOST:PORT or ipc://PATH)"
    assert not_an_endpoint("tcp://a\nb:1\x7f") == (
        "not a ZeroMQ endpoint: tcp://a\\x0ab:1\\x7f (write tcp://HOST:PORT or ipc://PATH)"
    )


def test_the_sidecar_refuses_malformed_endpoints_and_non_loopback_ones_without_keys() -> None:
    """require_curve_for (SidecarServer and `idaw sidecar` call it before binding) on issue 9's finding 2."""
    with pytest.raises(ServerError, match="needs CURVE keys"):
        require_curve_for("tcp://127.0.0.1:47948;0.0.0.0:47949", None)
    with pytest.raises(ServerError, match=r"^not a ZeroMQ endpoint: tcp://127\.0\.0\.1 \(write"):
        require_curve_for("tcp://127.0.0.1", None)
    require_curve_for("tcp://127.0.0.1:47948;127.0.0.1:47949", None)  # loopback only: no keys needed


# ---- against libzmq ---------------------------------------------------------------------------------------------

TCP_ROWS = [row for row in TABLE if row["endpoint"].startswith("tcp://")]


def bind(endpoint: str) -> str | zmq.ZMQError:
    """Where libzmq binds `endpoint` (its last_endpoint), trying an IPv4 socket and then a dual-stack one, or the
    error of the last try."""
    result: str | zmq.ZMQError = zmq.ZMQError(errno.EINVAL)
    with zmq.Context() as context:
        for ipv6 in (False, True):
            socket = context.socket(zmq.DEALER)
            socket.linger = 0
            socket.ipv6 = ipv6
            try:
                socket.bind(endpoint)
                result = socket.getsockopt_string(zmq.LAST_ENDPOINT)
            except zmq.ZMQError as error:
                result = error
            finally:
                socket.close()
            if isinstance(result, str):
                return result
    return result


def bound_address_is_loopback(bound: str) -> bool:
    """True when libzmq's last_endpoint `bound` (tcp://HOST:PORT) is a loopback address."""
    host = bound.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.mark.parametrize(
    "row", [r for r in TCP_ROWS if r["loopback"]], ids=[repr(r["endpoint"]) for r in TCP_ROWS if r["loopback"]]
)
def test_libzmq_binds_loopback_endpoints_to_loopback(row: dict[str, Any]) -> None:
    """Every endpoint we let through without CURVE ends up on a loopback address when libzmq binds it (each port
    made '*', so nothing collides with another test)."""
    endpoint = re.sub(r":(\d+|\*)(?=;|$)", ":*", row["endpoint"])
    bound = bind(endpoint)
    assert isinstance(bound, str), (endpoint, bound)
    assert bound_address_is_loopback(bound), (endpoint, bound)


@pytest.mark.parametrize(
    "row", [r for r in TCP_ROWS if not r["valid"]], ids=[repr(r["endpoint"]) for r in TCP_ROWS if not r["valid"]]
)
def test_libzmq_refuses_what_we_call_malformed(row: dict[str, Any]) -> None:
    """A malformed endpoint is one libzmq cannot use either, except where the table says libzmq would silently bind
    another port or address than the user wrote (those it accepts: refused here on purpose)."""
    result = bind(row["endpoint"])
    # EADDRINUSE / EACCES: libzmq read the endpoint and got as far as the socket (a port in use, or below 1024).
    accepted = isinstance(result, str) or result.errno in (errno.EADDRINUSE, errno.EACCES)
    assert accepted == bool(row.get("libzmq_binds", False)), (row["endpoint"], result)
