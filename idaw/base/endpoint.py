"""ZeroMQ endpoints, parsed whole as libzmq parses them, to decide whether one stays on this machine.

The sidecar talks without CURVE only over loopback (PROTOCOL.md, Security). That is decided here, from the whole
endpoint, never from a prefix: libzmq's tcp transport reads `tcp://[SOURCE:PORT;]HOST:PORT`, splitting the source
off at the last ';' and the port off at the last ':' of each part, then drops square brackets around the host
(src/tcp_address.cpp and src/ip_resolver.cpp). A bind binds the part after the ';' (the source must still resolve);
a connect connects to it from the source. So an endpoint is loopback only when EVERY address in it is a loopback
literal (127.0.0.0/8 written as four decimal numbers, or ::1) or `localhost`:

- an interface name (`tcp://lo:5555`, `tcp://eth0;127.0.0.1:5555`) is not: libzmq binds whatever address that
  interface has, and an interface can be named after an address;
- a host name (`tcp://127.0.0.1.example.org:1`) or libzmq's other spellings of an address (`127.1`, `0x7f.1`,
  `127.0.0.01`, which inet_aton accepts) are not: only the canonical literal is checked, anything else needs CURVE;
- an IPv6 address with a zone (`[::1%lo]`) or IPv4-mapped (`[::ffff:127.0.0.1]`) is not: both reach loopback
  only on some systems (the mapped form needs a dual-stack socket), and refusing them costs a user nothing, as
  127.0.0.1 and [::1] say the same thing;
- ipc:// and inproc:// are (a file or a name inside this process); pgm, epgm, norm, udp, ws, wss, tipc and vmci
  are network transports: valid endpoints, never loopback.

Malformed endpoints (no known transport, no port, a port beyond 65535, characters libzmq would refuse) are
reported as such, so a typo reads as a typo and not as a missing CURVE key. The parser is stricter than libzmq
where libzmq would silently use something else (`:70000` binds port 4464, `:5a` binds port 5). The same rules
are implemented for the plugin in plugin_cpp/plugin/source/zmq_endpoint.cpp; tests/data/zmq_endpoints.json holds
the cases both must agree on.

No zmq or numpy import here: the CLI checks endpoints before loading anything heavy.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

LOCAL_TRANSPORTS = ("ipc", "inproc")
"""Transports that never leave this machine (a socket file, or a name inside one process)."""

NETWORK_TRANSPORTS = ("pgm", "epgm", "norm", "udp", "ws", "wss", "tipc", "vmci")
"""libzmq's other transports: each may reach other machines, so none is loopback."""

USAGE = "write tcp://HOST:PORT or ipc://PATH"
"""What a user is told to write instead of a malformed endpoint."""

_NAME = re.compile(r"[A-Za-z0-9._-]+")
"""A host or interface name (and the characters of an IPv4 literal)."""

_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")
"""The characters of an IPv6 literal (with an IPv4 tail)."""

_ZONE = re.compile(r"[A-Za-z0-9._-]+")
"""An IPv6 zone: an interface name or number."""

_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")


class EndpointError(ValueError):
    """A malformed endpoint; str() is one line naming it and what to write instead."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed ZeroMQ endpoint."""

    text: str
    """The endpoint as written."""
    transport: str
    """tcp, ipc, inproc or one of NETWORK_TRANSPORTS."""
    hosts: tuple[str, ...]
    """tcp: the hosts it names, the source first when there is one (brackets removed); empty otherwise."""
    loopback: bool
    """True when nothing in it can reach beyond this machine: no CURVE is needed."""


def printable(text: str) -> str:
    """`text` as it can stand in a one-line message: control characters written as \\xNN (as the plugin does)."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def not_an_endpoint(text: str) -> str:
    """The one-line message for a malformed endpoint (the plugin says the same, zmq_endpoint.cpp)."""
    return f"not a ZeroMQ endpoint: {printable(text)} ({USAGE})"


def _valid_port(port: str) -> bool:
    """True for '*' or '0' (any free port on bind; libzmq refuses '*' on connect), or a decimal port 1..65535
    (libzmq reads the port with atoi, so '00' and '5a' would be port 0 or 5: refused here)."""
    if port in ("*", "0"):
        return True
    return 0 < len(port) <= 5 and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The address when `host` is a canonical dotted-quad IPv4 literal (no leading zeros), else None."""
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _ipv6_literal(host: str) -> ipaddress.IPv6Address | None:
    """The address when `host` is an IPv6 literal without a zone, else None."""
    if not _IPV6.fullmatch(host):
        return None
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        return None


def _host_is_loopback(host: str) -> bool | None:
    """For one host (brackets removed): True when it is a loopback literal or 'localhost', False for any other
    valid host (an address, a name, an interface, '*'), None when libzmq could not read it."""
    if host == "*":
        return False
    if ":" in host or "%" in host:  # only an IPv6 literal may hold these
        address, _, zone = host.partition("%")
        parsed = _ipv6_literal(address)
        if parsed is None or ("%" in host and not _ZONE.fullmatch(zone)):
            return None
        return not zone and parsed == _IPV6_LOOPBACK
    if not _NAME.fullmatch(host):
        return None
    if host == "localhost":
        return True
    ipv4 = _ipv4_literal(host)
    return ipv4 is not None and ipv4.is_loopback


def _tcp_hosts(address: str) -> list[tuple[str, bool]] | None:
    """The (host, loopback) pairs of a tcp address `[SOURCE:PORT;]HOST:PORT`, or None when malformed."""
    source, separator, destination = address.rpartition(";")
    parts = [source, destination] if separator else [destination]
    found: list[tuple[str, bool]] = []
    for part in parts:
        host, colon, port = part.rpartition(":")
        if not colon or not _valid_port(port):
            return None
        if host.startswith("[") and host.endswith("]") and len(host) >= 2:
            host = host[1:-1]
        loopback = _host_is_loopback(host)
        if loopback is None:
            return None
        found.append((host, loopback))
    return found


def parse_endpoint(text: str) -> Endpoint:
    """The endpoint `text` parsed; raises EndpointError (one line) when libzmq could not use it."""
    transport, separator, address = text.partition("://")
    if not separator or not address:
        raise EndpointError(not_an_endpoint(text))
    if transport == "tcp":
        hosts = _tcp_hosts(address)
        if hosts is None:
            raise EndpointError(not_an_endpoint(text))
        return Endpoint(text, transport, tuple(h for h, _ in hosts), all(loopback for _, loopback in hosts))
    if transport in LOCAL_TRANSPORTS:
        return Endpoint(text, transport, (), True)
    if transport in NETWORK_TRANSPORTS:
        return Endpoint(text, transport, (), False)
    raise EndpointError(not_an_endpoint(text))


def is_loopback_endpoint(text: str) -> bool:
    """True when `text` is a valid endpoint that stays on this machine (no CURVE needed); False otherwise,
    malformed endpoints included."""
    try:
        return parse_endpoint(text).loopback
    except EndpointError:
        return False
