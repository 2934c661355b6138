// ZeroMQ endpoints parsed whole, as libzmq parses them, to decide whether one stays on this machine: the link
// talks without CURVE only when it does (idaw/base/protocol/PROTOCOL.md, Security). The rules, and why each is what it
// is, are those of idaw/base/endpoint.py; tests/data/zmq_endpoints.json holds the cases both must agree on. No JUCE and
// no ZeroMQ here, so plugin_cpp/tests builds and tests it alone (test_zmq_endpoint).
#pragma once

#include <string>

namespace idaw::plugin::sidecar {

/// What parse_zmq_endpoint() found in an endpoint.
struct ZmqEndpoint {
    bool valid = false;     ///< libzmq could use it (stricter where libzmq would silently read another port)
    bool loopback = false;  ///< valid, and every address in it a loopback literal or localhost: no CURVE needed
    std::string transport;  ///< tcp, ipc, inproc or another libzmq transport (never loopback); empty when invalid
};

/// Parses `endpoint`: tcp://[SOURCE:PORT;]HOST:PORT (the source split off at the last ';', each port at the last
/// ':', brackets around a host dropped, as libzmq's tcp_address.cpp does), ipc://PATH, inproc://NAME, or one of
/// libzmq's network transports (pgm, epgm, norm, udp, ws, wss, tipc, vmci). Loopback hosts are 127.0.0.0/8 as four
/// decimal numbers, ::1 (no zone) and localhost; interface names, host names and every other spelling are not.
/// Allocates: call it off the audio thread.
ZmqEndpoint parse_zmq_endpoint(const std::string& endpoint);

/// The one-line message for a malformed endpoint, naming it and what to write instead (control characters
/// escaped); idaw/base/endpoint.py not_an_endpoint() says the same.
std::string not_an_endpoint_message(const std::string& endpoint);

}  // namespace idaw::plugin::sidecar
